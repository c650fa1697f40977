"""Training datasets: pseudo-label tables (pretraining) and MOS CSVs (fine-tuning).

Bad-file policy (ours):
- Up front, every image path must exist: otherwise one :class:`AttiqaError` lists how many are missing
  and the first few, before any training starts (a typo in a root folder fails in a second, not after
  an epoch).
- During training, a file that exists but fails to decode must not crash the epoch. With
  ``on_error="substitute"`` (training) the dataset returns the next loadable sample instead, so every
  batch on every rank keeps the same size — under DDP a rank that skipped a step would deadlock the
  gradient all-reduce. With ``on_error="skip"`` (evaluation) it returns None and
  :func:`collate_skip_none` drops it, so metrics use only the images that decoded.
- The failure is marked in a flag tensor in shared memory (DataLoader workers are other processes), and
  the stage's :func:`unreadable_report` prints one line per bad file (after the epoch that met it) and a
  count when the stage ends, also by an error, Ctrl-C or SIGTERM — not a Python warning per image and
  per worker.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from attiqa.datasets.base import (
    ROWS_KEY,
    ROWS_VERSION,
    canonical_split,
    name_under,
    rows_sha256,
    values_digest,
)
from attiqa.datasets.readers import MOS_HEADER, not_a_file, posix_name, read_csv, repeated_rows, to_float
from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.io.images import load_image
from attiqa.io.label_tables import FILES_KEY
from attiqa.io.names import order_under, text_path, under_roots
from attiqa.progress import console, plain, plain_failure
from attiqa.splits import check_split, split_indices
from attiqa.training import distributed as D

Transform = Callable[[Image.Image], torch.Tensor]
MAX_SUBSTITUTE_TRIES = 16


def check_images_exist(paths: Sequence[Path], what: str, lines: Sequence[int] = ()) -> None:
    """Raise one error naming the count and the first few missing files (with ``lines``, each row's line in
    the file ``what``, the line naming it)."""
    at = [f" on line {n}" for n in lines] if len(lines) == len(paths) else [""] * len(paths)
    missing = [f"{p}{a}" for p, a in zip(paths, at, strict=True) if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise AttiqaError(
            f"{what}: {len(missing)} of {len(paths)} images not found ({shown}) — check the paths/root"
        )


def collate_skip_none(batch: list[Any]) -> Any:
    """Default collate after dropping samples that failed to load (None); None if nothing is left."""
    batch = [b for b in batch if b is not None]
    return default_collate(batch) if batch else None


class ImageTableDataset(Dataset):
    """Shared loading logic: ``paths`` + per-row ``targets`` tensor, with the bad-file policy above."""

    def __init__(self, paths: list[Path], targets: torch.Tensor, transform: Transform, on_error: str) -> None:
        if on_error not in ("substitute", "skip", "raise"):
            raise ValueError("on_error must be 'substitute', 'skip' or 'raise'")
        self.paths = paths
        self.targets = targets
        self.transform = transform
        self.on_error = on_error
        self.failed = torch.zeros(len(paths), dtype=torch.uint8).share_memory_()  # set by any worker
        if _REPORTS:
            _REPORTS[-1].datasets.append(self)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def mos(self) -> torch.Tensor:
        return self.targets

    def _load(self, i: int) -> torch.Tensor:
        return self.transform(load_image(self.paths[i]))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        tries = MAX_SUBSTITUTE_TRIES if self.on_error == "substitute" else 1
        j = i
        for _ in range(tries):
            try:
                return self._load(j), self.targets[j], j
            except (ImageLoadError, OSError, ValueError):
                if self.on_error == "raise":
                    raise
                self.failed[j] = 1
                if self.on_error == "skip":
                    return None
                j = (j + 1) % len(self.paths)
        raise AttiqaError(f"{MAX_SUBSTITUTE_TRIES} consecutive images failed to load near {self.paths[i]}")


class UnreadableImages:
    """The images of one stage's datasets that failed to load: one line per file the first time it is
    seen (:meth:`flush`), a count at the end. Under DDP each rank reports the files it met."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.datasets: list[ImageTableDataset] = []
        self.reported: list[Path] = []

    def flush(self) -> None:
        who = f"rank {D.rank()}: " if D.world_size() > 1 else ""
        for ds in self.datasets:
            for j in ds.failed.nonzero().flatten().tolist():
                path = Path(ds.paths[j])
                if path not in self.reported:
                    self.reported.append(path)
                    why = plain_failure(_why_unreadable(path), path)
                    console.print(f"[yellow]{who}skipped[/] {why}", highlight=False)

    def finish(self, together: bool = True) -> None:
        """List what is left, then the count: under torchrun the job's total, said once (rank 0; each rank
        said its own before) — ``together=False`` after an error, when the other ranks may be gone."""
        self.flush()
        reported = {str(p) for p in self.reported}
        who = ""
        if together and D.is_dist():
            if D.any_rank(bool(reported)):  # names cross only when some rank met an unreadable file
                reported = {p for part in D.gather_objects(sorted(reported)) for p in part}
            if not D.is_main():
                return
        elif D.world_size() > 1:
            who = f"rank {D.rank()}: "
        if reported:
            n = len(reported)
            console.print(
                f"[yellow]{who}{self.stage}: {n} unreadable image{'s' if n > 1 else ''} skipped "
                "(listed above)",
                highlight=False,
            )


DATA_SETTING = "data"  # a stage's settings entry: what it trains on (data_fingerprint), checked on a resume


class DataFingerprint(dict[str, Any]):
    """:func:`data_fingerprint`'s record (stored as a plain JSON object), which can still say what a resume
    record of an earlier version would hold for the same data (:func:`same_data`)."""

    def __init__(self, record: dict[str, Any], earlier: Callable[[], dict[str, str]]) -> None:
        super().__init__(record)
        self.earlier = earlier


def data_fingerprint(source: str, paths: Sequence[Path | str], targets: torch.Tensor, *splits: Sequence[int],
                     root: str = "", roots: Sequence[str | Path] = ()) -> DataFingerprint:  # fmt: skip
    """What a stage trains on — its images in order, their targets (labels, MOS) and its split — hashed, with
    the file they were read from (named when a ``--resume`` finds it changed; was taken without a word).
    With ``root`` (the folder the images are named under), also ``rows``: the same with each path under
    ``root`` relative to it — equal for the same table moved elsewhere, which a resume accepts. Both are
    :func:`~attiqa.datasets.base.rows_sha256` of one digest of the targets and split (hashed once);
    ``version`` tells them from an earlier version's record (:func:`same_data`). With ``roots`` (the
    folders the images were given as), also ``roots_rows``: each path named under the root holding it, equal
    when one of several folders moved (their common folder, ``root``, changes). Where the rows are is
    recorded once: ``roots`` (:func:`given_folders`) when given, else ``root``."""
    values = values_digest(
        targets.detach().double().contiguous().numpy().tobytes(),
        json.dumps([list(map(int, ix)) for ix in splits]),
    )
    out: dict[str, Any] = {"file": source, "version": ROWS_VERSION}
    out["fingerprint"] = rows_sha256(map(str, paths), values)[:16]
    if root:
        out["rows"] = rows_sha256((name_under(p, root) for p in paths), values)[:16]
    if roots:
        names = (f"{j}/{name}" for j, name in under_roots(paths, roots))
        out["roots_rows"] = rows_sha256(names, values)[:16]
    # where the rows are, named when a resume finds them moved ("the dataset moved: OLD -> NEW"): one record
    # (the folders given, else the one holding them all), so that the two cannot name different places
    if roots:
        out["roots"] = given_folders(roots)
    elif root:
        out["root"] = str(root)
    return DataFingerprint(out, partial(_earlier_fingerprint, source, paths, targets, splits, root))


def given_folders(roots: Sequence[str | Path]) -> list[str]:
    """The folders of ``roots`` (a file given: the folder holding it, as the label stage follows a move),
    absolute, each once: files given one by one are named by their folder, not one by one."""
    out: dict[str, None] = {}
    for r in roots:
        path = os.path.abspath(r)
        out[os.path.dirname(path) if os.path.isfile(path) else path] = None
    return list(out)


def _earlier_fingerprint(source: str, paths: Sequence[Path | str], targets: torch.Tensor,
                         splits: Sequence[Sequence[int]], root: str) -> dict[str, str]:  # fmt: skip
    """The record session 50's version wrote for the same data (no ``version``; a run it started resumes):
    one SHA-256 of the names, the targets and the split per hash."""

    def digest(names: Iterable[str]) -> str:
        h = hashlib.sha256()
        for name in names:
            h.update(name.encode("utf-8", "surrogateescape") + b"\0")
        h.update(targets.detach().double().contiguous().numpy().tobytes())
        h.update(json.dumps([list(map(int, ix)) for ix in splits]).encode())
        return h.hexdigest()[:16]

    out = {"file": source, "fingerprint": digest(map(str, paths))}
    if root:
        out["rows"] = digest(name_under(p, root) for p in paths)
    return out


def same_data(now: Any, was: Any) -> tuple[bool, bool]:
    """Whether a stage's data now (:func:`data_fingerprint`) is the data of its resume record ``was``: the
    same images in the same place, and the same rows under their root (a moved copy). A record of an
    earlier version is compared with what that version wrote; a run without a record (older still) or a
    loop without one is taken as is: ``(True, False)``."""
    if not isinstance(now, dict) or not isinstance(was, dict) or not was:
        return True, False
    if was.get("version") != now.get("version") and isinstance(now, DataFingerprint):
        now = now.earlier()
    same_rows = any(key in now and now[key] == was.get(key) for key in ("rows", "roots_rows"))
    return now.get("fingerprint") == was.get("fingerprint"), same_rows


def data_key(data: dict[str, Any] | None) -> str | None:
    """What a stage trains on (its :data:`DATA_SETTING` record), as the processes of a job compare it
    (:meth:`attiqa.training.trainer.Trainer.check_same_start`): its rows named under their folder when
    recorded (the same table copied to another path on another machine is equal); beside :func:`same_data`,
    the resume's comparison of the same record. The whole hash: a message shortens it (:func:`short_key`)."""
    if not data:
        return None
    for key in ("roots_rows", "rows", "fingerprint"):
        if data.get(key):
            return str(data[key])
    return None


def short_key(key: str | None) -> str | None:
    """A :func:`data_key` as a message shows it: its first 8 characters (compared whole)."""
    return None if key is None else key[:8]


ROOTS_ORDER = "label.images"
"""A pretraining record's ``order`` when its rows follow their roots (:func:`order_under`); a record without
it (an earlier version's, or a table given as ``labels:``) trained in the table's order."""


def _why_unreadable(path: Path) -> str:
    """The file and why it failed: decoded again here (bad files are few), as workers cannot send text."""
    try:
        load_image(path)
    except ImageLoadError as exc:
        return str(exc)
    except (OSError, ValueError) as exc:
        return f"{path}: {exc}"
    return f"{path}: could not be loaded or transformed during training"


_REPORTS: list[UnreadableImages] = []  # the stages running in this process, innermost last


@contextmanager
def unreadable_report(stage: str) -> Iterator[UnreadableImages]:
    """Every :class:`ImageTableDataset` built inside reports to it; the count is printed on the way out."""
    report = UnreadableImages(stage)
    _REPORTS.append(report)
    ok = False
    try:
        yield report
        ok = True
    finally:
        _REPORTS.remove(report)
        report.finish(together=ok)


def flush_unreadable() -> None:
    """Print the files the running stages met since the last call (the trainer calls it after each epoch)."""
    for report in _REPORTS:
        report.flush()


def _resolve(p: str, base: Path) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else base / q


def _resolve_label_path(p: str, base: Path) -> Path:
    """Absolute paths as is; relative ones next to the label file if they exist there, else relative to
    the working directory (``attiqa label`` stores the paths as they were given on its command line)."""
    q = _resolve(p, base)
    return q if q.exists() or Path(p).is_absolute() else Path(p).expanduser()


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class PseudoLabelDataset(ImageTableDataset):
    """The label table written by ``attiqa label``: column ``image`` + one float column per head.

    Relative image paths are looked up next to the parquet file first (ours: a table can be moved
    together with its images), then in the working directory. Schema metadata (the teacher's) is kept
    in ``metadata`` for the model card. Items are ``(image_tensor, labels (A,), index)``.
    """

    def __init__(
        self,
        labels_parquet: str | Path,
        transform: Transform,
        on_error: str = "substitute",
        roots: Sequence[str | Path] = (),
    ) -> None:
        """``roots``: the rows in :func:`order_under` order (a run's own table with a degrade stage: the
        table's order, sorted absolute paths, would depend on where the run folder is)."""
        import pyarrow.parquet as pq

        self.labels_path = Path(labels_parquet)
        if not self.labels_path.is_file():
            raise AttiqaError(f"{self.labels_path}: label file not found — run `attiqa label` first")
        try:
            table = pq.read_table(self.labels_path)
        except Exception as exc:  # noqa: BLE001 - any parquet failure is a user-facing error
            raise AttiqaError(f"{self.labels_path}: not a readable parquet label file ({exc})") from None
        if "image" not in table.column_names:
            raise AttiqaError(
                f"{self.labels_path}: no 'image' column (columns: {', '.join(table.column_names)})"
            )
        self.head_names: tuple[str, ...] = tuple(c for c in table.column_names if c != "image")
        if not self.head_names:
            raise AttiqaError(f"{self.labels_path}: no label columns besides 'image'")
        if table.num_rows < 2:
            raise AttiqaError(
                f"{self.labels_path}: {table.num_rows} row(s) — ranking needs at least 2 images"
            )
        base = self.labels_path.resolve().parent
        paths = [_resolve_label_path(str(text_path(p)), base) for p in table.column("image").to_pylist()]
        try:
            cols = [
                np.asarray(table.column(h).to_numpy(zero_copy_only=False), dtype=np.float32)
                for h in self.head_names
            ]
        except (TypeError, ValueError) as exc:
            raise AttiqaError(f"{self.labels_path}: label columns must be numeric ({exc})") from None
        labels = torch.from_numpy(np.stack(cols, axis=1))
        self.ordered, self.roots = bool(roots), roots
        if roots:
            order = order_under(paths, roots)
            paths, labels = [paths[i] for i in order], labels[order]
        check_images_exist(paths, str(self.labels_path))
        meta = table.schema.metadata or {}
        self.metadata = {  # the rows' file identities left out: only the labelling's resume reads them
            k.decode(errors="replace"): _maybe_json(v.decode(errors="replace"))
            for k, v in meta.items()
            if k != FILES_KEY
        }
        super().__init__(paths, labels, transform, on_error)

    def fingerprint(self) -> DataFingerprint:
        """:func:`data_fingerprint` of the images and their labels (named by the label file), ``rows`` under
        the folder holding them all: the table stores absolute paths, and the images folder moved (the
        config's ``label.images`` pointed at the new place) is the same data."""
        root = os.path.commonpath([str(p.absolute()) for p in self.paths])
        out = data_fingerprint(str(self.labels_path), self.paths, self.targets, root=root, roots=self.roots)
        if self.ordered:
            out["order"] = ROOTS_ORDER
        return out


class MosDataset(ImageTableDataset):
    """A MOS CSV with columns ``image,mos[,split]`` read by name; paths relative to ``image_root``.

    ``image_root`` defaults to the CSV's folder (or its ``images/`` subfolder when the files are there).
    ``split`` keeps only rows whose split column equals it (an error if the CSV has no split column).
    Items are ``(image_tensor, mos (float), index)``.
    """

    def __init__(
        self,
        csv_path: str | Path,
        image_root: str | Path | None,
        transform: Transform,
        split: str | Sequence[str] | None = None,
        on_error: str = "substitute",
    ) -> None:
        self.csv_path = Path(csv_path)
        lines: list[int] = []
        rows = read_mos_csv(self.csv_path, lines)
        root = Path(image_root) if image_root else self.csv_path.resolve().parent
        for r in rows:  # a CSV made on Windows names images\a.jpg
            r["image"] = posix_name(r["image"], root, root / "images")
        first = rows[0]["image"] if rows else ""
        if (
            not image_root
            and first
            and not _resolve(first, root).exists()
            and _resolve(first, root / "images").exists()
        ):
            root = root / "images"  # the layout ROOT/mos.csv + ROOT/images/ (as the `folder` adapter accepts)
        if split is not None:
            if rows and "split" not in rows[0]:
                raise AttiqaError(f"{self.csv_path}: no 'split' column to select split {split!r} from")
            wanted = {split} if isinstance(split, str) else set(split)
            kept = [i for i, r in enumerate(rows) if r["split"] in wanted]
            rows, lines = [rows[i] for i in kept], [lines[i] for i in kept]
        self.rows, self.lines = rows, lines  # lines: each row's line in the CSV, for errors naming a row
        paths = [_resolve(r["image"], root) for r in rows]
        check_images_exist(paths, str(self.csv_path), lines)
        mos = torch.tensor([float(r["mos"]) for r in rows], dtype=torch.float32)
        super().__init__(paths, mos, transform, on_error)


def read_mos_csv(path: Path, lines: list[int] | None = None) -> list[dict[str, str]]:
    """Rows as dicts with ``image``, ``mos`` (a float's text) and, if the file has one, ``split``
    (lower-cased), read through the one CSV reader (:func:`attiqa.datasets.readers.read_csv`: BOM, tabs,
    a decimal-comma locale's ``;`` file). As in ``attiqa bench`` / ``eval``, rows without a finite MOS
    (empty, NaN, inf) are left out and reported in one line naming the file and the rows. ``lines``: filled
    with each row's line in the file, for errors naming a row."""
    why = not_a_file(path)  # a folder or a bad link: the same words as `attiqa eval --csv`
    if why is not None:
        raise AttiqaError(f"{path}: {why}")
    if not path.is_file():
        raise AttiqaError(f"{path}: MOS CSV not found — check the path (a CSV with columns image,mos)")
    table = read_csv(path, header=MOS_HEADER)
    image_col, mos_col = table.column("image"), table.column("mos")
    split_col = table.column("split", required=False)
    rows, without = [], []
    for n, raw in table.numbered():
        cell = raw.get(mos_col)
        try:
            mos = to_float(cell, f"{path}:{n}")
        except AttiqaError:
            raise AttiqaError(
                f"{path}:{n}: mos {cell!r} is not a number — fix the cell, or leave it empty to leave "
                "the row out"
            ) from None
        if not math.isfinite(mos):
            without.append(n)
            continue
        r = {**raw, "image": str(raw.get(image_col) or ""), "mos": repr(mos)}  # other columns kept
        if split_col is not None:
            r["split"] = canonical_split(raw.get(split_col)) or ""  # Training, validation: train, val
        rows.append(r)
        if lines is not None:
            lines.append(n)
    if not rows:
        raise AttiqaError(f"{path}: no rows with a finite mos — one row per image: image,mos")
    if without and D.is_main():
        shown = ", ".join(map(str, without[:5])) + (", ..." if len(without) > 5 else "")
        console.print(
            f"[yellow]{plain(str(path))}: {len(without)} row(s) without a finite mos (empty, NaN or inf) "
            f"left out (row {shown})",
            highlight=False,
        )
    return rows


VAL_SPLITS = ("val", "valid", "validation", "test")


@dataclass
class MosSplit:
    """A MOS table split for fine-tuning, in memory: every image (absolute or CSV-relative path resolved),
    its MOS (higher = better) and the row indices of the training and the held-out part. Protocols build
    it from a dataset adapter's items; ``attiqa train`` reads it from ``finetune.csv``."""

    paths: list[Path]
    mos: torch.Tensor
    train: list[int]
    val: list[int]
    kind: str  # "column" | "random 80%/20% seed S" | a protocol's split name
    source: str  # the CSV, or the dataset the items came from (model card)
    image_root: str = ""
    target: str = ""  # a named dataset's score the MOS are (AGIQA-3k: mos_quality or mos_align; model card)
    rows_sha256: str = ""  # a named dataset's rows (``IQADataset.fingerprint``; model card: eval's fit note)

    def dataset(self, transform: Transform, on_error: str = "skip") -> ImageTableDataset:
        return ImageTableDataset(self.paths, self.mos, transform, on_error)

    def card(self) -> dict[str, str]:
        """What the model card's ``dataset`` records of it (with the counts its stage trained on)."""
        where = {"csv": self.source, "image_root": self.image_root, "split": self.kind}
        named = {"target": self.target, ROWS_KEY: self.rows_sha256}
        return {**where, **{k: v for k, v in named.items() if v}}

    def fingerprint(self) -> DataFingerprint:
        """:func:`data_fingerprint` of the images, MOS and split (named by :attr:`source`; ``rows``: under
        :attr:`image_root`)."""
        return data_fingerprint(self.source, self.paths, self.mos, self.train, self.val, root=self.image_root)


def read_mos_split(csv: str, image_root: str, val_fraction: float, split_seed: int) -> MosSplit:
    """The CSV's split column (``train`` vs :data:`VAL_SPLITS` rows) if it has one, else paper §4.1's
    random split with ``val_fraction`` held out (seeded)."""
    if not csv:
        raise AttiqaError("finetune: no MOS CSV given (finetune.csv)")
    csv_path = Path(csv)
    table = MosDataset(csv_path, image_root or None, _no_transform)
    rows, paths, mos = table.rows, table.paths, table.mos
    has_split = "split" in rows[0]
    cells = [
        (float(m), r["split"]) if has_split else float(m) for m, r in zip(mos.tolist(), rows, strict=True)
    ]
    keep, conflicts, repeats = repeated_rows(paths, cells, table.lines)
    if conflicts:  # was trained on as two images, maybe one on each side of the split
        what = "MOS or split" if has_split else "MOS"
        raise AttiqaError(
            f"{csv_path}: {len(conflicts)} image(s) listed twice with another {what}, e.g. {conflicts[0]} — "
            "fix the table (one row per image)"
        )
    if repeats:  # a copy of a row would be trained on twice, maybe once held out
        rows, paths, mos = [rows[i] for i in keep], [paths[i] for i in keep], mos[keep]
        if D.is_main():
            console.print(
                f"[yellow]{plain(str(csv_path))}: {repeats} repeated row(s) (same image, same MOS) counted "
                "once",
                highlight=False,
            )
    if has_split:
        tr = [i for i, r in enumerate(rows) if r["split"] == "train"]
        va = [i for i, r in enumerate(rows) if r["split"] in VAL_SPLITS]
        other = sorted({r["split"] for r in rows if r["split"] != "train" and r["split"] not in VAL_SPLITS})
        if other and D.is_main():  # were left out without a word ('trian', an empty cell)
            n = len(rows) - len(tr) - len(va)
            named = ", ".join(repr(x) for x in other[:3])
            console.print(
                f"[yellow]{plain(str(csv_path))}: {n} row(s) whose split ({named}) is neither train nor "
                f"{'/'.join(VAL_SPLITS)} left out",
                highlight=False,
            )
        kind = "column"
        given = f"its split column gives {len(tr)} 'train' and {len(va)} {'/'.join(VAL_SPLITS)} rows"
    else:
        tr, va = split_indices(len(rows), val_fraction, split_seed)
        kind = f"random {1 - val_fraction:.0%}/{val_fraction:.0%} seed {split_seed}"
        given = f"{len(rows)} rows split {kind} give {len(tr)} to train on and {len(va)} held out"
    check_split(mos, tr, va, str(csv_path), given, "add rows, or a split column")
    root = image_root or str(csv_path.resolve().parent)
    return MosSplit(paths, mos, tr, va, kind, str(csv), root)


def training_mos_range(mos: torch.Tensor, source: str) -> tuple[float, float]:
    """The training MOS range the head's unit scale maps from; an error if the MOS do not vary."""
    lo, hi = float(mos.min()), float(mos.max())
    if not hi > lo:
        raise AttiqaError(
            f"{source}: all {len(mos)} training MOS values are {lo:g} — nothing to regress (give images "
            "of different quality)"
        )
    return lo, hi


def _no_transform(img: Image.Image) -> torch.Tensor:
    raise RuntimeError("a MOS table read for its rows only")
