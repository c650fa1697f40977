"""The scoring half of `genbench score`: load a metric, score the run's images it has not scored yet into
``scores/<slug>.csv`` and record its scorer in ``scores/<slug>.json`` (:func:`open_metric`,
:class:`MetricJob`, :func:`score_run`). It imports the scoring stack (``attiqa.scoring``, the scorer's
identity of ``attiqa.evaluation.cache``: torch) at its top, so a caller imports this module where it scores;
reading the score files, and the torch-free proof that a metric has nothing left to score
(:func:`genbench.run_scores.scored_already`, which :func:`open_metric` asks first), are in
:mod:`genbench.run_scores`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import attiqa
from attiqa.errors import AttiqaError
from attiqa.evaluation.cache import resume_identity
from attiqa.exiqa import missing_regressor
from attiqa.interface import Scorer
from attiqa.io.atomic import remove_orphan_temps, write_json_atomic
from attiqa.io.commands import Command
from attiqa.scorers import is_checkpoint
from attiqa.scorers.zoo import checkpoint_read, weights_identity
from attiqa.scoring import (
    OtherScoreFile,
    ScoreRun,
    ScoreWriter,
    same_scorer,
    score_output_held,
    score_paths,
    write_scores,
)
from genbench.files import SCORES_DIR
from genbench.manifest import Pair, image_problem, resolve
from genbench.run_scores import (
    ScoreReport,
    metric_slug,
    run_images,
    scored_already,
    scored_source,
    scored_stamp,
    scores_folder,
    unusable,
)


def _writer(out_csv: Path, columns: Sequence[str], fix: str) -> ScoreWriter:
    """The writer of ``scores/<slug>.csv``, holding the rows it holds; a file of other columns (another
    scorer's, a hand-edited header) is removed and all scored again."""
    make = partial(ScoreWriter, out_csv, columns, fix=fix, keep_rows=True)
    try:
        return make()
    except OtherScoreFile:
        out_csv.unlink()
        return make()


def _same_scorer(out_csv: Path, identity: dict) -> bool:
    """Whether ``scores/<slug>.json`` records the scorer ``identity`` names, by `attiqa score -o`'s rule
    (:func:`attiqa.scoring.same_scorer`: :func:`attiqa.evaluation.cache.resume_identity`'s ``key``, every
    file the scores depend on by its hash — a CLIP folder's weights, an ExIQA run's checkpoint and
    regressor — and the scorer's settings; a record from before the key as it was)."""
    try:
        record = json.loads(out_csv.with_suffix(".json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return True  # no record: a killed run of a version that wrote it at the end — its rows stay
    except (OSError, ValueError):
        return False  # a record that cannot be read ties the rows to no scorer: they are scored again
    if not isinstance(record, dict):
        return False
    old = record.get("identity")
    if not isinstance(old, dict):
        return True  # a record from before the identity was kept: the scores stay
    return same_scorer(old, identity)


@dataclass(frozen=True)
class Ready:
    """A metric that can score: its scorer, the writer of its file (open to append) and what earlier runs
    kept in it."""

    scorer: Scorer
    identity: dict
    record: dict  # scores/<slug>.json as written before scoring; stamped `complete` when every image is
    writer: ScoreWriter
    old: dict[str, dict]  # the file's rows by manifest image
    images: list[str]  # the run's images, in manifest order
    todo: list[str]  # those not yet scored


@dataclass
class MetricJob:
    """One metric's scoring of a run, made by :func:`open_metric` and used as a context manager (its score
    file is open to append while the block runs, closed when it ends, scored or not): ``report.kept``
    (what earlier runs scored, which a progress bar counts outside its rate) is known before :meth:`score`
    scores an image. ``ready`` is None when the metric cannot run (``report.error`` says why; nothing is
    loaded or open)."""

    run_dir: Path
    metric: str
    report: ScoreReport
    ready: Ready | None = None
    held: ExitStack = field(default_factory=ExitStack)  # the score file's lock, while the job is open

    def __enter__(self) -> MetricJob:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.ready is not None:
                self.ready.writer.close()  # a second close (after score's) does nothing more
        finally:
            self.held.close()  # the file let go once it was rewritten (score) or closed

    def score(
        self,
        batch_size: int = 16,
        num_workers: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> ScoreReport:
        """Score the images not yet scored (``on_batch(n, failed)`` after each batch) and rewrite
        ``scores/<metric>.csv`` with all rows, in manifest order."""
        report, ready = self.report, self.ready
        if ready is None:
            return report
        scorer, writer = ready.scorer, ready.writer
        run = ScoreRun(columns=tuple(scorer.columns))
        paths = [resolve(self.run_dir, im) for im in ready.todo]
        back = {str(p): im for p, im in zip(paths, ready.todo, strict=True)}
        try:
            if paths:
                run = score_paths(
                    paths, scorer, batch_size, num_workers, on_batch,
                    on_rows=lambda rows: writer.add([{**r, "image": back[r["image"]]} for r in rows]),
                )  # fmt: skip
        finally:
            writer.close()
        for row in run.rows:
            row["image"] = back[row["image"]]
        report.scored = len(run.rows)
        # printed as a list, each with its fix as `attiqa score` lists it (the fix was left out)
        report.failed = [image_problem(self.run_dir, e) for e in run.failed]
        todo = set(ready.todo)  # (a list would be a membership test per image of the run)
        kept_rows = [ready.old[im] for im in ready.images if im in ready.old and im not in todo]
        order = {im: i for i, im in enumerate(ready.images)}
        run.rows = sorted(kept_rows + run.rows, key=lambda r: order[r["image"]])
        out_csv = self.run_dir / SCORES_DIR / f"{report.metric}.csv"
        write_scores(run, out_csv)
        report.interruption = run.interruption
        first = scorer.columns[0]
        if len(run.rows) == len(ready.images) and all(math.isfinite(r[first]) for r in run.rows):
            # every image scored: a rerun kept whole need not load the scorer (run_scores.scored_already)
            stamped = {**ready.record, "complete": scored_stamp(out_csv, ready.images)}
            write_json_atomic(out_csv.with_suffix(".json"), stamped)
        return report


def _metric_record(metric: str, scorer: Scorer, identity: dict, source: dict | None) -> dict:
    """``scores/<slug>.json``: which column is the overall score, its scale and direction, and the scorer's
    identity (what a rerun resumes by, :func:`_same_scorer`); ``source``: its files by hash as they can be
    read without loading it (:func:`genbench.run_scores.scored_source`), None where they cannot."""
    info = scorer.info
    return {
        "metric": metric,
        "metric_path": os.path.abspath(metric) if is_checkpoint(metric) else None,
        "column": scorer.columns[0],
        "columns": list(scorer.columns),
        **info.scale_record(),
        "kind": info.kind,
        "trained_range": list(info.trained_range) if info.trained_range else None,
        "scorer": scorer.metadata(),
        "identity": identity,
        "source": source,
    }


def open_metric(
    run_dir: Path,
    pairs: list[Pair],
    metric: str,
    device: str | Callable[[], str] = "cpu",
    *,
    not_kept: bool = False,
) -> MetricJob:
    """Load ``metric`` and read what earlier runs scored into ``scores/<metric>.csv`` (opened to append
    to): the job :meth:`MetricJob.score` runs, to use in a ``with`` block (which closes the file). A metric
    whose record proves every image scored by the scorer it names now (:func:`scored_already`) is not
    loaded: its job has nothing to score (``ready`` None, every image ``kept``). ``device``: a device
    string, or what gives one when the metric loads (``--device auto`` is resolved with torch).
    ``not_kept``: the caller asked :func:`scored_already` just before and it said no — not asked again (the
    second asking read nothing: the hashes are cached per version of the file; it cost a lookup and a
    second reading of the record and score file)."""
    run_dir = Path(run_dir)
    scores_folder(run_dir)
    slug = metric_slug(metric, run_dir)
    job = MetricJob(run_dir, metric, ScoreReport(metric=slug))
    out_csv = run_dir / SCORES_DIR / f"{slug}.csv"
    job.report.error = unusable(out_csv, metric) or unusable(out_csv.with_suffix(".json"), metric)
    if job.report.error:  # this metric is skipped, the others go on
        return job
    done = None if not_kept else scored_already(run_dir, pairs, metric)
    if done is not None:
        return MetricJob(run_dir, metric, done)
    fix = f"delete it to score {metric} again"  # the writer's advice (not offered while another writes it)
    held = ExitStack()
    try:  # from before the scorer loads to the job's end: its file is rewritten in manifest order at the end
        held.enter_context(score_output_held(out_csv, fix, Command.GENBENCH_SCORE))
    except AttiqaError as exc:  # another `genbench score` of this run writes it now: this metric is skipped
        job.report.error = str(exc)
        return job
    with held:
        _get_ready(job, pairs, device, out_csv, fix)
        if job.ready is not None:
            job.held = held.pop_all()
    return job


def _get_ready(
    job: MetricJob, pairs: list[Pair], device: str | Callable[[], str], out_csv: Path, fix: str
) -> None:
    """:func:`open_metric`'s scorer loaded and writer opened into ``job.ready`` (``job.report.error``: why
    the metric cannot score), with ``out_csv`` held."""
    metric, slug = job.metric, job.report.metric
    try:
        scorer = attiqa.load_scorer(metric, device=device() if callable(device) else device)
    except AttiqaError as exc:
        job.report.error = str(exc)
        return
    job.report.error = missing_regressor(scorer)  # every score NaN: agree would measure nothing
    if job.report.error:
        return
    remove_orphan_temps(out_csv.parent, targets=[out_csv.name, f"{slug}.json"])  # a killed earlier run's
    # the tensors' hash too: `agree` knows a shipped model's copy with its card rewritten (zoo.shipped_model)
    identity = {
        **resume_identity(metric, scorer, {}),
        "tensors_sha256": weights_identity(scorer)["tensors_sha256"],
    }
    if not _same_scorer(out_csv, identity):
        out_csv.unlink(
            missing_ok=True
        )  # other weights under this name (retrained in place): all scored again
    # The writer reads the file once (its rows are what is kept); each batch is appended as it finishes (a
    # kill keeps it; the writer drops a half-written last line); the file is rewritten in manifest order.
    try:
        writer = _writer(out_csv, scorer.columns, fix)
    except AttiqaError as exc:  # a damaged row (an edit, a bad disk): this metric is skipped, the rest go on
        job.report.error = str(exc)
        return
    old = {r["image"]: r for r in writer.found_rows}
    images = run_images(pairs)
    todo = [im for im in images if im not in old or math.isnan(old[im][scorer.columns[0]])]
    # recorded before any row is appended (after the CSV of other weights is gone): a kill mid-metric leaves
    # rows whose scorer the next run knows — with no record, other weights by then "kept" them
    # the files of the bytes loaded (a file saved again since is not taken for the weights that score)
    record = _metric_record(metric, scorer, identity, scored_source(metric, checkpoint_read(scorer)))
    write_json_atomic(out_csv.with_suffix(".json"), record)
    job.ready = Ready(scorer, identity, record, writer, old, images, todo)
    job.report.kept = len(images) - len(todo)


def score_run(
    run_dir: Path,
    pairs: list[Pair],
    metric: str,
    device: str = "cpu",
    batch_size: int = 16,
    num_workers: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> ScoreReport:
    """Score the run's images not yet in ``scores/<metric>.csv`` and rewrite the file with all rows
    (:func:`open_metric`, then :meth:`MetricJob.score`); ``on_batch(n, failed)`` after each batch."""
    with open_metric(run_dir, pairs, metric, device) as job:
        return job.score(batch_size, num_workers, on_batch)
