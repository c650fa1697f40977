"""``attiqa distort``, ``attiqa distortions``, ``attiqa gallery`` and ``attiqa make-distorted``: the
distortion library from the command line. :mod:`attiqa.cli.app` calls :func:`register`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from attiqa.cli._common import InterruptedExit, seed_option, stdout, wrap_words
from attiqa.distortions.defaults import DEFAULT_GRADED
from attiqa.errors import AttiqaError
from attiqa.io.formats import format_list, format_name
from attiqa.progress import console, plain, plain_name


def _names(text: str, option: str) -> list[str]:
    """A comma-separated list of distortion names, each once. None given is one line: it was a traceback
    (`make-distorted`), a copy of each source and nothing else (`degrade`), an empty sheet (`gallery`)."""
    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names:
        raise AttiqaError(f"{option} {text!r}: no distortion name — give names from `attiqa distortions`, "
                          "e.g. gaussian_blur,contrast")  # fmt: skip
    return names


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(folder)


def _sources(inputs: list[Path], out: Path) -> list[Path]:
    """The images of ``inputs`` (at least one), without those a folder search finds under ``out``: with the
    output folder inside a source folder (`degrade photos -o photos/degraded`) a rerun read the outputs as
    sources — `degrade` degraded them again, `make-distorted` refused its own folder ("made with other
    settings"). ``out`` = a source folder cannot tell them apart: one line."""
    from attiqa.distortions.graded import without_graded_sets
    from attiqa.io.images import discover_images, no_images, require_images

    out_real = Path(os.path.realpath(out))
    found: list[Path] = []
    for src in inputs:
        try:
            is_dir = src.is_dir()
        except OSError:  # inside a folder without search permission: the loader reports it
            is_dir = False
        if not is_dir:
            found.append(src)  # named by the user: kept (a missing one is reported by require_images)
        elif (src_real := Path(os.path.realpath(src))) == out_real:
            raise AttiqaError(f"{out}: --out is also a source folder — a rerun would take the outputs for "
                              f"sources; choose another --out, e.g. {out / 'distorted'}")  # fmt: skip
        elif _inside(out_real, src_real):  # the outputs are inside this source folder
            found += without_graded_sets(
                [f for f in discover_images([src]) if not _inside(f.parent, out_real)], [src]
            )
        else:  # e.g. `degrade photos/a -o photos`: its sources are under --out, but none of the outputs
            found += without_graded_sets(discover_images([src]), [src])
    if not found:
        raise no_images(inputs)
    return require_images(found)


def distort_cmd(
    image: Path = typer.Argument(..., help="The image to degrade."),
    type_: str = typer.Option(..., "--type", "-t", help="Distortion name (see `attiqa distortions`)."),
    level: int = typer.Option(..., "--level", "-l", help="0 (identity) .. 5 (strongest)."),
    out: Path = typer.Option(..., "--out", "-o", help=f"Output image: {format_list()}."),
    seed: int = seed_option("Seed of the random parts (noise, directions, patch positions)."),
) -> None:
    """Apply one distortion at one level to an image. Same image, type, level and seed -> same bytes."""
    from attiqa.distortions import apply_distortion
    from attiqa.io.atomic import not_an_input, output_folder
    from attiqa.io.images import load_image, save_format, save_image

    if image.is_dir():  # it was "is a folder, not an image file — … use a folder input"
        raise AttiqaError(
            f"{image}: a folder — `attiqa distort` takes one image; for every image of a folder: "
            f"attiqa degrade {image} --out OUT --distortions {type_} --levels {level}"
        )
    if out.is_dir():  # it was "unknown output format"
        raise AttiqaError(f"{out}: is a folder — give --out a file name, e.g. "
                          f"{out / f'{image.stem}_{type_}_{level}.png'}")  # fmt: skip
    save_format(out)  # an unknown suffix or a folder that cannot be made: refused before the work
    output_folder(out.parent, "--out", create=False)  # made by the write: a bad image leaves no folder
    not_an_input([out], [image], "--out")  # `-o` the photo itself replaced it
    result = apply_distortion(load_image(image), type_, level, seed=seed)
    save_image(result, out)
    console.print(f"[green]wrote {plain_name(out)} ({plain(type_)} level {level}, seed {seed})")


def distortions_cmd(
    kadid_only: bool = typer.Option(False, "--kadid", help="Only the 25 KADID-10k types."),
) -> None:
    """List the distortions: attribute they move, the parameter of levels 1..5 and its source."""
    from attiqa.distortions import DISTORTIONS

    title = "distortions (use with `attiqa distort IMAGE --type NAME --level 1..5`)"
    rows = [d for d in DISTORTIONS.values() if not kadid_only or d.kadid_id is not None]

    def attribute(d: Any) -> str:
        return f"{d.attribute} ({'+' if d.direction > 0 else '-'})" if d.attribute else "-"

    if not stdout.is_terminal:  # piped or logged: 80 columns would fold every cell, a name too ("gaussian_")
        lines = [title]
        for d in rows:
            kadid = f", KADID-10k #{d.kadid_id}" if d.kadid_id else ""
            lines.append(f"{d.name}  {attribute(d)}{kadid}{', seeded' if d.stochastic else ''}")
            levels = ", ".join(f"{v:.4g}" for v in d.levels)
            for text in (f"levels 1..5: {d.parameter} = {levels}", f"source: {d.source}"):
                lines += wrap_words(text, 80, "    ", "      ")
        stdout.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=title, show_lines=True)
    for c in ("name", "KADID #", "attribute", "parameter", "levels 1..5", "seeded", "source"):
        table.add_column(c, overflow="fold")
    for d in rows:
        table.add_row(
            d.name,
            str(d.kadid_id or ""),
            attribute(d),
            d.parameter,
            ", ".join(f"{v:.4g}" for v in d.levels),
            "yes" if d.stochastic else "",
            d.source,
        )
    stdout.print(table)


def gallery_cmd(
    image: Path = typer.Argument(..., help="The image to show under every distortion."),
    out: Path = typer.Option(Path("gallery.png"), "--out", "-o", help="Output PNG sheet."),
    types: str | None = typer.Option(None, help="Comma-separated names (default: every registered one)."),
    kadid_only: bool = typer.Option(False, "--kadid", help="Only the 25 KADID-10k types."),
    thumb: int = typer.Option(160, min=16, help="Longer edge of each thumbnail in pixels."),
    seed: int = seed_option("Seed of the random parts (noise, directions, patch positions)."),
) -> None:
    """Write one PNG sheet of IMAGE under every distortion type (rows) x level 0..5 (columns)."""
    from attiqa.distortions import DISTORTIONS, KADID_NAMES
    from attiqa.distortions.gallery import write_gallery
    from attiqa.io.atomic import not_an_input, output_png
    from attiqa.io.images import load_image
    from attiqa.progress import progress_task

    if types is not None:
        names = _names(types, "--types")
    else:
        names = list(KADID_NAMES) if kadid_only else list(DISTORTIONS)
    if image.is_dir():
        raise AttiqaError(
            f"{image}: a folder — `attiqa gallery` takes one image (the sheet is its rows of types x "
            "levels); pass one photo of the folder"
        )
    output_png(out, "--out", create=False)  # made by the write: a bad image leaves no folder
    not_an_input([out], [image], "--out")
    img = load_image(image)
    with progress_task("gallery", total=len(names), unit="row") as adv:
        path = write_gallery(img, out, names, thumb=thumb, seed=seed, on_row=adv)
    console.print(f"[green]wrote {plain_name(path)} ({len(names)} types x 6 levels)")


def make_distorted_cmd(
    sources: list[Path] = typer.Argument(
        ...,
        help="Pristine images: files and/or folders (recursive).",
        readable=False,  # an unreadable file is skipped and reported, as inside a folder (issue 16)
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (images/r<round>/, labels.csv)."),
    rounds: int = typer.Option(10, min=1, help="Rounds R: every source gets a new random mix per round."),
    seed: int = seed_option("Seed of every draw (same seed + settings = same dataset)."),
    distortions: str | None = typer.Option(
        None, help="Comma-separated distortion set D (default: the 25 KADID-10k types, as ExIQA)."
    ),
    max_k: int | None = typer.Option(
        None, min=1, help="Cap K (default |D|, the paper's range; a cap above |D| is |D|, said)."
    ),
    max_side: int | None = typer.Option(
        None,
        min=16,
        help="Downsize sources whose longer side exceeds this first (KADID images: 512; default: full size).",
    ),
) -> None:
    """ExIQA multi-distortion dataset (§V-A): per round, each image gets K ~ U{1..|D|} distortions drawn
    without replacement, each at a random level 1..5, applied in sequence. Writes the images and
    labels.csv (per distortion: strength 0, 0.2, ..., 1). Resumable and seeded."""
    from attiqa.distortions import KADID_NAMES
    from attiqa.distortions.graded import say_damaged
    from attiqa.distortions.multi import make_distorted_set
    from attiqa.distortions.versions import say_versions
    from attiqa.io.atomic import folder_held, output_folder, resumed_busy_fix
    from attiqa.io.commands import Command
    from attiqa.progress import progress_later

    names = _names(distortions, "--distortions") if distortions is not None else list(KADID_NAMES)
    files = _sources(sources, out)
    output_folder(out, "--out", create=False)  # made once the distortion names are known good
    if max_k is not None and max_k > len(names):  # drawn as |D| (a run made so resumes as it was): said
        n = len(names)
        console.print(
            f"[yellow]--max-k {max_k}: more than the {n} distortion{'s' if n > 1 else ''} of D — K is drawn "
            f"from 1..{n} (the default); give --max-k up to {n}",
            highlight=False,
        )
    # held to the last labels.csv: two runs into one --out made the images and wrote the labels over each
    # other's (a new --out made for the hold, removed again if a refusal leaves it empty)
    doing = "distorting into"
    held = folder_held(out, doing, resumed_busy_fix(), command=Command.MAKE_DISTORTED, make="--out")
    with held, progress_later("distorting", total=rounds * len(files)) as adv:
        res = make_distorted_set(
            files,
            out,
            rounds=rounds,
            seed=seed,
            distortions=names,
            max_k=max_k,
            max_side=max_side,
            on_item=adv,
            on_start=adv.start,
        )
    for msg in res.failed:
        console.print(f"[yellow]skipped: {plain(msg)}")
    say_damaged(res.damaged)
    say_versions(res.versions, out)
    if res.interruption is not None:
        console.print(f"[yellow]interrupted: {res.written} written, {res.existing} already there, kept in "
                      f"{plain_name(out)} with their labels; rerun the same command to resume")  # fmt: skip
        raise InterruptedExit(res.interruption)
    console.print(
        f"[green]{res.written} written, {res.existing} already there; labels: {plain_name(res.labels)}"
    )
    if res.written + res.existing == 0:
        raise AttiqaError("no source image could be read")


def degrade_cmd(
    sources: list[Path] = typer.Argument(
        ...,
        help="Image files and/or folders (searched recursively).",
        readable=False,  # an unreadable file is skipped and reported, as inside a folder (issue 16)
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    distortions: str = typer.Option(
        ",".join(DEFAULT_GRADED),
        help="Comma-separated distortion names (see `attiqa distortions`); default: "
        f"{', '.join(DEFAULT_GRADED)}.",  # spaced: at 80 columns the one long word was cut ("brigh…")
        show_default=False,
    ),
    levels: str = typer.Option("1,3,5", help="Comma-separated levels 1..5."),
    max_side: int | None = typer.Option(
        None, min=16, help="Downsize sources whose longer side exceeds this first (default: full size)."
    ),  # as make-distorted's and the config's degrade.max_side: -5 made 1x1 images, 0 meant no limit
    fmt: str = typer.Option("png", help=f"Output format: {format_list(dot='')}."),
) -> None:
    """Write graded degradations of photos (blur, contrast, brightness, saturation, noise) so the five
    attributes vary — the unlabelled set for pretraining. Resumable: existing files are skipped."""
    from attiqa.distortions.graded import say_damaged, write_graded_set
    from attiqa.distortions.versions import say_versions
    from attiqa.io.atomic import folder_held, output_folder, resumed_busy_fix
    from attiqa.io.commands import Command
    from attiqa.progress import progress_later

    names = _names(distortions, "--distortions")
    try:
        lv = list(dict.fromkeys(int(x) for x in levels.split(",") if x.strip()))
    except ValueError:
        raise AttiqaError(f"--levels must be comma-separated integers, got {levels!r}") from None
    if not lv or any(not 1 <= x <= 5 for x in lv):
        raise AttiqaError(f"--levels {levels}: each level must be 1..5 (0 is the original)")
    fmt = format_name(fmt)  # before the output folder is made
    files = _sources(sources, out)
    output_folder(out, "--out", create=False)  # made once the distortion names are known good
    # held to its last file: two runs into one --out made the images and wrote the record over each other's
    held = folder_held(out, "degrading into", resumed_busy_fix(), command=Command.DEGRADE, make="--out")
    with held, progress_later("degrading", total=len(files)) as adv:
        res = write_graded_set(
            files, out, names, lv, fmt=fmt, max_side=max_side, on_item=adv, on_start=adv.start
        )
    say_damaged(res.damaged)
    say_versions(res.versions, out)
    console.print(
        f"[green]{len(res.written)} written, {len(res.existing)} already there, in {plain_name(out)}"
    )
    for e in res.failed:
        console.print(f"[yellow]skipped: {plain(e)}")
    if not res.written and not res.existing:  # one rule: fail only when nothing could be done (issue 16)
        raise AttiqaError("no source image could be read")


def register(app: typer.Typer) -> None:
    """Add the distortion commands to the ``attiqa`` app."""
    app.command("degrade")(degrade_cmd)
    app.command("distort")(distort_cmd)
    app.command("distortions")(distortions_cmd)
    app.command("gallery")(gallery_cmd)
    app.command("make-distorted")(make_distorted_cmd)
