"""``attiqa label`` and ``attiqa train``: pseudo-labels and the training stages from a run config."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from attiqa.cli._common import (
    BatchSizeOption,
    DeviceOption,
    InterruptedExit,
    LabelWorkersOption,
    checked_first,
    one_process,
)
from attiqa.errors import AttiqaError, EveryProcessError
from attiqa.progress import console, counted, plain, plain_name

if TYPE_CHECKING:
    from attiqa.teachers.prompts import PromptSet

LABEL_TEACHER = "classical"  # `attiqa label`'s teacher; its help says it


def clip_scale_value(value: float) -> float:
    """``--clip-scale``'s check (a config's ``clip_scale`` is checked the same way when read): 0, -1, nan
    or inf was the teacher's ValueError as a traceback, after the photos were found."""
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a scale of cosines — give a number > 0 (1 = the paper)")
    return value


def label_cmd(
    images: list[Path] = typer.Argument(
        ...,
        help="Image files and/or folders (searched recursively).",
        readable=False,  # an unreadable file is skipped and reported, as inside a folder (issue 16)
    ),
    teacher: str = typer.Option(
        LABEL_TEACHER,
        "--teacher",
        "-t",
        help=f"{LABEL_TEACHER} (default; ours: weight-free measures, NOT the paper's CLIP teacher) | "
        "clip:MODEL/PRETRAINED (the paper's teacher, e.g. clip:ViT-B-16/openai) | "
        "clip:PATH (local open_clip folder/file).",
    ),
    out: Path = typer.Option(Path("labels.parquet"), "--out", "-o", help="Output Parquet file (resumable)."),
    prompts: Path | None = typer.Option(
        None, help="Prompt-pair JSON for the clip teacher (default: paper Table 1)."
    ),
    clip_scale: float = typer.Option(
        1.0, help="Scale of cosine similarities in eq. (2); 1.0 = the paper.", callback=clip_scale_value
    ),
    batch_size: BatchSizeOption = 32,
    workers: LabelWorkersOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Pseudo-label images with a teacher (paper §3.2) into a Parquet table: image + five attributes.

    Rerunning skips images already labelled; a killed run loses at most one batch. Under
    `torchrun --nproc_per_node N` the images are sharded across ranks.
    """
    from attiqa.config import LabelConfig, TrainConfig
    from attiqa.device_names import check_device_form
    from attiqa.io.atomic import output_folder, refuse_if_resumed_held_once, resumed_output_held
    from attiqa.io.commands import Command
    from attiqa.runner import label_inputs
    from attiqa.teachers import parse_teacher_spec
    from attiqa.teachers.names import check_clip_path
    from attiqa.teachers.prompts import load_prompts

    def checked() -> tuple[LabelConfig, list[Path], PromptSet | None]:
        if out.is_dir():
            raise AttiqaError(f"{out}: is a folder — give --out a file name, e.g. {out / 'labels.parquet'}")
        output_folder(out.parent, "--out", create=False)  # made once the images and the teacher are found
        lc = LabelConfig(
            images=[str(p) for p in images],
            teacher=teacher,
            prompts=str(prompts) if prompts else None,
            clip_scale=clip_scale,
            batch_size=batch_size,
            num_workers=workers,
            out=str(out.resolve()),
        )
        lc.check_clip_settings(options=True)  # as a run config's label: section is checked
        paths = label_inputs(lc)
        # read once, here: a bad one is said before torch loads, and the CLIP teacher is handed what was read
        prompt_set = load_prompts(lc.prompts) if lc.prompts is not None else None
        kind, spec = parse_teacher_spec(lc.teacher)  # a misspelt --teacher in its own line, torch-free:
        if kind == "clip":  # before the probe, as a clip:PATH that is not there
            check_clip_path(spec)
        check_device_form(device)  # `--device gpu`, torch-free: before the probe (a device absent: torch's)
        # held by another run: said before torch and the teacher load, making nothing (under torchrun: by
        # rank 0, below)
        refuse_if_resumed_held_once(out, Command.LABEL, in_group=False)
        return lc, paths, prompt_set

    first = checked_first(checked)  # alone: before torch is imported
    from attiqa.labeling import env_rank_world, kept_words
    from attiqa.runner import label_teacher, run_label_stage
    from attiqa.sharding import PeerLost, alike_on_every_process, is_main, process_group

    labelled: tuple[Path, ...] | None = None  # the run's images once every one is in the table
    try:
        with process_group(), ExitStack() as held:  # --out held by rank 0, the writer, to the merge's end
            with alike_on_every_process():  # under torchrun: said once, or by each process that met it
                lc, paths, prompt_set = first()
            with alike_on_every_process(main_only=True):  # under torchrun by rank 0 alone, here, before the
                refuse_if_resumed_held_once(out, Command.LABEL, in_group=True)  # teacher loads
            with alike_on_every_process():  # loaded before the hold makes --out's folder: a typo leaves none
                loaded = label_teacher(lc, device, prompts=prompt_set)
            with alike_on_every_process(main_only=True):  # before any rank opens its journal: two runs
                if is_main():  # labelled every image each (session 60); rank 0's line is the job's
                    held.enter_context(resumed_output_held(out, Command.LABEL))
            run = TrainConfig(out_dir=str(out.parent), label=lc)
            path = run_label_stage(
                run, out.parent, device=device, teacher=loaded, paths=paths, prompts=prompt_set
            )
            labelled = ()  # merged by rank 0 before the stage's last gather: the table is whole
            if is_main():
                import pyarrow.parquet as pq

                rows = counted(pq.read_metadata(path).num_rows, "image")
                console.print(f"[green]labels: {plain_name(path)} ({rows})")
    except PeerLost as exc:  # at the closing barrier, after the merge (was "rerun the same command")
        raise AttiqaError(f"label: {exc.what} — {kept_words(out.resolve(), labelled)}") from None
    except KeyboardInterrupt as exc:  # Ctrl-C, or torchrun's agent ending the job: say what is on disk
        if env_rank_world()[0] == 0:  # said once, as `score` says it (each process said "interrupted")
            console.print(
                f"[yellow]interrupted: {plain(kept_words(out.resolve(), labelled))}", highlight=False
            )
        raise InterruptedExit(exc) from exc


def train_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML run config (label / pretrain / finetune)."
    ),
    out_dir: str | None = typer.Option(None, help="Override the config's out_dir."),  # '' is not Path('.')
    resume: bool | None = typer.Option(
        None,
        "--resume/--no-resume",
        help="Continue from the last epoch checkpoint in out_dir (--no-resume: train over it). Without "
        "either, an out_dir that holds an earlier run's checkpoints is refused, so a rerun never "
        "silently discards finished epochs.",
    ),
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
    from attiqa.config import TrainConfig, load_config
    from attiqa.runner import earlier_training, out_dir_held

    def no_earlier_run(cfg: TrainConfig) -> None:
        """Without --resume or --no-resume, an out_dir holding an earlier run's checkpoints is refused —
        by rank 0 alone under torchrun, where the run would hold it (two ranks' probes would meet)."""
        stages = earlier_training(Path(cfg.out_dir)) if resume is None else []
        if stages:
            with out_dir_held(Path(cfg.out_dir)):  # a run training in it now is said as that (a --resume
                pass  # of it was refused only once it started), not as an earlier run to continue
            raise EveryProcessError(
                f"{cfg.out_dir}: holds checkpoints of an earlier run ({', '.join(stages)}) — add "
                "--resume to continue it, --no-resume to train over it, or choose another --out-dir"
            )

    def checked() -> TrainConfig:
        cfg = load_config(config, set_, out_dir=out_dir)  # --out-dir in place of the config's, checked
        if one_process():  # under torchrun: rank 0's, below
            no_earlier_run(cfg)
        return cfg

    first = checked_first(checked)  # alone: before torch is imported
    from attiqa.labeling import env_rank_world
    from attiqa.runner import interrupted_words, run, without_unread_stages
    from attiqa.sharding import alike_on_every_process, is_main, process_group

    cfg = None
    started = time.time()
    try:
        with (
            process_group()
        ):  # kept up to the report: once the group is gone every torchrun process is rank 0
            with alike_on_every_process():  # under torchrun: said once, or by each process that met it
                # the stages that run, as run() takes them: a Ctrl-C's words name only what they made
                cfg = without_unread_stages(first())
            with alike_on_every_process(main_only=True):  # rank 0's line is the job's (was "rank 0 of 2: …")
                if not one_process() and is_main():
                    no_earlier_run(cfg)
            res = run(cfg, resume=bool(resume))
            if not is_main():
                return
    except KeyboardInterrupt as exc:
        if cfg is None:  # before the config was read: nothing to say of a run
            raise
        if env_rank_world()[0] == 0:
            console.print(
                f"[yellow]{plain(interrupted_words(cfg, None if resume else started))}", highlight=False
            )
        raise InterruptedExit(exc) from exc
    for name, val in (("labels", res.labels), ("pretrained", res.pretrained), ("finetuned", res.finetuned)):
        if val:
            console.print(f"[green]{name}: {plain_name(val)}")
    if res.metrics:
        console.print(
            "held-out split, last epoch: "
            + ", ".join(f"{k}={v:.4f}" for k, v in res.metrics.items() if isinstance(v, float))
        )


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    """Add ``label`` to ``app`` and the config-driven ``train`` as ``train_app``'s callback."""
    app.command("label")(label_cmd)
    train_app.callback(invoke_without_command=True)(train_cmd)
