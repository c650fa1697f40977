"""CSV written by the tools: formula-safe cells and file names that round-trip, in one place.

- A text cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR is a formula to a spreadsheet (a file
  named ``=cmd|calc.jpg`` would run a command when the CSV is opened): such cells get a leading ``'``
  (OWASP's advice), as do cells that already start with ``'`` before one of those characters, so
  :func:`read_cell` undoes it exactly. Numbers (``-0.5``) are left alone.
- File names that are not valid UTF-8 (Linux allows any bytes) are strings with lone surrogates after
  ``os.fsdecode``; the files are written and read with ``errors="surrogateescape"`` so those names come
  back byte for byte instead of crashing the writer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
ENCODING = "utf-8"
ERRORS = "surrogateescape"


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet will not run it (see the module docstring); non-strings unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in FORMULA_LEAD and not _is_number(value):
        return "'" + value
    if value[0] == "'" and value[1:2] in (*FORMULA_LEAD, "'"):
        return "'" + value
    return value


def read_cell(text: str) -> str:
    """Inverse of :func:`safe_cell` for a cell read back from a file this module wrote."""
    if text[:1] == "'" and text[1:2] in (*FORMULA_LEAD, "'"):
        return text[1:]
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = ",") -> str:
    """A whole CSV document with every cell passed through :func:`safe_cell`."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow([safe_cell(c) for c in header])
    for row in rows:
        w.writerow([safe_cell(c) for c in row])
    return buf.getvalue()


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = ",") -> bytes:
    """:func:`csv_text` encoded so non-UTF-8 file names round-trip (write it with an atomic byte writer)."""
    return csv_text(header, rows, delimiter).encode(ENCODING, ERRORS)


def safe_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A ``csv.DictWriter`` row with every cell passed through :func:`safe_cell`."""
    return {k: safe_cell(v) for k, v in row.items()}
