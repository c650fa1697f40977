"""The ``attiqa`` command line (typer + rich). Thin: parses, calls the library, prints.

Every :class:`attiqa.errors.AttiqaError` ends as one red line and exit code 2 — never a traceback.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from attiqa.distortions.graded import DEFAULT_GRADED
from attiqa.errors import AttiqaError
from attiqa.progress import console

app = typer.Typer(
    name="attiqa",
    help="ATTIQA image quality assessment: pseudo-label, pretrain, fine-tune, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

stdout = Console()  # tables go to stdout; progress and messages to stderr (``console``)


def _device(device: str) -> str:
    from attiqa.training.distributed import resolve_device

    return str(resolve_device(device))


@app.command()
def label(
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
    batch_size: int = typer.Option(32, min=1),
    workers: int | None = typer.Option(None, min=0, help="Decode workers (default: one per spare core)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
) -> None:
    """Pseudo-label images with a teacher (paper §3.2) into a Parquet table: image + five attributes.

    Rerunning skips images already labelled; a killed run loses at most one batch. Under
    `torchrun --nproc_per_node N` the images are sharded across ranks.
    """
    from attiqa.config import LabelConfig, TrainConfig
    from attiqa.runner import run_label_stage
    from attiqa.training.distributed import init_distributed, is_main, teardown

    lc = LabelConfig(
        images=[str(p) for p in images],
        teacher=teacher,
        prompts=str(prompts) if prompts else None,
        clip_scale=clip_scale,
        batch_size=batch_size,
        num_workers=workers,
        out=str(out.resolve()),
    )
    state = init_distributed()
    try:
        path = run_label_stage(TrainConfig(out_dir=str(out.parent), label=lc), out.parent)
        if is_main():
            import pyarrow.parquet as pq

            console.print(f"[green]labels: {path} ({pq.read_metadata(path).num_rows} images)")
    finally:
        teardown(state)


train_app = typer.Typer(
    help="Train ATTIQA from a run config (`attiqa train --config ...`), or ExIQA (`attiqa train exiqa ...`).",
    no_args_is_help=False,
)
app.add_typer(train_app, name="train")


@train_app.callback(invoke_without_command=True)
def train(
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


def _print_scores(run, limit: int = 40) -> None:
    """Per-image rows (first ``limit``) and mean/min/max; columns that are empty everywhere are left out."""
    import numpy as np

    values = {c: np.array([r[c] for r in run.rows], dtype=float) for c in run.columns}
    cols = [c for c in run.columns if run.rows and not np.all(np.isnan(values[c]))]
    table = Table(title=f"{len(run.rows)} image(s) scored", show_lines=False)
    table.add_column("image", no_wrap=True, overflow="ellipsis", max_width=48)
    for c in cols:
        table.add_column(c[:12], justify="right")
    for r in run.rows[:limit]:
        table.add_row(Path(r["image"]).name, *("–" if math.isnan(r[c]) else f"{r[c]:.3f}" for c in cols))
    if len(run.rows) > limit:
        table.add_row(f"… {len(run.rows) - limit} more", *[""] * len(cols))
    if run.rows:
        table.add_section()
        for stat, fn in (("mean", np.nanmean), ("min", np.nanmin), ("max", np.nanmax)):
            table.add_row(f"[bold]{stat}", *(f"{fn(values[c]):.3f}" for c in cols))
    stdout.print(table)


def write_sheet(run, scorer, path: Path, limit: int = 48) -> Path:
    """Contact sheet of the first ``limit`` rows: headline = the scorer's first column."""
    from attiqa.contact_sheet import contact_sheet

    head, bars = run.columns[0], [c for c in run.columns[1:]]
    rng = scorer.info.score_range if head == "mos" else None
    return contact_sheet(run.rows[:limit], path, bars, headline=head, headline_range=rng)


@app.command()
def score(
    paths: list[Path] = typer.Argument(
        ...,
        help="Image files and/or folders (searched recursively).",
        readable=False,  # an unreadable file is skipped and reported, as inside a folder (issue 16)
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Checkpoint, named model or scorer (list-scorers); clipiqa:DIR."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write results to .csv, .tsv or .json."),
    sheet: Path | None = typer.Option(
        None, help="Also draw a PNG contact sheet: each photo with its MOS and attribute bars (first 48)."
    ),
    batch_size: int = typer.Option(16, min=1),
    workers: int | None = typer.Option(None, min=0, help="Decode workers (default: one per spare core)."),
    crops: str = typer.Option("five", help="five (paper §4.2: 4 corners + centre) | center (faster)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table, no progress bar."),
) -> None:
    """Score images: MOS and the five attribute scores per image, with a summary table.

    Unreadable files are skipped and listed at the end; exit code 0 when at least one image was scored.
    """
    from attiqa.io.images import discover_images
    from attiqa.progress import progress_task
    from attiqa.scorers import load_scorer
    from attiqa.scoring import score_paths, write_scores

    files = discover_images(paths)
    if not files:
        raise AttiqaError(f"no images found in {', '.join(map(str, paths))} — pass image files or folders")
    overrides = (
        {"crops": crops} if (model is None or Path(model).exists() or model.endswith(".safetensors")) else {}
    )
    scorer = load_scorer(model, device=_device(device), **overrides)
    with progress_task("scoring", total=len(files), disable=quiet) as adv:
        run = score_paths(files, scorer, batch_size, workers, on_batch=lambda n, f: adv(n + f))
    if out is not None and run.rows:
        write_scores(run, out, scorer.metadata())
        console.print(f"[green]wrote {out}")
    if sheet is not None and run.rows:
        write_sheet(run, scorer, sheet)
        console.print(f"[green]wrote {sheet}")
    if not quiet and hasattr(scorer, "top_distortions"):  # ExIQA: the explanation is the point
        for r in run.rows[:40]:
            top = ", ".join(f"{d} {v:.2f}" for d, v in scorer.top_distortions(r))
            stdout.print(f"{Path(r['image']).name}: score {r['score']:.3f}; top distortions: {top}")
    elif not quiet:
        _print_scores(run)
    if run.failed:
        console.print(f"[yellow]skipped {len(run.failed)} file(s) that could not be read:")
        for e in run.failed:
            console.print(f"  [yellow]{e}")
    if run.interrupted:
        console.print("[yellow]interrupted: finished rows were kept")
    if not run.rows:
        raise AttiqaError("no image could be scored")


@app.command("check-attributes")
def check_attributes(
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint path or named model."),
    photos: list[Path] = typer.Argument(
        None, help="Photos to degrade (default: scikit-image's bundled photos)."
    ),
    crops: str = typer.Option("center", help="five | center"),
) -> None:
    """Do the attribute heads mean what they say? Degrade photos in steps (blur, contrast, brightness,
    saturation, noise) and print, per attribute, the SROCC between the level and the head's score
    (+1 = moves the right way on every step)."""
    import numpy as np

    from attiqa.demo import DEMO_PHOTOS, skimage_photo
    from attiqa.evaluation.monotonicity import attribute_monotonicity
    from attiqa.io.images import discover_images, load_image
    from attiqa.scorers import load_scorer

    scorer = load_scorer(model, crops=crops)
    imgs = (
        [load_image(p) for p in discover_images(photos)]
        if photos
        else [skimage_photo(n) for n in DEMO_PHOTOS[:5]]
    )
    table = Table(title=f"attribute heads vs graded degradation ({len(imgs)} photos)")
    for c in ("attribute", "distortion", "mean SROCC", "min SROCC", "strictly monotone"):
        table.add_column(c)
    for r in attribute_monotonicity(scorer, imgs):
        table.add_row(
            r.attribute,
            r.distortion,
            f"{r.mean:+.3f}",
            f"{np.min(r.per_photo):+.3f}",
            f"{sum(r.strictly_monotone)}/{len(r.strictly_monotone)}",
        )
    stdout.print(table)


@app.command()
def export(
    src: Path = typer.Argument(..., help="A checkpoint from `attiqa train` (.safetensors)."),
    dst: Path = typer.Argument(..., help="Output .safetensors (its .json card is written beside it)."),
    half: bool = typer.Option(True, help="Store float tensors as fp16 (half the size; loads as fp32)."),
    name: str | None = typer.Option(None, help="Model name recorded in the card."),
    description: str | None = typer.Option(None, help="One-line description recorded in the card."),
) -> None:
    """Write a compact copy of a checkpoint for sharing or bundling, and print its SHA-256 (for a
    named-model table entry). Training state is not copied."""
    from attiqa.io.checkpoints import load_checkpoint, save_checkpoint, sha256_of

    tensors, card = load_checkpoint(src)
    card = {k: v for k, v in card.items() if k not in ("format_version", "attiqa_version")}
    if name:
        card["name"] = name
    if description:
        card["description"] = description
    card["exported_from"] = str(src)
    out = save_checkpoint(dst, tensors, card, half=half)
    console.print(f"[green]{out} ({out.stat().st_size / 1e6:.1f} MB) sha256 {sha256_of(out)}")


@app.command("list-scorers")
@app.command("models")
def models_cmd() -> None:
    """List scorers and named models: kind, score range, direction, what weights they need.

    Any name listed here works with --model; CLIP scorers take local weights as NAME:PATH
    (e.g. --model clipiqa:path/to/open_clip_folder)."""
    from rich.markup import escape

    from attiqa.scorers import list_scorers

    table = Table(title="scorers")
    for c in ("name", "kind", "range", "higher is better", "needs", "description"):
        table.add_column(c, overflow="fold")
    for info in list_scorers():
        table.add_row(
            info.name,
            info.kind,
            f"{info.score_range[0]:g}–{info.score_range[1]:g}",
            "yes" if info.higher_is_better else "no",
            escape(info.needs),
            escape(info.description),
        )
    stdout.print(table)


@app.command()
def degrade(
    sources: list[Path] = typer.Argument(
        ...,
        help="Image files and/or folders (searched recursively).",
        readable=False,  # an unreadable file is skipped and reported, as inside a folder (issue 16)
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    distortions: str = typer.Option(
        ",".join(DEFAULT_GRADED),
        help="Comma-separated distortion names (see `attiqa.distortions.list_distortions()`).",
    ),
    levels: str = typer.Option("1,3,5", help="Comma-separated levels 1..5."),
    max_side: int | None = typer.Option(None, help="Downsize sources whose longer side exceeds this first."),
    fmt: str = typer.Option("png", help="png (lossless) | jpg (quality 95)."),
) -> None:
    """Write graded degradations of photos (blur, contrast, brightness, saturation, noise) so the five
    attributes vary — the unlabelled set for pretraining. Resumable: existing files are skipped."""
    from attiqa.distortions import write_graded_set
    from attiqa.io.images import discover_images
    from attiqa.progress import progress_task

    files = discover_images(sources)
    try:
        lv = [int(x) for x in levels.split(",") if x.strip()]
    except ValueError:
        raise AttiqaError(f"--levels must be comma-separated integers, got {levels!r}") from None
    names = [d.strip() for d in distortions.split(",") if d.strip()]
    with progress_task("degrading", total=len(files)) as adv:
        res = write_graded_set(files, out, names, lv, fmt=fmt, max_side=max_side, on_item=adv)
    console.print(f"[green]{len(res.written)} written, {len(res.existing)} already there, in {out}")
    for e in res.failed:
        console.print(f"[yellow]skipped: {e}")
    if not res.written and not res.existing:  # one rule: fail only when nothing could be done (issue 16)
        raise AttiqaError("no source image could be read")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run folder."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Scorer for the scoring demo (default: the bundled default model)."
    ),
    train: bool = typer.Option(
        False, "--train", help="Run the whole pipeline instead (label -> pretrain -> score; minutes)."
    ),
    epochs: int = typer.Option(4, min=1, help="With --train: pretraining epochs (brief: this is a demo)."),
) -> None:
    """Score scikit-image's bundled photos (and graded blur/noise/darkening/desaturation of one) with the
    default model: table, CSV and a contact sheet PNG, in seconds.

    With --train: the main job end to end on those photos + graded degradations -> classical
    pseudo-labels -> attribute-aware pretraining of EfficientNet-Lite0 -> scores table."""
    from attiqa.demo import run_demo, run_score_demo

    if train:
        run_demo(out, epochs=epochs)
    else:
        run_score_demo(out, model)


from attiqa import cli_distort, cli_eval, cli_exiqa, cli_prompts  # noqa: E402

cli_eval.register(app)
cli_distort.register(app)
cli_prompts.register(app)
cli_exiqa.register(app, train_app)


def run_app(typer_app: typer.Typer) -> None:
    """Run a typer app: an :class:`AttiqaError` ends as one red line and exit code 2 (also for `isp-tune`)."""
    try:
        typer_app()
    except AttiqaError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted")
        sys.exit(130)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
