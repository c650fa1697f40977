"""What `attiqa bench` is given, checked before any network is built: the protocol and its options, the
datasets with their table labels and score files, the base config, the ``--init`` checkpoint. Torch-free
(the protocols, :mod:`attiqa.protocols`, train and need torch), so a mistake's one line comes before the
model stack loads; the splits are planned and checked there, after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attiqa.config import DATASET_KEYS, FinetuneConfig, TrainConfig, from_dict, read_sections
from attiqa.datasets.base import IQADataset, among_the_data
from attiqa.errors import AttiqaError, ConfigError, did_you_mean
from attiqa.launch import launched_rank
from attiqa.progress import console, plain

PROTOCOLS: dict[str, str] = {
    "single": "Table 2: N random 80/20 splits per dataset (official: FLIVE/AVA/BIQ2021), median SROCC/PLCC",
    "cross": "Table 3: train on A (first split of `single`), test on all of B; SROCC",
    "data-efficient": "Table 4: train on 10%/20% of the data, test on the rest; median SROCC",
    "linear-probe": "Table 6: like `single` with a frozen backbone (only the regression MLP trains)",
}


@dataclass
class BenchDataset:
    """A dataset in a protocol, with the label its table column gets."""

    label: str
    dataset: IQADataset


@dataclass(frozen=True)
class ProtocolSetup:
    """:func:`check_protocol`'s result: what a protocol runs with, every input checked."""

    benches: list[BenchDataset]
    cfg: FinetuneConfig
    init: Path | None
    method: str
    repeats: int
    fractions: Sequence[float]


def bench_dataset(dataset: IQADataset, label: str | None = None) -> BenchDataset:
    """Wrap a dataset with its table label (paper spelling for known datasets; a folder dataset: its CSV's
    stem, or the folder's name for the adapter's default ``mos.csv``, which every such folder holds)."""
    if label is None:
        label = dataset.info.short_name
        if dataset.name == "folder":
            csv_path = Path(getattr(dataset, "csv_path", dataset.root))
            label = csv_path.resolve().parent.name if csv_path.name == "mos.csv" else csv_path.stem
    return BenchDataset(label, dataset)


BaseConfig = str | Path | dict[str, Any] | FinetuneConfig | None
"""What :func:`load_base_config` reads: a YAML file, a mapping, a config, or None (the defaults)."""


def load_base_config(source: BaseConfig) -> FinetuneConfig:
    """The base fine-tuning config: a YAML file with the schema of the ``finetune:`` section (or a whole
    run config, whose ``finetune:`` section is used, with its ``model:`` section applied), a mapping, or a
    config. ``csv``/``image_root`` are unused: the protocol hands each split over in memory."""
    if source is None:
        return FinetuneConfig()
    if isinstance(source, FinetuneConfig):
        return source
    where: str | Path = "base config"
    if isinstance(source, (str, Path)):
        where = Path(source)
        if where.is_dir():  # was "base config not found" of a folder that is there
            raise ConfigError(
                "a folder, not a config — give its YAML file, e.g. configs/cpu_small.yaml", where
            )
        if not where.is_file():
            raise ConfigError("base config not found", where)
        data = read_sections(where)
    else:
        data = dict(source)
    run_keys = (
        sorted({"out_dir", "label", "labels", "pretrain"} & set(data)) if isinstance(data, dict) else []
    )
    if run_keys and not isinstance(data.get("finetune"), dict):  # ablations/l2.yaml: "unknown key out_dir"
        raise ConfigError(
            f"a run config ({', '.join(run_keys)}) without a finetune: section — bench fine-tunes with a "
            "finetune: section's settings (e.g. -c configs/default_model.yaml) or those keys alone",
            where,
        )
    try:  # keys named from the top of the file (or mapping), the file apart, as load_config
        if isinstance(data, dict) and isinstance(data.get("finetune"), dict):
            run = from_dict(TrainConfig, {k: data[k] for k in ("model", "finetune") if k in data}, "")
            assert run.finetune is not None
            return run.finetune
        return from_dict(FinetuneConfig, data, "")
    except ConfigError as exc:
        raise ConfigError(str(exc), where) from None


MISSING_FIX = "put the files in place, or drop their rows from the score file"
"""The way out of images a score file names but the folder lacks (`bench`, `train` on a named dataset)."""


def check_all(benches: Sequence[BenchDataset]) -> None:
    labels = [b.label for b in benches]
    if len(set(labels)) != len(labels):
        raise AttiqaError(f"datasets need distinct labels, got {', '.join(labels)} (use LABEL:NAME=ROOT)")
    for label in labels:  # a label names the folder OUT/PROTOCOL/LABEL: '../x' wrote outside it
        if label.strip() in ("", ".", "..") or "/" in label or "\\" in label or not label.isprintable():
            raise AttiqaError(
                f"dataset label {label!r}: it names the runs' folder OUT/PROTOCOL/LABEL — give a plain name "
                "without '/' or '..' (LABEL:NAME=ROOT, e.g. clive:folder=/data/clive)"
            )
    for b in benches:
        b.dataset.check_images(fix=MISSING_FIX)  # every problem surfaces before the first epoch
        say_rows_left_out(b.dataset)
        check_scores(b.dataset, f"{b.label} ({b.dataset.root})")


def check_scores(ds: IQADataset, who: str) -> None:
    """One line for a score file no split can train and test on: an image listed twice with two scores (it
    was benched without a word, while `eval` and a `finetune.csv` refuse it), or the same score in every
    row (it was "all 2 held-out MOS values are 50 — … (hold out other rows)", a fix no split can follow)."""
    ds.unique_items(ds.items)  # two scores for one image: refused as `eval` and genbench refuse it
    if len(ds.items) >= 2 and len({it.mos for it in ds.items}) == 1:
        raise AttiqaError(
            f"{who}: all {len(ds.items)} rows have the same {ds.target} ({ds.items[0].raw:g}) — "
            "fine-tuning and its ranking correlations need different scores (check the score file's "
            f"{ds.target} column)"
        )


def say_rows_left_out(ds: IQADataset) -> None:
    """The score file's rows without a finite score, left out of training as ``eval`` leaves them out of
    the metrics — and says so (bench and ``attiqa train`` did not)."""
    if not ds.n_without_score:
        return
    if launched_rank() == 0:  # the launcher's rank: no torch for a line
        console.print(f"[yellow]{plain(ds.rows_left_out())}", highlight=False)  # eval's words: the rows too


def check_fractions(fractions: Sequence[float]) -> None:
    """data-efficient's fractions: at least one, each its own percentage (each in (0, 1):
    :func:`attiqa.bench_splits.fraction_splits`) — the table column
    and the run folder (``f10_split00``) are named by it, so 0.1 twice (or 0.1 and 0.101) trained once and
    showed one column twice; none at all wrote an empty table."""
    if not fractions:
        raise AttiqaError("data-efficient: no training fraction given — pass e.g. --fractions 0.1,0.2")
    seen: dict[int, float] = {}
    for fr in fractions:
        pct = round(fr * 100)
        if pct in seen:
            raise AttiqaError(f"data-efficient: fractions {seen[pct]} and {fr} both read {pct}% (one table "
                              "column, one run folder) — give each fraction once")  # fmt: skip
        seen[pct] = fr


PAPER_REPEATS = 10  # random 80/20 splits per dataset (§4.1); `attiqa bench --repeats` says it
DATA_EFFICIENT_FRACTIONS = (0.1, 0.2)  # data-efficient's training fractions (§4.4); `--fractions` says them


def init_path(init: str | Path | None) -> Path | None:
    """The checkpoint to fine-tune from: a file or run folder, or a named model with weights (``--init
    attiqa-default``) — :func:`attiqa.scorers.zoo.checkpoint_file`, as ``attiqa export`` reads its source."""
    from attiqa.scorers.zoo import checkpoint_file

    return checkpoint_file(init) if init else None


def ignored_split_settings(cfg: FinetuneConfig) -> list[str]:
    """The base config's split settings a protocol does not use (it makes its own splits: 80/20, seeds from
    ``--seed``), named so a user who set them is told instead of benched on other splits without a word."""
    default = FinetuneConfig()
    return [
        f"{k}: {getattr(cfg, k)}"
        for k in ("val_fraction", "split_seed", *DATASET_KEYS)
        if getattr(cfg, k) != getattr(default, k)
    ]


def check_protocol(
    protocol: str, datasets: Sequence[BenchDataset | IQADataset], base_config: BaseConfig,
    out_dir: str | Path, *, init_checkpoint: str | Path | None = None, repeats: int | None = None,
    fractions: Sequence[float] | None = None, select: str = "last", method: str | None = None,
) -> ProtocolSetup:  # fmt: skip
    """:func:`attiqa.protocols.run_protocol`'s checks before its splits: the protocol and its options, the
    datasets, the base config, the ``--init`` checkpoint; the arguments as run_protocol takes them."""
    if protocol not in PROTOCOLS:
        hint = did_you_mean(protocol, PROTOCOLS)
        raise AttiqaError(f"unknown protocol {protocol!r}{hint}; protocols: {', '.join(PROTOCOLS)}")
    if fractions is not None and protocol != "data-efficient":  # was ignored: 80/20 splits without a word
        given = ",".join(f"{fr:g}" for fr in fractions)
        raise AttiqaError(
            f"--fractions {given}: only the data-efficient protocol trains on fractions of the data "
            f"({protocol} makes 80/20 splits, or takes the dataset's official one) — drop --fractions, or "
            "run attiqa bench data-efficient"
        )
    fractions = DATA_EFFICIENT_FRACTIONS if fractions is None else fractions
    if select not in ("last", "best"):
        raise AttiqaError(f"select must be 'last' or 'best', got {select!r}")
    benches = [d if isinstance(d, BenchDataset) else bench_dataset(d) for d in datasets]
    if not benches:
        raise AttiqaError(f"{protocol}: no datasets given")
    if protocol == "cross" and len(benches) < 2:
        raise AttiqaError("cross: needs at least two datasets (train on one, test on the others)")
    for b in benches:  # before the base config, the --init checkpoint or any image is read
        among_the_data(Path(out_dir), b.dataset, writes=f"{protocol}.md, {protocol}.json, a folder per run",
                       default="bench writes under runs/bench/")  # fmt: skip
    cfg = load_base_config(base_config)
    if protocol == "linear-probe":
        cfg = replace(cfg, freeze_backbone=True)
    unused = ignored_split_settings(cfg)
    if unused:
        console.print(
            f"[yellow]base config {', '.join(unused)}: not used — the protocol makes its own splits "
            "(80/20, or the dataset's official split; data-efficient: --fractions; seeds from --seed; data "
            "from --data)",
            highlight=False,
        )
    init = init_path(init_checkpoint)
    if method is None:
        method = "ATTIQA" if init is not None else f"{cfg.backbone} (no attribute pretraining)"
    repeats = repeats if repeats is not None else (1 if protocol == "cross" else PAPER_REPEATS)
    if repeats < 1:
        raise AttiqaError("repeats must be at least 1")
    if protocol == "data-efficient":
        check_fractions(fractions)
    check_all(benches)
    return ProtocolSetup(benches, cfg, init, method, repeats, fractions)
