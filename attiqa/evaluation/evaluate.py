"""``evaluate(dataset, scorer, out_dir)``: score every image of a dataset and compare with its MOS.

Order of work, chosen so nothing fails late: (1) select the items (target, split) and check their MOS
(duplicates, conflicts, constant MOS); (2) check EVERY image exists and has a readable header — one error
listing the problems, before any model call (under torchrun each process checks a share); (3) look up
the per-(model, image) cache (:mod:`attiqa.evaluation.cache`); (4) score the rest with the one scoring path,
:func:`attiqa.scoring.score_batches` (as ``attiqa score``: same batching hints, same reduced-scale JPEG
decoding, so the same image gets the same score), storing each batch in the cache as it finishes —
under torchrun each process scores a share (:mod:`attiqa.sharding`) and rank 0 alone writes the outputs;
(5) metrics: SROCC, PLCC, KRCC (paper §4.2; plain PLCC as the paper reports it) plus PLCC and RMSE after
the VQEG logistic fit; (6) write ``predictions.csv``, ``summary.json`` and ``scatter.png`` atomically.

A file that passes the header check but fails to decode (e.g. truncated) does not stop the run: it is
listed under ``failed`` in the summary and left out of the metrics.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attiqa.datasets.base import (
    PREDICTIONS_CSV,
    SCATTER_PNG,
    SUMMARY_JSON,
    DatasetItem,
    IQADataset,
    among_the_data,
    canonical_split,
    find_unreadable,
)
from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.evaluation.cache import ScoreCache, cache_location, score_cache_key
from attiqa.evaluation.logistic import LogisticFit, fitted_metrics
from attiqa.evaluation.metrics import FEW_IMAGES, correlations, noise_spread
from attiqa.interface import Scorer
from attiqa.io.atomic import write_bytes_atomic, write_json_atomic
from attiqa.io.batching import inference_num_workers
from attiqa.io.images import content_key
from attiqa.io.tables import csv_bytes
from attiqa.scorer_info import ScorerInfo
from attiqa.scorers.zoo import trained_on, weights_identity
from attiqa.sharding import Shards, in_input_order, score_share


@dataclass
class EvalResult:
    """What :func:`evaluate` computed and wrote."""

    dataset: str
    target: str
    split: str
    metrics: dict[str, float]  # srocc, plcc, krcc (raw predictions), plcc_fit, rmse_fit (after the logistic)
    n: int  # images in the metrics
    fit: LogisticFit
    rows: list[dict[str, Any]]  # per image: image, mos, raw, split, prediction, scorer columns
    failed: list[ImageLoadError] = field(default_factory=list)
    skipped_missing: list[str] = field(default_factory=list)
    n_cached: int = 0
    n_scored: int = 0
    seconds: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


RESERVED = ("image", "mos", "raw", "split", "prediction")


def output_columns(columns: tuple[str, ...] | list[str]) -> list[str]:
    """Scorer columns as written next to the dataset's: a clash (the ATTIQA scorer's ``mos``) becomes
    ``model_<name>`` so the dataset MOS and the model's own column are both kept."""
    return [f"model_{c}" if c in RESERVED else c for c in columns]


def _fmt(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def find_unreadable_shared(paths: Sequence[Path], shards: Shards | None = None) -> list[tuple[Path, str]]:
    """:func:`attiqa.datasets.base.find_unreadable` with each process (under torchrun) checking a share of
    ``paths``: every process gets all the problems, in input order, as one process finds them."""
    shards = shards or Shards()
    mine = shards.share(range(len(paths)))
    bad = dict(find_unreadable([paths[i] for i in mine]))
    found = [(i, bad[paths[i]]) for i in mine if paths[i] in bad]
    return [(paths[i], why) for i, why in sorted(x for part in shards.gather(found) for x in part)]


def _select_items(
    dataset: IQADataset, split: str | None, missing: str, shards: Shards, checked: bool
) -> tuple[list[DatasetItem], list[str]]:
    items = dataset.select(split)
    if missing == "skip":
        bad = find_unreadable_shared([it.image for it in items], shards)
        if bad:
            badset = {p for p, _ in bad}
            kept = [it for it in items if it.image not in badset]
            if not kept:
                dataset.check_images(items, problems=bad)  # raises the full, explained error
            return kept, [f"{p}: {why}" for p, why in bad]
        return items, []
    if missing != "error":
        raise ValueError("missing must be 'error' or 'skip'")
    if not checked:
        dataset.check_images(items, problems=find_unreadable_shared([it.image for it in items], shards))
    return items, []


def check_mos(items: list[DatasetItem], dataset: IQADataset) -> tuple[list[DatasetItem], list[str]]:
    """Refuse or report what would silently distort the metrics: the same image with two different MOS
    values (refused), repeated rows (counted once, with a warning), rows without a finite MOS (counted)
    and a constant MOS (no correlation is defined)."""
    warn: list[str] = []
    unique, repeats = dataset.unique_items(items)  # two scores for one image: refused
    if repeats:
        warn.append(dataset.rows_repeated(items, unique))  # named by the file and the rows
    if dataset.without_score:  # named by the file and the rows (was a count alone)
        warn.append(dataset.rows_left_out())
    if len(unique) >= 2 and len({it.mos for it in unique}) == 1:
        warn.append(
            f"{dataset.target} is the same ({unique[0].raw:g}) for every image: correlations are undefined"
        )
    return unique, warn


def score_items(
    paths: list[Path],
    scorer: Scorer,
    cache: ScoreCache | None,
    scorer_key: str,
    batch_size: int,
    num_workers: int,
    progress: bool,
    shards: Shards | None = None,
) -> tuple[dict[str, list[float]], list[ImageLoadError], int]:
    """Scores for ``paths`` (str(path) -> one value per scorer column), decode failures, number cached.

    Under torchrun (``shards``) each process hashes and looks up its share of ``paths``, scores its share of
    the rest — each batch stored in the cache as it finishes, so a killed run resumes — and every process
    ends with all the scores."""
    shards = shards or Shards()
    keys: dict[str, str] = {}
    if cache is not None:
        for p in shards.share(paths):
            with contextlib.suppress(OSError):  # unreadable: the loader reports it below
                keys[str(p)] = content_key(p)
    found = cache.lookup(scorer_key, keys) if cache is not None else {}
    done: dict[str, list[float]] = {}
    for rank_keys, rank_found in shards.gather((keys, found)):
        keys.update(rank_keys)
        done.update(rank_found)
    n_cached = len(done)
    todo = [p for p in paths if str(p) not in done]
    if progress and shards.main and n_cached and todo:  # as `attiqa score` resumes
        from attiqa.progress import console

        console.print(f"resuming: {n_cached} image(s) already in the score cache, {len(todo)} to score")
    scored: dict[str, list[float]] = {}

    def keep(rows: list[dict]) -> None:
        new = []
        for r in rows:
            vals = scored[r["image"]] = [r[c] for c in scorer.columns]
            if r["image"] in keys:
                new.append((keys[r["image"]], vals))
        if cache is not None and new:
            cache.store(scorer_key, new)

    run = score_share(
        shards, todo, scorer, batch_size, num_workers, keep, keep_rows=0, progress=progress, kept=len(found)
    )  # the bar counts this process's cache hits as done: 3/8 from its first frame, worker or none
    if run.interrupted:  # finished batches are in the cache
        raise run.interruption or KeyboardInterrupt()
    failed: list[ImageLoadError] = []
    for rank_scored, rank_failed in shards.gather((scored, run.failed)):
        done.update(rank_scored)
        failed += rank_failed
    return done, in_input_order(failed, todo), n_cached


def _fitted_here(info: ScorerInfo, ds: IQADataset) -> bool:
    """Whether a checkpoint's card says it was fine-tuned on ``ds``: the same rows by their hash (a copy
    moved or on another machine, an exported model), or — a card without the hash — this copy by its root."""
    if info.fitted_rows:  # compared with the hash of the version the card holds (an earlier version's too)
        return info.fitted_rows == ds.fingerprint(info.fitted_rows_version)
    return info.fitted_on == f"{ds.name}:{ds.root}"


def _held_out(fitted_split: str, split: str | None) -> bool:
    """Whether the images of ``split`` were held out of a fine-tuning on ``fitted_split`` of the same
    dataset: only an official split's test / val part (a random split's training images are in any)."""
    return (
        fitted_split.startswith("official")
        and split is not None
        and canonical_split(split) in ("test", "val")
    )


def _holds_training_ends(trained: tuple[float, float] | None, mos: np.ndarray) -> bool:
    """Whether the scores ``mos`` hold both ends of a model's training MOS range (its card's ``mos_range``:
    the lowest and highest MOS of the rows it was fitted on), each equal to float32 precision — the table
    lists (at least) those two of its training images, and as a rule the rest. An end on a 0.1 grid (1.0,
    4.5: a coarse rating scale reaches it in any study) says nothing, so it never counts."""
    if trained is None or not len(mos):
        return False
    ends = np.asarray(trained, dtype=np.float32)
    fine = np.abs(ends * 10 - np.round(ends * 10)) > 1e-3
    return bool(fine.all() and np.isin(ends, np.asarray(mos, dtype=np.float32)).all())


def evaluate(
    dataset: IQADataset,
    scorer: Scorer,
    out_dir: str | Path,
    target: str | None = None,
    batch_size: int = 16,
    num_workers: int | None = None,
    cache: bool | str | Path = True,
    split: str | None = None,
    missing: str = "error",
    scorer_overrides: dict[str, Any] | None = None,
    progress: bool = True,
    plot: bool = True,
    shards: Shards | None = None,
    checked: bool = False,
) -> EvalResult:
    """Score ``dataset`` (optionally another ``target`` / one ``split``) with ``scorer``; write outputs.

    ``cache``: True = the shared cache file, a path = that SQLite file, False = no cache
    (:func:`~attiqa.evaluation.cache.cache_location`). ``missing="skip"`` drops missing/unreadable images
    with a warning instead of the default one-error-before-scoring. ``scorer_overrides`` (e.g.
    ``{"crops": "center"}``) enter the cache key next to the scorer's own metadata.

    Under torchrun (``shards`` from :func:`attiqa.sharding.sharded`) each process checks and scores a
    share of the images and every process returns the same result; only rank 0 writes the files.
    ``checked``: the caller already ran :meth:`~attiqa.datasets.base.IQADataset.check_images` on these
    items (``attiqa eval`` does, before the model loads), so ``missing="error"`` does not look again.
    """
    shards = shards or Shards()
    t0 = time.perf_counter()
    ds = dataset.retarget(target)
    items, skipped = _select_items(ds, split, missing, shards, checked)
    items, mos_warnings = check_mos(items, ds)
    out_dir = Path(out_dir)
    among_the_data(out_dir, ds, items)
    workers = inference_num_workers(scorer.device, num_workers)
    key, identity = score_cache_key(scorer, scorer_overrides)
    paths = [it.image for it in items]

    store: ScoreCache | None = None
    where = cache_location(cache)
    try:
        if where is not None and shards.main:
            store = ScoreCache(where)
            store.register(key, scorer.columns, identity)
        shards.sync()  # the other processes open the cache once it exists (one creator, one WAL switch)
        if where is not None and not shards.main:
            store = ScoreCache(where)
        scores, failed, n_cached = score_items(
            paths, scorer, store, key, batch_size, workers, progress, shards
        )  # fmt: skip
    finally:
        if store is not None:
            store.close()

    columns = output_columns(scorer.columns)
    rows: list[dict[str, Any]] = []
    for it in items:
        vals = scores.get(str(it.image))
        if vals is None:
            continue
        row = {"image": str(it.image), "mos": it.mos, "raw": it.raw, "split": it.split or ""}
        row["prediction"] = vals[0]
        row.update({c: v for c, v in zip(columns, vals, strict=True)})
        rows.append(row)

    pred = np.array([r["prediction"] for r in rows], dtype=np.float64)
    mos = np.array([r["mos"] for r in rows], dtype=np.float64)
    base = correlations(pred, mos)
    fitted = fitted_metrics(pred, mos)
    metrics = {
        "srocc": base["srocc"],
        "plcc": base["plcc"],
        "plcc_fit": fitted["plcc_fit"],
        "krcc": base["krcc"],
        "rmse_fit": fitted["rmse_fit"],
    }
    warn: list[str] = list(mos_warnings)
    if rows and not np.isfinite(pred).any():
        warn.append(
            f"the scorer's first column ({columns[0]}) is NaN for every image — a pretrain-only checkpoint "
            "has no MOS head; fine-tune it first (`attiqa train` with a finetune section)"
        )
    # the fix for too few images: damaged ones first (a table of 3, 2 cut short, was told to add images)
    repair = f"repair the {len(failed)} that could not be decoded (listed below), or " if failed else ""
    if len(rows) == 1:  # every metric is "–": say why
        warn.append(f"1 image scored: correlations need at least 2 — {repair}evaluate a table of more images")
    if 2 <= base["n"] < FEW_IMAGES:  # an SROCC of 1.0 on 3 images was shown without a word
        warn.append(
            f"{int(base['n'])} images in the metrics: an SROCC on so few is {noise_spread(int(base['n']))} — "
            f"these figures say little; {repair}evaluate on at least {FEW_IMAGES} (the paper's test sets: "
            "hundreds)"
        )
    if failed:
        warn.append(f"{len(failed)} image(s) could not be decoded and are left out of the metrics")
    if skipped:
        warn.append(
            f"{len(skipped)} missing or unreadable image(s) left out of the metrics, as asked "
            "(skipped_missing in summary.json lists them)"
        )
    fit_note = "these metrics are its training fit, not a held-out figure"
    if ds.name in trained_on(weights_identity(scorer)):  # a named model on (a copy of) its training data
        fitted_to = ds.info.default_target  # what a shipped model's card fits: the table's default target
        warn.append(
            f"{scorer.info.name} was trained on {ds.info.short_name} images: on the images it was fitted to "
            f"{fit_note} (its model card gives held-out ones)"
            if ds.target == fitted_to
            else f"{scorer.info.name} was trained on these {ds.info.short_name} images (fitted to their "
            f"{fitted_to}, not {ds.target}): it has seen them, so these metrics are not a held-out figure"
        )
    elif _fitted_here(scorer.info, ds) and not _held_out(scorer.info.fitted_split, split):
        warn.append(  # its card says so: `attiqa train` / `bench` on these rows (MOS on a coarse grid too)
            f"{scorer.info.name} was fine-tuned on images of this {ds.info.short_name} table (split: "
            f"{scorer.info.fitted_split}): on the images it was fitted to {fit_note}"
        )
    elif _holds_training_ends(scorer.info.trained_range, mos):  # e.g. `eval folder` on the training CSV
        lo, hi = scorer.info.trained_range or (0.0, 0.0)
        warn.append(
            f"{scorer.info.name} was trained on images of this table: it holds the two images that bound "
            f"the MOS it was trained on ({lo:.6g} and {hi:.6g}) — on the images it was fitted to {fit_note}"
        )

    res = EvalResult(
        dataset=ds.name,
        target=ds.target,
        split=split or "all",
        metrics=metrics,
        n=int(base["n"]),
        fit=fitted["fit"],
        rows=rows,
        failed=failed,
        skipped_missing=skipped,
        n_cached=n_cached,
        n_scored=len(paths) - n_cached - len(failed),
        model={**scorer.metadata(), "columns": columns, "identity": key},
        warnings=warn,
    )
    res.seconds = time.perf_counter() - t0
    _require_rows(res)  # on every process, so none waits for a rank 0 that stopped
    res.files = write_outputs(res, ds, out_dir, plot=plot) if shards.main else {}
    return res


def _require_rows(res: EvalResult) -> None:
    """Stop when nothing was scored, naming a file that failed (was "no image could be scored": no file)."""
    if res.rows:
        return
    if res.failed:
        n = len(res.failed)
        raise AttiqaError(
            f"{res.dataset}: none of its {n} image{'s' if n > 1 else ''} could be decoded — nothing to "
            f"evaluate; the first: {res.failed[0]}"
        )
    raise AttiqaError(f"{res.dataset}: no image could be scored — nothing to evaluate")


def earlier_eval(out_dir: Path, dataset: IQADataset, scorer_key: str, split: str | None) -> str | None:
    """A note when ``out_dir`` holds outputs this eval replaces that are not its own: another model, dataset
    (its name and :meth:`~attiqa.datasets.base.IQADataset.identity`: root, and a folder dataset's CSV and
    columns), target or split by the summary.json there, or files no summary describes. None for a folder
    without them or a rerun of the same eval (the same numbers again, from the score cache). A summary of
    an earlier version records no CSV: its root alone is compared."""
    present = [n for n in (PREDICTIONS_CSV, SUMMARY_JSON, SCATTER_PNG) if (out_dir / n).is_file()]
    if not present:
        return None
    try:
        was = json.loads((out_dir / SUMMARY_JSON).read_text(encoding="utf-8"))
        model, root = was["model"], str(was["root"])
        now = dataset.identity()
        same_root = Path(root).resolve() == Path(dataset.root).resolve()
        other = [k for k in now if k != "root" and k in was and was[k] != now[k]]
        then = (model["identity"], was["dataset"], was["target"], was["split"], same_root and not other)
        of = f"{model['name']} on {was['dataset']} ({was['target']}, {was['split']}"
    except (OSError, ValueError, KeyError, TypeError):  # not an eval's summary.json
        return f"{out_dir}: replacing the {', '.join(present)} there"
    if then == (scorer_key, dataset.name, dataset.target, split or "all", True):
        return None
    where = "" if same_root else f", root {root}"
    where += "".join(f", {k} {_said(was[k])}" for k in other)
    return f"{out_dir}: replacing the {', '.join(present)} of an earlier eval, {of}{where})"


def _said(value: Any) -> str:
    """A summary's identity entry in a line: a path as is, columns as ``image=NAME, split=NAME``."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v)
    return str(value)


def write_outputs(res: EvalResult, dataset: IQADataset, out_dir: Path, plot: bool = True) -> dict[str, Path]:
    """predictions.csv, summary.json and (``plot``) scatter.png in ``out_dir``, each written atomically —
    the plot only when a prediction is finite (a pretrain-only checkpoint has no MOS: empty axes)."""
    _require_rows(res)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = list(res.model.get("columns", []))
    head = [*RESERVED, *columns]
    rows = (
        [r["image"], _fmt(r["mos"]), _fmt(r["raw"]), r["split"], *(_fmt(r[c]) for c in head[4:])]
        for r in res.rows
    )
    files = {"predictions": out_dir / PREDICTIONS_CSV, "summary": out_dir / SUMMARY_JSON}
    write_bytes_atomic(files["predictions"], csv_bytes(head, rows))
    if plot and not any(math.isfinite(r["prediction"]) for r in res.rows):  # empty axes: nothing to check
        (out_dir / SCATTER_PNG).unlink(missing_ok=True)  # an earlier run's plot is not of these numbers
        plot = False
    if plot:
        from attiqa.evaluation.plots import scatter_plot

        files["scatter"] = scatter_plot(
            [r["prediction"] for r in res.rows],
            [r["mos"] for r in res.rows],
            out_dir / SCATTER_PNG,
            title=f"{res.dataset} ({res.target}, {res.split}) — {res.model.get('name', '')}",
            xlabel=f"prediction ({columns[0] if columns else 'score'})",
            ylabel=f"{res.target} (higher is better)",
            fit=res.fit,
            metrics={k: res.metrics[k] for k in ("srocc", "plcc", "plcc_fit")},
        )
    summary = {
        **res.metrics,  # an undefined one (nan) is null: json_text
        "n": res.n,
        **dataset.describe(),
        "split": res.split,
        "model": res.model,
        "logistic_fit": res.fit.to_dict(),
        "n_cached": res.n_cached,
        "n_scored": res.n_scored,
        "seconds": round(res.seconds, 3),
        "failed": [{"image": e.path, "error": e.reason} for e in res.failed],
        "skipped_missing": res.skipped_missing,
        "warnings": res.warnings,
        "notes": "srocc/plcc/krcc on raw predictions (plcc as in paper §4.2); plcc_fit/rmse_fit after the "
        "VQEG 4-parameter logistic fit (kept when it beats a line by AICc; plcc_fit signed as the fit runs); "
        "mos is higher-is-better (DMOS flipped), raw as distributed",
        "files": {k: str(v) for k, v in files.items()},
    }
    write_json_atomic(files["summary"], summary)
    return files
