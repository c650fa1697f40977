"""``attiqa eval``, ``attiqa datasets`` and ``attiqa bench``: evaluation on IQA datasets from the command
line. :mod:`attiqa.cli.app` calls :func:`register`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.table import Table

from attiqa.cli._common import (
    CacheOption,
    DeviceOption,
    EvalWorkersOption,
    InterruptedExit,
    ModelOption,
    ScoringBatchSizeOption,
    crops_overrides,
    filled_lines,
    one_process,
    seed_option,
    stdout,
    table_widths,
    wrap_words,
)
from attiqa.cli._common import device as device_str
from attiqa.errors import AttiqaError
from attiqa.io.atomic import OUT_FIX
from attiqa.io.commands import Command
from attiqa.limits import MAX_EPOCHS
from attiqa.progress import console, plain, plain_failure, plain_name


def _num(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def _dataset_label(name: str, ds: object) -> str:
    """The dataset's part of the default output folder. A `folder` dataset adds its score file's folder
    (and the file's name when it is not mos.csv): two folders, or a subset CSV beside mos.csv, get their
    own results instead of replacing the last ones."""
    csv = getattr(ds, "csv_path", None)
    if name != "folder" or csv is None:
        return name
    csv = Path(csv).resolve()
    return f"{name}-{csv.parent.name}" + ("" if csv.stem == "mos" else f"-{csv.stem}")


def notes_text(doc: str, width: int) -> str:
    """An adapter's docstring as terminal text: its paragraphs and "- " items rewrapped to ``width`` (they are
    wrapped for the source file, and printed as they were they broke mid-sentence), without the reST ``code``
    quotes (printed as doubled backticks)."""
    out = []
    for para in re.split(r"\n\s*\n", doc.replace("``", "")):
        items = re.split(r"\n(?=- )", para.strip())  # a list item starts a line with "- "
        for item in items:
            words = " ".join(item.split())
            indent = "  " if words.startswith("- ") else ""
            out.append("\n".join(wrap_words(words, max(width, 20), rest=indent)))
        out.append("")
    return "\n".join(out).rstrip("\n")


def records_text(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> str:
    """A table as one block per row, for a narrow screen or a pipe: the first two cells as its heading (the
    second's further lines below it), then each other cell after its header, every line wrapped at spaces to
    ``width`` (a column layout at 80 columns folded words mid-way: "mos_qualit y")."""

    def wrap(text: str, first: str) -> str:
        return "\n".join(wrap_words(text, max(width, 30), first, " " * 6))

    out = [title, ""]
    for row in rows:
        heading, *more = row[1].split("\n")
        out.append(wrap(f"{row[0]} — {heading}", ""))
        out += [wrap(line, " " * 4) for line in more]
        for header, cell in zip(headers[2:], row[2:], strict=True):
            out += [
                wrap(line, f"  {header}: " if i == 0 else " " * 4) for i, line in enumerate(cell.split("\n"))
            ]
        out.append("")
    return "\n".join(out).rstrip("\n")


def datasets_cmd(
    name: str | None = typer.Argument(
        None, help="Show one dataset in detail: folder layout, targets, notes."
    ),
) -> None:
    """List the dataset adapters: what each reads, its MOS range and direction, official split."""
    import inspect

    from rich.markup import escape

    from attiqa.datasets import DATASETS, list_datasets, resolve_name

    infos = list_datasets() if name is None else [DATASETS[resolve_name(name)].info]
    title = "datasets (use with `attiqa eval NAME --root PATH`)"
    headers = ("name", "dataset", "targets (range, direction)", "official files", "split", "format checked")
    rows = []
    for info in infos:
        targets = "\n".join(
            f"{k}{' (default)' if k == info.default_target else ''}: "
            + (
                f"{t.range[0]:g}–{t.range[1]:g}, "
                if not (math.isnan(t.range[0]) or math.isnan(t.range[1]))
                else "observed range, "
            )
            + ("MOS ↑" if t.higher_is_better else "DMOS ↓ (flipped)")
            for k, t in info.targets.items()
        )
        rows.append(
            (
                info.name,
                info.full_name + (f"\n{info.citation}" if name and info.citation else ""),
                targets,
                "\n".join(info.score_files),
                info.official_split or "none (random 80/20)",
                "on a real file" if info.verified else "from docs (see `attiqa datasets NAME`)",
            )
        )
    widths = table_widths(stdout, headers, rows)
    if widths is None:  # piped, logged, 80 columns, or words longer than the columns could hold
        stdout.print(records_text(title, headers, rows, stdout.width), markup=False, highlight=False)
    else:
        table = Table(title=title, show_lines=True)
        for c, w in zip(headers, widths, strict=True):
            table.add_column(c, width=w, overflow="fold")  # the cells come wrapped: words whole
        for row in rows:
            full, _, citation = row[1].partition("\n")
            cells = [
                "\n".join(map(escape, filled_lines(cell, w))) for cell, w in zip(row, widths, strict=True)
            ]
            cells[1] = "\n".join(map(escape, filled_lines(full, widths[1])))
            if citation:
                cells[1] += "\n[dim]" + "\n".join(map(escape, filled_lines(citation, widths[1]))) + "[/]"
            table.add_row(*cells)
        stdout.print(table)
    if name is None:
        stdout.print("Details and the expected folder layout: `attiqa datasets NAME`")
        return
    info = infos[0]
    # the adapters' words are text, not markup: KonIQ's "[either or both]" was dropped as an unknown style
    stdout.print(
        f"[bold]expected layout under --root:[/]\n{escape(info.layout)}", highlight=False, soft_wrap=True
    )
    if info.images:  # the step a half-downloaded copy misses (its eval error says the same)
        stdout.print(f"[bold]images:[/] {escape(info.images)}", highlight=False)
    doc = inspect.getdoc(DATASETS[info.name]) or ""
    stdout.print("\n[bold]format notes:[/]")
    stdout.print(notes_text(doc, stdout.width), highlight=False, markup=False)
    if info.url:
        stdout.print(f"\nsource: {info.url}", highlight=False)


EVAL_BUSY_FIX = f"let it finish, or {OUT_FIX}"  # an eval does not resume: no "rerunning it then …"


def eval_cmd(
    dataset: str = typer.Argument(
        ..., help="Dataset name from `attiqa datasets` (e.g. agiqa3k, koniq10k, folder)."
    ),
    root: Path = typer.Option(
        ..., "--root", "-r", help="Folder the dataset was unpacked into (score files + images)."
    ),
    model: ModelOption = None,
    target: str | None = typer.Option(
        None,
        "--target",
        "-t",
        help="Score to compare with, e.g. mos_quality | mos_align for agiqa3k (default: the dataset's MOS).",
    ),
    split: str | None = typer.Option(
        None, "--split", help="Evaluate one split only: train | val | test (default: all images)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder for predictions.csv, summary.json, scatter.png, replacing those there "
        "(said when of another model or dataset; the scores stay in the cache). Default: in runs/eval/, a "
        "folder named after the dataset, target, --split, model and --crops center (a folder dataset: "
        "also its CSV's folder and name).",
    ),
    csv_file: Path | None = typer.Option(
        None,
        "--csv",
        help="folder adapter only: the CSV with columns image,mos[,split] (default ROOT/mos.csv).",
    ),
    batch_size: ScoringBatchSizeOption = 16,
    workers: EvalWorkersOption = None,
    device: DeviceOption = "auto",
    crops: str | None = typer.Option(
        None,
        "--crops",
        help="ATTIQA models: five (paper §4.2: 4 corners + centre; default) | center (faster).",
    ),
    cache: CacheOption = True,
    skip_missing: bool = typer.Option(
        False,
        "--skip-missing",
        help="Leave out missing/unreadable images (with a warning) instead of stopping before scoring.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Evaluate a model on an IQA dataset: SROCC, PLCC, PLCC after the logistic fit, KRCC, RMSE.

    Reads the dataset's official score files and checks every image before scoring.
    Scores are cached per (model, image): another --target or --split does not rescore.
    Writes predictions.csv, summary.json and scatter.png (prediction vs MOS with the fitted curve).

    Under `torchrun --nproc_per_node N -m attiqa.cli eval ...` each process (one GPU each) scores a share
    of the images and the first writes the outputs.

    Example: attiqa eval agiqa3k --root AGIQA-3K/ -m ckpt.safetensors
    """
    from attiqa.datasets import base, get_dataset, resolve_name
    from attiqa.datasets.base import DatasetItem, IQADataset
    from attiqa.io.atomic import folder_held, not_an_input, output_folder

    def data_checked() -> tuple[str, IQADataset, list[DatasetItem]]:
        name = resolve_name(dataset)
        kwargs = {}
        if csv_file is not None:
            if name != "folder":
                raise AttiqaError(f"--csv is for the folder adapter; {name} reads its official score files")
            kwargs["csv"] = csv_file
        ds = get_dataset(name, root, target=target, **kwargs)
        items = ds.select(split)  # a bad --split fails before the model is loaded
        if out is not None:  # before every image is checked and the model loads (evaluate() checks late)
            base.among_the_data(out, ds, items)
        return name, ds, items

    def files_checked(
        ds: IQADataset, items: list[DatasetItem], problems: list[tuple[Path, str]] | None
    ) -> None:
        if not skip_missing:  # problems None: found here (one process)
            ds.check_images(
                items,
                fix="put the files in place or fix the score file — or pass --skip-missing to leave "
                "these images out of the metrics",
                problems=problems,
            )
        if out is not None:
            output_folder(out, "--out", create=False)  # before the model loads; made once it has
            inputs = [*ds.source_files(), *(it.image for it in items)]
            outputs = [out / n for n in (base.PREDICTIONS_CSV, base.SUMMARY_JSON, base.SCATTER_PNG)]
            not_an_input(outputs, inputs, "--out")

    alone = one_process()
    if alone:  # every check that needs no model, before torch is imported
        name, ds, items = data_checked()
        files_checked(ds, items, None)
    from attiqa.evaluation.cache import score_cache_key
    from attiqa.evaluation.evaluate import earlier_eval, evaluate, find_unreadable_shared
    from attiqa.exiqa import missing_regressor
    from attiqa.scorers import load_scorer
    from attiqa.sharding import alike_on_every_process, sharded

    # under torchrun each process checks and scores a share, the first writes (and holds --out to its end)
    with sharded() as shards, ExitStack() as held:
        if not alone:
            with alike_on_every_process():  # under torchrun: said once, or by each process that met it
                name, ds, items = data_checked()
            problems = None if skip_missing else find_unreadable_shared([it.image for it in items], shards)
            with alike_on_every_process():  # every process holds every problem found (gathered above)
                files_checked(ds, items, problems)
        with alike_on_every_process():
            overrides = crops_overrides(model, crops)
            scorer = load_scorer(model, device=device_str(device), **overrides)
            if no_score := missing_regressor(scorer):  # NaN for every image: no metric to compute
                raise AttiqaError(no_score)
            if out is None:
                out = Path("runs/eval") / _slug(
                    f"{_dataset_label(name, ds)}-{ds.target}{'-' + split if split else ''}-{scorer.info.name}"
                    + ("" if overrides.get("crops", "five") == "five" else f"-{overrides['crops']}")
                )  # another --crops gives other numbers: its own folder
            output_folder(out, "--out")  # before the scoring, not after it
        with alike_on_every_process(main_only=True):  # rank 0's line is the job's (not "rank 0 of 2: …")
            if shards.main:  # two at once wrote a mixed set: one's predictions.csv, the other's summary
                held.enter_context(folder_held(out, "evaluating into", EVAL_BUSY_FIX, command=Command.EVAL))
        if shards.main and (note := earlier_eval(out, ds, score_cache_key(scorer, overrides)[0], split)):
            console.print(f"[yellow]{plain(note)}", highlight=False)  # before the work: Ctrl-C keeps them
        try:
            res = evaluate(
                ds, scorer, out, batch_size=batch_size, num_workers=workers, cache=cache, split=split,
                missing="skip" if skip_missing else "error", scorer_overrides=overrides, progress=not quiet,
                shards=shards, checked=True,
            )  # fmt: skip
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (run_app)
            if shards.main:
                console.print(f"[yellow]interrupted: {_kept_hint(cache)}")
            raise InterruptedExit(exc) from exc
    if not shards.main:
        return
    t = Table(title=f"{ds.info.full_name} — {ds.target} ({res.split}) — {scorer.info.name}")
    fit = "logistic" if res.fit.method in ("logistic", "none") else f"{res.fit.method} fit"  # the fit used
    for c in ("n", "SROCC", "PLCC", f"PLCC ({fit})", "KRCC", f"RMSE ({fit})"):
        t.add_column(c, justify="right")
    m = res.metrics
    t.add_row(
        str(res.n),
        _num(m["srocc"]),
        _num(m["plcc"]),
        _num(m["plcc_fit"]),
        _num(m["krcc"]),
        _num(m["rmse_fit"]),
    )
    stdout.print(t)
    console.print(
        f"{res.n_scored} scored, {res.n_cached} from cache, {res.seconds:.1f}s — "
        f"[green]wrote {plain_name(res.files['summary'].parent)}/ (predictions.csv, summary.json"
        f"{', scatter.png' if 'scatter' in res.files else ''})"
    )
    if res.fit.method == "linear" and res.fit.message:  # was said in summary.json alone
        console.print(f"[yellow]PLCC and RMSE after the fit: {plain(res.fit.message)}", highlight=False)
    for w in res.warnings:
        console.print(f"[yellow]{plain(w)}")
    _listed("could not be decoded", res.failed)
    _listed("left out (--skip-missing)", res.skipped_missing)


def _listed(what: str, failures: Sequence[object], limit: int = 10) -> None:
    """The first ``limit`` of ``failures`` (errors, or ``PATH: why`` lines), one a line; the rest counted
    (every one is in summary.json)."""
    if not failures:
        return
    console.print(f"[yellow]{what}:")
    for e in failures[:limit]:
        console.print(f"  [yellow]{plain_failure(e)}")
    if len(failures) > limit:
        console.print(f"  [yellow]... and {len(failures) - limit} more (summary.json lists them)")


def _kept_hint(cache: bool) -> str:
    """Where an interrupted eval's finished work is: the score cache, which a rerun reads."""
    from attiqa.evaluation.cache import cache_location

    where = cache_location(cache)
    if where is None:
        return "nothing was kept (--no-cache) — rerun without --no-cache to keep finished batches"
    return (
        f"the finished batches are kept in the score cache {plain_name(where)}; "
        "rerun the same command to resume"
    )


def bench_cmd(
    protocol: str = typer.Argument(
        ..., help="single | cross | data-efficient | linear-probe (paper Tables 2, 3, 4, 6)."
    ),
    data: list[str] = typer.Option(
        ...,
        "--data",
        "-d",
        help="Dataset as [LABEL:]NAME=ROOT (repeatable), e.g. clive=/data/CLIVE or mine:folder=DIR "
        "(DIR/mos.csv). Cross uses every ordered pair.",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Base fine-tuning YAML (the `finetune:` section's schema, or a whole run config).",
    ),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Pretrained ATTIQA checkpoint to fine-tune from (default: the config's ImageNet backbone).",
    ),
    out: Path = typer.Option(
        Path("runs/bench"),
        "--out",
        "-o",
        help="Output folder: PROTOCOL.md, PROTOCOL.json, one folder per run.",
    ),
    repeats: int | None = typer.Option(
        None, "--repeats", "-n", min=1, help="Random splits per dataset (default: 10, the paper's; cross: 1)."
    ),
    fractions: str | None = typer.Option(
        None, "--fractions", help="data-efficient: training fractions, comma-separated (default 0.1,0.2)."
    ),
    select: str = typer.Option(
        "last",
        "--select",
        help="Report the last epoch (last, default) or the best-on-test epoch (best; optimistic).",
    ),
    seed: int = seed_option("First split seed; run r uses seed + r."),
    group_by: str = typer.Option(
        "auto",
        "--group-by",
        help="Keep each group on one side of every split: auto (the reference image of "
        "synthetic datasets, the prompt of AGIQA), none (image-wise), or a metadata key, e.g. prompt.",
    ),  # fmt: skip
    target: str | None = typer.Option(
        None,
        "--target",
        "-t",
        help="Target for every dataset that has it (e.g. mos_align; default: each dataset's own, `attiqa "
        "datasets`).",
    ),
    method: str | None = typer.Option(
        None, "--method", help="Row name in the table (default: ATTIQA with --init)."
    ),
    epochs: int | None = typer.Option(  # bounded as the config's (was told as finetune.epochs, not named)
        None, "--epochs", min=1, max=MAX_EPOCHS, help="Override the config's epochs."
    ),
    device: str | None = typer.Option(
        None, "--device", help="Override the config's device: auto | cpu | cuda | cuda:N."
    ),
    keep_checkpoints: bool = typer.Option(
        False, "--keep-checkpoints", help="Keep each run's fine-tuned weights."
    ),
    cache: CacheOption = True,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No training progress bars."),
) -> None:
    """Run one of the paper's protocols (§4.1, §4.4, §4.5) and write a table laid out like the paper's.

    Every run fine-tunes with the base config on a generated split.
    Finished runs are skipped when the same command is repeated, and a run cut short (Ctrl-C) continues
    from its last finished epoch. Cross scores each trained model on the
    other datasets through `attiqa eval`'s score cache (--cache/--no-cache, $ATTIQA_CACHE).

    Example: attiqa bench single -d clive=/data/CLIVE -d koniq10k=/data/koniq -c ft.yaml --init m.safetensors
    """
    from dataclasses import replace

    from attiqa.bench_setup import ProtocolSetup, bench_dataset, check_protocol, load_base_config
    from attiqa.bench_splits import plan_splits
    from attiqa.config import read_group_by
    from attiqa.datasets import get_dataset
    from attiqa.datasets.readers import parse_data_spec
    from attiqa.io.atomic import folder_held, output_folder, resume_fix, resumed_busy_fix

    def checked() -> tuple[ProtocolSetup, list[float] | None]:
        cfg = load_base_config(config)
        if epochs is not None:
            cfg = replace(cfg, epochs=epochs)
        if device is not None:
            cfg = replace(cfg, device=device)
        benches = []
        have: set[str] = set()
        for spec in data:
            label, name, root = parse_data_spec(spec)
            ds = get_dataset(name, root)
            have |= set(ds.info.targets)
            if target is not None and target in ds.info.targets:
                ds = ds.retarget(target)
            benches.append(bench_dataset(ds, label))
        if target is not None and target not in have:  # a typo would silently bench the default targets
            raise AttiqaError(
                f"--target {target!r}: no dataset given has it; their targets: {', '.join(sorted(have))}"
            )
        try:
            fr = None if fractions is None else [float(x) for x in fractions.split(",") if x.strip()]
        except ValueError:
            raise AttiqaError(f"--fractions must be comma-separated numbers, got {fractions!r}") from None
        # before the first run; made once run_protocol's checks pass. A folder of earlier runs: resumable
        fix = resume_fix(out, "its finished runs", OUT_FIX, recursive=True) if _has_files(out) else None
        output_folder(out, "--out", fix, create=False)
        setup = check_protocol(
            protocol, benches, cfg, out, init_checkpoint=init, repeats=repeats, fractions=fr, select=select,
            method=method,
        )  # fmt: skip
        return setup, fr

    grouped = read_group_by(group_by, "--group-by")  # as a run config's finetune.group_by
    setup, fr = checked()  # before torch is imported, and so are the splits
    planned = plan_splits(protocol, setup.benches, setup.repeats, seed, None, grouped, setup.fractions)
    from attiqa.protocols import finished_runs, run_protocol

    # held from before run_protocol's first write to its last (two benches into one --out wrote each other's
    # runs and tables); a new --out made for it, removed again if a refusal leaves it empty
    try:
        with folder_held(out, "benchmarking in", resumed_busy_fix(), command=Command.BENCH, make="--out"):
            res = run_protocol(
                protocol, setup.benches, setup.cfg, out, init_checkpoint=init, repeats=repeats, fractions=fr,
                select=select, seed=seed, method=method, keep_checkpoints=keep_checkpoints,
                progress=not quiet, group_by=grouped, cache=cache, checked=setup, planned=planned,
            )  # fmt: skip
    except KeyboardInterrupt as exc:
        done, where = finished_runs(out, protocol), plain_name(out / protocol)
        console.print(
            f"[yellow]interrupted: {done} finished run(s) kept in {where}; rerun the same command to resume "
            "(a run cut short continues from its last finished epoch)",
            highlight=False,
        )
        raise InterruptedExit(exc) from exc
    stdout.print(res.table, highlight=False, markup=False, soft_wrap=True)  # markdown as written: unwrapped
    console.print(f"[green]wrote {plain_name(res.files['table'])} and {plain_name(res.files['json'])}")


def _has_files(folder: Path) -> bool:
    """``folder`` is a folder holding something (earlier runs to resume), readable or not."""
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return True


def register(app: typer.Typer) -> None:
    """Add ``eval``, ``datasets`` and ``bench`` to the ``attiqa`` app."""
    app.command("eval")(eval_cmd)
    app.command("datasets")(datasets_cmd)
    app.command("bench")(bench_cmd)
