"""The ``genbench`` command line: generated image pairs, a preference study, metric–human agreement.

Thin: parses, calls the library, prints. Every :class:`attiqa.errors.AttiqaError` ends as one red line
and exit code 2 — never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from attiqa.cli import (
    DeviceOption,
    InterruptedExit,
    ScoringBatchSizeOption,
    WorkersOption,
    plain_table,
    seed_option,
    table_widths,
    whole_word_table,
    wrap_words,
)
from attiqa.cli import device as device_str
from attiqa.errors import AttiqaError, ConfigError
from attiqa.io.commands import Command
from attiqa.progress import console, counted, plain, plain_name, progress_later, progress_task
from genbench.files import shell_arg

if TYPE_CHECKING:
    from genbench.run_scores import ScoreReport

app = typer.Typer(
    name="genbench",
    help="Quality metrics as judges of a generative model (ATTIQA §5.1): make image pairs, collect human "
    "preferences, measure each metric's agreement with them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
stdout = Console()
SYNONYMS = {
    **dict.fromkeys(("serve", "rate", "study", "web"), "vote"),
    **dict.fromkeys(("compare", "correlate"), "agree"),
    **dict.fromkeys(("generate", "gen"), "run"),
}
"""Words a user may type for a command (the usage error suggests the command: ``genbench serve`` -> vote)."""
MAX_BOOTSTRAP = 1_000_000
"""``agree --bootstrap``'s ceiling: a mean a resample is held in memory (8 MB here, ~40 s of resampling for
4,660 pairs); a few digits more were a numpy traceback ("Unable to allocate 72.8 TiB")."""
REPORTING = "writing a report into"  # what `agree` holding its report folder is doing, in a second run's line


@app.callback()
def _root() -> None:
    """genbench: generated image pairs, a preference study, metric–human agreement."""


@app.command()
def run(
    pairs: int = typer.Option(200, "--pairs", "-n", min=1, help="Number of prompts (two images each)."),
    out: Path = typer.Option(Path("genbench_run"), "--out", "-o", help="Run folder (rerun to resume)."),
    model: str = typer.Option(
        "stabilityai/stable-diffusion-2-1", help="Hugging Face model id, or PATH to a local diffusers folder."
    ),
    template: Path | None = typer.Option(None, help="Prompt template text file (default: supp. §D.1)."),
    candidates: Path | None = typer.Option(
        None, help="JSON file: template slot -> list of candidates (default: supp. Table 13)."
    ),
    seed: int = seed_option("Seed for the prompt draw and the image seeds."),
    scheduler: str = typer.Option(
        "default", help="default (the model's) | ddim | euler | euler-a | dpm++ | unipc | ..."
    ),
    steps: int = typer.Option(50, min=1, help="Denoising steps."),
    guidance: float = typer.Option(7.5, help="Classifier-free guidance scale."),
    width: int = typer.Option(768, min=8, help="Image width (multiple of 8)."),
    height: int = typer.Option(768, min=8, help="Image height (multiple of 8)."),
    dtype: str = typer.Option("auto", help="auto (fp16 on GPU, fp32 on CPU) | fp32 | fp16 | bf16"),
    negative_prompt: str = typer.Option("", help="Negative prompt (none by default, as in the paper)."),
    batch_size: int = typer.Option(2, min=1, help="Images per pipeline call."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
) -> None:
    """Generate two images per prompt with Stable Diffusion (default 2.1) into a resumable run folder.

    Writes images/, manifest.jsonl and manifest.csv (prompt, seeds, model, settings per pair) and run.json.
    Rerunning the same command keeps every finished image and makes the rest.
    """
    from attiqa.io.atomic import folder_held, resumed_busy_fix
    from genbench.generate import GenSettings, generate_run, refuse_file
    from genbench.prompts import load_prompt_spec

    refuse_file(model)  # before --device is resolved (torch)
    spec = load_prompt_spec(template, candidates)
    settings = GenSettings(
        model=model,
        scheduler=scheduler,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        dtype=dtype,
        negative_prompt=negative_prompt,
        seed=seed,
    )
    dev = device_str(device)
    # held from before its checks read the folder to its last manifest write: two runs into one --out made
    # the same images and wrote the manifest each; a new --out made for it, removed again if left empty
    held = folder_held(out, "generating into", resumed_busy_fix(), command=Command.GENBENCH_RUN, make="--out")
    with held, progress_later("generating", total=2 * pairs) as bar:
        result = generate_run(
            out, spec, settings, pairs, batch_size=batch_size, device=dev, on_image=bar, on_start=bar.start
        )
    console.print(
        f"{plain_name(out)}: {counted(result.made, 'image')} made, {result.kept} already there, "
        f"{len(result.failed)} failed; manifest: {plain_name(out / 'manifest.jsonl')}"
    )
    for f in result.failed[:10]:
        console.print(f"[yellow]failed[/] {plain(f)}", highlight=False)
    if result.damaged:  # found on disk but not decodable: made again from their seeds, in "made"
        n = len(result.damaged)
        console.print(
            f"[yellow]{n} damaged image{'s' if n > 1 else ''} on disk made again[/] (e.g. "
            f"{plain(result.damaged[0])})",
            highlight=False,
        )
    if result.long_prompts:
        n, first = len(result.long_prompts), plain(result.long_prompts[0])
        console.print(
            f"[yellow]warning:[/] {n} prompt{'s are' if n > 1 else ' is'} longer than the text encoder reads "
            f"({result.token_limit} tokens): only the start conditions the images (e.g. {first} in the "
            "manifest) — shorten the template or the candidates",
            highlight=False,
        )
    if result.interruption is not None:
        console.print("[yellow]interrupted — rerun the same command to continue")
        raise InterruptedExit(result.interruption)
    if result.out_of_memory:
        if batch_size > 1:
            console.print(
                f"[yellow]out of memory making {width}x{height} images, {batch_size} a call — lower "
                "--batch-size (or, before the first image, --width / --height), then rerun: the finished "
                "images are kept"
            )
        else:  # --batch-size 1 is its floor: "lower --batch-size" would be refused
            console.print(
                f"[yellow]out of memory making {width}x{height} images one a call — a smaller --width / "
                "--height (a new --out once images are made) or a device with more memory"
            )
        raise typer.Exit(1)
    if result.failed:
        console.print("[yellow]rerun the same command to retry the failed images")
        raise typer.Exit(1)


def import_held(out: Path, command: Command) -> AbstractContextManager[None]:
    """An import's run folder held by ``command`` from before its checks to its last file: two imports at
    once wrote the run over each other, one's prefs.csv beside the other's manifest; a run a `genbench
    score` holds (shared: :func:`score`) is refused, its manifest was rewritten under the scores. A folder
    made for it and left empty is removed again."""
    from attiqa.io.atomic import WAIT_OR_OUT, folder_held

    return folder_held(out, "importing into", WAIT_OR_OUT, command=command, make="--out")


def _run_pairs(run_dir: Path) -> list:
    """The run's pairs; none yet (a `genbench run` that made no image) is one line, not a no-op."""
    from genbench.manifest import load_pairs, unfinished_run

    pairs = load_pairs(run_dir)
    if not pairs:
        raise AttiqaError(f"{run_dir}: no finished pair in the manifest yet — let `genbench run` make some")
    partial = unfinished_run(run_dir, len(pairs))  # a run left unfinished does not pass for a whole one
    if partial:
        console.print(f"[yellow]warning:[/] {plain(partial)}", highlight=False)
    return pairs


def _dataset_name(name: str) -> str:
    """A dataset's short display name (``agiqa3k`` -> ``AGIQA-3K``), the registry name if unknown."""
    from attiqa.datasets import DATASETS

    return DATASETS[name].info.short_name if name in DATASETS else name


def _split_metrics(metrics: str | None, available: Callable[[], list[str]]) -> list[str] | None:
    """``--metrics a,b``, each name once: a name given twice was scored twice and reported twice (two
    equal rows in agreement.csv, per_pair.csv with every column of it twice). None without the option;
    ``-m ''`` (or ``' , '``) names nothing and is refused, listing ``available()``: it silently meant all."""
    if metrics is None:
        return None
    names = dict.fromkeys(m.strip() for m in metrics.split(",") if m.strip())
    if not names:
        raise ConfigError(
            f"--metrics {metrics!r} names no metric — give one or more of {', '.join(available()) or 'none'} "
            "(comma-separated), or leave --metrics out for all"
        )
    return list(names)


def _score_metric(
    run_dir: Path,
    pairs: list,
    name: str,
    dev: Callable[[], str],
    batch_size: int,
    workers: int | None,
    n_images: int,
) -> ScoreReport:
    """One metric scored under its progress bar, opened once the metric knows how many images earlier runs
    scored: counted in the bar, not in its rate (a resume said "512/1491 (35299.7 img/s)"). A metric whose
    record proves every image scored by the scorer it names now is reported as kept without loading it:
    neither the scorer nor torch is imported (:func:`genbench.run_scores.scored_already`)."""
    from genbench.run_scores import scored_already

    done = scored_already(run_dir, pairs, name)
    if done is not None:
        return done
    from genbench.metric_scoring import open_metric

    with open_metric(run_dir, pairs, name, dev, not_kept=True) as job:  # (scored_already said no above)
        if job.report.error:  # skipped: no bar
            return job.report
        with progress_task(name, total=n_images, kept=job.report.kept) as advance:
            return job.score(batch_size, workers, lambda n, _f: advance(n))


def without_name(error: str, name: str) -> str:
    """``error`` without the metric's name in front, as typed or as the loader prints its path
    (``./m.safetensors`` is ``m.safetensors``): a skip line names the metric once ("skipped
    ./m.safetensors: m.safetensors: not a readable safetensors checkpoint" named it twice)."""
    for said in dict.fromkeys((name, str(Path(name)))):
        if error.startswith(f"{said}: "):
            return error[len(said) + 2 :]
    return error


@app.command()
def score(
    run_dir: Path = typer.Argument(..., help="Run folder (with manifest.jsonl)."),
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        "-m",
        help="Comma-separated scorer names or checkpoint paths (default: every scorer in `attiqa models` "
        "but temu-layer and exiqa, which need an argument: temu-layer:N, exiqa:RUN).",
    ),
    batch_size: ScoringBatchSizeOption = 16,
    workers: WorkersOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Score every image of a run with every selected metric: scores/<metric>.csv (+ .json metadata).

    Rerunning scores only what is missing. A metric whose weights are not on this machine is reported and
    skipped; unreadable images are skipped and listed.
    """
    from attiqa.io.atomic import folder_held
    from genbench.metric_names import default_metrics, refuse_unknown

    names = _split_metrics(metrics, default_metrics)
    refuse_unknown(names or [])
    # RUN held, shared, from its checks to its last metric (each metric's file held too, by open_metric):
    # scores of other metrics run together; an import (or `genbench run`) writing RUN is one line here —
    # read half-written it was scored, or told "the import … did not finish", a rerun that would be
    # refused — and one started meanwhile is refused (it rewrote the manifest under the scores)
    fix = "let it finish, then run this score again"
    with folder_held(run_dir, "scoring", fix, command=Command.GENBENCH_SCORE, shared=True):
        _score_held(run_dir, names, batch_size, workers, device)


def _score_held(
    run_dir: Path, names: list[str] | None, batch_size: int, workers: int | None, device: str
) -> None:
    """`genbench score`'s work once RUN is held: its pairs and images checked, then each metric scored
    (a function of its own so that the command reads as its checks and one hold)."""
    from genbench.manifest import missing_images
    from genbench.metric_names import default_metrics

    pairs = _run_pairs(run_dir)
    missing_images(run_dir, pairs)  # none on disk: one line before any model loads (and before torch)
    from genbench.files import SCORES_DIR
    from genbench.run_scores import run_images, scores_folder

    names = names or default_metrics()
    scores_folder(run_dir)  # every metric writes there: a problem with it is one line, before any scoring
    dev = cache(partial(device_str, device))  # torch: resolved when a metric loads, not for one kept whole
    if device not in ("auto", "cpu"):
        dev()  # a device this machine lacks is one line before any metric
    ok = 0
    n_images = len(run_images(pairs))
    for name in names:
        rep = _score_metric(run_dir, pairs, name, dev, batch_size, workers, n_images)
        if rep.interruption is not None:  # its finished rows are in its file (in manifest order)
            kept = run_dir / SCORES_DIR / f"{rep.metric}.csv"
            console.print(
                f"[yellow]interrupted:[/] {plain_name(name)}: {rep.scored} scored, {rep.kept} already "
                f"scored, kept in {plain_name(kept)}; rerun the same command to score the rest",
                highlight=False,
            )
            raise InterruptedExit(rep.interruption)
        if rep.error:  # "skipped x.safetensors: x.safetensors: checkpoint not found" names it once
            why = without_name(str(rep.error), name)
            console.print(f"[yellow]skipped {plain_name(name)}:[/] {plain(why)}", highlight=False)
            continue
        ok += bool(rep.scored or rep.kept)  # a metric that could read no image did nothing
        console.print(
            f"{plain(name)}: {rep.scored} scored, {rep.kept} already scored, {len(rep.failed)} unreadable"
        )
        for f in rep.failed[:10]:
            console.print(f"  [yellow]skipped[/] {plain(f)}", highlight=False)
    if not ok:
        raise AttiqaError(
            "no metric could score this run — see above why each was skipped (scorer names: `attiqa models`)"
        )


@app.command()
def agree(
    run_dir: Path = typer.Argument(..., help="Run folder (manifest + scores/)."),
    prefs: Path | None = typer.Option(
        None,
        "--prefs",
        "-p",
        help="Preferences: CSV pair_id,choice[,rater] or a votes.sqlite (default: RUN/votes.sqlite once "
        "it holds a vote, else RUN/prefs.csv).",
    ),
    metrics: str | None = typer.Option(
        None, "--metrics", "-m", help="Comma-separated (default: all scored)."
    ),
    ties: str = typer.Option(
        "skip", help="Human ties (equal votes): skip | half (half credit, as PickScore)."
    ),
    model_ties: str = typer.Option("wrong", help="Equal metric scores: wrong (ImageReward's rule) | half."),
    bootstrap: int = typer.Option(
        10000, min=100, max=MAX_BOOTSTRAP, help="Bootstrap resamples for the 95% interval."
    ),
    seed: int = seed_option("Bootstrap seed."),
    cluster_by: str | None = typer.Option(
        None,
        help="Manifest field whose groups the bootstrap resamples (e.g. prompt_id): pairs sharing a "
        "prompt are not independent (default: resample pairs).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default: RUN/agreement)."),
) -> None:
    """Accuracy of each metric at picking the image people preferred (ATTIQA Table 8), with 95% CIs.

    Writes agreement.csv, per_pair.csv, agreement.json and a bar chart agreement.png.
    """
    from attiqa.io.atomic import WAIT_OR_OUT, folder_held
    from genbench.agreement import check_tie_rules, report_folder
    from genbench.files import SCORES_DIR

    check_tie_rules(ties, model_ties)
    chosen = _split_metrics(metrics, lambda: sorted(p.stem for p in (run_dir / SCORES_DIR).glob("*.csv")))
    pairs = _run_pairs(run_dir)
    out_dir = report_folder(run_dir, out)  # before the bootstrap, not after it
    # held from here to its last line: two runs at once with other settings wrote one's agreement.csv beside
    # the other's agreement.json; held for the files alone, a second run started meanwhile was refused only
    # after its whole bootstrap (or, started first, lost it to one started later). A folder made for it and
    # left empty (a bad --prefs) is removed again.
    with folder_held(out_dir, REPORTING, WAIT_OR_OUT, command=Command.GENBENCH_AGREE, make="--out"):
        write_agreement(run_dir, prefs, chosen, pairs, out_dir, ties, model_ties, bootstrap, seed, cluster_by)


def write_agreement(
    run_dir: Path,
    prefs: Path | None,
    chosen: list[str] | None,
    pairs: list,
    out_dir: Path,
    ties: str,
    model_ties: str,
    bootstrap: int,
    seed: int,
    cluster_by: str | None,
) -> None:
    """`genbench agree`'s work once its report folder ``out_dir`` is held: the votes read, each metric's
    agreement bootstrapped, the report written and the table printed. A function of its own so that the
    command reads as its checks and one hold (its whole body was indented under the hold)."""
    from genbench.agreement import (
        TRAINED_MARK,
        ci_wording,
        few_clusters_warning,
        first_votes,
        human_labels,
        metric_agreement,
        shared_prompts_note,
        wilson_note,
        write_report,
    )
    from genbench.prefs import aside_kind, is_vote_database, load_votes, prefs_kind, unused_prefs

    votes, source = load_votes(run_dir, prefs)
    votes, repeats = first_votes(votes)
    stale: set[str] = set()
    labels = human_labels(votes, pairs, source, left_out=stale)
    if not labels and not votes and not is_vote_database(source):  # a CSV's header: "collect" misled
        raise AttiqaError(
            f"{source}: no vote in it (a header, no line after it) — pass the preferences file the votes "
            f"were saved in, or collect some with `genbench vote {shell_arg(run_dir)}`"
        )
    if not labels:
        raise AttiqaError(f"{source}: no votes for this run's pairs yet — collect some with `genbench vote`")
    n_votes = sum(lab.votes_a + lab.votes_b for lab in labels.values())
    kind = prefs_kind([v for v in votes if v.pair_id in labels])
    console.print(
        f"preferences: {plain_name(source)} ({counted(n_votes, 'vote')} on "
        f"{counted(len(labels), 'pair')}) — {plain(kind)}",
        highlight=False,
    )
    if stale:  # pairs dropped from the run since (a damaged image being made again, a smaller re-import)
        n_stale = sum(v.pair_id in stale for v in votes)
        console.print(
            f"  [yellow]{counted(n_stale, 'vote')} on {counted(len(stale), 'pair')} not in the run's "
            f"manifest left out[/] (e.g. {plain(min(stale))})",
            highlight=False,
        )
    if repeats:
        v = repeats[0]
        console.print(
            f"  [yellow]{counted(len(repeats), 'repeated vote')} of a rater on a pair they voted on "
            f"before left out — the first counts, as in genbench vote[/] (e.g. rater {plain(v.rater)} on "
            f"pair {plain(v.pair_id)})",
            highlight=False,
        )
    left_aside = unused_prefs(run_dir, prefs, source)
    if left_aside is not None:
        kind_aside = aside_kind(left_aside, pairs)
        console.print(
            f"  [yellow]{plain_name(left_aside)} is not used: the run's votes count once anyone voted — "
            f"pass --prefs {plain(shell_arg(left_aside))} to measure against it ({plain(kind_aside)})[/]",
            highlight=False,
        )
    from genbench.run_scores import load_metric_scores  # torch-free: scores are read, not made

    scores = load_metric_scores(run_dir, chosen)
    results = [
        metric_agreement(pairs, labels, s, ties, model_ties, bootstrap, seed, cluster_by) for s in scores
    ]
    settings = {
        "prefs": str(source),
        "prefs_kind": kind,  # what the accuracies are measured against: people's votes or an import's
        "prefs_not_used": None if left_aside is None else str(left_aside),
        "ties": ties,
        "model_ties": model_ties,
        "bootstrap": bootstrap,
        "seed": seed,
        "cluster_by": cluster_by,
        "votes_left_out": sum(v.pair_id in stale for v in votes),  # on pairs not in the manifest
        "repeated_votes_left_out": len(repeats),  # a rater's later votes on a pair
    }
    write_report(out_dir, pairs, labels, results, scores, settings)
    for r in results:
        if r.trained_on:
            seen = ", ".join(_dataset_name(d) for d in r.trained_on.split(","))
            _say(
                "warning",
                f"{r.metric} was trained on {seen} images; agreement on them is not a held-out figure",
            )
    n_ties = sum(lab.label == "tie" for lab in labels.values())
    title = (
        f"agreement with human preference — {counted(len(labels), 'pair')} with votes, {n_ties} tied "
        f"({'skipped' if ties == 'skip' else 'half credit'})"
    )

    def pct(v: float) -> str:
        return "–" if math.isnan(v) else f"{100 * v:.1f}%"

    rows = [
        (  # *: trained on these images (see the warning)
            r.metric + (TRAINED_MARK if r.trained_on else ""),
            [
                str(r.pairs),
                pct(r.accuracy),
                pct(r.ci_low),
                pct(r.ci_high),
                str(r.model_ties),
                str(r.missing),
            ],
        )
        for r in results
    ]
    _agreement_table(title, rows, ci_wording(cluster_by), any(r.trained_on for r in results))
    for r, s in zip(results, scores, strict=True):
        if r.missing:  # its accuracy is over other pairs than the others': said, with the fix
            _say(
                "note",
                f"{r.metric}: {counted(r.missing, 'voted pair')} left out, an image without its score "
                f"(not scored yet, or unreadable) — `genbench score {shell_arg(run_dir)} -m "
                f"{shell_arg(s.scored_as)}` scores what it can and lists the rest",
            )
    for note in (wilson_note(results), shared_prompts_note(pairs, labels, cluster_by)):
        if note:
            _say("note", note)
    few = few_clusters_warning(pairs, labels, cluster_by)
    if few:
        _say("warning", few)
    console.print(f"report: {plain_name(out_dir)}/agreement.csv, per_pair.csv, agreement.json, agreement.png")


def _say(kind: str, text: str) -> None:
    """``agree``'s note or warning line, wrapped at 80 columns at spaces like its table (options such as
    ``--cluster-by`` kept whole): unwrapped, a terminal cut it mid-word and a log held one long line."""
    wrapped = "\n".join(wrap_words(f"{kind}: {text}", 80, rest="  "))
    console.print(f"[yellow]{kind}:[/]{plain(wrapped[len(kind) + 1 :])}", highlight=False)


def _agreement_table(title: str, rows: list[tuple[str, list[str]]], ci: str, trained: bool) -> None:
    """``agree``'s table: rich on a terminal of 100 columns or more; piped, logged or narrower, plain
    fixed-width lines (:func:`attiqa.cli.plain_table`) — at 80 columns rich folded a metric's name ("attiqa-
    agiqa3k" / "*", a checkpoint's longer stem over three lines) and the title. Either says what a "*"
    after a metric (``trained``: one was fitted on these images) means, not only the warning above it."""
    from genbench.agreement import TRAINED_NOTE

    wide = ("metric", "pairs", "accuracy", "95% CI", "model ties", "no score")
    cells = [(name, n, acc, f"{low} – {high}", ties, nan) for name, (n, acc, low, high, ties, nan) in rows]
    widths = table_widths(stdout, wide, cells)
    if widths is not None:
        caption = f"95% CI: {ci}" + (f"\n{TRAINED_NOTE}" if trained else "")  # a line each: narrower
        stdout.print(whole_word_table(wide, cells, widths, figures=True, title=title, caption=caption))
        return
    legend = (
        f"acc. = accuracy; low / high = its 95% interval ({ci}); m.ties = pairs the metric scored equal "
        "(model ties); no scr = pairs with an image the metric has no score for"
        + (f"; {TRAINED_NOTE}" if trained else "")
    )
    headers = ["pairs", "acc.", "low", "high", "m.ties", "no scr"]
    title, legend = ("\n".join(wrap_words(t, 80)) for t in (title, legend))
    text = plain_table(title, "metric", headers, rows, [legend], long_names="own line")
    stdout.print(text, highlight=False, markup=False, soft_wrap=True)


@app.command()
def vote(
    run_dir: Path = typer.Argument(..., help="Run folder (with manifest.jsonl)."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to bind (localhost by default; 0.0.0.0 = every network)."
    ),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0 = any free port)."),
    seed: str = typer.Option("", help="Changes every rater's pair order and left/right placement."),
    allow_host: list[str] = typer.Option(
        [],
        help="Host name raters may use besides IP addresses, localhost and this machine's name "
        "(repeatable; other names are refused against DNS rebinding).",
    ),
) -> None:
    """Serve the preference study (supplement §D.2) at http://HOST:PORT/ — votes go to RUN/votes.sqlite.

    Raters enter an id, then see two images side by side (no prompt), in their own random order and
    left/right placement, and vote with ← / → (or 1 / 2). Several raters can vote at once.
    """
    from genbench.vote.server import serve

    n = len(_run_pairs(run_dir))

    def ready(actual_port: int) -> None:  # once listening: a --host that fails is its one line alone
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(
                f"[yellow]warning:[/] listening on {plain(host)}: anyone who can reach this machine can vote"
            )
        console.print(
            f"serving {counted(n, 'pair')} on {study_url(host, actual_port)} (Ctrl-C to stop)",
            highlight=False,
        )

    try:
        serve(run_dir, host, port, seed, on_ready=ready, allow_hosts=allow_host)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the way a study ends
        from genbench.vote.store import VOTES_DB, VoteStore

        db = Path(run_dir) / VOTES_DB
        try:  # a database damaged while the study ran: the stop is said all the same, with why
            got = VoteStore(db, read_only=True).summary() if db.exists() else {"votes": 0, "raters": 0}
        except AttiqaError as err:
            console.print(f"[yellow]stopped:[/] {plain(str(err))}", highlight=False)
            raise InterruptedExit(exc) from exc
        console.print(
            f"[yellow]stopped:[/] {counted(got['votes'], 'vote')} from {counted(got['raters'], 'rater')} "
            "saved in "
            f"{plain_name(db)}; "
            f"`genbench vote {plain(shell_arg(run_dir))}` continues the study, `genbench agree "
            f"{plain(shell_arg(run_dir))}` measures the metrics against it",
            highlight=False,
        )
        raise InterruptedExit(exc) from exc


def study_url(host: str, port: int) -> str:
    """The address a rater opens: this machine for a wildcard host, an IPv6 address in brackets."""
    url_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{url_host}]:{port}/" if ":" in url_host else f"http://{url_host}:{port}/"


@app.command("export-votes")
def export_votes(
    run_dir: Path = typer.Argument(..., help="Run folder (with votes.sqlite)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="CSV to write (default: RUN/votes.csv)."),
) -> None:
    """Export the votes to CSV: pair_id, rater, choice (a|b), left_side, created_at (Unix time)."""
    from genbench.prefs import export_path
    from genbench.vote.store import VOTES_DB, VoteStore

    db = Path(run_dir) / VOTES_DB
    if not db.exists():
        raise AttiqaError(f"{db}: no votes yet — start the study with `genbench vote {shell_arg(run_dir)}`")
    store = VoteStore(db, read_only=True)
    target = export_path(run_dir, out)
    n = store.export_csv(target)
    raters = store.summary()["raters"]
    console.print(f"{plain_name(target)}: {counted(n, 'vote')} from {counted(raters, 'rater')}")


@app.command("import-imagereward")
def import_imagereward_cmd(
    json_file: Path = typer.Argument(
        ..., help="ImageReward test-format JSON (id, prompt, generations, ranking)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (manifest + prefs.csv)."),
    images: Path | None = typer.Option(
        None, help="Folder the 'generations' paths are relative to (default: the JSON file's folder)."
    ),
) -> None:
    """Turn ImageReward-style rankings into a run: every pair of images with distinct ranks + its preference.

    Then `genbench score OUT` and `genbench agree OUT` measure metrics on it (when the images are on disk).
    """
    from genbench.imagereward import import_imagereward

    with import_held(out, Command.GENBENCH_IMPORT_IMAGEREWARD):
        res = import_imagereward(json_file, images, out)
    console.print(
        f"{plain_name(out)}: {counted(res.pairs, 'pair')} from {counted(res.prompts, 'prompt')} "
        f"({counted(res.equal_rank_pairs, 'equal-rank pair')} left out, "
        f"{counted(len(res.skipped), 'malformed item')} skipped"
        + (f", {counted(len(res.single_image), 'item')} of one image: no pair" if res.single_image else "")
        + ")"
    )
    for s in res.skipped[:10]:
        console.print(f"  [yellow]skipped[/] {plain(s)}", highlight=False)
    if res.repeated_images:  # the same image twice in one item: its later copies left out
        n = len(res.repeated_images)
        console.print(
            f"  [yellow]{counted(n, 'generation')} repeat{'s' if n == 1 else ''} an image listed earlier in "
            f"{'its' if n == 1 else 'their'} item: left out[/] (e.g. {plain(res.repeated_images[0])})",
            highlight=False,
        )
    if res.repeated_items:
        console.print(f"  [yellow]{res.repeated_items} items repeat an earlier item of their id: left out[/]")
    if res.renamed:
        console.print(
            f"  [yellow]{len(res.renamed)} items use an id an earlier item has: renamed[/] "
            f"({plain(', '.join(res.renamed[:3]))}{', ...' if len(res.renamed) > 3 else ''})",
            highlight=False,
        )
    if res.missing:
        where = images if images is not None else json_file.parent
        if len(res.missing) == res.images:
            said = f"none of the {res.images} images is under {where} — pass --images FOLDER holding them"
        else:
            said = f"{len(res.missing)} of the {res.images} images are not under {where}"
        console.print(
            f"[yellow]{plain(said)}[/] (e.g. {plain(res.missing[0])}); `genbench score` skips missing images",
            highlight=False,
        )


@app.command("import-agiqa3k")
def import_agiqa3k_cmd(
    root: Path = typer.Argument(..., help="AGIQA-3k folder: the official data.csv + the images."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (manifest + prefs.csv)."),
    margin: float = typer.Option(0.5, help="Least MOS difference of a pair (0-5 scale; 0.5: a clear one)."),
    same_generator: bool = typer.Option(False, "--same-generator", help="Only pairs of one generator."),
) -> None:
    """Pairs of images of the same prompt whose quality MOS differ by >= MARGIN; the higher MOS is preferred.

    Then `genbench score OUT` and `genbench agree OUT` measure metrics against these human scores.
    """
    from genbench.agiqa3k import import_agiqa3k

    with import_held(out, Command.GENBENCH_IMPORT_AGIQA3K):
        res = import_agiqa3k(root, out, margin, same_generator)
    console.print(
        f"{plain_name(out)}: {counted(res.pairs, 'pair')} ({res.same_generator_pairs} of one generator) "
        f"from {counted(res.prompts, 'prompt')}, {counted(res.images, 'image')}; "
        f"{counted(res.close_pairs, 'pair')} "
        + (f"closer than {margin} MOS" if margin > 0 else "of equal MOS (no preference)")
        + " left out"
        + (f", {res.other_generator_pairs} of two generators left out" if same_generator else "")
    )
    left_out = [(res.repeated_rows, "repeats", "repeat", "an earlier row (same image, same MOS)"),
                (res.without_mos, "has", "have", "no finite mos_quality"),
                (res.without_prompt, "has", "have", "an empty prompt")]  # fmt: skip
    for n, one, many, why in left_out:  # "1 row … repeats", "3 rows … repeat" (was "1 rows … repeat")
        if n:
            verb = one if n == 1 else many
            console.print(f"  [yellow]{counted(n, 'row')} of the score file {verb} {why}: left out[/]")
    if res.missing:
        k = len(res.missing)
        are = "is" if k == 1 else "are"
        console.print(f"  [yellow]{counted(k, 'image')} of the score file {are} not on disk[/] "
                      f"(e.g. {plain(res.missing[0])})", highlight=False)  # fmt: skip
    if res.unlisted:  # a data.csv cut short imported as the whole dataset
        k, first = len(res.unlisted), Path(res.unlisted[0])
        console.print(f"  [yellow]{counted(k, 'image')} in {plain(str(first.parent))} "
                      f"{'has' if k == 1 else 'have'} no row in the score file: left out[/] (e.g. "
                      f"{plain(first.name)}) — is the score file whole?", highlight=False)  # fmt: skip


def main() -> None:
    from attiqa.cli import run_app

    # click's plain help where rich's panel would squeeze it (it cut "stabilityai/stable-diff…")
    run_app(app, SYNONYMS)


if __name__ == "__main__":
    main()
