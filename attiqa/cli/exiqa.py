"""`attiqa train exiqa` (alias `attiqa train-exiqa`): ExIQA stage 1, prompt-tuned CLIP for distortion
identification (paper 004 §IV-C1)."""

from __future__ import annotations

from pathlib import Path

import typer

from attiqa.cli._common import BatchSizeOption, DeviceOption, InterruptedExit, learning_rate, seed_option
from attiqa.cli._common import device as device_str
from attiqa.limits import MAX_EPOCHS, MAX_PROMPTS
from attiqa.progress import console, plain_name


def train_exiqa_cmd(
    data: Path = typer.Argument(..., help="A folder from `attiqa make-distorted` (images/ + labels.csv)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder: exiqa.safetensors (+ .json), history.json."
    ),
    clip: str = typer.Option(
        "ViT-B-16/openai", help="CLIP ViT: open_clip MODEL/TAG, MODEL/path/weights, or an open_clip folder."
    ),
    epochs: int = typer.Option(100, min=1, max=MAX_EPOCHS, help="Epochs (paper §V-B2: 100)."),
    warmup_epochs: int | None = typer.Option(
        None, min=0, help="Linear warmup epochs (default: a fifth of --epochs, the paper's 20 of 100)."
    ),
    lr: float = typer.Option(
        0.002, callback=learning_rate, help="Peak learning rate of the cosine schedule (paper: 0.002)."
    ),
    batch_size: BatchSizeOption = 32,
    prompts: int = typer.Option(
        100,
        min=1,
        help="Shallow visual prompt tokens (paper Table II: 100 KADID/TID2013, 30 LVQ, 15 LIVE; at most "
        f"{MAX_PROMPTS}).",
    ),
    val_fraction: float = typer.Option(
        0.1, min=0.0, max=0.9, help="Held-out share of source photos for accuracy / RMSE."
    ),
    attributes: Path | None = typer.Option(None, help="Attribute file (default: the bundled 25 x 5)."),
    seed: int = seed_option("Seed of the held-out split, the prompt start and the batches."),
    device: DeviceOption = "auto",
) -> None:
    """Train ExIQA's visual prompts and attribute weights w (eq. 6-8) on a distortion-labelled set; reports
    distortion accuracy (eq. 10) and strength RMSE (eq. 11) on a held-out split. Rerun to resume."""
    from attiqa.exiqa.train import ExiqaTrainConfig, epochs_kept, train_exiqa
    from attiqa.progress import progress_later

    cfg = ExiqaTrainConfig(
        clip,
        epochs,
        epochs // 5 if warmup_epochs is None else warmup_epochs,  # a fixed 20 outlasted a short run
        lr,
        batch_size,
        prompts,
        val_fraction,
        seed,
        str(attributes) if attributes else None,
    )

    with progress_later("exiqa epochs", total=epochs, unit="epoch") as adv:

        def start(done: int) -> None:
            if done:
                console.print(f"resuming {plain_name(out)}: {done} of {epochs} epochs kept", highlight=False)
            adv.start(done)  # the kept epochs in the count from the bar's first frame, not in the rate

        def report(epoch: int, row: dict) -> None:
            adv(1)
            console.print(
                ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            )

        try:
            res = train_exiqa(data, out, cfg, device_str(device), on_epoch=report, on_start=start)
        except KeyboardInterrupt as exc:  # the state file says what a rerun resumes after
            kept = epochs_kept(out)
            where = (
                f"after epoch {kept} of {epochs} kept in {plain_name(out)}"
                if kept
                else "before an epoch finished"
            )
            console.print(f"[yellow]interrupted {where}; rerun the same command to continue", highlight=False)
            raise InterruptedExit(exc) from exc
    console.print(f"[green]{plain_name(res['checkpoint'])}")


def train_exiqa_regressor_cmd(
    run: Path = typer.Argument(..., help="The --out folder of `attiqa train exiqa`."),
    mos: Path = typer.Option(
        ..., "--mos", help="MOS CSV with columns image,mos (paths relative to the CSV)."
    ),
    epochs: int = typer.Option(
        100, min=1, max=MAX_EPOCHS, help="Epochs (paper §V-B2: 100, cosine schedule)."
    ),
    lr: float = typer.Option(
        1e-3, callback=learning_rate, help="AdamW learning rate (ours; the paper gives none for this stage)."
    ),
    seed: int = seed_option("Seed of the 80/20 split and the regressor's initialisation."),
    device: DeviceOption = "auto",
) -> None:
    """ExIQA stage 2 (eq. 9): fit the quality regressor on the frozen model's attribute probabilities;
    writes RUN/regressor.safetensors, used by `attiqa score --model exiqa:RUN` for the score column."""
    from attiqa.exiqa import refuse_if_fit_held

    refuse_if_fit_held(run)  # held by a training or a fit: said torch-free, before the scorer loads
    from attiqa.exiqa.regressor import train_regressor

    res = train_regressor(run, mos, epochs, lr, seed, device_str(device))
    console.print(
        f"[green]{plain_name(run / 'regressor.safetensors')}[/]: held-out SROCC {res['val_srocc']:.3f}, "
        f"PLCC {res['val_plcc']:.3f} ({res['n_train']} training images)"
    )


def register(app: typer.Typer, train_app: typer.Typer | None = None) -> None:
    """`attiqa train exiqa` / `attiqa train exiqa-regressor`; the aliases `attiqa train-exiqa[-regressor]`
    (earlier versions' spelling) still run, out of `attiqa --help`: one spelling shown everywhere."""
    app.command("train-exiqa", hidden=True)(train_exiqa_cmd)
    app.command("train-exiqa-regressor", hidden=True)(train_exiqa_regressor_cmd)
    if train_app is not None:
        train_app.command("exiqa")(train_exiqa_cmd)
        train_app.command("exiqa-regressor")(train_exiqa_regressor_cmd)
