"""Score every image of a run with every selected metric (ATTIQA §5.1 compares several IQA models).

Each metric is any name ``attiqa.load_scorer`` accepts: a registered scorer (``classical``, ...), a named
model, or a checkpoint path. Results are stored per image in ``scores/<metric>.csv`` (the ``attiqa score``
format: ``image`` + the scorer's columns, ``image`` as written in the manifest) with ``scores/<metric>.json``
holding the scorer's metadata (which column is the overall score, and its direction). A rerun scores only
images a metric has not scored yet; unreadable images are skipped and reported.

Reading the score files (:func:`load_metric_scores`, `genbench agree`) imports no torch: what scores
(``attiqa.scoring``, the scorer's identity of ``attiqa.evaluation.cache``) is imported where it runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import attiqa
from attiqa.datasets.readers import read_csv
from attiqa.errors import AttiqaError, did_you_mean
from attiqa.exiqa import missing_regressor
from attiqa.io.atomic import output_folder, remove_orphan_temps, write_json_atomic
from attiqa.io.tables import ERRORS, read_cell
from attiqa.progress import shown_name
from attiqa.scorers import is_checkpoint
from attiqa.scorers.zoo import trained_on, weights_identity
from genbench.files import SCORES_DIR, shell_arg
from genbench.manifest import SIDES, Pair, image_problem, resolve

if TYPE_CHECKING:
    from attiqa.interface import Scorer
    from attiqa.scoring import ScoreWriter


@dataclass
class MetricScores:
    """One metric's overall score per manifest image string (higher = better after ``sign``)."""

    name: str
    values: dict[str, float]
    higher_is_better: bool = True
    column: str = "score"
    trained_on: tuple[str, ...] = ()  # datasets the metric was fitted on (attiqa.scorers.zoo.trained_on)
    scored_as: str = ""  # the name `genbench score -m` was given (a checkpoint's path, exiqa:RUN): its slug's


@dataclass
class ScoreReport:
    metric: str
    scored: int = 0
    kept: int = 0
    failed: list[str] = field(default_factory=list)
    error: str = ""  # the metric could not be created (e.g. its weights are not on this machine)
    interruption: KeyboardInterrupt | None = None  # Ctrl-C / SIGTERM: finished rows kept; the caller says so


def _same_metric(meta_path: Path, name: str) -> bool:
    """Whether ``scores/<slug>.json`` was written for ``name`` (a path compared as an absolute path)."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        old = meta.get("metric_path") or meta.get("metric")
    except (OSError, ValueError, AttributeError):
        return True  # unreadable metadata: keep the plain name (the CSV is what counts)
    if not isinstance(old, str):
        return True
    return old == name or os.path.abspath(old) == os.path.abspath(name)


def metric_slug(name: str, run_dir: Path | None = None) -> str:
    """A file-name-safe name: a checkpoint path becomes its stem. Two checkpoints with one stem
    (``a/best.safetensors``, ``b/best.safetensors``) must not share ``scores/best.csv`` — the second
    would "keep" the first one's scores as its own: when ``run_dir`` already has that stem for another
    metric, a short hash of the absolute path is appended."""
    is_path = is_checkpoint(name)
    slug = re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(name).stem if is_path else name) or "metric"
    if is_path and run_dir is not None:
        meta = Path(run_dir) / SCORES_DIR / f"{slug}.json"
        if meta.exists() and not _same_metric(meta, name):
            digest = hashlib.sha256(os.fsencode(os.path.abspath(name))).hexdigest()[:8]
            slug = f"{slug}-{digest}"
    return slug


def _writer(out_csv: Path, columns: Sequence[str], metric: str) -> ScoreWriter:
    """The writer of ``scores/<slug>.csv``, holding the rows it holds; a file of other columns (another
    scorer's, a hand-edited header) is removed and all scored again."""
    from attiqa.scoring import OtherScoreFile, ScoreWriter

    make = partial(ScoreWriter, out_csv, columns, fix=f"delete it to score {metric} again", keep_rows=True)
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
    from attiqa.scoring import same_scorer

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


def _read_csv(path: Path, columns: Sequence[str], again: str) -> dict[str, dict[str, str]]:
    """A metric's ``columns`` by manifest image, read through the one CSV reader
    (:func:`attiqa.datasets.readers.read_csv`): a hand-edited ``Image`` / ``Score`` header is read, a column
    named twice or a row with an extra cell is one line naming the file (and line) and ``again``."""
    if not path.exists():
        return {}
    try:
        table = read_csv(path, ",", errors=ERRORS)
        image = table.column("image")
        found = {c: table.column(c, required=False) for c in columns}
    except AttiqaError as exc:
        raise AttiqaError(f"{exc}, or delete the file: {again} scores it again") from None
    return {
        read_cell(str(row[image])): {c: str(row.get(name) or "") if name else "" for c, name in found.items()}
        for row in table.rows
        if row.get(image)
    }


@dataclass(frozen=True)
class Ready:
    """A metric that can score: its scorer, the writer of its file (open to append) and what earlier runs
    kept in it."""

    scorer: Scorer
    identity: dict
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

    def __enter__(self) -> MetricJob:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ready is not None:
            self.ready.writer.close()  # a second close (after score's) does nothing more

    def score(
        self,
        batch_size: int = 16,
        num_workers: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> ScoreReport:
        """Score the images not yet scored (``on_batch(n, failed)`` after each batch) and rewrite
        ``scores/<metric>.csv`` with all rows, in manifest order."""
        from attiqa.scoring import ScoreRun, score_paths, write_scores

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
        return report


def _metric_record(metric: str, scorer: Scorer, identity: dict) -> dict:
    """``scores/<slug>.json``: which column is the overall score, its scale and direction, and the scorer's
    identity (what a rerun resumes by, :func:`_same_scorer`)."""
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
    }


def open_metric(run_dir: Path, pairs: list[Pair], metric: str, device: str = "cpu") -> MetricJob:
    """Load ``metric`` and read what earlier runs scored into ``scores/<metric>.csv`` (opened to append
    to): the job :meth:`MetricJob.score` runs, to use in a ``with`` block (which closes the file)."""
    from attiqa.evaluation.cache import resume_identity

    run_dir = Path(run_dir)
    scores_folder(run_dir)
    slug = metric_slug(metric, run_dir)
    job = MetricJob(run_dir, metric, ScoreReport(metric=slug))
    out_csv = run_dir / SCORES_DIR / f"{slug}.csv"
    job.report.error = _unusable(out_csv, metric) or _unusable(out_csv.with_suffix(".json"), metric)
    if job.report.error:  # this metric is skipped, the others go on
        return job
    try:
        scorer = attiqa.load_scorer(metric, device=device)
    except AttiqaError as exc:
        job.report.error = str(exc)
        return job
    job.report.error = missing_regressor(scorer)  # every score NaN: agree would measure nothing
    if job.report.error:
        return job
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
        writer = _writer(out_csv, scorer.columns, metric)
    except AttiqaError as exc:  # a damaged row (an edit, a bad disk): this metric is skipped, the rest go on
        job.report.error = str(exc)
        return job
    old = {r["image"]: r for r in writer.found_rows}
    images = list(dict.fromkeys(p.image(s) for p in pairs for s in SIDES))
    todo = [im for im in images if im not in old or math.isnan(old[im][scorer.columns[0]])]
    # recorded before any row is appended (after the CSV of other weights is gone): a kill mid-metric leaves
    # rows whose scorer the next run knows — with no record, other weights by then "kept" them
    write_json_atomic(out_csv.with_suffix(".json"), _metric_record(metric, scorer, identity))
    job.ready = Ready(scorer, identity, writer, old, images, todo)
    job.report.kept = len(images) - len(todo)
    return job


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


def scores_folder(run_dir: Path) -> Path:
    """``RUN/scores``, made and checked before any metric runs: every metric writes there, so a file in its
    place or no permission is one line for the command (it was each metric's "delete it to score M again",
    then "no metric could score this run ... check the images listed as unreadable")."""
    folder = Path(run_dir) / SCORES_DIR
    if folder.exists() and not folder.is_dir():
        raise AttiqaError(f"{folder}: a file where genbench keeps the run's scores (a folder) — move it away")
    writable = folder if folder.exists() else Path(run_dir)
    return output_folder(folder, fix=f"make {writable} writable (chmod u+w {shell_arg(writable)})")


def _unusable(path: Path, metric: str) -> str:
    """Why ``path`` (``scores/<slug>.csv`` or ``.json``) cannot be written, with the fix; "" if it can."""
    if path.is_dir():
        return f"{path}: a folder where genbench writes {metric}'s scores — move it away"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path}: not writable (permission denied) — chmod u+w {shell_arg(path)}"
    return ""


def _not_scored_fix(folder: Path, slug: str, name: str) -> str:
    """The tail of the error for a metric ``name`` (its file ``slug``) without scores in ``folder``: a
    misspelt name (`agree -m clasical`) is asked about, not sent to `genbench score` to be scored under the
    typo; the scored metrics listed. The command names the metric as given: its file's name
    (``temu-layer_5`` for ``temu-layer:5``, a checkpoint's stem) is no scorer `score` knows."""
    scored = sorted(p.stem for p in folder.glob("*.csv"))
    listed = f" (scored: {', '.join(scored)})" if scored else ""
    hint = did_you_mean(slug, scored)
    if hint:
        return f"{hint}{listed}"
    from attiqa.scorers.zoo import is_checkpoint, zoo_entry

    if zoo_entry(name) is None and not is_checkpoint(name):  # `score --metrics NAME` refuses it: no fix
        return f", and no scorer is named so (`attiqa models` lists them){listed}"
    return f" — `genbench score {shell_arg(folder.parent)} --metrics {shell_arg(name)}`{listed}"


def load_metric_scores(run_dir: Path, metrics: list[str] | None = None) -> list[MetricScores]:
    """Read ``scores/*.csv`` (all metrics scored, or the named ones) of a run."""
    folder = Path(run_dir) / SCORES_DIR
    names = metrics or sorted(p.stem for p in folder.glob("*.csv"))  # as given, or each file's stem
    if not names:
        raise AttiqaError(f"{folder}: no scores yet — run `genbench score {shell_arg(run_dir)}` first")
    out = []
    for name in names:
        slug = metric_slug(name, run_dir) if metrics else name
        path = folder / f"{slug}.csv"
        if not path.exists():
            raise AttiqaError(
                f"{path}: metric {name!r} has not scored this run{_not_scored_fix(folder, slug, name)}"
            )
        meta_path = path.with_suffix(".json")
        again = f"`genbench score {shell_arg(run_dir)} --metrics {shell_arg(name)}`"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
            column = meta.get("column", "score")
        except (OSError, ValueError, AttributeError):
            raise AttiqaError(f"{meta_path}: unreadable — {again} writes it again") from None
        values = {}
        for im, row in _read_csv(path, [column], again).items():
            try:
                if row.get(column):
                    values[im] = float(row[column])
            except ValueError:
                raise AttiqaError(
                    f"{path}: {column} of {shown_name(im)} is {row[column]!r}, not a number — delete the "
                    f"file and {again} scores it again"
                ) from None
        who = meta.get("identity")  # name, the weights' and tensors' SHA-256 (older files: less)
        who = who if isinstance(who, dict) else {"name": meta.get("metric")}
        card = meta.get("scorer")  # the scorer's own metadata: its name is its checkpoint card's
        fitted_on = trained_on({**who, "card_name": card.get("name") if isinstance(card, dict) else None})
        named = meta.get("metric")
        scored_as = named if isinstance(named, str) and named else slug
        out.append(
            MetricScores(slug, values, bool(meta.get("higher_is_better", True)), column, fitted_on, scored_as)
        )
    return out
