"""A resumable job's settings file: written on the first run, compared on every later one.

Resuming with other settings would silently mix two jobs' outputs; this refuses it with one line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attiqa.errors import ConfigError
from attiqa.io.atomic import json_text, write_json_atomic


def same_setting(a: Any, b: Any) -> bool:
    """``a == b`` with NaN equal to NaN, inside lists and mappings too: a setting read back from JSON is
    compared by value (``nan != nan`` refused a run's own resume)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_setting(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_setting(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def differing_settings(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two settings records, e.g. "rounds 1, now 2; other sources" (a long value
    by its key only; a ``*_sha256`` key as what it hashes)."""
    words = []
    for k in [*new, *(k for k in old if k not in new)]:  # the new record's order, then keys it dropped
        a, b = old.get(k), new.get(k)
        if a != b:
            short = len(repr(a)) + len(repr(b)) <= 60 and not k.endswith("_sha256")
            words.append(f"{k} {a!r}, now {b!r}" if short else f"other {k.removesuffix('_sha256')}")
    return "; ".join(words)


def check_meta(
    path: str | Path, meta: dict[str, Any], fix: str, upgrade: Callable[[Any], Any] | None = None
) -> bool:
    """:func:`check_or_write_meta`'s check alone, nothing written, so a command with more checks writes its
    settings only once they all passed (a refused run leaves its folder as it was): True when ``path`` is
    to be written — none yet, or an older form of it that ``upgrade`` (old record -> record) brought up to
    date. Other settings raise :class:`ConfigError` naming the file and ``fix``."""
    path = Path(path)
    if not path.exists():
        return True
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        stored = None
    old = upgrade(stored) if upgrade is not None else stored
    new = json.loads(json_text(meta))  # as it was stored
    if old != new:
        what = f" ({differing_settings(old, new)})" if isinstance(old, dict) else ""
        raise ConfigError(f"{path}: made with other settings{what} — {fix}")
    return old != stored


def check_or_write_meta(path: str | Path, meta: dict[str, Any], fix: str) -> None:
    """Write ``meta`` to ``path`` if absent; otherwise raise :class:`ConfigError` (naming the file and
    ``fix``) unless the stored settings are the same."""
    if check_meta(path, meta, fix):
        write_json_atomic(path, meta)
