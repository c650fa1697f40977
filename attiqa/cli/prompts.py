"""``attiqa select-prompts``: ATTIQA §3.3 prompt selection by proxy tasks.

:mod:`attiqa.cli.app` calls :func:`register`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from attiqa.cli._common import (
    BatchSizeOption,
    DeviceOption,
    PromptWorkersOption,
    readable_images,
    seed_option,
    stdout,
)
from attiqa.cli._common import device as device_str
from attiqa.errors import AttiqaError
from attiqa.progress import Advance, console, counted, plain, plain_name

if TYPE_CHECKING:
    from PIL import Image

    from attiqa.prompts import SelectionResult


def _photos(
    paths: list[Path] | None, limit: int | None, work_size: int
) -> tuple[list[Image.Image], list[str]]:
    """Task-1 photos: the user's files/folders, or scikit-image's bundled photos (offline default); the
    user's at the task's size as they are read (the task resizes them to it; its resize is then a no-op)."""
    from attiqa.demo import DEMO_PHOTOS, skimage_photo

    if not paths:  # the colour ones: a grey photo cannot tell colourfulness prompts apart
        import numpy as np

        pairs = [(n, skimage_photo(n)) for n in DEMO_PHOTOS]
        pairs = [(n, im) for n, im in pairs if np.ptp(np.asarray(im, dtype=np.int16), axis=2).mean() > 2]
        pairs = pairs[:limit] if limit else pairs
        return [im for _, im in pairs], [f"skimage:{n}" for n, _ in pairs]
    from attiqa.models.transforms import resize_shorter

    return readable_images(paths, limit, lambda im: resize_shorter(im.convert("RGB"), work_size))


def _spaq(
    root: Path, limit: int | None, seed: int, attributes: Sequence[str]
) -> tuple[list[Path], dict[str, list[float]]]:
    """SPAQ's rated images and attribute ratings (its annotation .xlsx), optionally a seeded subsample."""
    import random

    from attiqa.datasets.wild import SPAQ

    records = SPAQ(root).read_records()
    if limit and limit < len(records):
        records = sorted(random.Random(seed).sample(records, limit), key=lambda r: str(r.image))
    ratings = {a: [r.values.get(a, math.nan) for r in records] for a in (*attributes, "mos")}  # mos: signs
    return [r.image for r in records], ratings


def _print_summary(result: SelectionResult) -> None:
    from attiqa.prompts import summary_rows

    table = Table(title="prompt selection (SROCC per task; joint = sum, §3.3)", show_lines=False)
    for c in ("attribute", "task", "rank", "positive", "negative", "distortion", "human", "joint"):
        table.add_column(c, justify="right" if c in ("distortion", "human", "joint") else "left")
    last = None
    for r in summary_rows(result):
        if last is not None and r["attribute"] != last:
            table.add_section()
        last = r["attribute"]
        table.add_row(
            r["attribute"],
            r["task"],
            r["rank"],
            r["positive"],
            r["negative"],
            *("–" if math.isnan(r[t]) else f"{r[t]:+.3f}" for t in ("distortion", "human", "joint")),
        )
    stdout.print(table)


def select_prompts_cmd(
    teacher: str = typer.Option(
        "clip:ViT-B-16/openai",
        "--teacher",
        "-t",
        help="clip:MODEL/PRETRAINED or clip:PATH (local open_clip folder/file), as for `attiqa label`.",
    ),
    images: list[Path] = typer.Option(
        None,
        "--images",
        "-i",
        help="Photos for the distortion-intensity task (files/folders; default: scikit-image's photos).",
    ),
    max_images: int | None = typer.Option(
        None, min=1, help="Use at most this many task-1 photos (default: all)."
    ),
    spaq: Path | None = typer.Option(
        None,
        help="SPAQ root (Annotations/MOS and Image attribute scores.xlsx + TestImage/) for the "
        "human-perception task.",
    ),
    spaq_limit: int | None = typer.Option(
        None, min=2, help="Seeded random subset of SPAQ's images (default: all)."
    ),
    candidates: Path | None = typer.Option(None, help="Adjective lists JSON (default: supplement Table 14)."),
    proxies: Path | None = typer.Option(None, help="Attribute -> distortions JSON (default: supplement §A)."),
    distortion_task: bool = typer.Option(
        True, "--distortion-task/--no-distortion-task", help="Run task 1 (distortion intensity)."
    ),
    select_by: str = typer.Option("joint", help="joint (paper) | distortion | human."),
    out: Path = typer.Option(Path("prompt_selection"), "--out", "-o", help="Output folder (resumable)."),
    all_pairs: bool = typer.Option(False, help="Also write every pair's values to all_pairs.csv."),
    work_size: int = typer.Option(256, min=16, help="Shorter edge photos are resized to before distortion."),
    seed: int = seed_option("Seed of the distortions of task 1 and of --spaq-limit's subset."),
    batch_size: BatchSizeOption = 32,
    workers: PromptWorkersOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Choose each attribute's antonym prompt pair among all positive x negative candidates (ATTIQA §3.3):
    SROCC with distortion strength (task 1) and with SPAQ's human ratings (task 2, when --spaq is given),
    joint = their sum. Writes summary.csv, prompts.json (for `attiqa label --prompts`) and a cache of
    embeddings so an interrupted run resumes.
    """
    from attiqa.io.atomic import folder_held, output_folder, resumed_busy_fix
    from attiqa.io.commands import Command
    from attiqa.progress import progress_task
    from attiqa.prompts import (
        ClipPromptEncoder,
        chosen_prompts,
        load_candidates,
        load_proxy_distortions,
        run_selection,
        selection_notes,
        write_all_pairs_csv,
        write_summary_csv,
    )
    from attiqa.teachers import clip_spec
    from attiqa.teachers.clip import parse_clip_spec

    if select_by not in ("joint", "distortion", "human"):
        raise AttiqaError(f"--select-by must be joint, distortion or human, not {select_by!r}")
    if select_by == "human" and spaq is None:
        raise AttiqaError("--select-by human needs --spaq ROOT (SPAQ's annotation file and images)")
    if not distortion_task and spaq is None:  # was found after the model loaded and the prompts were encoded
        raise AttiqaError(
            "--no-distortion-task leaves no proxy task to select by — give --spaq ROOT (the human-perception "
            "task, §3.3), or drop --no-distortion-task"
        )
    if select_by == "distortion" and not distortion_task:
        raise AttiqaError("--select-by distortion needs the distortion task — drop --no-distortion-task")
    cands = load_candidates(candidates)
    proxy_map = load_proxy_distortions(proxies)
    output_folder(out, "--out", create=False)  # a file or a read-only place: before the model loads
    spec = clip_spec(teacher)
    parse_clip_spec(spec)  # a malformed spec fails before anything is loaded
    photos, names = _photos(images, max_images, work_size) if distortion_task else ([], [])
    rated_paths, ratings = _spaq(spaq, spaq_limit, seed, list(cands)) if spaq else ([], {})
    # held from before the teacher loads to the last file written (two runs into one --out encoded and wrote
    # its cache and files each); a new --out made for it, removed again if a refusal leaves it empty
    busy = resumed_busy_fix()
    with folder_held(out, "selecting prompts in", busy, command=Command.SELECT_PROMPTS, make="--out"):
        encoder = ClipPromptEncoder.from_spec(
            spec, device=device_str(device), batch_size=batch_size, workers=workers
        )
        bars = []

        def progress(desc: str, total: int, kept: int) -> Advance:
            ctx = progress_task(desc, total=total, kept=kept)  # the cached ones counted from its first frame
            bars.append(ctx)
            return ctx.__enter__()

        try:
            result = run_selection(
                encoder,
                cands,
                out / "cache",
                photos,
                names,
                proxy_map,
                rated_paths,
                ratings,
                work_size=work_size,
                seed=seed,
                min_shorter=encoder.teacher.min_shorter,
                progress=progress,
            )
        finally:
            for ctx in reversed(bars):
                ctx.__exit__(None, None, None)
        _print_summary(result)
        summary = write_summary_csv(result, out / "summary.csv")
        if select_by not in result.tasks:
            raise AttiqaError(
                f"--select-by {select_by}: that task did not run (tasks: {', '.join(result.tasks)})"
            )
        prompts_path = chosen_prompts(result, by=select_by).save(out / "prompts.json")
        if all_pairs:
            console.print(f"[green]wrote {plain_name(write_all_pairs_csv(result, out / 'all_pairs.csv'))}")
    for msg in result.failed:
        console.print(f"[yellow]skipped: {plain(msg)}")
    for note in selection_notes(result, by=select_by):
        console.print(f"[yellow]{plain(note)}")
    for a in (a for a, sign in result.human_signs.items() if sign < 0):
        console.print(f"[yellow]SPAQ's {a} ratings fall as its MOS rises: read as lower = better (flipped)")
    console.print(
        f"selection on cached embeddings: {result.seconds_selection * 1000:.0f} ms "
        f"({counted(result.n_photos, 'photo')}, {counted(result.n_rated, 'rated image')})"
    )
    console.print(
        f"[green]wrote {plain_name(summary)} and {plain_name(prompts_path)} "
        "(use: attiqa label --teacher clip:... "
        f"--prompts {plain_name(prompts_path)})"
    )


def register(app: typer.Typer) -> None:
    """Add ``select-prompts`` to the ``attiqa`` app."""
    app.command("select-prompts")(select_prompts_cmd)
