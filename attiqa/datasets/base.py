"""The uniform dataset table every adapter produces, and the checks that run before any scoring.

An adapter knows one dataset's OFFICIAL score files (read by column name wherever the file has a
header) and its folder layout; everything downstream (``attiqa eval``, the paper's protocols) sees only
:class:`DatasetItem` rows: absolute image path, MOS in "higher is better" form, the raw value as
distributed, optional split, optional extra targets.

Direction policy (ours): a DMOS target (lower = better) is flipped *within its nominal range*,
``mos = lo + hi - raw``, so the numbers stay in the dataset's units (RMSE after a logistic fit remains
interpretable) and correlations simply change sign. ``raw`` keeps the value from the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from attiqa.datasets.readers import Table, repeated_rows, same_stem
from attiqa.errors import AttiqaError, did_you_mean
from attiqa.io.images import header_problem
from attiqa.progress import shown_name

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Canonical split names; adapters map the official names (training/validation/test, ...) onto these."""

# what `attiqa eval` writes in its --out (:mod:`attiqa.evaluation.evaluate`); here for :func:`among_the_data`,
# which the command runs before torch is imported
PREDICTIONS_CSV = "predictions.csv"
SUMMARY_JSON = "summary.json"
SCATTER_PNG = "scatter.png"

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "trn": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def canonical_split(value: str | None) -> str | None:
    """``training`` -> ``train`` etc.; empty -> None; unknown names are kept lower-cased."""
    if value is None:
        return None
    v = str(value).strip().lower()
    return _SPLIT_ALIASES.get(v, v) if v else None


@dataclass(frozen=True)
class TargetInfo:
    """One score a dataset provides: where it is, its nominal range and direction."""

    column: str  # column (or .mat variable) name in the official file
    range: tuple[float, float]  # nominal range of the raw values
    higher_is_better: bool
    description: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    """Registry metadata (pyiqa-style): what a user needs to know before pointing ``--root`` at a folder."""

    name: str
    full_name: str
    kind: str  # "authentic" | "synthetic" | "aigc" | "aesthetic" | "custom"
    targets: Mapping[str, TargetInfo]
    default_target: str
    score_files: tuple[str, ...]  # official file names, relative to the root
    layout: str  # expected folder layout under --root, in words
    official_split: str | None  # None: no official split (paper §4.1: random 80/20)
    citation: str
    url: str = ""
    notes: str = ""
    verified: bool = True  # the score-file format was checked on a real file; False: see the adapter
    short: str = ""  # the paper's spelling when it is not full_name's first words: CLIVE, KonIQ, FLIVE, LIVE
    images: str = ""  # how the official images get into place (the fix when none of them is there)

    @property
    def short_name(self) -> str:
        """The name tables and messages show (`bench`'s columns, warnings, genbench): ``short``, else the
        display name without its description (``AGIQA-3K`` of ``AGIQA-3K (AI-generated ...)``)."""
        return self.short or self.full_name.split(" (")[0]

    @property
    def mos_range(self) -> tuple[float, float]:
        return self.targets[self.default_target].range

    @property
    def direction(self) -> str:
        return "MOS" if self.targets[self.default_target].higher_is_better else "DMOS"


@dataclass(frozen=True)
class DatasetItem:
    """One image of a dataset, in the uniform form (``mos`` is always "higher is better")."""

    image: Path  # absolute
    mos: float  # selected target, flipped for DMOS targets
    raw: float  # the selected target's value as distributed
    split: str | None = None  # "train" | "val" | "test" | None
    extras: Mapping[str, float] = field(default_factory=dict)  # the other targets (higher is better)
    meta: Mapping[str, str] = field(default_factory=dict)  # e.g. reference image, distortion, prompt
    line: int | None = None  # its line in a score CSV (RawRecord.line), to name the row in a message


@dataclass
class RawRecord:
    """What an adapter reads from the score file, before target selection and flipping."""

    image: Path
    values: dict[str, float]  # target name -> raw value
    split: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    line: int | None = None  # its line in a score CSV (the header is line 1), to name the row in a message


def existing_root(root: str | Path, info: DatasetInfo) -> Path:
    """``root`` resolved; one line with the dataset's layout when it is not there (a typo)."""
    path = Path(root).expanduser().resolve()
    if not path.exists():
        raise AttiqaError(f"{path}: dataset root not found — {info.name} expects:\n{info.layout}")
    return path


ROWS_VERSION = 2
"""The version of :func:`rows_sha256` written now; a model card names it by its key (:data:`ROWS_KEYS`)."""
ROWS_KEY = "rows_sha256_v2"
ROWS_KEYS = {ROWS_KEY: ROWS_VERSION, "rows_sha256": 1}
"""A model card's ``dataset`` key of its rows' hash -> the hash's version (session 50's: ``rows_sha256``)."""


def name_under(path: Path | str, root: Path | str) -> str:
    """``path`` named under ``root`` (POSIX, relative when inside it, else as given): the same for a copy of
    the folder moved elsewhere."""
    p, base = Path(path).absolute(), Path(root).absolute()
    return p.relative_to(base).as_posix() if p.is_relative_to(base) else str(p)


def values_digest(*parts: bytes | str) -> bytes:
    """SHA-256 of the values of some rows (scores, labels, a split), hashed once for every
    :func:`rows_sha256` of them."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part)
    return h.digest()


def rows_sha256(names: Iterable[str], values: bytes, head: str = "") -> str:
    """The one hash of "these rows": ``head`` (a dataset's name), each image's name in order (under its
    root: :func:`name_under`) and the digest of their values (:func:`values_digest`). A dataset's rows
    (model cards, ``IQADataset.fingerprint``) and a training stage's (its resume record,
    ``attiqa.training.data.data_fingerprint``) are hashed by it alike."""
    h = hashlib.sha256(head.encode("utf-8", "surrogateescape") + b"\0")
    for name in names:
        h.update(name.encode("utf-8", "surrogateescape") + b"\0")
    h.update(values)
    return h.hexdigest()


class IQADataset:
    """Base class of all adapters. Subclasses set :attr:`info` and implement :meth:`read_records`.

    ``root`` is the folder the dataset was unpacked into; ``target`` picks one of ``info.targets``
    (default ``info.default_target``). Items are read lazily, once.
    """

    info: ClassVar[DatasetInfo]
    records_depend_on_target: ClassVar[bool] = False  # True: each target has its own score file (LIVE)

    def __init__(self, root: str | Path, target: str | None = None) -> None:
        self.root = existing_root(root, self.info)
        self.target = self._check_target(target or self.info.default_target)
        self._records: list[RawRecord] | None = None
        self._items: list[DatasetItem] | None = None
        self.n_without_score = 0  # rows whose target is empty / NaN / inf (left out of ``items``)
        self.without_score: list[RawRecord] = []  # those rows, named by :meth:`rows_left_out`

    def _check_target(self, target: str) -> str:
        """The target's name as the dataset spells it: ``--target MOS`` is ``mos`` (a unique match in
        another case), anything else one error with the close match."""
        same = [t for t in self.info.targets if t.lower() == target.lower()]
        if target not in self.info.targets and len(same) == 1:
            return same[0]
        if target not in self.info.targets:
            names = list(self.info.targets)
            hint = did_you_mean(target, names)
            raise AttiqaError(
                f"{self.info.name}: unknown target {target!r}{hint}; targets: {', '.join(names)}"
            )
        return target

    def retarget(self, target: str | None) -> IQADataset:
        """The same dataset with another target (e.g. AGIQA-3k ``mos_align``); the score file is not
        re-read. ``None`` or the current target returns ``self``."""
        if target is None or target == self.target:
            return self
        import copy

        other = copy.copy(self)
        other.target = self._check_target(target)
        other._items = None
        if self.records_depend_on_target:
            other._records = None
        return other

    # -- to implement ---------------------------------------------------------------------------------

    def read_records(self) -> list[RawRecord]:
        """Read the official score file(s) into raw records (absolute image paths)."""
        raise NotImplementedError

    def target_columns(self, table: Table) -> dict[str, str]:
        """Each target's column in a score file holding several: the chosen target's is required (a
        missing one is named), the others are read where the file has them — a copy of AGIQA-3k's file
        holding ``mos_align`` alone is evaluated on it (was: "missing column 'mos_quality'")."""
        cols = {k: table.column(v.column, required=False) for k, v in self.info.targets.items()}
        have = {k: c for k, c in cols.items() if c is not None}
        if self.target not in have and have:
            raise AttiqaError(
                f"{table.path}: no {self.target_info.column!r} column for target {self.target!r} (found: "
                f"{', '.join(table.fields)}) — it holds {', '.join(have)}: pass --target {next(iter(have))}"
            )
        table.column(self.target_info.column)  # none at all: the file's own error
        return have

    # -- uniform interface ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def target_info(self) -> TargetInfo:
        return self.info.targets[self.target]

    def source_files(self) -> list[Path]:
        """The score files this dataset reads (an output must never replace one)."""
        return [self.root / f for f in self.info.score_files]

    def score_file_words(self) -> str:
        """The score file a warning about its rows names: the file when there is one, else the dataset."""
        files = [f for f in self.source_files() if f.is_file()]
        return str(files[0]) if len(files) == 1 else f"{self.name} ({self.root})"

    def rows_repeated(self, items: Sequence[DatasetItem], kept: Sequence[DatasetItem]) -> str:
        """The rows of ``items`` that repeat an earlier one exactly (not in ``kept``: :meth:`unique_items`),
        said with the score file and their lines (was a count alone, no file: "2 repeated row(s) …")."""
        ids = {id(it) for it in kept}
        dropped = [it for it in items if id(it) not in ids]
        lines = [str(it.line) for it in dropped if it.line is not None]
        shown = f" (row {', '.join(lines[:5])}{', ...' if len(lines) > 5 else ''})" if lines else ""
        return (f"{self.score_file_words()}: {len(dropped)} repeated row(s) (same image, same score) counted "
                f"once{shown}")  # fmt: skip

    def rows_left_out(self) -> str:
        """The rows without a finite score (read with :attr:`items`), said as training says a MOS CSV's: the
        score file (the dataset and its root when it reads several), the count and the first rows — by their
        line in a CSV (header = line 1), else by their image under the root."""
        where = self.score_file_words()
        rows, n = self.without_score, len(self.without_score)
        if all(r.line is not None for r in rows):
            shown = "row " + ", ".join(str(r.line) for r in rows[:5]) + (", ..." if n > 5 else "")
        else:
            shown = (
                "e.g. "
                + ", ".join(name_under(r.image, self.root) for r in rows[:3])
                + (", ..." if n > 3 else "")
            )
        return f"{where}: {n} row(s) without a finite {self.target} (empty, NaN or inf) left out ({shown})"

    @property
    def items(self) -> list[DatasetItem]:
        if self._items is None:
            if self._records is None:
                self._records = self.read_records()
            self._items = self._build_items(self._records)
        return self._items

    def fingerprint(self, version: int = ROWS_VERSION) -> str:
        """SHA-256 of what the score file says: the dataset's name, each image's path under the root and its
        scores (:func:`rows_sha256`) — the same for a copy moved elsewhere, another for other rows (a model
        card records it: `eval` says a model's metrics on the rows it was fine-tuned on are its training fit).
        No image is read. Where each target has its own score file (LIVE) the images alone: a model
        fine-tuned on one target has trained on the same images as another's. ``version=1``: the hash cards
        of session 50 hold (``rows_sha256``; :data:`ROWS_KEYS`), for them only."""
        if self._records is None:
            self._records = self.read_records()
        records = self._records
        scores = [[] if self.records_depend_on_target else sorted(r.values.items()) for r in records]
        if version == ROWS_VERSION:
            names = (name_under(r.image, self.root) for r in records)
            return rows_sha256(names, values_digest(json.dumps(scores)), head=self.name)
        h = hashlib.sha256(self.name.encode("utf-8"))
        for rec, s in zip(records, scores, strict=True):
            row = [name_under(rec.image, self.root), s]
            h.update(b"\0" + json.dumps(row).encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def unique_items(self, items: Sequence[DatasetItem]) -> tuple[list[DatasetItem], int]:
        """Each image of ``items`` once (its first row) and how many rows repeated an earlier one exactly.
        An image with two different scores is refused, naming the score file: which score is the image's
        is a guess, and every use is wrong with it — one image counted twice by `eval`, a training table
        with it on both sides of the split, a genbench preference pair decided by the row that came first."""
        lines = [it.line for it in items]
        keep, conflicts, repeats = repeated_rows([it.image for it in items], [it.raw for it in items], lines)
        if conflicts:  # named by its score file (was the dataset's name: "folder (mos)", no file)
            files = [f for f in self.source_files() if f.is_file()]
            where = f"{files[0]} ({self.target})" if len(files) == 1 else f"{self.name} ({self.target})"
            raise AttiqaError(
                f"{where}: {len(conflicts)} image(s) have two different scores, e.g. {conflicts[0]} — fix "
                "the score file (one row per image)"
            )
        return [items[i] for i in keep], repeats

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    def _build_items(self, records: list[RawRecord]) -> list[DatasetItem]:
        if not records:
            raise AttiqaError(f"{self.name}: the score file under {self.root} has no rows")
        items = []
        self.n_without_score, self.without_score = 0, []
        for rec in records:
            if self.target not in rec.values:
                raise AttiqaError(
                    f"{self.name}: target {self.target!r} is not in this score file "
                    f"(available: {', '.join(rec.values) or 'none'})"
                )
            raw = float(rec.values[self.target])
            if not math.isfinite(raw):
                self.n_without_score += 1  # e.g. an empty cell: the image has no score for this target
                self.without_score.append(rec)
                continue
            extras = {
                k: self.to_higher_is_better(k, v)
                for k, v in rec.values.items()
                if k != self.target and math.isfinite(v)
            }
            items.append(
                DatasetItem(
                    image=rec.image,
                    mos=self.to_higher_is_better(self.target, raw),
                    raw=raw,
                    split=canonical_split(rec.split),
                    extras=extras,
                    meta=dict(rec.meta),
                    line=rec.line,
                )
            )
        return items

    def to_higher_is_better(self, target: str, raw: float) -> float:
        """Flip a DMOS value within its nominal range (module docstring); MOS values pass unchanged."""
        t = self.info.targets.get(target)
        if t is None or t.higher_is_better:
            return float(raw)
        lo, hi = t.range
        return float(lo + hi - raw)

    def splits(self) -> list[str]:
        """Split names present, in canonical order (empty when the dataset has no official split)."""
        present = {it.split for it in self.items if it.split}
        return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))

    def select(self, split: str | None) -> list[DatasetItem]:
        """Items of one split (``None``/``"all"`` = every item); an error for a split that is not there."""
        if split in (None, "all"):
            return list(self.items)
        want = canonical_split(split)
        chosen = [it for it in self.items if it.split == want]
        if not chosen:
            have = ", ".join(self.splits()) or "none (this dataset has no official split)"
            raise AttiqaError(f"{self.name}: no items in split {split!r}; splits: {have}")
        return chosen

    def check_images(
        self,
        items: Sequence[DatasetItem] | None = None,
        check_headers: bool = True,
        fix: str = "",
        problems: Sequence[tuple[Path, str]] | None = None,
    ) -> None:
        """Fail fast, before any scoring: ONE error listing how many images are missing or unreadable,
        ending with ``fix`` (the caller's way out, e.g. a command's option) when given.

        Missing files, folders, empty files and (``check_headers``) files whose header PIL does not
        recognise are caught here. A file truncated after a valid header is only found when decoded;
        :func:`attiqa.evaluation.evaluate.evaluate` reports those without stopping. ``problems``: what
        :func:`find_unreadable` found in ``items``, when the caller looked (under torchrun each process
        looks at a share: :func:`attiqa.evaluation.evaluate.find_unreadable_shared`).
        """
        items = list(self.items if items is None else items)
        if problems is None:
            problems = find_unreadable([it.image for it in items], check_headers)
        if self.info.images and len(problems) == len(items) and all(w == "not found" for _, w in problems):
            src = next((f for f in self.source_files() if f.is_file()), None)
            listed = f"listed in {src.name}" if src else "of the score file"
            raise AttiqaError(  # the score file came, the image archive did not (or went elsewhere)
                f"{self.name}: none of the {len(items)} images {listed} is under {self.root} (the first: "
                f"{shown_name(problems[0][0])}) — {self.info.images}"
            )
        if problems:
            src = next((f for f in self.source_files() if f.is_file()), None)
            lines = {it.image: it.line for it in items if it.line is not None}
            row = {p: f" ({src.name} line {lines[p]})" if src and p in lines else "" for p, _ in problems[:5]}
            for p, why in problems[:5]:  # `a.png` listed, `a.JPG` there: name it (was "not found" alone)
                if why == "not found" and (there := same_stem(p)) is not None:
                    row[p] += f" — {there} is there: fix the name in the score file"
            shown = "\n".join(f"  {shown_name(p)}: {why}{row[p]}" for p, why in problems[:5])
            more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise AttiqaError(
                f"{self.name}: {len(problems)} of {len(items)} images are missing or unreadable under "
                f"{self.root}:\n{shown}{more}\nexpected layout:\n{self.info.layout}"
                + (f"\n{fix}" if fix else "")
            )

    def identity(self) -> dict[str, Any]:
        """What tells this dataset from another under the same name (an eval's summary.json records it): the
        root; the folder adapter adds its CSV and the columns it reads."""
        return {"root": str(self.root)}

    def describe(self) -> dict[str, Any]:
        """Metadata for summaries (JSON-friendly)."""
        t = self.target_info
        return {
            "dataset": self.name,
            "full_name": self.info.full_name,
            **self.identity(),
            "target": self.target,
            "target_column": t.column,
            "raw_range": list(t.range),
            "raw_direction": "higher is better" if t.higher_is_better else "lower is better (flipped)",
            "official_split": self.info.official_split,
            "citation": self.info.citation,
        }


def find_unreadable(paths: Sequence[Path], check_headers: bool = True) -> list[tuple[Path, str]]:
    """(path, reason) for every path that is missing, empty or has no recognisable image header.

    Threads, because this is file-system latency, not CPU: 10k headers take a second or two.
    """
    with ThreadPoolExecutor(max_workers=8) as pool:
        reasons = list(pool.map(lambda p: header_problem(p, read_header=check_headers), paths))
    return [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]


def among_the_data(
    out_dir: Path,
    dataset: IQADataset,
    items: Sequence[DatasetItem] | None = None,
    writes: str = f"{PREDICTIONS_CSV}, {SUMMARY_JSON}, {SCATTER_PNG}",
    default: str = "eval writes under runs/eval/",
) -> None:
    """One line, before any work, when ``out_dir`` is the dataset's own folder (its root, or a folder
    holding its images — ``items``, default all — or score file): the outputs ``writes`` were written among
    the photos — a PNG a later folder search of them counts as one more photo. The one rule for `attiqa
    eval`'s and `attiqa bench`'s --out (``default``: where the command writes without one)."""
    out = os.path.realpath(out_dir)
    own = {os.path.realpath(dataset.root)}
    own |= {os.path.realpath(Path(f).parent) for f in dataset.source_files()}
    folders = {Path(it.image).parent for it in (dataset.items if items is None else items)}
    own |= {os.path.realpath(f) for f in folders}  # each folder resolved once, not each of 10,000 images
    if out in own:
        raise AttiqaError(
            f"{out_dir}: is the dataset's own folder (its images or score file are there) — the outputs "
            f"({writes}) would land among them; choose another --out (without one, {default})"
        )
