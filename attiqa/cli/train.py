"""``attiqa label`` and ``attiqa train``: pseudo-labels and the training stages from a run config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import typer

from attiqa.cli._common import BatchSizeOption, DeviceOption, WorkersOption
from attiqa.errors import AttiqaError
from attiqa.progress import console


def label_cmd(
    images: list[Path] = typer.Argument(
        ...,
        help="Image files and/or folders (searched recursively).",
        readable=False,  # an unreadable file is skipped and reported, as inside a folder (issue 16)
    ),
    teacher: str = typer.Option(
        "classical",
        "--teacher",
        "-t",
        help="classical (default; ours: weight-free measures, NOT the paper's CLIP teacher) | "
        "clip:MODEL/PRETRAINED (the paper's teacher, e.g. clip:ViT-B-16/openai) | "
        "clip:PATH (local open_clip folder/file).",
    ),
    out: Path = typer.Option(Path("labels.parquet"), "--out", "-o", help="Output Parquet file (resumable)."),
    prompts: Path | None = typer.Option(
        None, help="Prompt-pair JSON for the clip teacher (default: paper Table 1)."
    ),
    clip_scale: float = typer.Option(1.0, help="Scale of cosine similarities in eq. (2); 1.0 = the paper."),
    batch_size: BatchSizeOption = 32,
    workers: WorkersOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Pseudo-label images with a teacher (paper §3.2) into a Parquet table: image + five attributes.

    Rerunning skips images already labelled; a killed run loses at most one batch. Under
    `torchrun --nproc_per_node N` the images are sharded across ranks.
    """
    from attiqa.config import LabelConfig, TrainConfig
    from attiqa.io.atomic import output_folder
    from attiqa.runner import run_label_stage
    from attiqa.training.distributed import is_main, process_group

    output_folder(out.parent, "--out")

    lc = LabelConfig(
        images=[str(p) for p in images],
        teacher=teacher,
        prompts=str(prompts) if prompts else None,
        clip_scale=clip_scale,
        batch_size=batch_size,
        num_workers=workers,
        out=str(out.resolve()),
    )
    with process_group():
        path = run_label_stage(TrainConfig(out_dir=str(out.parent), label=lc), out.parent, device=device)
        if is_main():
            import pyarrow.parquet as pq

            console.print(f"[green]labels: {path} ({pq.read_metadata(path).num_rows} images)")


def train_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML run config (label / pretrain / finetune)."
    ),
    out_dir: Path | None = typer.Option(None, help="Override the config's out_dir."),
    resume: bool = typer.Option(False, help="Continue from the last epoch checkpoint in out_dir."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a config value, e.g. --set finetune.split_seed=1 --set pretrain=null."
    ),
) -> None:
    """Run label -> pretrain -> finetune from one config (stages left out are skipped).

    Works the same under `torchrun --nproc_per_node N attiqa train ...` (DDP; only rank 0 writes).
    """
    if ctx.invoked_subcommand is not None:  # `attiqa train exiqa ...`
        return
    if config is None:
        raise AttiqaError(
            "attiqa train: --config FILE is required (or a subcommand: `attiqa train exiqa --help`)"
        )
    from attiqa.config import load_config
    from attiqa.runner import run
    from attiqa.training.distributed import is_main

    cfg = load_config(config, set_)
    if out_dir is not None:
        cfg.out_dir = str(out_dir)
    res = run(cfg, resume=resume)
    if is_main():
        for name, val in (
            ("labels", res.labels),
            ("pretrained", res.pretrained),
            ("finetuned", res.finetuned),
        ):
            if val:
                console.print(f"[green]{name}: {val}")
        if res.metrics:
            console.print(
                "held-out split, last epoch: "
                + ", ".join(f"{k}={v:.4f}" for k, v in res.metrics.items() if isinstance(v, float))
            )


def guard_cmd(
    model: Path = typer.Argument(..., help="A fine-tuned ATTIQA checkpoint (.safetensors) or named model."),
    out: Path = typer.Option(..., "--out", "-o", help="The guarded checkpoint (.safetensors + .json card)."),
    lam: float = typer.Option(
        ...,
        "--lambda",
        help="The penalty per clean standard deviation of excess, on "
        "the unit MOS scale (the shipped model's: docs/default_model.md).",
    ),
    clean_csv: Path | None = typer.Option(
        None, "--clean-csv", help="MOS CSV of clean photos: its training side by the model's own split."
    ),
    pairs: Path | None = typer.Option(
        None,
        "--pairs",
        help="Pair table better,worse: its originals are clean photos too; its edits are "
        "only measured (the share the guard penalises).",
    ),
    stats: list[str] = typer.Option(
        [],
        "--stat",
        help="Statistics to guard (repeat; default: all of attiqa.models.edit_stats.GUARD_NAMES).",
    ),
    workers: int = typer.Option(0, min=0, help="Decode worker processes."),
) -> None:
    """Add the edit guard (docs/default_model.md "Stop 27") to a fine-tuned model: a MOS penalty for
    clipping, saturated chroma, boosted fine detail and unusual hues beyond the range of clean photos."""
    from attiqa.io.atomic import output_folder
    from attiqa.models import load_model, save_model
    from attiqa.models.edit_stats import GUARD_NAMES
    from attiqa.scorers.zoo import checkpoint_in, is_checkpoint, resolve_weights
    from attiqa.training.data import MosDataset, split_indices
    from attiqa.training.edit_guard import add_edit_guard

    if not 0 < lam < float("inf"):
        raise AttiqaError(f"--lambda must be a finite number > 0, got {lam}")
    unknown = [s for s in stats if s not in GUARD_NAMES]
    if unknown:
        raise AttiqaError(
            f"--stat {unknown[0]}: not an edit statistic — choose from {', '.join(GUARD_NAMES)}"
        )
    if clean_csv is None and pairs is None:
        raise AttiqaError("the guard is fitted on clean photos: give --clean-csv and/or --pairs")
    output_folder(out.parent, "--out")
    path = checkpoint_in(model) if is_checkpoint(str(model)) else resolve_weights(str(model))
    net, card = load_model(path)
    clean: list[Path] = []
    if clean_csv is not None:
        rows = MosDataset(clean_csv, None, cast(Any, None))  # only its resolved paths are read
        split = card.get("config") or {}
        fraction, seed = float(split.get("val_fraction", 0.2)), int(split.get("split_seed", 0))
        clean = [rows.paths[i] for i in split_indices(len(rows.paths), fraction, seed)[0]]
    _, info = add_edit_guard(net, clean, lam, pairs, stats or GUARD_NAMES, workers)
    card = {k: v for k, v in card.items() if k not in ("format_version", "attiqa_version")}
    saved = save_model(net, out, {**card, "edit_guard": info, "guarded_from": str(model)})
    edited = info.get("penalised_edited_crops")
    console.print(
        f"[green]{saved}: edit guard lambda {lam} penalises {info['penalised_clean_crops']:.1%} of "
        f"the clean crops" + (f" and {edited:.1%} of the table's edited crops" if edited is not None else "")
    )


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add ``label`` to ``app`` and the config-driven ``train`` as ``train_app``'s callback."""
    app.command("label")(label_cmd)
    train_app.callback(invoke_without_command=True)(train_cmd)
    train_app.command("guard")(guard_cmd)
