"""A run's score files, read (ATTIQA §5.1 compares several IQA models), and what they prove.

Each metric is any name ``attiqa.load_scorer`` accepts: a registered scorer (``classical``, ...), a named
model, or a checkpoint path. Results are stored per image in ``scores/<metric>.csv`` (the ``attiqa score``
format: ``image`` + the scorer's columns, ``image`` as written in the manifest) with ``scores/<metric>.json``
holding the scorer's metadata (which column is the overall score, and its direction). A rerun scores only
images a metric has not scored yet; unreadable images are skipped and reported.

This module imports no torch: reading the score files (:func:`load_metric_scores`, `genbench agree`), and
the proof that a metric has nothing left to score (:func:`scored_already`: a rerun of `genbench score` on a
scored run loads no scorer). Scoring is :mod:`genbench.metric_scoring`, imported where it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import attiqa
from attiqa.datasets.readers import read_csv
from attiqa.errors import AttiqaError, did_you_mean
from attiqa.io.atomic import output_folder, remove_orphan_temps
from attiqa.io.hashes import file_version, record_digest
from attiqa.io.tables import ERRORS, read_cell
from attiqa.progress import shown_name
from attiqa.scorers import is_checkpoint
from attiqa.scorers.zoo import scorer_files, trained_on
from genbench.files import SCORES_DIR, shell_arg
from genbench.manifest import SIDES, Pair

if TYPE_CHECKING:
    from attiqa.io.checkpoints import CheckpointHashes


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


def scores_folder(run_dir: Path) -> Path:
    """``RUN/scores``, made and checked before any metric runs: every metric writes there, so a file in its
    place or no permission is one line for the command (it was each metric's "delete it to score M again",
    then "no metric could score this run ... check the images listed as unreadable")."""
    folder = Path(run_dir) / SCORES_DIR
    if folder.exists() and not folder.is_dir():
        raise AttiqaError(f"{folder}: a file where genbench keeps the run's scores (a folder) — move it away")
    writable = folder if folder.exists() else Path(run_dir)
    return output_folder(folder, fix=f"make {writable} writable (chmod u+w {shell_arg(writable)})")


def unusable(path: Path, metric: str) -> str:
    """Why ``path`` (``scores/<slug>.csv`` or ``.json``) cannot be written, with the fix; "" if it can."""
    if path.is_dir():
        return f"{path}: a folder where genbench writes {metric}'s scores — move it away"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path}: not writable (permission denied) — chmod u+w {shell_arg(path)}"
    return ""


def run_images(pairs: Sequence[Pair]) -> list[str]:
    """The run's images as its manifest writes them, each once, in manifest order (a then b of each pair)."""
    return list(dict.fromkeys(p.image(s) for p in pairs for s in SIDES))


def scored_source(metric: str, read: CheckpointHashes | None = None) -> dict[str, str | None] | None:
    """The files ``metric``'s scorer is made from, by hash (:func:`attiqa.scorers.zoo.scorer_files`: of the
    bytes a loaded scorer read, ``read``, or read now without loading it), with the attiqa version that
    loads them: what ``scores/<slug>.json`` records as ``source``, and :func:`scored_already` compares.
    None where the files cannot be told so (a CLIP folder, ``exiqa:RUN``)."""
    found = scorer_files(metric, read)
    return None if found is None else {"attiqa": attiqa.__version__, **found}


def scored_stamp(out_csv: Path, images: Sequence[str]) -> dict[str, object]:
    """What ``scores/<slug>.json`` says (``complete``) once ``out_csv`` holds a finite score for every image
    of ``images`` and nothing else: the file's version (:func:`attiqa.io.hashes.file_version`: its inode,
    size, modification and change times — any write, a copy, a hand edit is another) and the images' digest
    (the run's manifest as it was). :func:`scored_already` compares it; the file is not read to know."""
    return {"file": list(file_version(out_csv.stat())), "images": record_digest(list(images))}


def scored_already(run_dir: Path, pairs: Sequence[Pair], metric: str) -> ScoreReport | None:
    """The report of a metric with nothing left to score — every image kept — when ``scores/<slug>.json``
    proves it without loading the scorer (torch-free, the score file not read): it names ``metric`` as
    given; its ``complete`` stamp (:func:`scored_stamp`) is of the score file as it is and of the run's
    images now; and its ``source`` is :func:`scored_source` now (the same weights and card by hash: a
    retrain in place is not). Else None: the metric is loaded (:func:`genbench.metric_scoring.open_metric`),
    which scores what is missing and says what is wrong, if anything."""
    run_dir = Path(run_dir)
    slug = metric_slug(metric, run_dir)
    out_csv = run_dir / SCORES_DIR / f"{slug}.csv"
    images = run_images(pairs)
    try:
        record = json.loads(out_csv.with_suffix(".json").read_text(encoding="utf-8"))
        stamp = scored_stamp(out_csv, images)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("metric") != metric or record.get("complete") != stamp:
        return None
    if not record.get("source") or record["source"] != scored_source(metric) or unusable(out_csv, metric):
        return None  # (last: it hashes the weights)
    remove_orphan_temps(out_csv.parent, targets=[out_csv.name, f"{slug}.json"])  # a killed earlier run's
    return ScoreReport(metric=slug, kept=len(images))


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
