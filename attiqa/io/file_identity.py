"""The one rule of "is this still the file an earlier run worked on" (`attiqa label`'s table, `attiqa score
-o`'s file, a graded set's copies): a photo replaced under the same path (``cp other.jpg photos/a.jpg``, a
folder exported again) kept its old labels, scores and graded copies, all keyed by path.

A file's identity is its size and modification time in nanoseconds, not a hash of its bytes: a resume
checks every row it holds, and hashing would read every photo of the collection again (a stat per photo
instead); a copy that keeps both the size and the time (``cp -p`` of a same-sized file) is the one change
this misses. An identity only ever says "changed" when one was recorded: a table or folder of a version
before this rule has none and is resumed as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def file_identity(path: str | Path) -> str | None:
    """``"<size>:<mtime_ns>"`` of ``path`` (links followed), or None when it cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def changed_files(recorded: Mapping[str, str | None], path_of: Iterable[tuple[str, Path]]) -> set[str]:
    """The keys of ``path_of`` (a row's key, the file it is of) whose file exists and differs from the
    identity ``recorded`` for that key; a key recorded without one (an earlier version's row), not recorded,
    or whose file is gone, is not changed."""
    changed: set[str] = set()
    for key, path in path_of:
        then = recorded.get(key)
        if then is None:
            continue
        now = file_identity(path)
        if now is not None and now != then:
            changed.add(key)
    return changed


def changed_words(n: int, what: str) -> str:
    """The one line a resume says once: ``"2 photos changed since the earlier run: labelled again"``."""
    return f"{n} photo{'s' if n != 1 else ''} changed since the earlier run: {what} again"


SOURCES_RECORD = "source_files.jsonl"
"""The one name of a set's record of its sources (a graded set's, a make-distorted set's), in its folder."""


def read_sources(path: Path) -> dict[str, str]:
    """A set's record of its sources' identities (one JSON line each, ``{"source", "file"}``, the last
    line of a source wins; {} without one); a line cut by a kill, or not ours, is left out (that source is
    taken as it is now, as in a set made before the record)."""
    found: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            entry = json.loads(line)
            found[entry["source"]] = entry["file"]
        except (ValueError, KeyError, TypeError):
            continue
    return found


def sources_text(entries: Iterable[tuple[str, str]]) -> str:
    """``entries`` (source, identity) as the lines :func:`read_sources` reads."""
    return "".join(json.dumps({"source": s, "file": f}) + "\n" for s, f in entries)


def append_sources(path: Path, entries: Sequence[tuple[str, str]]) -> None:
    """Append ``entries`` (source, identity) to the record :func:`read_sources` reads, durable at return —
    a graded or make-distorted set's record of its sources, `score -o`'s of its images."""
    if not entries:
        return
    text = sources_text(entries)
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
