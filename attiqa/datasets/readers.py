"""Readers for the file formats datasets are distributed in: CSV/TSV with a header (by column name),
MATLAB ``.mat`` (scipy), Excel ``.xlsx`` (openpyxl, optional) — each failing with one clear line.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from attiqa.errors import AttiqaError
from attiqa.io.atomic import link_fault_words


def first_file(root: Path, candidates: Sequence[str]) -> Path | None:
    """The first of ``candidates`` (relative to ``root``) that is a file, or None."""
    return next((root / c for c in candidates if (root / c).is_file()), None)


def laid_out_as(root: Path, but: str) -> tuple[str, str] | None:
    """The other named dataset (not ``but``, nor ``folder``) whose score file ``root`` holds, and that
    file: a root given to the wrong name (``eval koniq10k --root SPAQ/``) said only "not found"."""
    from attiqa.datasets import DATASETS  # the registry imports this module

    for name, cls in DATASETS.items():
        if name in (but, "folder"):
            continue
        for pattern in cls.info.score_files:
            found = next((p for p in sorted(root.glob(pattern)) if p.is_file()), None)
            if found is not None:
                return name, str(found.relative_to(root))
    return None


def need_file(root: Path, candidates: Sequence[str], dataset: str, layout: str) -> Path:
    """The first of ``candidates`` (relative to ``root``) that exists, else :func:`no_score_file`."""
    found = first_file(root, candidates)
    if found is not None:
        return found
    raise no_score_file(root, candidates, dataset, layout)


def no_score_file(root: Path, candidates: Sequence[str], dataset: str, layout: str) -> AttiqaError:
    """The error for none of ``candidates`` (relative to ``root``) there, with the layout — and the likely
    fix: the folder above when it holds the file (``root`` the image folder), or the folder adapter when
    ``root`` holds a ``mos.csv``. Returned for the caller to raise, where it knows none is there."""
    below = folder_below(root, candidates)
    if below is not None:  # the archive's own top folder inside ROOT (`kadid10k/`, `ChallengeDB_release/`)
        return AttiqaError(
            f"{dataset}: score file not found under {root} — {below[1]} is in {below[0]}, the folder the "
            f"download unpacked to: pass {below[0]} as the root"
        )
    folder_csv = root / "mos.csv"  # the folder adapter's default score file (clive-dev is laid out so)
    above = next((root.parent / c for c in candidates if (root.parent / c).is_file()), None)
    if above is not None:  # `--root AGIQA-3K/` given the image folder beside data.csv
        other = f"{above} is one folder up: pass {root.parent} as the root; "
    elif dataset != "folder" and folder_csv.is_file():
        other = f"{root} holds mos.csv: for a folder of images + a CSV use `attiqa eval folder --root {root}`"
        other += "; "
    elif (seen := laid_out_as(root, dataset)) is not None:
        other = f"{root} is laid out as {seen[0]} ({seen[1]} is there): name that dataset, or give the "
        other += f"{dataset} download's folder; "
    else:
        other = ""
    return AttiqaError(
        f"{dataset}: score file not found under {root} (looked for {', '.join(candidates)}) — "
        f"{other}expected layout:\n{layout}"
    )


def folder_below(root: Path, candidates: Sequence[str], depth: int = 2) -> tuple[Path, str] | None:
    """The folder up to ``depth`` levels inside ``root`` that holds one of ``candidates`` (relative to it),
    and that candidate: ROOT given as the folder a download was unpacked *into*, its files one or two folders
    down (``ROOT/kadid10k/dmos.csv``, ``ROOT/CLIVE/ChallengeDB_release/Data/…``) — was "score file not found"
    with the layout, which ROOT/kadid10k matched. Hidden folders are not looked in."""
    level = [root]
    for _ in range(depth):
        level = [d for p in level for d in _subfolders(p)]
        for d in level:
            hit = next((c for c in candidates if (d / c).is_file()), None)
            if hit is not None:
                return d, hit
    return None


def _subfolders(path: Path) -> list[Path]:
    """The folders in ``path`` (not hidden), sorted; none when it cannot be listed."""
    try:
        return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


# Beyond any score scale (MOS 0-1 .. 0-100, Elo, vote counts) and still far from overflow: squares and sums
# of scores (variance, PLCC, the logistic fit) stay finite. A cell like 1e308 is a typo or a damaged file.
MAX_SCORE_TEXT = "1e15"
MAX_SCORE = float(MAX_SCORE_TEXT)


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a score file, in words with the fix, for what ``is_file()`` only
    calls "not found": a folder, a symlink loop, a link to nothing; None for a file (or nothing)."""
    if path.is_dir():
        return f"a folder, not a CSV — pass the score file itself, e.g. {path / 'mos.csv'}"
    why = link_fault_words(path)
    return None if why is None else f"{why} — point it at the score CSV itself"


NO_SCORE = ("", "nan", "na", "n/a")  # a cell's text (stripped, lower case) that means "no score": NaN


def cell_number(cell: str | None) -> float | None:
    """A text cell's number by :func:`to_float`'s rule (:data:`NO_SCORE`: NaN), None when it is none — the
    one rule of which cells are numbers, for readers that look at a column before reading it."""
    s = (cell or "").strip()
    if s.lower() in NO_SCORE:
        return float("nan")
    try:
        return float(s)
    except ValueError:
        return None


def to_float(value: Any, where: str) -> float:
    """A number from a cell; empty cells are NaN (the row then has no value for that target). A finite
    value beyond :data:`MAX_SCORE` is refused: it would overflow the metrics later, far from its cell."""
    if value is None:
        return float("nan")
    if isinstance(value, (int, float, np.number)):
        v = float(value)
    else:
        parsed = cell_number(str(value))
        if parsed is None:
            raise AttiqaError(
                f"{where}: {str(value).strip()!r} is not a number — fix the cell (a decimal point, not a "
                "comma), or leave it empty to leave that image out"
            )
        v = parsed
    if math.isfinite(v) and abs(v) > MAX_SCORE:
        raise AttiqaError(
            f"{where}: {value!r} is not a plausible score (beyond ±{MAX_SCORE_TEXT}) — fix the cell, or "
            "leave it empty to leave that image out"
        )
    return v


def repeated_rows(
    images: Sequence[Path], values: Sequence[Any], lines: Sequence[int | None] = ()
) -> tuple[list[int], list[str], int]:
    """Rows of a score file naming an image an earlier row named: the rows to keep (each image's first),
    each image whose later row holds another value (``IMG (a and b)``: refused by the callers, it would
    count one image twice with two scores — in a training table possibly on both sides of the split), and
    how many rows repeat an earlier one exactly (counted once). An image is the file a row's path leads to:
    ``a.jpg`` and ``../set/a.jpg`` (or a link to it) are one image (were counted as two). ``lines``: each
    row's line in the file, named with the two values (``IMG (a on line 4 and b on line 32)``)."""

    def at(i: int) -> str:
        return f" on line {lines[i]}" if i < len(lines) and lines[i] is not None else ""

    first: dict[Path, int] = {}
    keep: list[int] = []
    conflicts: list[str] = []
    repeats = 0
    for i, (img, value) in enumerate(zip(images, values, strict=True)):
        file = Path(img).resolve()
        j = first.get(file)
        if j is None:
            first[file] = i
            keep.append(i)
        elif values[j] == value:
            repeats += 1
        else:
            conflicts.append(f"{img} ({_shown(values[j])}{at(j)} and {_shown(value)}{at(i)})")
    return keep, conflicts, repeats


def _shown(value: Any) -> str:
    """A cell's value as an error shows it (numbers in their shortest form, a row's cells with commas)."""
    if isinstance(value, tuple):
        return ", ".join(map(_shown, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def _pick(path: Path, fields: Sequence[str], aliases: Sequence[str]) -> str | None:
    """The first alias present among ``fields``, ignoring case and spaces (``MOS``, ``Image name``); a
    header with two spellings of that name (``mos`` and ``MOS``) is refused: either could be meant."""
    for a in aliases:
        hits = [f for f in fields if _key(f) == _key(a)]
        if len(hits) > 1:
            raise AttiqaError(
                f"{path}: columns {' and '.join(map(repr, hits))} differ only in case — rename or remove one"
            )
        if hits:
            return hits[0]
    return None


MOS_HEADER = "image,mos[,split]"  # the columns of a user's own score CSV (`eval folder`, `bench`, `train`)


class Table:
    """Rows of a header-ed file with column lookup by name (and aliases), for clear errors. ``lines`` holds
    each row's line in the file (1-based, where the row starts), for errors that name a cell."""

    def __init__(
        self,
        path: Path,
        fields: list[str],
        rows: list[dict[str, Any]],
        lines: Sequence[int] | None = None,
        fix: str = "is this the official score file?",
    ) -> None:
        twice = next((f for i, f in enumerate(fields) if f and f in fields[:i]), None)
        if twice is not None:
            raise AttiqaError(
                f"{path}: column {twice!r} appears twice in the header — rename or remove one copy"
            )
        self.path = path
        self.fields = fields
        self.rows = rows
        self.fix = fix  # ends the error for a missing column
        self.lines = list(lines) if lines is not None else list(range(2, len(rows) + 2))

    def numbered(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line in the file, row) pairs: the line an error about the row should name."""
        return zip(self.lines, self.rows, strict=True)

    @overload
    def column(self, *aliases: str, required: Literal[True] = True) -> str: ...

    @overload
    def column(self, *aliases: str, required: bool) -> str | None: ...

    def column(self, *aliases: str, required: bool = True) -> str | None:
        """The actual name of the first matching column; an error naming what was found otherwise."""
        name = _pick(self.path, self.fields, aliases)
        if name is None and required:
            raise AttiqaError(
                f"{self.path}: missing column {aliases[0]!r} (found: {', '.join(self.fields) or 'none'}) — "
                f"{self.fix}"
            )
        return name

    def __len__(self) -> int:
        return len(self.rows)


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+([eE][+-]?\d+)?")


def _decimal_point(cell: Any) -> Any:
    """``3,75`` -> ``3.75`` for a cell that is only a decimal-comma number (a name keeps its commas)."""
    return cell.replace(",", ".") if isinstance(cell, str) and _DECIMAL_COMMA.fullmatch(cell) else cell


class _CountedLines:
    """The lines of a text file for :mod:`csv`, noting where the next row starts: blank lines (which the
    reader skips), the header and cells quoted over several lines all count, as in an editor."""

    def __init__(self, fh: Iterable[str]) -> None:
        self._it = iter(fh)
        self.n = 0  # lines handed out so far
        self.start: int | None = None  # first non-blank line since the last mark

    def __iter__(self) -> _CountedLines:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.n += 1
        if self.start is None and line.strip("\r\n"):
            self.start = self.n
        return line

    def mark(self) -> None:
        self.start = None


def fitting_rows(reader: csv.DictReader[str], path: Path, delimiter: str) -> Iterator[dict[str | Any, Any]]:
    """The rows of ``reader``, refusing one with more non-empty cells than the header has columns: an
    unquoted delimiter in a name or prompt shifts every later cell into the next column (a MOS read from
    the std column, the last cell dropped) without any other sign; and one holding NUL bytes, which no
    text file has: a damaged one, whose zeros were read as a prompt's text or a MOS cell's."""
    for row in reader:
        if any("\x00" in c for c in row.values() if isinstance(c, str)):  # csv reads NUL as text
            raise AttiqaError(  # the cell's repr of 8,192 "\x00" made a 33,000-character "one line"
                f"{path}:{reader.line_num}: NUL bytes in the text — the file is damaged (zeros where its "
                "text was, as a copy cut short by a crash leaves them): restore it from its source"
            )
        extra = row.get(None)  # csv.DictReader's restkey: the cells past the header
        if extra and any(str(c).strip() for c in extra):
            sep = "a tab" if delimiter == "\t" else f"'{delimiter}'"
            width = len(reader.fieldnames or ())
            raise AttiqaError(
                f"{path}:{reader.line_num}: {width + len(extra)} cells under a header of {width} columns — "
                f'a name or text holding {sep} must be quoted ("smith, john.jpg"), or remove the extra cells'
            )
        yield row


def read_csv(
    path: Path,
    delimiter: str | None = None,
    errors: str = "strict",
    what: str = "score file",
    header: str | None = None,
) -> Table:
    """A CSV/TSV with a header row; the delimiter is sniffed from the header when not given. ``errors``
    ``"surrogateescape"`` reads back a file the project wrote with names that are not UTF-8. ``what`` names
    the file in the errors ("is this the right score file?"). ``header``: the columns of a file the user
    makes (``image,mos[,split]``), named in the fix for a missing column — an official file's is "is this
    the official score file?". Cells and column names are read without their leading and trailing spaces (a
    spreadsheet's ``" 3.5"``, a hand-typed ``"a.jpg "``)."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors=errors) as fh:
            head = fh.readline()
            fh.seek(0)
            if delimiter is None:  # tab, comma, or a spreadsheet's semicolon (locales with a decimal comma)
                delimiter = max(("\t", ";", ","), key=lambda d: (head.count(d), d == ","))
            counted = _CountedLines(fh)
            reader = csv.DictReader(counted, delimiter=delimiter)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            rows, lines = [], []
            counted.mark()
            for r in fitting_rows(reader, path, delimiter):
                rows.append(
                    {(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in r.items()}
                )
                lines.append(counted.start or counted.n)
                counted.mark()
            if delimiter == ";":  # a spreadsheet of a decimal-comma locale: its numbers read "3,75"
                rows = [{k: _decimal_point(v) for k, v in r.items()} for r in rows]
    except UnicodeDecodeError:
        raise AttiqaError(
            f"{path}: not a UTF-8 text file — save it as UTF-8 (is this the right {what}?)"
        ) from None
    except csv.Error as exc:
        raise AttiqaError(f"{path}: not a readable CSV ({exc}) — is this the right {what}?") from None
    except OSError as exc:  # a folder, no permission: the callers check that the file exists, not more
        raise AttiqaError(
            f"{path}: cannot read the {what} ({exc.strerror or exc}) — check the path"
        ) from None
    if header is None:
        return Table(path, fields, rows, lines)
    return Table(path, fields, rows, lines, f"name the columns {header} in its header (any case)")


def load_mat(path: Path) -> dict[str, Any]:
    """Variables of a MATLAB file (v4–v7.2, what the LIVE datasets use); an error for v7.3/HDF5."""
    from scipy import io as sio

    try:
        return sio.loadmat(str(path), squeeze_me=False)
    except NotImplementedError:
        raise AttiqaError(f"{path}: MATLAB v7.3 (HDF5) files are not supported — re-save with -v7") from None
    except Exception as exc:  # noqa: BLE001 - any scipy failure means "not the expected file"
        raise AttiqaError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc})") from None


def mat_var(mat: dict[str, Any], path: Path, *names: str) -> np.ndarray:
    """A variable by name (first of ``names`` present), or an error listing what the file holds."""
    for n in names:
        if n in mat:
            return mat[n]
    have = [k for k in mat if not k.startswith("__")]
    raise AttiqaError(f"{path}: no variable {names[0]!r} (found: {', '.join(have) or 'none'})")


def mat_strings(arr: np.ndarray) -> list[str]:
    """A MATLAB cell array of char (any shape) -> flat list of Python strings, in MATLAB column order."""
    flat = np.asarray(arr, dtype=object).flatten(order="F")
    out = []
    for cell in flat:
        v = cell
        while isinstance(v, np.ndarray):
            if v.size == 0:
                v = ""
                break
            v = v.flatten()[0] if v.dtype == object or v.size == 1 else "".join(map(str, v.flatten()))
        out.append(str(v).strip())
    return out


def mat_numbers(arr: np.ndarray) -> np.ndarray:
    """A numeric MATLAB array (any shape) -> flat float64 vector, in MATLAB column order."""
    return np.asarray(arr, dtype=np.float64).flatten(order="F")


def read_xlsx(path: Path, header_has: Iterable[str] = (), sheet: str | None = None) -> Table:
    """An ``.xlsx`` sheet as a :class:`Table` (needs openpyxl). The header is the first row, within the
    first 20, that contains every name in ``header_has`` (some official sheets start with a title)."""
    try:
        import openpyxl
    except ImportError:
        raise AttiqaError(
            f"{path}: reading .xlsx needs the openpyxl package — `pip install openpyxl` (or save the "
            "sheet as CSV with the same column names next to it)"
        ) from None
    try:
        wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001
        raise AttiqaError(f"{path}: not a readable .xlsx file ({type(exc).__name__}: {exc})") from None
    try:
        sheets = [wb[sheet]] if sheet and sheet in wb.sheetnames else list(wb.worksheets)
        want = [w.strip().lower() for w in header_has]
        for ws in sheets:
            rows = list(ws.iter_rows(values_only=True))
            for i, row in enumerate(rows[:20]):
                cells = [str(c).strip() if c is not None else "" for c in row]
                low = [c.lower() for c in cells]
                if any(cells) and all(any(w == c for c in low) for w in want):
                    fields = cells
                    kept = [
                        (j + 1, r)  # the sheet's row number, as the spreadsheet shows it
                        for j, r in enumerate(rows[i + 1 :], start=i + 1)
                        if any(v is not None and str(v).strip() != "" for v in r)
                    ]
                    data = [{f: v for f, v in zip(fields, r, strict=False) if f} for _, r in kept]
                    return Table(path, [f for f in fields if f], data, [j for j, _ in kept])
    finally:
        wb.close()
    raise AttiqaError(f"{path}: no sheet has a header row with {', '.join(header_has)}")


def read_table(path: Path, header_has: Iterable[str] = (), sheet: str | None = None) -> Table:
    """CSV/TSV/TXT or XLSX by extension (so a user may convert an official .xlsx to .csv); ``sheet``: the
    workbook's sheet to read first, when it has one of that name."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, header_has, sheet)
    return read_csv(path)


def posix_name(name: str, *folders: Path) -> str:
    """An image name of a score file as the disk under ``folders`` holds it: one made on Windows
    (``images\\a.jpg``) with ``/`` — unless a file is named with the backslashes (legal on Linux): every image
    of such a file was "not found"; and a name typed in another Unicode form than the file's (a table made
    on macOS writes ``ü`` as ``u`` + a combining mark, NFD; the file is NFC): was "not found" though the
    name shown is the file's, letter for letter."""
    if "\\" in name and not any((folder / name).exists() for folder in folders):
        name = name.replace("\\", "/")
    if name.isascii() or any((folder / name).exists() for folder in folders):
        return name
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, name)
        if other != name and any((folder / other).exists() for folder in folders):
            return other
    return name


def find_image_dir(root: Path, candidates: Sequence[str], sample: Sequence[str]) -> Path:
    """The first candidate folder (relative to ``root``) holding the first of ``sample``'s images.

    Datasets are unpacked in slightly different ways (with or without the archive's top folder); this
    picks the one that matches, and falls back to the first candidate (the documented layout) so a
    missing-image error names the paths the user should create.
    """
    probe = [s for s in sample[:PROBE] if s]
    for c in candidates:
        d = root / c
        if d.is_dir() and probe and any((d / s).exists() for s in probe):
            return d
    for c in candidates:  # names off by case only (`1000.jpg` listed, `1000.JPG` on disk): read so below
        d = root / c
        if d.is_dir() and probe and any(CaseInsensitiveDir(d)(s).exists() for s in probe):
            return d
    return root / candidates[0]


PROBE = 50
"""How many of a score file's first names find its image folder: 3 was too few — a file whose first rows
named images off by case (or missing) put every image under the wrong folder, "12 of 12 missing"."""


class CaseInsensitiveDir:
    """Resolve file names in one folder ignoring case (TID2013 lists ``I01_01_1.bmp``, ships
    ``i01_01_1.bmp``). Exact names win; a missing name resolves to its exact-case path."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lower: dict[str, str] | None = None

    def __call__(self, name: str) -> Path:
        exact = self.folder / name
        if exact.exists():
            return exact
        if self._lower is None:
            self._lower = (
                {p.name.lower(): p.name for p in self.folder.iterdir()} if self.folder.is_dir() else {}
            )
        real = self._lower.get(name.lower())
        return self.folder / real if real else exact


def same_stem(path: Path) -> str | None:
    """Another file beside a missing ``path`` with its name but another extension or case (``a.png``
    listed, ``a.JPG`` there), for the "not found" line to name; None when there is none."""
    if not path.parent.is_dir():
        return None
    stem = path.stem.lower()
    return next(
        (f.name for f in sorted(path.parent.iterdir()) if f.stem.lower() == stem and f.is_file()), None
    )


def finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def parse_data_spec(spec: str) -> tuple[str | None, str, str]:
    """``[LABEL:]NAME=ROOT`` -> (label, name, root). For ``folder``, ROOT may be the CSV itself."""
    if "=" not in spec:
        raise AttiqaError(f"--data {spec!r}: expected [LABEL:]NAME=ROOT, e.g. clive=/data/CLIVE")
    left, root = spec.split("=", 1)
    label, _, name = left.rpartition(":")
    if not name or not root:
        raise AttiqaError(f"--data {spec!r}: expected [LABEL:]NAME=ROOT, e.g. clive=/data/CLIVE")
    return (label or None), name, root
