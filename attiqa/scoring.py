"""The one scoring path: :func:`score_batches` drives any scorer (or teacher) over image files.

``attiqa score``, ``attiqa eval``, ``attiqa label`` and ``genbench score`` all go through it, so they
batch the same way (the scorer's ``info.max_batch``: 1 for native-resolution scorers whose images differ
in size) and decode the same way (``info.min_shorter``: big JPEGs decoded at a reduced scale when the
transform downsizes anyway) — the same image gets the same score from every command. Bad files come back
as errors, never exceptions.

:class:`ScoreWriter` is ``attiqa score``'s output: validated before any model call, written batch by
batch (a kill keeps every finished row), resumed by a rerun (images already in the file are skipped).
A row whose photo was replaced since (:mod:`attiqa.io.file_identity`, recorded per row in a hidden
``.NAME.files`` beside the file — the file's own columns stay those a user reads) is dropped and
scored again (:func:`forget_replaced_scores`); a file of a version before the record resumes as before.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.interface import Scorer
from attiqa.io.atomic import (
    OUT_FIX,
    check_output_path,
    interrupts_held,
    json_text,
    resumed_output_held,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from attiqa.io.batching import inference_num_workers, iter_image_batches
from attiqa.io.commands import Command
from attiqa.io.file_identity import (
    append_sources,
    changed_files,
    file_identity,
    read_sources,
    sources_text,
)
from attiqa.io.tables import ENCODING, ERRORS, csv_bytes, read_cell, safe_cell

VIEW_PIXELS = 5 * 320 * 320  # an image's view that --batch-size counts whole (paper §4.2: five 320-px crops)


class OtherScoreFile(AttiqaError):
    """An existing output that is not a score file of this scorer's columns: ``attiqa score`` refuses it,
    ``genbench score`` (whose ``scores/METRIC.csv`` is its own) scores that metric again from scratch."""


@dataclass
class ScoredBatch:
    """Positions in the input list, their scores (N, len(columns)), and the files that failed."""

    indices: list[int]
    scores: np.ndarray
    errors: list[ImageLoadError] = field(default_factory=list)


def score_batches(
    paths: Sequence[str | Path],
    scorer: Scorer,
    batch_size: int = 16,
    num_workers: int | None = None,
) -> Iterator[ScoredBatch]:
    """Score ``paths`` in input order, a batch at a time, honouring the scorer's batching hints.
    ``batch_size`` counts images of at most :data:`VIEW_PIXELS` (the paper's five 320-px crops); a scorer
    whose views are larger (a checkpoint whose card says 1024-px crops) gets proportionally fewer a call, so
    the card's sizes do not multiply the batch's memory (16 five-crop views of 4096 px: 16 GB)."""
    info = scorer.info
    batch_size = min(batch_size, info.max_batch or batch_size)
    if info.view_pixels and info.view_pixels > VIEW_PIXELS:
        batch_size = max(1, batch_size * VIEW_PIXELS // info.view_pixels)
    workers = inference_num_workers(scorer.device, num_workers)
    ncol = len(scorer.columns)
    for batch in iter_image_batches(
        paths, scorer.transform, batch_size, workers, min_shorter=info.min_shorter
    ):
        if batch.tensor is None:
            scores = np.zeros((0, ncol), dtype=np.float32)
        else:
            with torch.inference_mode():
                scores = scorer.score_tensors(batch.tensor.to(scorer.device)).float().cpu().numpy()
        yield ScoredBatch(batch.indices, scores, batch.errors)


@dataclass
class ScoreRun:
    columns: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)  # {"image": str, col: float, ...}
    failed: list[ImageLoadError] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    interruption: KeyboardInterrupt | None = None  # Ctrl-C, or SIGTERM as attiqa.cli's Terminated


def score_paths(
    paths: Sequence[Path],
    scorer: Scorer,
    batch_size: int = 16,
    num_workers: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_rows: Callable[[list[dict]], None] | None = None,
    keep_rows: int | None = None,
) -> ScoreRun:
    """Score ``paths`` in input order; failures are collected in ``ScoreRun.failed``.

    ``on_rows`` receives each batch's rows as they finish (incremental output); ``keep_rows`` caps the
    rows kept in memory (None = all). Ctrl-C / SIGTERM stop the run with ``interrupted`` set.
    """
    run = ScoreRun(columns=tuple(scorer.columns))
    start = time.perf_counter()
    try:
        for batch in score_batches(paths, scorer, batch_size, num_workers):
            run.failed.extend(batch.errors)
            rows = []
            for row_i, idx in enumerate(batch.indices):
                row: dict[str, Any] = {"image": str(paths[idx])}
                row.update({c: float(batch.scores[row_i, j]) for j, c in enumerate(run.columns)})
                rows.append(row)
            # kept before they are handed on: a Ctrl-C / SIGTERM right after ``on_rows`` wrote them must not
            # leave a batch on disk that ``run.rows`` lacks (genbench rewrites its file from ``run.rows``)
            room = len(rows) if keep_rows is None else max(0, keep_rows - len(run.rows))
            run.rows.extend(rows[:room])
            if on_rows and rows:
                on_rows(rows)
            if on_batch:
                on_batch(len(batch.indices), len(batch.errors))
    except KeyboardInterrupt as exc:
        run.interrupted, run.interruption = True, exc
    run.seconds = time.perf_counter() - start
    return run


def _fmt(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def _delimiter(out: Path) -> str:
    return "\t" if out.suffix.lower() == ".tsv" else ","


def scorer_record(scorer: Scorer) -> dict[str, Any]:
    """What a score file's JSON says of its scorer: :meth:`Scorer.metadata` and the scale of its scores
    (``score_range``, ``higher_is_better``), so a consumer reads a number without knowing the model. Not
    in the CSV, which holds the image and score columns only."""
    return {**scorer.metadata(), **scorer.info.scale_record()}


def _json_doc(columns: Sequence[str], meta: dict | None, rows: list[dict], failed: list[dict]) -> str:
    doc = {
        "scorer": meta or {},
        "columns": ["image", *columns],
        "results": rows,  # a score that is not finite: null (json_text)
        "failed": failed,
    }
    return json_text(doc)  # ASCII (\u escapes): non-UTF-8 names round-trip


def write_scores(run: ScoreRun, out: str | Path, scorer_meta: dict | None = None) -> Path:
    """Write rows to ``out`` at once: ``.csv``/``.tsv`` (image + scorer columns) or ``.json`` (+ metadata)."""
    out = check_output_path(out)
    if out.suffix.lower() == ".json":
        failed = [{"image": e.path, "error": e.reason} for e in run.failed]
        write_text_atomic(out, _json_doc(run.columns, scorer_meta, run.rows, failed))
    else:
        rows = ([r["image"], *(_fmt(r[c]) for c in run.columns)] for r in run.rows)
        write_bytes_atomic(out, csv_bytes(["image", *run.columns], rows, _delimiter(out)))
    return out


def _scorer_words(identity: dict) -> str:
    """A scorer's recorded identity as said to the user: its name, and its crops where it has them (an
    ATTIQA model's; "classical (crops None)" said nothing)."""
    crops = identity.get("crops")
    return f"{identity.get('name')}" + (f" (crops {crops})" if crops else "")


def same_scorer(old: dict, identity: dict) -> bool:
    """Whether a recorded identity ``old`` is the scorer ``identity``
    (:func:`attiqa.evaluation.cache.resume_identity`): the one rule of `score -o`'s record
    (:class:`ScoreWriter`) and `genbench score`'s ``scores/<metric>.json``. By ``key`` when both have one
    (every file the scores depend on by its hash, and the settings, not how a path was spelled); a record
    from before the key (session 52) as it was then: the weights' SHA-256 and the crops, or, without a hash
    (a CLIP scorer before they were hashed), the name and the crops."""
    if "key" in old and "key" in identity:
        return bool(old["key"] == identity["key"])
    if old.get("crops") != identity.get("crops"):
        return False
    if old.get("sha256") is None:
        return bool(old.get("name") == identity.get("name"))
    return bool(old.get("sha256") == identity.get("sha256"))


def _short(sha: object) -> str:
    return f"{sha[:12]}…" if isinstance(sha, str) else "none"


def score_output_held(
    out: str | Path, fix: str = OUT_FIX, command: Command = Command.SCORE
) -> AbstractContextManager[None]:
    """Hold ``out`` (:func:`attiqa.io.atomic.resumed_output_held`) while a :class:`ScoreWriter` appends to
    it and until its last rename (a JSON document, a torchrun job's merge, genbench's rewrite in manifest
    order): two runs at once each scored every image into it. A held file is one line; ``attiqa score``'s
    advice adds another --out, a caller's own (genbench's "delete it to score M again") is not offered while
    another process writes the file."""
    out = check_output_path(out, fix)  # its folder made, or the writer's own line for it
    return resumed_output_held(out, command, fix)


class ScoreWriter:
    """Incremental, resumable score file. CSV/TSV rows are appended (and fsynced) per batch; JSON rows go to
    a hidden journal beside it and the JSON document is rewritten atomically on :meth:`close`.

    An existing file with the same columns is resumed: :attr:`done` holds its images, so a rerun scores
    only the rest. Different columns (another scorer) are refused instead of mixed; so is another
    ``identity`` (a retrained checkpoint has the same columns), recorded in a hidden ``.NAME.scorer.json``.

    Sharded (``world_size > 1``, one writer per torchrun rank): each rank appends to its own hidden journal
    ``.NAME.rankR.partial.csv``; :attr:`done` also holds the rows of the file and of every rank's journal
    (of this or an earlier run, whatever its world size), and rank 0 writes the file from all of them with
    :meth:`merge_shards` once every rank has closed its journal.

    ``keep_rows``: the rows found in the file are kept as :attr:`found_rows` (read once), for a caller that
    shows or rewrites the whole file (`score --sheet`, ``genbench score``).

    ``fix`` ends every message about a file it cannot use: ``attiqa score``'s "choose another --out"
    (and, where deleting the file helps, "or delete it"), or a caller's own advice, used as given.

    The caller holds the file first (:func:`score_output_held`; under torchrun rank 0 alone, before any rank
    makes its writer) and lets go after :meth:`close` / :meth:`merge_shards` and its own last rename.
    """

    def __init__(
        self,
        out: str | Path,
        columns: Sequence[str],
        meta: dict | None = None,
        identity: dict | None = None,
        rank: int = 0,
        world_size: int = 1,
        fix: str = OUT_FIX,
        keep_rows: bool = False,
        inputs: Sequence[Path] | None = None,
    ) -> None:
        """``inputs``: the images of this run (`attiqa score`'s); the rows of those replaced since they were
        scored are dropped (one process; under torchrun rank 0 did it first), and :meth:`identify` records
        their identities. Without (``genbench score``, whose rows are keyed by manifest names, not paths),
        no identity is recorded or checked."""
        self.fix = fix
        self.keep_rows = keep_rows
        self.found_rows: list[dict] = []  # with ``keep_rows`` (not sharded): the file's rows, read once
        self.out = check_output_path(out, fix)
        self.columns = tuple(columns)
        self.meta = meta
        self.is_json = self.out.suffix.lower() == ".json"
        self.sharded = world_size > 1
        if self.sharded:
            self.journal = self.out.with_name(f".{self.out.name}.rank{rank}.partial.csv")
        else:
            self.journal = self.out.with_name(f".{self.out.name}.partial.csv") if self.is_json else self.out
        self.record = self.out.with_name(f".{self.out.name}.scorer.json") if identity is not None else None
        if self.record is not None:
            self._check_identity(self.record, identity or {})
        # rows whose photo was replaced since: dropped, scored again (under torchrun rank 0 did it first)
        self.changed = forget_replaced_scores(self.out, inputs) if inputs and not self.sharded else 0
        self.identities = _identity_file(self.out, rank if self.sharded else None)
        self._before: dict[str, str | None] = {}  # an image's identity before it was read (identify)
        self.done: set[str] = set()
        self.created = not self.out.exists()
        self._kept_rows: list[dict] = []  # what the file is rewritten from (JSON; sharded: earlier rows)
        self.failed: list[ImageLoadError] = []
        self.written = 0
        if self.out.exists() and (self.is_json or self.sharded):
            self._kept_rows = self._read_json() if self.is_json else self._read_table(self.out)
            self.done.update(r["image"] for r in self._kept_rows)
        if self.sharded:  # other ranks' journals: read, never written or cut (their writers may be live)
            for part in self._journals():
                if part != self.journal:
                    self.done.update(r["image"] for r in self._read_table(part))
        self._fh: IO[str] = self._open_csv(self.journal)
        if not self.sharded:
            self._adopt_shard_journals()
        if keep_rows and self.is_json and not self.sharded:
            self.found_rows = list(self._kept_rows)  # the document's rows and its journal's
        if self.record is not None:
            write_json_atomic(self.record, identity)

    def _check_identity(self, record: Path, identity: dict) -> None:
        journals = [*self._journals(), self.journal]
        has_rows = (self.out.is_file() and self.out.stat().st_size > 0) or any(j.is_file() for j in journals)
        if not (has_rows and record.is_file()):
            return
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return

        def key_named(d: dict) -> tuple:
            return (d.get("name"), d.get("crops"))

        if not isinstance(old, dict) or same_scorer(old, identity):
            return
        then: dict = old["hashes"] if isinstance(old.get("hashes"), dict) else {"weights": old.get("sha256")}
        now: dict = identity.get("hashes") or {"weights": identity.get("sha256")}
        # a regressor added (none then) is a change; weights unhashed on a side (a record from before) are not
        known = [k for k in now if k in then and k != "tensors" and (k != "weights" or then[k] and now[k])]
        changed = [k for k in known if then[k] != now[k]]
        same = key_named(old) == key_named(identity)
        if changed:
            shas = f"SHA-256 {_short(then[changed[0]])} then, {_short(now[changed[0]])} now"
            what = " and ".join(changed)
            if changed == ["weights"] and then.get("tensors") and then["tensors"] == now.get("tensors"):
                # the file's bytes differ, its tensors do not: a copy exported under another card
                what, shas = "card changed, not the weights", f"the file's {shas}"
            else:
                what += " changed"
            if same:  # retrained in place: the same words on both sides said nothing
                raise AttiqaError(
                    f"{self.out}: holds scores of {identity.get('name')} as it was before its {what} "
                    f"({shas}) — {self._advice(', or delete it to score again')}"
                )
            raise AttiqaError(  # one model under two spellings, replaced in between; or two models
                f"{self.out}: holds scores of {_scorer_words(old)}, not of {_scorer_words(identity)}: the "
                f"{what} ({shas}) — {self._advice(', or delete it to score again')}"
            )
        other = " (the same weights with other settings)" if then == now and then.get("weights") else ""
        raise AttiqaError(
            f"{self.out}: holds scores of {_scorer_words(old)}, not of {_scorer_words(identity)}{other} — "
            f"{self._advice(', or delete it to score again')}"
        )

    def _advice(self, or_delete: str) -> str:
        """``attiqa score``'s advice with ``or_delete`` (the file's content is the problem); a caller's own
        ``fix`` as given."""
        return self.fix + or_delete if self.fix == OUT_FIX else self.fix

    def _read_json(self) -> list[dict]:
        try:
            doc = json.loads(self.out.read_text(encoding="utf-8"))
            cols = doc["columns"][1:]
            rows = list(doc["results"])
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise AttiqaError(
                f"{self.out}: exists but is not a score file of `attiqa score` ({type(exc).__name__}) — "
                f"{self._advice(' or delete it')}"
            ) from None
        self._check_columns(cols)
        return [{k: (float("nan") if v is None else v) for k, v in r.items()} for r in rows]

    def _shard_journals(self) -> list[Path]:
        return sorted(self.out.parent.glob(f".{glob.escape(self.out.name)}.rank*.partial.csv"))

    def _journals(self) -> list[Path]:
        """Every journal an earlier run may have left beside the file, whatever its number of processes:
        the torchrun ranks' and a one-process JSON run's (a rerun under the other setting resumes them)."""
        single = self.out.with_name(f".{self.out.name}.partial.csv")
        return [*self._shard_journals(), *([single] if self.is_json and single.is_file() else [])]

    def _adopt_shard_journals(self) -> None:
        """One process after a torchrun run that stopped: the ranks' finished rows (those the file lacks)
        are written to the file — durable before their journals go — so none is scored again. They were
        scored by this scorer (:meth:`_check_identity` looked at the journals too)."""
        for part in self._shard_journals():
            rows = [r for r in self._read_table(part) if r["image"] not in self.done]
            if rows:
                with interrupts_held():
                    self._append(rows)
                    self.done.update(r["image"] for r in rows)
                    self.found_rows.extend(rows if self.keep_rows and not self.is_json else [])
            part.unlink(missing_ok=True)
        _fold_identities(self.out)

    def _read_table(self, path: Path, data: bytes | None = None) -> list[dict]:
        """The rows of a finished CSV/TSV score file or a journal (``data``: its bytes, when the caller has
        read them), read only: a last line without its newline (a live writer's, or a killed one's) is
        left out."""
        delim = _delimiter(self.out) if path == self.out else ","
        try:
            data = path.read_bytes() if data is None else data
        except OSError as exc:
            raise AttiqaError(f"{path}: cannot be read ({exc.strerror}) — {self.fix}") from None
        text = data[: data.rfind(b"\n") + 1].decode(ENCODING, ERRORS)
        lines = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        header = next(lines, None)
        if header is None:
            return []
        if header[:1] != ["image"]:
            raise OtherScoreFile(f"{path}: exists but is not a score file of `attiqa score` — {self.fix}")
        self._check_columns(header[1:])
        rows = []
        for cells in filter(None, lines):
            try:
                rows.append(self._row_from_cells(cells))
            except ValueError:  # a cell that is not a number, or a name's unquoted delimiter shifting the row
                width = 1 + len(self.columns)
                sep = "a tab" if delim == "\t" else f"'{delim}'"
                why = f" ({len(cells)} cells under {width} columns: a name holding {sep} must be quoted)"
                why = why if len(cells) > width else ""
                raise AttiqaError(
                    f"{path}: line {lines.line_num} is not a row of scores{why} — "
                    f"{self._advice(', or delete it to score again')}"
                ) from None
        return rows

    def _check_columns(self, cols: Sequence[str]) -> None:
        if list(cols) != list(self.columns):
            raise OtherScoreFile(
                f"{self.out}: exists with columns {list(cols)}, not this scorer's {list(self.columns)} — "
                f"{self._advice(' or delete it')}"
            )

    def _open_csv(self, path: Path) -> IO[str]:
        delim = _delimiter(self.out) if path == self.out else ","
        try:
            if path.exists() and path.stat().st_size > 0:
                with open(path, "rb+") as raw:  # drop a half-written last line (a kill mid-write)
                    data = raw.read()
                    if not data.endswith(b"\n"):
                        raw.truncate(data.rfind(b"\n") + 1)
                rows = self._read_table(path, data)  # leaves that line out too
                if path != self.out and not self.sharded:  # a JSON document's journal: the rows it lacks
                    # (an interruption between the document's rename and the journal's removal left both)
                    self._kept_rows.extend(r for r in rows if r["image"] not in self.done)
                elif path == self.out and self.keep_rows:
                    self.found_rows = rows
                self.done.update(r["image"] for r in rows)
            fh = open(path, "a", encoding=ENCODING, errors=ERRORS, newline="")  # noqa: SIM115
        except PermissionError:
            raise AttiqaError(f"{path}: not writable (permission denied) — {self.fix}") from None
        if fh.tell() == 0:
            csv.writer(fh, delimiter=delim, lineterminator="\n").writerow(["image", *self.columns])
            fh.flush()
        self._writer = csv.writer(fh, delimiter=delim, lineterminator="\n")
        return fh

    def _row_from_cells(self, cells: list[str]) -> dict:
        """A row of floats (NaN for an empty cell); ValueError for a cell that is not a number or a cell
        too many or too few."""
        row: dict[str, Any] = {"image": read_cell(cells[0])}
        row.update({c: float(v) if v else float("nan") for c, v in zip(self.columns, cells[1:], strict=True)})
        return row

    def add(self, rows: list[dict], on_commit: Callable[[], object] | None = None) -> None:
        """Append finished rows and make them durable before the next batch starts. They are counted —
        and ``on_commit`` records them (a caller's own count) — in the same step, with Ctrl-C / SIGTERM
        held until all is done: the counts said at an interruption are those of the rows in the file."""
        with interrupts_held():
            self._append(rows)
            _append_identities(self.identities, [(r["image"], self._before.get(r["image"])) for r in rows])
            self.written += len(rows)
            if on_commit is not None:
                on_commit()

    def identify(self, paths: Sequence[Path]) -> None:
        """Take the identities of ``paths`` (this process's images to score) now, before any is read: a
        photo replaced while it is scored has its row recorded with the file it was before, so a rerun
        scores it again. Only these rows' identities are recorded (:meth:`add`)."""
        self._before.update((str(p), file_identity(p)) for p in paths)

    def _append(self, rows: list[dict]) -> None:
        """Write ``rows`` to this writer's file or journal and fsync it (the caller holds the signals)."""
        for r in rows:
            self._writer.writerow([safe_cell(r["image"]), *(_fmt(r[c]) for c in self.columns)])
            if self.is_json and not self.sharded:
                self._kept_rows.append(r)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def discard_if_empty(self) -> None:
        """Remove a file this run created and never wrote a row to (every image failed)."""
        if self.created and not self.written and not self.done:
            self.out.unlink(missing_ok=True)
        if self.record is not None and not self.out.exists():
            self.record.unlink(missing_ok=True)
        if not self.out.exists():
            self.identities.unlink(missing_ok=True)

    def close(self, failed: Sequence[ImageLoadError] = ()) -> Path:
        """Finish the file (JSON: the whole document, atomically; the journal is removed). Sharded: only
        this rank's journal is closed (rank 0's :meth:`merge_shards` writes the file)."""
        self._fh.close()
        if self.is_json and not self.sharded:
            self._write(self._kept_rows, failed)
            self.journal.unlink(missing_ok=True)
        return self.out

    def merge_shards(self, order: Sequence[str], failed: Sequence[ImageLoadError] = ()) -> list[dict]:
        """Rank 0, after every rank closed its journal: write the file (atomically) = its earlier rows, then
        every journal's rows in the order of ``order`` (the input list), and remove the journals. Returns
        the rows written (none written, and the file left as it was, when there are none)."""
        rows, seen = list(self._kept_rows), {r["image"] for r in self._kept_rows}
        journals = self._journals()
        new: dict[str, dict] = {}
        for part in journals:
            for r in self._read_table(part):
                if r["image"] not in seen:
                    new.setdefault(r["image"], r)
        position = {image: i for i, image in enumerate(order)}
        rows += sorted(new.values(), key=lambda r: position.get(r["image"], len(position)))
        if rows:
            self._write(rows, failed)
        for part in journals:
            part.unlink(missing_ok=True)
        _fold_identities(self.out)
        if self.record is not None and not self.out.exists():
            self.record.unlink(missing_ok=True)
        return rows

    def _write(self, rows: list[dict], failed: Sequence[ImageLoadError]) -> None:
        run = ScoreRun(self.columns, rows, list(failed))
        write_scores(run, self.out, self.meta)


def _identity_file(out: Path, rank: int | None = None, pattern: bool = False) -> Path:
    """The one spelling of the record of ``out``'s rows' file identities: the one-process writer's
    ``.NAME.files`` (``rank`` None), a torchrun rank's ``.NAME.rankR.files``; ``pattern``: the glob of
    every rank's."""
    name = glob.escape(out.name) if pattern else out.name
    return out.with_name(f".{name}{'.rank*' if pattern else '' if rank is None else f'.rank{rank}'}.files")


def _identity_files(out: Path) -> list[Path]:
    """Where ``out``'s rows' file identities are recorded: the one-process writer's record, then each
    torchrun rank's (newer: folded into the first once the ranks' rows are in the file, and before a run
    starts — so the ranks' records only ever hold one run's rows, disjoint)."""
    return [_identity_file(out), *sorted(out.parent.glob(_identity_file(out, pattern=True).name))]


def _read_identities(out: Path) -> dict[str, str]:
    """Each image's last recorded identity over the one-process record and the ranks' (the sets' record
    format, :func:`attiqa.io.file_identity.read_sources`: a line cut by a kill is left out)."""
    found: dict[str, str] = {}
    for path in _identity_files(out):
        found.update(read_sources(path))
    return found


def _append_identities(path: Path, entries: Sequence[tuple[str, str | None]]) -> None:
    """Record ``entries`` (image, its identity before it was read; None: not recorded), fsynced."""
    append_sources(path, [(image, ident) for image, ident in entries if ident is not None])


def _fold_identities(out: Path) -> None:
    """The ranks' identity records folded into the one-process record (atomically), then removed: a later
    one-process run's entries, appended to it, are then the newest."""
    main, *ranks = _identity_files(out)
    if not ranks:
        return
    write_text_atomic(main, sources_text(_read_identities(out).items()))
    for r in ranks:
        r.unlink(missing_ok=True)


def _drop_csv_rows(path: Path, images: set[str], delimiter: str) -> None:
    """Rewrite a score CSV/TSV or journal (atomically) without ``images``' rows; its cells as they were."""
    data = path.read_bytes()
    text = data[: data.rfind(b"\n") + 1].decode(ENCODING, ERRORS)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    kept = [r for i, r in enumerate(rows) if i == 0 or not r or read_cell(r[0]) not in images]
    if len(kept) == len(rows):
        return
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(kept)
    write_bytes_atomic(path, buf.getvalue().encode(ENCODING, ERRORS))


def forget_replaced_scores(out: str | Path, inputs: Sequence[Path]) -> int:
    """Drop from the score file ``out`` and the journals beside it the rows of ``inputs`` (this run's
    images, which it scores again) whose photo was replaced since it was scored (its recorded identity
    differs); returns how many. Another image's row stays: no run of it would score it again. One process
    alone (under torchrun rank 0, before any rank reads the journals or records). A file of a version
    before the record holds no identities: nothing is dropped."""
    out = Path(out)
    _fold_identities(out)  # an earlier torchrun run's ranks' records: before this run's ranks append
    recorded = _read_identities(out)
    if not recorded:
        return 0
    changed = changed_files(recorded, ((str(p), p) for p in inputs))
    if not changed:
        return 0
    journals = [
        *sorted(out.parent.glob(f".{glob.escape(out.name)}.rank*.partial.csv")),
        out.with_name(f".{out.name}.partial.csv"),
    ]
    held = [j for j in journals if j.is_file()]
    if out.is_file() and out.suffix.lower() == ".json":
        try:
            doc = json.loads(out.read_text(encoding="utf-8"))
            doc["results"] = [r for r in doc["results"] if r.get("image") not in changed]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return 0  # not a score document: the writer's own reading says so
        write_text_atomic(out, json_text(doc))
    elif out.is_file():
        _drop_csv_rows(out, changed, _delimiter(out))
    for j in held:
        _drop_csv_rows(j, changed, ",")
    return len(changed)


@dataclass
class ColumnStats:
    """Running count / mean / min / max per column, so a long run keeps no rows in memory."""

    columns: tuple[str, ...]
    n: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    mins: dict[str, float] = field(default_factory=dict)
    maxs: dict[str, float] = field(default_factory=dict)

    def add(self, rows: list[dict]) -> None:
        for r in rows:
            self.n += 1
            for c in self.columns:
                v = r[c]
                if isinstance(v, float) and math.isnan(v):
                    continue
                self.sums[c] = self.sums.get(c, 0.0) + v
                self.counts[c] = self.counts.get(c, 0) + 1
                self.mins[c] = min(self.mins.get(c, v), v)
                self.maxs[c] = max(self.maxs.get(c, v), v)

    def mean(self, c: str) -> float:
        return self.sums[c] / self.counts[c] if self.counts.get(c) else float("nan")

    def update(self, other: ColumnStats) -> None:
        """Add ``other``'s rows (another torchrun rank's) to these."""
        self.n += other.n
        for c, total in other.sums.items():
            self.sums[c] = self.sums.get(c, 0.0) + total
            self.counts[c] = self.counts.get(c, 0) + other.counts[c]
            self.mins[c] = min(self.mins.get(c, other.mins[c]), other.mins[c])
            self.maxs[c] = max(self.maxs.get(c, other.maxs[c]), other.maxs[c])
