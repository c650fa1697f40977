"""A resumable job's settings file: written on the first run, compared on every later one.

Resuming with other settings would silently mix two jobs' outputs; this refuses it with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attiqa.errors import ConfigError
from attiqa.io.atomic import write_json_atomic


def check_or_write_meta(path: str | Path, meta: dict[str, Any], fix: str) -> None:
    """Write ``meta`` to ``path`` if absent; otherwise raise :class:`ConfigError` (naming the file and
    ``fix``) unless the stored settings are the same."""
    path = Path(path)
    if not path.exists():
        write_json_atomic(path, meta)
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        old = None
    if old != json.loads(json.dumps(meta, default=str)):
        raise ConfigError(f"{path}: made with other settings — {fix}")
