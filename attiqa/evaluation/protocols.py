"""The paper's evaluation protocols (§4.1, §4.4, §4.5; Tables 2, 3, 4, 6), each a loop of
:func:`attiqa.training.finetune.finetune` runs over generated splits, written up as a markdown table laid
out like the paper's and a JSON with every number.

- ``single`` (Table 2): per dataset, ``repeats`` (paper: 10) random 80/20 train/test splits, report the
  MEDIAN SROCC and PLCC (§4.1, following QPT [46]). FLIVE and AVA use their official split instead (one
  run), as the paper does; a ``folder`` dataset with a split column uses that column.
- ``cross`` (Table 3): train on A exactly as in ``single`` (first split: "every experimental setup is
  the same as the main experiment", §4.4), then test that model on ALL images of every other dataset B;
  SROCC only (the MOS scales differ).
- ``data-efficient`` (Table 4): train on 10% / 20% of a dataset, test on the rest (our reading of
  "instead of the conventional 8:2 Train-Test split, we performed training using only 10% or 20% of the
  data"); median SROCC over ``repeats``.
- ``linear-probe`` (Table 6): as ``single`` with ``freeze_backbone`` (only the regression MLP trains).

Which epoch is reported (ours, stated in every table): ``select="last"`` (default) reports the last
epoch — the paper trains a fixed 100 epochs — so the test split never selects the model;
``select="best"`` reports the epoch with the best test SROCC, as ``finetune`` keeps it (optimistic).

Runs are resumable: a finished run leaves ``run.json``; rerunning the same command skips it. Big
checkpoints are deleted after their numbers are taken unless ``keep_checkpoints``.
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
from typing import Any

from attiqa.config import FinetuneConfig, from_dict, read_yaml, to_dict
from attiqa.datasets.base import DatasetItem, IQADataset
from attiqa.errors import AttiqaError, ConfigError
from attiqa.io.atomic import write_json_atomic, write_text_atomic
from attiqa.training.data import split_indices

PROTOCOLS: dict[str, str] = {
    "single": "Table 2: N random 80/20 splits per dataset (official split for FLIVE/AVA), median SROCC/PLCC",
    "cross": "Table 3: train on A (first split of `single`), test on all of B; SROCC",
    "data-efficient": "Table 4: train on 10%/20% of the data, test on the rest; median SROCC",
    "linear-probe": "Table 6: like `single` with a frozen backbone (only the regression MLP trains)",
}

OFFICIAL_SPLIT_DATASETS = ("flive", "ava")  # §4.1: "For FLIVE and AVA, we follow the official dataset split"

DISPLAY_NAMES = {
    "clive": "CLIVE",
    "koniq10k": "KonIQ",
    "spaq": "SPAQ",
    "flive": "FLIVE",
    "ava": "AVA",
    "agiqa3k": "AGIQA-3K",
    "agiqa1k": "AGIQA-1K",
    "kadid10k": "KADID-10k",
    "live": "LIVE",
    "csiq": "CSIQ",
    "tid2013": "TID2013",
    "pipal": "PIPAL",
}


@dataclass
class BenchDataset:
    """A dataset in a protocol, with the label its table column gets."""

    label: str
    dataset: IQADataset


@dataclass
class ProtocolResult:
    protocol: str
    method: str
    runs: list[dict[str, Any]]
    summary: dict[str, Any]
    table: str
    files: dict[str, Path] = field(default_factory=dict)


def bench_dataset(dataset: IQADataset, label: str | None = None) -> BenchDataset:
    """Wrap a dataset with its table label (paper spelling for known datasets)."""
    if label is None:
        label = DISPLAY_NAMES.get(dataset.name, dataset.name)
        if dataset.name == "folder":
            label = Path(getattr(dataset, "csv_path", dataset.root)).stem
    return BenchDataset(label, dataset)


def load_base_config(source: str | Path | dict[str, Any] | FinetuneConfig | None) -> FinetuneConfig:
    """The base fine-tuning config: a YAML file with the schema of the ``finetune:`` section (or a whole
    run config, whose ``finetune:`` section is used), a mapping, or a config. ``csv``/``image_root``
    are set per run by the protocol."""
    if source is None:
        return FinetuneConfig()
    if isinstance(source, FinetuneConfig):
        return source
    where = "base config"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{path}: base config not found")
        data = read_yaml(path)
        where = path.name
    else:
        data = dict(source)
    if isinstance(data, dict) and isinstance(data.get("finetune"), dict):
        data = data["finetune"]
        where += ".finetune"
    return from_dict(FinetuneConfig, data, where)


# --------------------------------------------------------------------------------------------------
# Splits


@dataclass(frozen=True)
class Split:
    """One train/test partition of a dataset's items (indices into ``dataset.items``)."""

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    seed: int | None
    kind: str  # "random" | "official" | "fraction"


def uses_official_split(ds: IQADataset, official: bool | None) -> bool:
    """Paper §4.1: official split for FLIVE and AVA; a folder CSV's own split column is honoured too."""
    has = {"train"} <= set(ds.splits()) and bool({"test", "val"} & set(ds.splits()))
    if official is None:
        official = ds.name in OFFICIAL_SPLIT_DATASETS or ds.name == "folder"
    return official and has


def official_partition(ds: IQADataset) -> Split:
    items = ds.items
    test_name = "test" if any(it.split == "test" for it in items) else "val"
    train = tuple(i for i, it in enumerate(items) if it.split == "train")
    test = tuple(i for i, it in enumerate(items) if it.split == test_name)
    return Split("official", train, test, None, "official")


def random_splits(n: int, repeats: int, seed: int, test_fraction: float = 0.2) -> list[Split]:
    """``repeats`` random splits with seeds ``seed .. seed + repeats - 1`` (paper §4.1: 80/20)."""
    out = []
    for r in range(repeats):
        tr, te = split_indices(n, test_fraction, seed + r)
        out.append(Split(f"split{r:02d}", tuple(tr), tuple(te), seed + r, "random"))
    return out


def fraction_splits(n: int, fraction: float, repeats: int, seed: int) -> list[Split]:
    """Train on ``fraction`` of the items, test on the rest (data-efficient setup, §4.4)."""
    if not 0.0 < fraction < 1.0:
        raise AttiqaError(f"data-efficient: fraction must be in (0, 1), got {fraction}")
    out = []
    for r in range(repeats):
        tr, te = split_indices(n, 1.0 - fraction, seed + r)
        out.append(
            Split(f"f{round(fraction * 100):02d}_split{r:02d}", tuple(tr), tuple(te), seed + r, "fraction")
        )
    return out


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


def _pick_metrics(res: Any, select: str) -> tuple[dict[str, float], int | None]:
    if select == "best":
        best_epoch = None
        for h in res.history:
            if h.get("srocc") == res.best_metrics.get("srocc"):
                best_epoch = h["epoch"]
                break
        return dict(res.best_metrics), best_epoch
    last = res.history[-1]
    return {k: last[k] for k in ("srocc", "plcc", "krcc", "rmse", "n") if k in last}, int(last["epoch"])


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
) -> dict[str, Any]:
    """One fine-tuning run on one split; returns (and stores in ``run.json``) its numbers.

    ``after(checkpoint)`` may compute more numbers from the selected checkpoint before it is deleted
    (cross-dataset testing).
    """
    from attiqa.training.finetune import finetune

    items = bench.dataset.items
    csv_path = run_dir / "split.csv"
    fp = _fingerprint(
        to_dict(cfg), str(init_checkpoint), bench.dataset.name, str(bench.dataset.root),
        bench.dataset.target, split.train, split.test, select,
    )  # fmt: skip
    done = run_dir / "run.json"
    if done.is_file():
        prev = json.loads(done.read_text())
        if prev.get("fingerprint") == fp:
            return prev
    write_split_csv(csv_path, items, split)
    run_cfg = replace(cfg, csv=str(csv_path), image_root="")
    res = finetune(run_cfg, init_checkpoint, run_dir, resume=False, progress=progress)
    metrics, epoch = _pick_metrics(res, select)
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
        "select": select,
        "epoch": epoch,
        **{k: metrics.get(k) for k in ("srocc", "plcc", "krcc", "rmse")},
        "history": res.history,
        "fingerprint": fp,
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
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(["---"] * width) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def _check_all(benches: Sequence[BenchDataset]) -> None:
    labels = [b.label for b in benches]
    if len(set(labels)) != len(labels):
        raise AttiqaError(f"datasets need distinct labels, got {', '.join(labels)} (use LABEL:NAME=ROOT)")
    for b in benches:
        b.dataset.check_images()  # every problem surfaces before the first epoch


def run_protocol(
    protocol: str,
    datasets: Sequence[BenchDataset | IQADataset],
    base_config: str | Path | dict[str, Any] | FinetuneConfig | None,
    out_dir: str | Path,
    init_checkpoint: str | Path | None = None,
    repeats: int | None = None,
    fractions: Sequence[float] = (0.1, 0.2),
    select: str = "last",
    seed: int = 0,
    method: str | None = None,
    official_split: bool | None = None,
    keep_checkpoints: bool = False,
    progress: bool = False,
    eval_batch_size: int = 16,
    eval_workers: int | None = None,
) -> ProtocolResult:
    """Run ``protocol`` (see :data:`PROTOCOLS`) and write ``<protocol>.md`` + ``<protocol>.json`` in
    ``out_dir``. ``repeats`` defaults to the paper's 10 (1 for ``cross``)."""
    if protocol not in PROTOCOLS:
        import difflib

        close = difflib.get_close_matches(protocol, list(PROTOCOLS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise AttiqaError(f"unknown protocol {protocol!r}: {hint}protocols: {', '.join(PROTOCOLS)}")
    if select not in ("last", "best"):
        raise AttiqaError(f"select must be 'last' or 'best', got {select!r}")
    benches = [d if isinstance(d, BenchDataset) else bench_dataset(d) for d in datasets]
    if not benches:
        raise AttiqaError(f"{protocol}: no datasets given")
    if protocol == "cross" and len(benches) < 2:
        raise AttiqaError("cross: needs at least two datasets (train on one, test on the others)")
    cfg = load_base_config(base_config)
    if protocol == "linear-probe":
        cfg = replace(cfg, freeze_backbone=True)
    init = Path(init_checkpoint) if init_checkpoint else None
    if init is not None and not init.is_file():
        raise AttiqaError(f"{init}: initial checkpoint not found (pass the pretrained model.safetensors)")
    if method is None:
        method = "ATTIQA" if init is not None else f"{cfg.backbone} (no attribute pretraining)"
    repeats = repeats if repeats is not None else (1 if protocol == "cross" else 10)
    if repeats < 1:
        raise AttiqaError("repeats must be at least 1")
    _check_all(benches)
    out = Path(out_dir)
    common = dict(
        cfg=cfg, init_checkpoint=init, select=select, progress=progress, keep_checkpoint=keep_checkpoints
    )

    runs: list[dict[str, Any]] = []
    if protocol in ("single", "linear-probe"):
        for b in benches:
            splits = (
                [official_partition(b.dataset)]
                if uses_official_split(b.dataset, official_split)
                else random_splits(len(b.dataset), repeats, seed)
            )
            for sp in splits:
                runs.append(run_finetune_split(b, sp, run_dir=out / protocol / b.label / sp.name, **common))
        summary = {
            b.label: {
                "srocc": _median([r["srocc"] for r in runs if r["dataset"] == b.label]),
                "plcc": _median([r["plcc"] for r in runs if r["dataset"] == b.label]),
                "runs": sum(r["dataset"] == b.label for r in runs),
            }
            for b in benches
        }
        head = ["Methods"] + [x for b in benches for x in (b.label, "")]
        sub = [""] + ["SROCC", "PLCC"] * len(benches)
        body = [method] + [_f(summary[b.label][m]) for b in benches for m in ("srocc", "plcc")]
        table = _md_table([head, sub, body])
    elif protocol == "data-efficient":
        summary = {}
        for b in benches:
            summary[b.label] = {}
            for fr in fractions:
                these = []
                for sp in fraction_splits(len(b.dataset), fr, repeats, seed):
                    rec = run_finetune_split(b, sp, run_dir=out / protocol / b.label / sp.name, **common)
                    rec["fraction"] = fr
                    these.append(rec)
                runs += these
                summary[b.label][f"{round(fr * 100)}%"] = {
                    "srocc": _median([r["srocc"] for r in these]),
                    "runs": len(these),
                    "n_train": these[0]["n_train"],
                }
        pct = [f"{round(fr * 100)}%" for fr in fractions]
        head = ["Methods"] + [x for b in benches for x in [b.label] + [""] * (len(pct) - 1)]
        sub = [""] + pct * len(benches)
        body = [method] + [_f(summary[b.label][p]["srocc"]) for b in benches for p in pct]
        table = _md_table([head, sub, body])
    else:  # cross
        summary = {}
        from attiqa.device import resolve_device
        from attiqa.evaluation.evaluate import evaluate
        from attiqa.scorers.attiqa_scorer import AttiqaScorer

        for a in benches:
            tests = [b for b in benches if b is not a]
            splits = (
                [official_partition(a.dataset)]
                if uses_official_split(a.dataset, official_split)
                else random_splits(len(a.dataset), repeats, seed)
            )

            def test_on_others(ckpt: Path, a: BenchDataset = a, tests: list[BenchDataset] = tests) -> dict:
                scorer = AttiqaScorer(ckpt, device=resolve_device(cfg.device))
                res = {}
                for b in tests:
                    ev = evaluate(
                        b.dataset, scorer, ckpt.parent.parent / "cross" / b.label, batch_size=eval_batch_size,
                        num_workers=eval_workers, cache=out / "scores.sqlite", progress=progress, plot=False,
                    )  # fmt: skip
                    res[b.label] = {"srocc": ev.metrics["srocc"], "plcc": ev.metrics["plcc"], "n": ev.n}
                return {"cross": res}

            for sp in splits:
                rec = run_finetune_split(
                    a, sp, run_dir=out / protocol / a.label / sp.name, after=test_on_others, **common
                )
                runs.append(rec)
            summary[a.label] = {
                b.label: {
                    "srocc": _median([r["cross"][b.label]["srocc"] for r in runs if r["dataset"] == a.label]),
                    "runs": sum(r["dataset"] == a.label for r in runs),
                }
                for b in tests
            }
        head = ["Train DB"] + [x for a in benches for x in [a.label] + [""] * (len(benches) - 2)]
        sub = ["Test DB"] + [b.label for a in benches for b in benches if b is not a]
        body = [method] + [
            _f(summary[a.label][b.label]["srocc"]) for a in benches for b in benches if b is not a
        ]
        table = _md_table([head, sub, body])

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
        "fractions": list(fractions) if protocol == "data-efficient" else None,
        "datasets": [{"label": b.label, **b.dataset.describe(), "n": len(b.dataset)} for b in benches],
        "summary": summary,
        "runs": runs,
        "table": md,
    }
    write_json_atomic(files["json"], doc)
    return ProtocolResult(protocol, method, runs, summary, md, files)


def _table_note(protocol: str, select: str, repeats: int, seed: int, runs: list[dict[str, Any]]) -> str:
    kinds = sorted({r["split_kind"] for r in runs})
    epoch = "last epoch" if select == "last" else "epoch with the best test SROCC (optimistic)"
    if protocol == "cross":
        what = "SROCC of the model trained on the Train DB, tested on all images of the Test DB"
    elif protocol == "data-efficient":
        what = f"median test SROCC over {repeats} random draws of the training fraction (seeds from {seed})"
    else:
        what = f"median test SROCC / PLCC over the runs ({', '.join(kinds)} splits; seeds from {seed})"
    return f"{what}; {epoch}; {len(runs)} fine-tuning run(s). Generated by `attiqa bench {protocol}`.\n"
