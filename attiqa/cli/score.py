"""Inference commands: ``attiqa score``, ``models``, ``check-attributes``, ``export``, ``demo``."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from attiqa.cli._common import (
    DeviceOption,
    InterruptedExit,
    ModelOption,
    ScoringBatchSizeOption,
    WorkersOption,
    checked_first,
    crops_overrides,
    print_scores,
    readable_images,
    stdout,
    table_widths,
    whole_word_table,
    wrap_words,
)
from attiqa.cli._common import device as resolve_device
from attiqa.errors import AttiqaError
from attiqa.progress import console, plain, plain_failure, plain_name
from attiqa.scorers import DEFAULT_MODEL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from attiqa.interface import Scorer

SHEET_LIMIT = 48
TABLE_LIMIT = 40


def score_cmd(
    paths: list[Path] = typer.Argument(
        ...,
        help="Image files and/or folders (searched recursively).",
        readable=False,  # an unreadable file is skipped and reported, as inside a folder (issue 16)
    ),
    model: ModelOption = None,
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write results to .csv, .tsv or .json, row by row; rerunning with the same file resumes.",
    ),
    sheet: Path | None = typer.Option(
        None, help="Also draw a PNG contact sheet: each photo with its MOS and attribute bars (first 48)."
    ),
    batch_size: ScoringBatchSizeOption = 16,
    workers: WorkersOption = None,
    crops: str | None = typer.Option(
        None, help="ATTIQA models: five (paper §4.2: 4 corners + centre; default) | center (faster)."
    ),
    device: DeviceOption = "auto",
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table, no progress bar."),
) -> None:
    """Score images: MOS and the five attribute scores per image, with a summary table.

    Columns: ATTIQA models write [bold]mos[/] (a prediction on the MOS scale of the data they were
    fine-tuned on; its range is in `attiqa models`); scorers not trained on human scores (classical,
    CLIP-IQA, ...) write [bold]score[/] in 0–1 instead, so the two are never mixed up in one column. The
    attribute columns follow (all higher = better: noisiness is high for a clean image).

    Unreadable files are skipped and listed at the end; exit code 0 when at least one image was scored
    (by this run or, resumed, an earlier one).
    With --out, finished rows are on disk after every batch: Ctrl-C or a kill keeps them (exit 130 / 143)
    and the same command resumes where it stopped.

    Under `torchrun --nproc_per_node N -m attiqa.cli score ... -o FILE` each process (one GPU each) scores
    a share of the images and the first writes them to FILE in the input order; a stopped run resumes
    with any number of processes (its rows wait in journals beside FILE).
    """
    from attiqa.device_names import check_device_form
    from attiqa.io.atomic import check_output_path, output_png, refuse_if_resumed_held_once
    from attiqa.io.commands import Command
    from attiqa.io.images import require_images
    from attiqa.scorers.zoo import refuse_unknown_scorer

    def inputs_and_outputs() -> tuple[list[Path], dict[str, str]]:
        overrides = crops_overrides(model, crops, default="five")  # the resume record names the crops
        found = require_images(paths)
        if sheet is not None:
            found = _without_own_sheet(found, sheet)
        if out is not None:  # before the model loads; made once it has (a typo: none)
            check_output_path(out, create=False)
        if sheet is not None:
            output_png(sheet, "--sheet", create=False)
        refuse_unknown_scorer(model)  # load_scorer's own line for a mistyped -m, torch-free: before the probe
        check_device_form(device)  # `--device gpu`, torch-free: before the probe (a device absent: torch's)
        if out is not None:  # held by another run: said before torch and the model load, making nothing —
            # after every check of the command's own options (a mistyped --sheet or -m was told "another
            # process is writing it": rerun once that one ended, only to meet the typo)
            refuse_if_resumed_held_once(out, Command.SCORE, in_group=False)  # torchrun: rank 0's, below
        return found, overrides

    checked = checked_first(inputs_and_outputs)  # alone: before torch is imported
    from attiqa.contact_sheet import sheet_for_scores
    from attiqa.evaluation.cache import resume_identity
    from attiqa.exiqa import missing_regressor
    from attiqa.io.file_identity import changed_words
    from attiqa.scorers import load_scorer
    from attiqa.scoring import (
        ColumnStats,
        ScoreWriter,
        forget_replaced_scores,
        score_output_held,
        scorer_record,
    )
    from attiqa.sharding import alike_on_every_process, in_input_order, score_share, sharded

    # --out, once held (by rank 0 under torchrun, before any process opens a file beside it), until the
    # command's last write to it is done: a second run's ranks cut the first's journals
    with ExitStack() as held:
        keep_rows = max(SHEET_LIMIT if sheet else 0, TABLE_LIMIT)
        with sharded() as shards:  # under torchrun each process scores a share
            with alike_on_every_process():  # under torchrun: said once, or by each process that met it
                files, overrides = checked()
            with alike_on_every_process(main_only=True):  # under torchrun by rank 0 alone, here
                if out is not None:
                    refuse_if_resumed_held_once(out, Command.SCORE, in_group=True)
            with alike_on_every_process():
                if shards.world > 1 and out is None:
                    raise AttiqaError(
                        f"under torchrun each of the {shards.world} processes scores a share of the images — "
                        "give --out FILE.csv (or .tsv / .json) to collect them in one file"
                    )
                scorer = load_scorer(model, device=resolve_device(device), **overrides)
                # a scorer without a MOS regressor: its distortion columns still are
                if shards.main and (no_score := missing_regressor(scorer)):
                    console.print(f"[yellow]note:[/] {plain(no_score)}", highlight=False)
            with alike_on_every_process(main_only=True):  # rank 0's line is the job's (not "rank 0 of 2: …")
                replaced = 0
                if out is not None and shards.main:
                    held.enter_context(score_output_held(out))
                    if shards.world > 1:  # before any rank reads the journals (the writer's own, else)
                        replaced = forget_replaced_scores(out, files)
            with alike_on_every_process():
                writer = None
                if out is not None:
                    writer = ScoreWriter(
                        out,
                        scorer.columns,
                        scorer_record(scorer),
                        resume_identity(model, scorer, overrides),
                        shards.rank,
                        shards.world,
                        keep_rows=bool(sheet),
                        inputs=files,
                    )
            todo, earlier = files, []
            if writer is not None and shards.main and (replaced or writer.changed):
                console.print(f"[yellow]{changed_words(replaced or writer.changed, 'scored')}")
            if writer is not None and writer.done:
                todo = [f for f in files if str(f) not in writer.done]
                # counted in the bar from its first frame
                earlier = [f for f in files if str(f) in writer.done]
                if shards.main:
                    done = len(files) - len(todo)
                    console.print(
                        f"resuming: {done} image(s) already in {plain_name(out)}, {len(todo)} to score"
                    )
            if writer is not None:  # before any of its images is read
                writer.identify(shards.share(todo))
            shards.sync()  # every rank has read the journals before any writes to them: one `todo` everywhere
            stats = ColumnStats(tuple(scorer.columns))

            def keep(rows: list[dict]) -> None:
                if writer is not None:  # counted with the write: "N finished row(s) kept" at a Ctrl-C is true
                    writer.add(rows, on_commit=lambda: stats.add(rows))
                else:
                    stats.add(rows)

            run = None
            try:
                n_kept = len(shards.share(earlier))
                run = score_share(
                    shards, todo, scorer, batch_size, workers, keep, keep_rows, not quiet, n_kept
                )
            finally:
                if writer is not None:
                    writer.close(run.failed if run is not None else ())
            if run.interrupted:
                if shards.main:
                    where = f"{stats.n} finished row(s) kept in {plain_name(out)}"
                    if shards.world > 1:
                        where = f"each process's finished rows kept beside {plain_name(out)}"
                    kept = (
                        f"{where}; rerun the same command to resume"
                        if out
                        else "nothing was saved (no --out)"
                    )
                    console.print(f"[yellow]interrupted: {kept}")
                raise InterruptedExit(run.interruption or KeyboardInterrupt())
            parts = shards.gather((stats, run.failed))  # after every rank's journal is closed
        if not shards.main:
            return
        rows, n_todo = run.rows, len(todo)
        stats = ColumnStats(tuple(scorer.columns))
        for rank_stats, _ in parts:
            stats.update(rank_stats)
        failed = in_input_order([e for _, rank_failed in parts for e in rank_failed], todo)
        sheet_rows = rows
        if writer is not None and shards.world > 1:  # one file from every rank's journal, in the input order
            rows = sheet_rows = writer.merge_shards([str(f) for f in files], failed)[:keep_rows]
        elif writer is not None and writer.found_rows:  # resumed: the sheet shows the file's images
            place = {str(f): i for i, f in enumerate(files)}
            both = writer.found_rows + rows
            sheet_rows = sorted(both, key=lambda r: place.get(r["image"], len(place)))[:SHEET_LIMIT]
        if writer is not None and (writer.written or writer.done or stats.n):
            console.print(f"[green]wrote {plain_name(out)}")
        elif writer is not None:
            writer.discard_if_empty()
        if sheet is not None and sheet_rows:
            sheet_for_scores(sheet_rows, scorer.columns, sheet, scorer.info.score_range, SHEET_LIMIT)
            console.print(f"[green]wrote {plain_name(sheet)}")
        if not quiet and hasattr(scorer, "top_distortions"):  # ExIQA: the explanation is the point
            for r in rows[:TABLE_LIMIT]:
                top = ", ".join(f"{d} {v:.2f}" for d, v in scorer.top_distortions(r))
                stdout.print(
                    f"{plain_name(Path(r['image']).name)}: score {r['score']:.3f}; top distortions: {top}"
                )
        elif not quiet and stats.n:  # a resume with nothing left said so above ("0 to score"): no empty table
            print_scores(rows, scorer.columns, stats.n, stats, TABLE_LIMIT)
        say_skipped(failed)
        if not stats.n and n_todo and not (writer is not None and writer.done):  # a resume: only bad files
            raise AttiqaError("no image could be scored")


def say_skipped(failed: Sequence[object]) -> None:
    """The files a scoring run could not read, each with what is wrong and the fix."""
    if failed:
        console.print(f"[yellow]skipped {len(failed)} file(s) that could not be read:")
        for e in failed:
            console.print(f"  [yellow]{plain_failure(e)}")


def _without_own_sheet(files: list[Path], sheet: Path) -> list[Path]:
    """The inputs but an earlier run's ``--sheet`` found among them: `score photos/ -o photos/s.csv --sheet
    photos/s.png` run again scored its own sheet as a photo. Any other file at that path (a photo) would be
    replaced by the sheet: one line, before the work."""
    from attiqa.contact_sheet import is_contact_sheet
    from attiqa.io.atomic import not_an_input

    drawn = os.path.realpath(sheet)
    rest = [f for f in files if os.path.realpath(f) != drawn]
    if len(rest) == len(files):
        return files
    if not is_contact_sheet(sheet):
        not_an_input([sheet], [sheet], "--sheet")
    if not rest:
        raise AttiqaError(f"{sheet}: the only image found is the --sheet of an earlier run — pass the photos")
    return rest


# check-attributes' crop mode for ATTIQA models without --crops (its --help says it; the option's own
# default is None, so that a scorer without crop modes given --crops is refused: cli._common.crops_overrides)
CHECK_CROPS = "center"


def check_attributes(
    model: str | None = typer.Option(
        None, "--model", "-m", help=f"Checkpoint path or named model (default: {DEFAULT_MODEL}, bundled)."
    ),
    photos: list[Path] = typer.Argument(
        None, help="Photos to degrade (default: scikit-image's bundled photos)."
    ),
    crops: str | None = typer.Option(None, help="ATTIQA models: five | center (default)."),
) -> None:
    """Do the attribute heads mean what they say? Degrade photos in steps (blur, contrast, brightness,
    saturation, noise) and print, per attribute, the SROCC between the level and the head's score
    (+1 = moves the right way on every step)."""
    import numpy as np

    from attiqa.demo import DEMO_PHOTOS, skimage_photo
    from attiqa.evaluation.monotonicity import attribute_monotonicity
    from attiqa.scorers import load_scorer

    scorer = load_scorer(model, **crops_overrides(model, crops, default=CHECK_CROPS))
    imgs = readable_images(photos)[0] if photos else [skimage_photo(n) for n in DEMO_PHOTOS[:5]]
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


def export(
    src: Path = typer.Argument(
        ...,
        help="A checkpoint from `attiqa train` (.safetensors), or a named model (`attiqa models`).",
        readable=False,  # an unreadable file: the checkpoint reader's one line, not click's usage error
    ),
    dst: Path = typer.Argument(
        ...,
        help="Output .safetensors, added when the name has no suffix (its .json card is written beside it); "
        "an earlier export there is replaced, any other file refused.",
    ),
    half: bool = typer.Option(True, help="Store float tensors as fp16 (half the size; loads as fp32)."),
    name: str | None = typer.Option(None, help="Model name recorded in the card."),
    description: str | None = typer.Option(None, help="One-line description recorded in the card."),
) -> None:
    """Write a compact copy of a checkpoint for sharing or bundling, and print its SHA-256 (for a
    named-model table entry). Training state is not copied; absolute paths in the card (image folders,
    the source checkpoint) are made relative or dataset-level, so no path of this machine ships."""
    from attiqa.scorers.zoo import checkpoint_file, registry_entry_at

    source = str(src)  # recorded in the card: a named model by its name, not this machine's install path
    src = checkpoint_file(source)  # a file, a run folder, or a named model's file (`export attiqa-default`)
    if dst.is_dir():
        raise AttiqaError(f"{dst}: is a folder — give the file name to write, e.g. {dst / src.name}")
    if dst.suffix and dst.suffix != ".safetensors":  # `m.txt` was written as m.safetensors + m.json
        raise AttiqaError(
            f"{dst}: a checkpoint is written as .safetensors (its card as .json beside it) — "
            f"give a name ending in .safetensors, e.g. {dst.with_suffix('.safetensors')}"
        )
    target = dst.with_suffix(".safetensors")  # a name without suffix gets it
    if target.exists() and src.exists() and target.resolve() == src.resolve():
        raise AttiqaError(
            f"{dst}: is the checkpoint being exported — write the copy under another name (the source "
            "keeps the full-precision weights a resumed or fine-tuned run needs)"
        )
    from attiqa.io.checkpoints import load_checkpoint, portable_card, save_checkpoint  # torch
    from attiqa.io.hashes import sha256_of
    from attiqa.models import model_from_checkpoint

    earlier = _earlier_export(target)
    tensors, card = load_checkpoint(src, as_stored=half)  # read once: the file checked is the file copied
    # (--half: a tensor the source stores as fp16 stays fp16 — lossless, and the shipped model's copy keeps
    # its tensors' hash; --no-half: all fp32, as before)
    model_from_checkpoint(src, tensors, card)  # not a model (no card, an isp-tune policy, weights the card
    # does not describe): load_model's one line
    card = {k: v for k, v in card.items() if k not in ("format_version", "attiqa_version")}
    if name:
        card["name"] = name
    if description:
        card["description"] = description
    card["exported_from"] = source
    shipped = registry_entry_at(src)
    if shipped is not None and "score_range" not in card:  # a copy of a named model keeps its scale
        card["score_range"] = list(shipped.info.score_range)
    if earlier:
        console.print(
            f"[yellow]{plain_name(target)}: replacing an earlier export ({plain(earlier)})", highlight=False
        )
    out = save_checkpoint(target, tensors, portable_card(card), half=half)
    console.print(f"[green]{plain_name(out)} ({out.stat().st_size / 1e6:.1f} MB) sha256 {sha256_of(out)}")


def _earlier_export(target: Path) -> str:
    """What an earlier ``attiqa export`` at ``target`` was exported from ("" = no file there): replaced, as
    an eval's outputs are, since the same command makes it again. Any other file there is refused before the
    work — a training checkpoint (its full-precision weights and resume state made by hours of training) or
    a file of the user's was replaced without a word."""
    from attiqa.io.checkpoints import card_path_for, read_card

    card = card_path_for(target)
    if not target.exists() and card.exists():  # the card is written beside the copy: not over a file of yours
        try:
            doc = json.loads(card.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        if not (isinstance(doc, dict) and isinstance(doc.get("exported_from"), str)):
            raise AttiqaError(
                f"{card}: already there and not the card of an earlier `attiqa export` (export writes the "
                "copy's card beside it under this name) — export under another name, or move that file away "
                "first"
            )
        return f"of {doc['exported_from']}"
    if not target.exists():
        return ""

    try:
        source = read_card(target).get("exported_from")
    except AttiqaError:
        source = None
    if not isinstance(source, str):
        raise AttiqaError(
            f"{target}: already there and not an earlier `attiqa export` (a training checkpoint or another "
            "file) — export under another name, or move that file away first"
        )
    return f"of {source}"


def models_cmd() -> None:
    """List scorers and named models: kind, score range, direction, what weights they need.

    Any name listed here works with --model; CLIP scorers take local weights as NAME:PATH
    (e.g. --model clipiqa:path/to/open_clip_folder)."""

    from attiqa.scorers import list_scorers

    infos = list_scorers()
    headers = ("name", "kind", "range", "higher is better", "needs", "description")
    rows = [
        (
            info.name,
            info.kind,
            info.scale or f"{info.score_range[0]:g}–{info.score_range[1]:g}",
            "yes" if info.higher_is_better else "no",
            info.needs,
            info.description,
        )
        for info in infos
    ]
    widths = table_widths(stdout, headers, rows)
    if widths is not None:
        stdout.print(whole_word_table(headers, rows, widths, title="scorers"))
        return
    # piped, logged, or a terminal too narrow for the table (at 80 columns it folded the names one types
    # after --model: "attiqa-zer" / "oshot"): one block per scorer, readable at any width
    for info in infos:
        direction = "higher is better" if info.higher_is_better else "lower is better"
        rng = info.scale or f"{info.score_range[0]:g}-{info.score_range[1]:g}"
        head = f"{info.name}  ({info.kind}, range {rng}, {direction})"
        for text, first in ((head, ""), (f"needs: {info.needs}", "    "), (info.description, "    ")):
            if stdout.is_terminal:  # wrapped at words, indented (the terminal's own wrap cut words)
                text = "\n".join(wrap_words(text, stdout.width, first, "    "))
            else:
                text = first + text
            stdout.print(text, highlight=False, markup=False, soft_wrap=True)  # a block starts with its name


def demo_cmd(
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
    from attiqa.demo import prepare_score_demo, run_demo
    from attiqa.io.atomic import output_folder

    output_folder(out, "--out", create=False)  # made once the model has loaded (`-m` a typo: no folder)
    if train:
        paths, scorer, ckpt = run_demo(out, epochs=epochs)
    else:
        paths, scorer = prepare_score_demo(out, model)
        console.print(
            plain(f"scoring {len(paths)} photos with {scorer.info.name} ({scorer.info.description})")
        )
    report_scores(paths, scorer, Path(out))
    csv, png = plain_name(Path(out) / "scores.csv"), plain_name(Path(out) / "scores.png")
    if train:
        console.print(f"[green]checkpoint: {plain_name(ckpt)}\nscores: {csv}, {png}")
        console.print(
            "Attribute scores are percentiles among the demo's training photos (higher = sharper, more "
            "contrast, brighter, more colourful, cleaner). No MOS: the demo has no human ratings."
        )
    else:
        console.print(f"[green]scores: {csv}\ncontact sheet: {png}")
        console.print(plain(what_scores_mean(scorer)))


def what_scores_mean(scorer: Scorer) -> str:
    """The demo's closing line, from the scorer's own metadata (it said "MOS is on the CLIVE scale (0-100)"
    and "percentiles among the model's pretraining photos" whatever `--model` scored)."""
    from attiqa.attributes import ATTRIBUTES

    info, first = scorer.info, scorer.columns[0]
    better = "higher" if info.higher_is_better else "lower"
    scale = f"{info.score_range[0]:g}-{info.score_range[1]:g}"
    name = "MOS" if first == "mos" else first
    if info.kind == "trained":
        line = f"{name} is on a {scale} scale ({better} is better)"
        attrs = "percentiles among the model's pretraining photos"
    else:
        line = f"{name} is in {scale} ({better} is better; not a MOS: {info.name} never saw human ratings)"
        attrs = "in [0, 1]"
    if set(ATTRIBUTES) <= set(scorer.columns):
        line += f"; attribute scores are {attrs} (higher = sharper, more contrast, brighter, more colourful, "
        line += "cleaner)"
    return line + "."


def report_scores(paths: list[Path], scorer: Scorer, out: Path) -> None:
    """Score ``paths`` (progress bar), write ``out/scores.csv`` and the contact sheet, print the table."""
    from attiqa.contact_sheet import sheet_for_scores
    from attiqa.progress import progress_task
    from attiqa.scoring import score_paths, write_scores

    with progress_task("scoring", total=len(paths)) as adv:
        sr = score_paths(paths, scorer, batch_size=8, on_batch=lambda n, f: adv(n + f))
    write_scores(sr, out / "scores.csv", scorer.metadata())
    sheet_for_scores(sr.rows, sr.columns, out / "scores.png", scorer.info.score_range)
    print_scores(sr.rows, sr.columns, len(sr.rows))
    say_skipped(sr.failed)  # the demo said "10 image(s) scored" of its 11 and no more


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)
    app.command("models")(models_cmd)
    app.command("list-scorers", hidden=True)(models_cmd)
    app.command("check-attributes")(check_attributes)
    app.command("export")(export)
    app.command("demo")(demo_cmd)
