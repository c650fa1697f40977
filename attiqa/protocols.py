"""The paper's evaluation protocols (§4.1, §4.4, §4.5; Tables 2, 3, 4, 6), each a loop of
:func:`attiqa.training.finetune.finetune` runs over generated splits, written up as a markdown table laid
out like the paper's and a JSON with every number.

- ``single`` (Table 2): per dataset, ``repeats`` (paper: 10) random 80/20 train/test splits, report the
  MEDIAN SROCC and PLCC (§4.1, following QPT [46]). FLIVE and AVA use their official split instead (one
  run), as the paper does, and so does BIQ2021 (ours: its repository's train / test files); a ``folder``
  dataset with a split column uses that column.
- ``cross`` (Table 3): train on A exactly as in ``single`` (first split: "every experimental setup is
  the same as the main experiment", §4.4), then test that model on ALL images of every other dataset B;
  SROCC only (the MOS scales differ). Those scores go through ``attiqa eval``'s score cache, chosen the
  same way (``cache``: :func:`attiqa.evaluation.cache.cache_location`; by default
  ``$ATTIQA_CACHE/eval_scores.sqlite``, which must be on a local disk, not on NFS — README).
- ``data-efficient`` (Table 4): train on 10% / 20% of a dataset, test on the rest (our reading of
  "instead of the conventional 8:2 Train-Test split, we performed training using only 10% or 20% of the
  data"); median SROCC over ``repeats``.
- ``linear-probe`` (Table 6): as ``single`` with ``freeze_backbone`` (only the regression MLP trains).

Which epoch is reported (ours, stated in every table): ``select="last"`` (default) reports the last
epoch — the paper trains a fixed 100 epochs — so the test split never selects the model;
``select="best"`` reports the epoch with the best test SROCC, as ``finetune`` keeps it (optimistic; with a
ridge head, the MOS MLP's SROCC chooses the epoch and the numbers are the combined MOS's). Each run's
``selected`` says which, in words.

Group-aware splits (ours; issue 15): with ``group_by`` the random partitions are drawn over groups of
items, so no group is on both sides — ``"auto"`` (default) uses the dataset's natural group where it has
one (:data:`NATURAL_GROUPS`: the reference image of the synthetic datasets, the prompt of AGIQA), ``None``
splits image-wise, any other name is a key of the items' ``meta``. A random image-wise split of KADID-10k
puts every reference photo on both sides; a grouped one tests on unseen content. Byte-identical files (a
scraped set's copies under two names, a row listed twice; agiqa3k-dev holds two such pairs with different
prompts) always share a group, image-wise too, so a copy of a training image is never a test image.

Runs are resumable: a finished run leaves ``run.json``; rerunning the same command skips it — as long as
the base config, the init checkpoint's content (a checkpoint trained again at the same path trains again)
and the split's images and MOS are the same — and a run cut short (its fingerprint in ``started.json``)
continues from its last finished epoch. Big
checkpoints are deleted after their numbers are taken unless ``keep_checkpoints``. Each run's split is
handed to fine-tuning in memory; ``split.csv`` is written next to it as a record only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from attiqa.bench_setup import (
    MISSING_FIX,
    PROTOCOLS,
    BenchDataset,
    ProtocolSetup,
    check_protocol,
    check_scores,
    say_rows_left_out,
)
from attiqa.bench_splits import (
    HeldOutPlan,
    Split,
    SplitPlan,
    plan_splits,
    say_shared_images,
)
from attiqa.config import DATASET_KEYS, FinetuneConfig, read_group_by, to_dict
from attiqa.datasets.base import DatasetItem, IQADataset
from attiqa.io.atomic import output_folder, write_json_atomic, write_text_atomic
from attiqa.io.checkpoints import weights_sha256
from attiqa.progress import console, plain
from attiqa.training.data import MosSplit

if TYPE_CHECKING:
    from attiqa.training.finetune import InitialModel


@dataclass
class ProtocolResult:
    protocol: str
    method: str
    runs: list[dict[str, Any]]
    summary: dict[str, Any]
    table: str
    files: dict[str, Path] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Splits


def mos_split(ds: IQADataset, split: Split) -> MosSplit:
    """The fine-tuning data of one split, in memory: its training items, then its held-out ones (the card
    records ``NAME:ROOT`` as the source, the split by name and kind, and the dataset's rows by their hash)."""
    used = [ds.items[i] for i in (*split.train, *split.test)]
    n_tr = len(split.train)
    return MosSplit(
        paths=[Path(it.image) for it in used], mos=torch.tensor([float(it.mos) for it in used]),
        train=list(range(n_tr)), val=list(range(n_tr, len(used))), kind=f"{split.name} ({split.kind})",
        source=f"{ds.name}:{ds.root}", image_root=str(ds.root), target=ds.target,
        rows_sha256=ds.fingerprint(),
    )  # fmt: skip


def dataset_split(cfg: FinetuneConfig) -> MosSplit:
    """``attiqa train``'s fine-tuning data from a named dataset (``finetune.dataset`` at ``root``), split
    by ``attiqa bench``'s plan (:class:`~attiqa.bench_splits.HeldOutPlan`): the official split of FLIVE / AVA
    / BIQ2021, else one random split holding out ``val_fraction`` (seed ``split_seed``), grouped by
    ``group_by`` (``auto``: no reference image or prompt on both sides; byte-identical files always share a
    side). Checked before any training."""
    from attiqa.datasets import get_dataset

    ds = get_dataset(cfg.dataset, cfg.root, target=cfg.target)
    ds.check_images(fix=MISSING_FIX)
    say_rows_left_out(ds)
    b = BenchDataset(f"finetune.dataset {ds.name}", ds)
    check_scores(ds, HeldOutPlan.who(b))
    group_by = read_group_by(cfg.group_by, "finetune.group_by")
    plan = HeldOutPlan(1, cfg.split_seed, None, group_by, held_out=cfg.val_fraction)
    return mos_split(ds, plan.split(b))


def write_split_csv(path: Path, items: Sequence[DatasetItem], split: Split) -> Path:
    """The fine-tuning CSV (``image,mos,split``; absolute paths; MOS higher-is-better), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image", "mos", "split"])
    for name, idx in (("train", split.train), ("test", split.test)):
        for i in idx:
            w.writerow([str(items[i].image), repr(float(items[i].mos)), name])
    write_text_atomic(path, buf.getvalue())
    return path


# --------------------------------------------------------------------------------------------------
# Running


def _fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_fingerprint(path: Path) -> str | None:
    """The fingerprint recorded in ``path`` (None: no such file, or not one of ours)."""
    try:
        value = json.loads(path.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _pick_metrics(res: Any, select: str) -> tuple[dict[str, float], int | None]:
    """The selected checkpoint's metrics and epoch. The best epoch is the trainer's own record: matching the
    best metrics against the history found none with a ridge head (added after training, its combined
    metrics of the best checkpoint are in no history entry) and recorded epoch None."""
    if select == "best":
        return dict(res.best_metrics), res.best_epoch
    last = res.history[-1]
    return {k: last[k] for k in ("srocc", "plcc", "krcc", "rmse", "n") if k in last}, int(last["epoch"])


def selected_words(select: str, epoch: int | None, ridge: bool) -> str:
    """What a run reports, in words for its record: which epoch, chosen how, and whether a ridge head was
    added (the best epoch is chosen by the MOS MLP's test SROCC alone; the numbers are the combined MOS's)."""
    at = f"epoch {epoch}" if epoch is not None else "the epoch"
    if select == "best":
        words = f"{at}: the best test SROCC{' of the MOS MLP' if ridge else ''} (optimistic)"
    else:
        words = f"{at}: the last"
    return words + (", scored with the ridge head fitted after training" if ridge else "")


def run_finetune_split(
    bench: BenchDataset,
    split: Split,
    cfg: FinetuneConfig,
    init_checkpoint: Path | None,
    run_dir: Path,
    select: str,
    progress: bool,
    keep_checkpoint: bool,
    after: Callable[[Path], dict[str, Any]] | None = None,
    start: InitialModel | None = None,
    after_key: str | None = None,
) -> dict[str, Any]:
    """One fine-tuning run on one split; returns (and stores in ``run.json``) its numbers.

    ``after(checkpoint)`` may compute more numbers from the selected checkpoint before it is deleted
    (cross-dataset testing), ``after_key`` fingerprints what they depend on (the test datasets): a finished
    run whose numbers were computed for another key is run again; ``start``: the network built from ``cfg``
    and ``init_checkpoint`` once for all splits (:func:`attiqa.training.finetune.initial_model`; None: built
    here).
    """
    from attiqa.training.finetune import finetune

    items = bench.dataset.items
    csv_path = run_dir / "split.csv"
    used = [items[i] for i in (*split.train, *split.test)]  # the rows split.csv lists, in its order
    # what the numbers depend on: the init checkpoint's content (not its path: a pretraining run again at
    # the same out_dir rewrites it) and the rows' images and MOS (a corrected score file), not their indices
    init_id = weights_sha256(init_checkpoint) if init_checkpoint is not None else None
    settings = {k: v for k, v in to_dict(cfg).items() if k not in DATASET_KEYS}  # unused (--data)
    fp = _fingerprint(
        settings, init_id, bench.dataset.name, str(bench.dataset.root), bench.dataset.target,
        len(split.train), [(str(it.image), float(it.mos)) for it in used], select,
    )  # fmt: skip
    done = run_dir / "run.json"
    if done.is_file():
        prev = json.loads(done.read_text())
        if prev.get("fingerprint") == fp and prev.get("after_key") == after_key:
            return prev
    # a run cut short (Ctrl-C, a kill) continues from its last finished epoch when nothing it depends on
    # changed; "started.json" records what it started with (else it trains over what is there)
    started = run_dir / "started.json"
    resume = _read_fingerprint(started) == fp
    if resume:
        where = plain(str(run_dir))
        console.print(
            f"{plain(bench.label)} {split.name}: continuing the run cut short in {where}", highlight=False
        )
    write_split_csv(csv_path, items, split)  # a record of the split; training gets it in memory
    write_json_atomic(started, {"fingerprint": fp})
    data = mos_split(bench.dataset, split)
    run_cfg = replace(cfg, csv="", image_root="", dataset="", root="")
    res = finetune(run_cfg, init_checkpoint, run_dir, resume, progress, data, start)
    metrics, epoch = _pick_metrics(res, select)
    ridge = bool(res.history and res.history[-1].get("ridge"))
    ft_dir = run_dir / "finetune"
    ckpt = ft_dir / ("best.safetensors" if select == "best" else "last.safetensors")
    record: dict[str, Any] = {
        "dataset": bench.label,
        "dataset_name": bench.dataset.name,
        "target": bench.dataset.target,
        "split": split.name,
        "split_kind": split.kind,
        "seed": split.seed,
        "n_train": len(split.train),
        "n_test": len(split.test),
        "n_scored": metrics.get("n"),  # the test images the metrics are over (fewer: some did not decode)
        "select": select,
        "epoch": epoch,
        "selected": selected_words(select, epoch, ridge),
        **{k: metrics.get(k) for k in ("srocc", "plcc", "krcc", "rmse")},
        "history": res.history,
        "fingerprint": fp,
        "after_key": after_key,
    }
    if after is not None:
        record.update(after(ckpt))
    if not keep_checkpoint:
        for f in ft_dir.glob("*.safetensors"):
            f.unlink()
        record["checkpoint"] = None
    else:
        record["checkpoint"] = str(ckpt)
    write_json_atomic(done, record)
    return record


def _median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if isinstance(v, float) and v == v]
    return float(statistics.median(vals)) if vals else None


def _f(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _md_table(rows: list[list[str]]) -> str:
    """Rows -> markdown; the first row is the header (the paper's group header), the rest body rows."""
    width = max(len(r) for r in rows)
    # a '|' in a cell (a --method or label holding one) would end the cell: escaped as markdown reads it
    rows = [[c.replace("|", "\\|") for c in r] + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(["---"] * width) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def _initial_model(cfg: FinetuneConfig, init: Path | None) -> InitialModel:
    """The device and the starting network — the init checkpoint, or the backbone with its ImageNet weights —
    before the output folder is made (a machine without CUDA, a file that is not an ATTIQA checkpoint or
    weights that cannot be downloaded stopped the first run, leaving OUT/PROTOCOL/LABEL/split00), built once
    and handed to every split's fine-tuning (each loaded it again: a ResNet-50's weights per split)."""
    from attiqa.device import resolve_device
    from attiqa.training.finetune import initial_model

    resolve_device(cfg.device)
    return initial_model(cfg, init)


def finished_runs(out_dir: str | Path, protocol: str) -> int:
    """How many runs of ``protocol`` under ``out_dir`` have finished (each leaves ``run.json``)."""
    return sum(1 for _ in (Path(out_dir) / protocol).glob("*/*/run.json"))


@dataclass
class _Run:
    """What every protocol needs: the splits, the base config, how to run and where to put one split."""

    plan: SplitPlan
    cfg: FinetuneConfig
    init: Path | None
    start: InitialModel  # the network every split starts from, built once (after the splits' checks)
    select: str
    progress: bool
    keep: bool
    out: Path

    def run(self, protocol: str, b: BenchDataset, sp: Split, **kw: Any) -> dict[str, Any]:
        run_dir = self.out / protocol / b.label / sp.name
        return run_finetune_split(b, sp, self.cfg, self.init, run_dir, self.select, self.progress, self.keep,
                                  start=self.start, **kw)  # fmt: skip


def _single(r: _Run, benches: list[BenchDataset], method: str, protocol: str) -> tuple[list, dict, str]:
    """Table 2 (and Table 6 with a frozen backbone): median SROCC / PLCC over the splits."""
    runs = [r.run(protocol, b, sp) for b in benches for sp in r.plan.splits(b)]
    summary = {
        b.label: {
            "srocc": _median([x["srocc"] for x in runs if x["dataset"] == b.label]),
            "plcc": _median([x["plcc"] for x in runs if x["dataset"] == b.label]),
            "runs": sum(x["dataset"] == b.label for x in runs),
        }
        for b in benches
    }
    head = ["Methods"] + [x for b in benches for x in (b.label, "")]
    sub = [""] + ["SROCC", "PLCC"] * len(benches)
    body = [method] + [_f(summary[b.label][m]) for b in benches for m in ("srocc", "plcc")]
    return runs, summary, _md_table([head, sub, body])


def _data_efficient(
    r: _Run, benches: list[BenchDataset], method: str, fractions: Sequence[float]
) -> tuple[list, dict, str]:
    """Table 4: train on each fraction, test on the rest; median SROCC."""
    runs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for b in benches:
        summary[b.label] = {}
        for fr in fractions:
            these = []
            for sp in r.plan.fraction_splits(b, fr):
                rec = r.run("data-efficient", b, sp)
                rec["fraction"] = fr
                these.append(rec)
            runs += these
            summary[b.label][f"{round(fr * 100)}%"] = {
                "srocc": _median([x["srocc"] for x in these]),
                "runs": len(these),
                "n_train": these[0]["n_train"],
            }
    pct = [f"{round(fr * 100)}%" for fr in fractions]
    head = ["Methods"] + [x for b in benches for x in [b.label] + [""] * (len(pct) - 1)]
    sub = [""] + pct * len(benches)
    body = [method] + [_f(summary[b.label][p]["srocc"]) for b in benches for p in pct]
    return runs, summary, _md_table([head, sub, body])


def _cross(
    r: _Run,
    benches: list[BenchDataset],
    method: str,
    eval_batch_size: int,
    eval_workers: int | None,
    cache: bool | str | Path,
) -> tuple[list, dict, str]:
    """Table 3: train on A as in ``single``, test on all images of every other dataset; SROCC."""
    from attiqa.device import resolve_device
    from attiqa.evaluation.evaluate import evaluate
    from attiqa.scorers.attiqa_scorer import AttiqaScorer

    runs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    say_shared_images(benches)
    for a in benches:
        tests = [b for b in benches if b is not a]

        def test_on_others(ckpt: Path, tests: list[BenchDataset] = tests) -> dict:
            scorer = AttiqaScorer(ckpt, device=resolve_device(r.cfg.device))
            res = {}
            for b in tests:
                ev = evaluate(
                    b.dataset, scorer, ckpt.parent.parent / "cross" / b.label, batch_size=eval_batch_size,
                    num_workers=eval_workers, cache=cache, progress=r.progress, plot=False,
                )  # fmt: skip
                res[b.label] = {"srocc": ev.metrics["srocc"], "plcc": ev.metrics["plcc"], "n": ev.n}
            return {"cross": res}

        # the tests' numbers depend on their images and MOS: a rerun with another test set (or a corrected
        # score file) was handed the old run.json — a KeyError for a new test dataset, stale numbers else
        key = _fingerprint([
            (b.label, b.dataset.name, str(b.dataset.root), b.dataset.target,
             [(str(it.image), float(it.mos)) for it in b.dataset]) for b in tests
        ])  # fmt: skip
        runs += [r.run("cross", a, sp, after=test_on_others, after_key=key) for sp in r.plan.splits(a)]
        summary[a.label] = {
            b.label: {
                "srocc": _median([x["cross"][b.label]["srocc"] for x in runs if x["dataset"] == a.label]),
                "runs": sum(x["dataset"] == a.label for x in runs),
            }
            for b in tests
        }
    head = ["Train DB"] + [x for a in benches for x in [a.label] + [""] * (len(benches) - 2)]
    sub = ["Test DB"] + [b.label for a in benches for b in benches if b is not a]
    body = [method] + [_f(summary[a.label][b.label]["srocc"]) for a in benches for b in benches if b is not a]
    return runs, summary, _md_table([head, sub, body])


def run_protocol(
    protocol: str,
    datasets: Sequence[BenchDataset | IQADataset],
    base_config: str | Path | dict[str, Any] | FinetuneConfig | None,
    out_dir: str | Path,
    init_checkpoint: str | Path | None = None,
    repeats: int | None = None,
    fractions: Sequence[float] | None = None,
    select: str = "last",
    seed: int = 0,
    method: str | None = None,
    official_split: bool | None = None,
    keep_checkpoints: bool = False,
    progress: bool = False,
    eval_batch_size: int = 16,
    eval_workers: int | None = None,
    group_by: str | None = "auto",
    cache: bool | str | Path = True,
    checked: ProtocolSetup | None = None,
    planned: SplitPlan | None = None,
) -> ProtocolResult:
    """Run ``protocol`` (see :data:`PROTOCOLS`) and write ``<protocol>.md`` + ``<protocol>.json`` in
    ``out_dir``. ``repeats`` defaults to the paper's 10 (1 for ``cross``); ``group_by`` as in the module
    docstring; ``cache``: ``cross``'s score cache, as :func:`~attiqa.evaluation.evaluate.evaluate`'s;
    ``fractions``: data-efficient's training fractions (default 10 % and 20 %), refused for the others;
    ``checked``: :func:`attiqa.bench_setup.check_protocol`'s result for these arguments, and ``planned``
    :func:`attiqa.bench_splits.plan_splits`' (the splits, checked), when the command made them before
    importing torch."""
    c = checked or check_protocol(
        protocol, datasets, base_config, out_dir, init_checkpoint=init_checkpoint, repeats=repeats,
        fractions=fractions, select=select, method=method,
    )  # fmt: skip
    benches, cfg, init, method, repeats, fractions = (
        c.benches,
        c.cfg,
        c.init,
        c.method,
        c.repeats,
        c.fractions,
    )
    out = Path(out_dir)
    plan = planned or plan_splits(protocol, benches, repeats, seed, official_split, group_by, fractions)
    for b in benches:
        if protocol == "data-efficient":
            for fr in fractions:
                plan.say_share(b, plan.fraction_splits(b, fr), fr)
        else:
            plan.say_share(b, plan.splits(b))
    # the splits are checked before the network is built: a --group-by typo or a 3-image set was said only
    # after the backbone loaded (offline: after "cannot download ImageNet weights", a fix for nothing)
    r = _Run(plan, cfg, init, _initial_model(cfg, init), select, progress, keep_checkpoints, out)
    output_folder(out, "--out")  # only now: a refused setting leaves no empty folder behind
    if protocol in ("single", "linear-probe"):
        runs, summary, table = _single(r, benches, method, protocol)
    elif protocol == "data-efficient":
        runs, summary, table = _data_efficient(r, benches, method, fractions)
    else:
        runs, summary, table = _cross(r, benches, method, eval_batch_size, eval_workers, cache)

    note = _table_note(protocol, select, repeats, seed, runs)
    md = f"## {PROTOCOLS[protocol].split(':')[0]} — {protocol}\n\n{table}\n{note}\n"
    files = {"table": out / f"{protocol}.md", "json": out / f"{protocol}.json"}
    write_text_atomic(files["table"], md)
    doc = {
        "protocol": protocol,
        "description": PROTOCOLS[protocol],
        "method": method,
        "init_checkpoint": str(init) if init else None,
        "base_config": to_dict(cfg),
        "select": select,
        "repeats": repeats,
        "seed": seed,
        "group_by": group_by,
        "fractions": list(fractions) if protocol == "data-efficient" else None,
        "datasets": [
            {
                "label": b.label,
                **b.dataset.describe(),
                "n": len(b.dataset),
                "identical_copies": plan.copies.get(b.label),
            }
            for b in benches
        ],
        "summary": summary,
        "runs": runs,
        "table": md,
    }
    write_json_atomic(files["json"], doc)
    return ProtocolResult(protocol, method, runs, summary, md, files)


def _split_words(runs: list[dict[str, Any]]) -> str:
    """The runs' split kinds ("group": no group — reference, prompt — on both sides), per dataset when they
    differ: "group, random" in a table of KADID-10k and KonIQ did not say which was split how."""
    by_set: dict[str, set[str]] = {}
    for r in runs:
        by_set.setdefault(r["dataset"], set()).add(r["split_kind"])
    kinds = sorted({k for ks in by_set.values() for k in ks})
    if len(kinds) <= 1:
        return f"{', '.join(kinds)} splits"
    return "splits: " + ", ".join(f"{d} {' and '.join(sorted(ks))}" for d, ks in by_set.items())


def _table_note(protocol: str, select: str, repeats: int, seed: int, runs: list[dict[str, Any]]) -> str:
    kinds = _split_words(runs)
    ridge = any(r.get("history") and r["history"][-1].get("ridge") for r in runs)
    if select == "last":
        epoch = "last epoch"
    else:
        epoch = f"epoch with the best test SROCC{' of the MOS MLP' if ridge else ''} (optimistic)"
    epoch += ", with the ridge head fitted after training" if ridge else ""
    if protocol == "cross":
        what = f"SROCC of the model trained on the Train DB ({kinds}), tested on all images of the Test DB"
    elif protocol == "data-efficient":
        what = (f"median test SROCC over {repeats} random draws of the training fraction ({kinds}; seeds "
                f"from {seed})")  # fmt: skip
    else:
        what = f"median test SROCC / PLCC over the runs ({kinds}; seeds from {seed})"
    return f"{what}; {epoch}; {len(runs)} fine-tuning run(s). Generated by `attiqa bench {protocol}`.\n"
