"""File names in the files we write: any name the disk holds must survive the trip.

On Linux a file name is bytes; Python shows bytes that are not UTF-8 as lone surrogates
(``os.fsdecode``, "surrogateescape"), which UTF-8 writers (Parquet strings, CSV, JSON Lines) refuse. The
rule here (ours), one place for every writer:

- :func:`path_text`: a path as text for a table. A name that is valid UTF-8 is written as is (tables stay
  readable and unchanged); any other is written as a ``file:`` URI (RFC 8089) of the absolute path, its
  bytes percent-encoded — plain UTF-8 that :func:`text_path` turns back into the very same bytes.
  Unambiguous because the tables hold absolute paths (``/...``) or paths relative to a folder, never a
  ``file:`` prefix.
- :func:`portable_stem`: a stem for a file *we* name (degraded / distorted copies): valid UTF-8, no path
  separators or control characters, at most ``max_bytes`` bytes (file systems allow 255 per name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes os.fsdecode could not decode
_HOSTILE = re.compile(r"[\x00-\x1f/\\]")


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def path_text(path: str | os.PathLike) -> str:
    """``path`` as UTF-8 text for a table; a not-UTF-8 name becomes a ``file:`` URI (see module doc)."""
    text = os.fsdecode(path)
    return text if is_utf8(text) else Path(os.path.abspath(text)).as_uri()


def text_path(text: str) -> Path:
    """The inverse of :func:`path_text`."""
    if text.startswith("file:"):
        return Path(os.fsdecode(unquote_to_bytes(urlsplit(text).path)))
    return Path(text)


def portable_stem(stem: str, max_bytes: int = 100) -> str:
    """``stem`` with undecodable bytes, separators and control characters as ``_``, cut to ``max_bytes``.

    An ordinary name comes back unchanged, so outputs named before this rule keep their names.
    """
    s = _HOSTILE.sub("_", _UNDECODED.sub("_", stem))
    while len(s.encode("utf-8")) > max_bytes:
        s = s[:-1]
    return s


def order_under(paths: Sequence[Path], roots: Sequence[str | Path]) -> list[int]:
    """Row indices ordered by the first of ``roots`` holding each path (a root that is a file: itself), then
    its name under that root — the same order wherever the folders are: sorted absolute paths put a run
    folder's graded set before or after the source photos by where the run folder is. Paths under no root
    come last, by path."""
    keys = under_roots(paths, roots)
    return sorted(range(len(paths)), key=keys.__getitem__)


def under_roots(paths: Sequence[str | Path], roots: Sequence[str | Path]) -> list[tuple[int, str]]:
    """Each path as (the first of ``roots`` holding it, its name there) — alike wherever each root is (one
    of them moved); a path under no root: (``len(roots)``, the path)."""
    bases = [Path(os.path.abspath(r)) for r in roots]
    index: dict[Path, int] = {}  # a path's folders looked up: thousands of files given one by one stay linear
    for j, base in enumerate(bases):
        index.setdefault(base, j)

    def key(path: str | Path) -> tuple[int, str]:
        p = Path(os.path.abspath(path))
        hits = [index[a] for a in (p, *p.parents) if a in index]
        if not hits:
            return len(bases), str(p)
        base = bases[min(hits)]
        return min(hits), p.name if p == base else p.relative_to(base).as_posix()

    return [key(p) for p in paths]


def common_folder(texts: Sequence[str]) -> str:
    """The folder holding all of ``texts`` (:func:`path_text` of paths; one file: its folder): what a moved
    images folder's files are named under, alike before and after the move."""
    return os.path.commonpath([os.path.dirname(text_path(t)) for t in texts])
