"""``isp-tune``: tune a raw ISP by reinforcement learning against an image-quality scorer (typer + rich).

Errors (:class:`attiqa.errors.AttiqaError`, e.g. an unreadable raw, no default model) end as one red line and
exit code 2 — never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from attiqa.cli import InterruptedExit, plain_table, seed_option, table_widths, whole_word_table, wrap_words
from attiqa.errors import AttiqaError, ConfigError
from attiqa.io.atomic import (
    OUT_FIX,
    folder_held,
    output_folder,
    resume_fix,
    resumed_busy_fix,
    write_json_atomic,
)
from attiqa.io.commands import Command
from attiqa.io.cores import MAX_WORKERS
from attiqa.io.formats import format_list
from attiqa.progress import console, plain, plain_name
from attiqa.scorers.zoo import refuse_unknown_scorer
from isp_env.registration import (
    ACTION_MODE,
    ALGO,
    BASE,
    BUFFER_SIZE,
    CHECKPOINT_EVERY,
    CMA_GLOBAL_BUDGET,
    CMA_IMAGE_BUDGET,
    GROUP_BY_DEFAULT,
    MAX_STEPS,
    N_ENVS,
    OBS_MODE,
    TEST_FRACTION,
    TEST_RAWS,
    TIMESTEPS,
)

if TYPE_CHECKING:
    from isp_env.raw import RawImage
    from isp_env.tuning import CheckedSetting

BATCH_SIZE = 64  # the RL agents' minibatch: --batch-size's default, said by its error

app = typer.Typer(
    name="isp-tune",
    help="Tune the parameters of a raw ISP (isp_env.params; docs/isp.md) with an SB3 agent whose reward is "
    "an image-quality MOS (ATTIQA §5.2).\n\n`isp-tune --raw-dir DIR --out RUN` splits the raws, trains, "
    "tunes and renders the test raws at full resolution and compares with baselines (neutral, rawpy, "
    "global / per-image CMA-ES). "
    "RUN gets policy.safetensors + .json, test/METHOD/params/*.json (METHOD: teacher or agent, and "
    "teacher_checked: the policy checked against its base and neutral by the reward), "
    "test/METHOD/renders/*.png (the CMA-ES baselines' too: METHOD cma_global, cma_per_image), the CMA-ES "
    "parameters in baselines/cma_global.json and baselines/cma_per_image.json, results.csv, summary.json, "
    "report.md, grid.png. Rerun the same command to resume.\n\n`isp-tune render RAW -o out.png` renders one "
    "raw (`--check`: the best of the policy, its base and neutral by the reward); `isp-tune check DIR "
    "--policy P` compares a policy with neutral on a folder of raws.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    invoke_without_command=True,
)
stdout = Console()
SYNONYMS = {"tune": ""}
"""Words a user may type for a command ("": the bare ``isp-tune``, which tunes; the usage error says so)."""

# Upper bounds of the size options, refused by the option parser before any raw is read: a preview is a
# small render (the scorer's own view is 500 px on the shorter side) and a larger one only upscales the raw.
PREVIEW_MAX = 4096
OBS_SIZE_MAX = 512

_MODEL_HELP = (
    "Scorer for the reward: an ATTIQA checkpoint (.safetensors), a named model, or `classical` "
    "(weight-free). Default: the bundled ATTIQA model."
)


def _print_named_rows(
    title: str, key: str, columns: dict[str, str], rows: list[tuple[str, list[str]]], legend: str
) -> None:
    """A table of rows named in its first column (``columns``: each figure column's header -> its short
    header of at most 7 characters). On a terminal of 100 columns or more, a rich table; piped, logged or
    narrower, :func:`attiqa.cli.plain_table`'s fixed-width lines with ``legend`` under them (the short
    headers' meaning). At 80 columns the rich table folded every name over two or three lines ("a2tools_" /
    "_DC0008L", "rawpy.pos" / "tprocess(" / ")") and cut a header to "saturati…"."""
    headers = (key, *columns)
    cells = [(name, *figures) for name, figures in rows]
    widths = table_widths(stdout, headers, cells)
    if widths is not None:
        stdout.print(whole_word_table(headers, cells, widths, figures=True, title=title, show_lines=False))
        return
    footer = ["\n".join(wrap_words(legend, 80))]
    text = plain_table(title, key, list(columns.values()), rows, footer, long_names="own line")
    stdout.print(text, highlight=False, markup=False, soft_wrap=True)


@contextlib.contextmanager
def kept_on_interrupt(out: Path) -> Iterator[None]:
    """Ctrl-C / SIGTERM during a run or a check: say that its finished work is kept in ``out`` and how to
    resume it (it was a bare "interrupted": a user did not know the same command resumes), exit 130 / 143.
    A disk filled mid-run: one line saying so and that a rerun resumes (it was "No space left on device —
    check the path (a file where a folder should be?) …", no file, no word of the finished work)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        console.print(
            f"[yellow]interrupted:[/] the finished work is kept in {plain_name(out)}; rerun the same command "
            "to resume",
            highlight=False,
        )
        raise InterruptedExit(exc) from exc
    except OSError as exc:  # a disk filled mid-run said no file and no resume ("check the path …")
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f"{exc.filename}: " if exc.filename else f"{out}: "
        into = f" writing into {out}" if exc.filename else ""
        raise ConfigError(
            f"{where}no space left on the disk (or quota){into} — free some space, then rerun the same "
            "command to resume: the finished work is kept"
        ) from exc


def is_default(ctx: typer.Context, name: str) -> bool:
    """Parameter ``name`` took its default (not typed, not from the environment)."""
    source = ctx.get_parameter_source(name)
    return source is None or source.name in ("DEFAULT", "DEFAULT_MAP")


@app.callback()
def tune(
    ctx: typer.Context,
    raw_dir: Path | None = typer.Option(
        None,
        "--raw-dir",
        help="Folder of raws, searched recursively "
        "(MIT-Adobe FiveK's raw_photos/HQa*/photos/*.dng included).",
    ),
    out: Path = typer.Option(Path("runs/isp"), "--out", "-o", help="Run folder (rerun to resume)."),
    timesteps: int = typer.Option(TIMESTEPS, min=1, help="Agent environment steps."),
    algo: str = typer.Option(
        ALGO,
        help="teacher (per-image CMA-ES optima of the training raws "
        "regressed on image statistics: the measured best, docs/isp.md) | sac | ppo "
        "| td3",
    ),
    model: str | None = typer.Option(None, "--model", "--reward-model", "-m", help=_MODEL_HELP),
    n_envs: int = typer.Option(
        N_ENVS,
        min=1,
        max=MAX_WORKERS,  # each a process with its own reward model: bounded as --workers are
        help="Parallel environments (one process each).",
    ),
    preview: int | None = typer.Option(
        None,
        min=32,
        max=PREVIEW_MAX,  # 10**8 was an upscale of every raw to a 10**8-px side: a torch allocation traceback
        help="Long side of preview renders. Default: render at the scorer's own scale and score in one pass.",
    ),
    obs_size: int = typer.Option(
        64, min=36, max=OBS_SIZE_MAX, help="Side of the policy's image observation."
    ),
    max_steps: int = typer.Option(
        1,
        min=1,
        max=MAX_STEPS,  # an episode that never ended (isp_env.registration.MAX_STEPS: why 20)
        help="Steps per episode (1: one-step contextual policy).",
    ),
    action_mode: str = typer.Option(ACTION_MODE, help="residual (offsets around --base) | absolute | delta"),
    obs_mode: str = typer.Option(
        OBS_MODE, help="stats (MLP on image statistics) | image (CNN on the render)"
    ),
    base: str = typer.Option(
        BASE,
        help="Residual actions: the setting action 0 renders — global (one "
        "setting found by CMA-ES on the training raws), neutral, or a parameter JSON.",
    ),
    residual_scale: float | None = typer.Option(
        None,
        min=0.01,
        max=2.0,
        help="Residual actions: largest offset from the base, in normalised units "
        "(each range is 2 wide). Default: by --algo, the whole range for the teacher (its regression keeps "
        "it near the base), less for an RL agent (docs/isp.md; isp_env/train_config.py).",
    ),
    guard: bool = typer.Option(True, help="Subtract the over-processing penalty from the reward."),
    test_fraction: float = typer.Option(
        TEST_FRACTION,
        min=0.0,
        max=0.9,
        help="Share of raws held out for testing "
        "(whole scene groups, from DIR/manifest.csv when present, or whole cameras: --group-by; by camera "
        "whole cameras go, so a split of few cameras barely follows it: another --seed picks others); 0: "
        "train on every raw (a policy to ship), evaluate nothing.",
    ),
    group_by: str = typer.Option(
        GROUP_BY_DEFAULT,
        help="What the split holds out whole: scene (repeat shots of a subject stay on one side) | camera "
        "(no camera on both sides: does a policy carry to a new camera? The camera: DIR/manifest.csv's "
        "libraw_make and libraw_model, else a DNG's Make and Model tags).",
    ),
    test_raws: int | None = typer.Option(
        None,
        min=1,
        help="Evaluates at most this many of the held-out raws, spread over the scene groups, seeded: "
        f"each costs scorer calls and full-resolution renders (default {TEST_RAWS}; fewer held out: all).",
    ),
    synth_photos: Path | None = typer.Option(
        None, help="Folder of photos to unprocess into synthetic training raws (Brooks et al. 2019)."
    ),
    init_policy: str | None = typer.Option(
        None,
        help="Start from this policy ('default' = the shipped "
        "one): --algo teacher adds its training rows to every fit and "
        "uses its base; SAC distils it into the actor.",
    ),
    seed: int = seed_option("Seed of the split and the agent."),
    checkpoint_every: int = typer.Option(CHECKPOINT_EVERY, min=1, help="Steps between resume checkpoints."),
    batch_size: int = typer.Option(
        BATCH_SIZE, min=2, help="RL agents: minibatch size of each gradient step."
    ),
    learning_starts: int = typer.Option(200, min=0, help="SAC/TD3: random steps before learning."),
    cma_global_budget: int = typer.Option(
        CMA_GLOBAL_BUDGET, min=1, help="Scorer calls of the global CMA-ES search (baseline, --base global)."
    ),
    cma_image_budget: int = typer.Option(
        CMA_IMAGE_BUDGET, min=1, help="Scorer calls of per-image CMA-ES per test raw."
    ),
    teacher_budget: int | None = typer.Option(
        None,
        min=2,
        help="--algo teacher: scorer calls of each per-image CMA-ES search on a training raw (default 150).",
    ),
    teacher_raws: int | None = typer.Option(
        None,
        min=2,
        help="--algo teacher: searches at most this many "
        "training raws, spread over the scene groups (default 60).",
    ),
    teacher_restarts: int | None = typer.Option(
        None,
        min=1,
        help="--algo teacher: independent searches per "
        "training raw; the best setting is its target (default 3).",
    ),
    teacher_start: str | None = typer.Option(
        None,
        help="--algo teacher: start each search at the neutral setting, like the per-image baseline "
        "(neutral, default), or at the base (base).",
    ),
    baselines: bool = typer.Option(True, help="Also run neutral, rawpy, global and per-image CMA-ES."),
) -> None:
    """Train an agent on the training raws, tune + render the test raws, compare with baselines.

    Writes into --out: policy.safetensors + policy.json, test/METHOD/params/*.json (METHOD: teacher or
    agent), test/METHOD/renders/*.png (full resolution; the CMA-ES baselines' too, as cma_global and
    cma_per_image), the CMA-ES parameters in baselines/cma_global.json and baselines/cma_per_image.json,
    results.csv, summary.json, report.md, grid.png. Rerunning the same command resumes.
    """
    if ctx.invoked_subcommand is not None:
        return
    if raw_dir is None:  # exit 2 as bare `attiqa` / `genbench` (click's usage exit): it was 0, read as done
        typed = [p.name for p in ctx.command.params if p.name and not is_default(ctx, p.name)]
        if typed:  # options but no raw folder: one line, not the whole help
            raise ConfigError("--raw-dir is missing: pass the folder of raws to tune on (isp-tune --help)")
        console.print(ctx.get_help(), markup=False, highlight=False)  # "[default: …]": not markup
        raise typer.Exit(2)
    if not raw_dir.is_dir():
        from isp_env.raw import unreadable

        link = unreadable(raw_dir) if raw_dir.is_symlink() else None  # a symlink loop, a broken link
        raise ConfigError(
            f"{raw_dir}: " + (link.reason if link else "not a folder — pass --raw-dir with your raw files")
        )
    # before any search; made by `run` once the settings pass. A run to resume (run.json) is not left for
    # "another --out": that would throw its finished searches away; a finished one (an archive made
    # read-only) has nothing to write, which `run` finds out before it raises this refusal
    resume = (out / "run.json").is_file()
    fix = resume_fix(out, "the run in it", OUT_FIX, recursive=True) if resume else None
    unwritable: AttiqaError | None = None
    try:
        output_folder(out, "--out", fix, create=False)
        for folder in sorted(p for p in out.rglob("*") if p.is_dir()) if resume else ():
            output_folder(folder, "--out", fix, create=False)  # its first write said "write somewhere else"
    except AttiqaError as exc:
        if not resume:
            raise
        unwritable = exc
    if batch_size > BUFFER_SIZE:  # the buffer grew to the batch: numpy's "Maximum allowed dimension"
        raise ConfigError(
            f"--batch-size {batch_size}: larger than the agents' replay buffer ({BUFFER_SIZE} "
            f"steps) — pass at most {BUFFER_SIZE} (default {BATCH_SIZE})"
        )
    from isp_env.run_inputs import InputSettings, run_inputs
    from isp_env.train_config import TeacherSettings, TrainConfig

    given: dict[str, Any] = {
        "budget": teacher_budget,
        "restarts": teacher_restarts,
        "start": teacher_start,
        "raws": teacher_raws,
    }
    teacher_given = {k: v for k, v in given.items() if v is not None}  # the rest: TeacherSettings' defaults
    teacher = TeacherSettings(**teacher_given)
    cfg = TrainConfig(
        algo=algo.lower(),
        timesteps=timesteps,
        n_envs=n_envs,
        preview=preview,
        obs_size=obs_size,
        max_steps=max_steps,
        action_mode=action_mode,
        obs_mode=obs_mode,
        delta_scale=residual_scale if action_mode == "residual" else None,
        guard=guard,
        seed=seed,
        checkpoint_every=checkpoint_every,
        batch_size=batch_size,
        learning_starts=learning_starts,
        scorer=model,
        init_policy=init_policy,
    )
    split: dict[str, Any] = {"test_fraction": test_fraction, "group_by": group_by, "base": base}
    split["synth_photos"] = synth_photos
    if test_raws is not None:  # else InputSettings' one default
        split["test_raws_cap"] = test_raws
    # what needs no model, said before torch and SB3 load, as the library's runs say it (run_inputs: the
    # config and -m first, with the options typed that this run ignores — a warning, after the refusals
    # above — then check_start, then the listing of a FiveK-sized folder: minutes)
    options = {p.name for p in ctx.command.params if p.name and not is_default(ctx, p.name)}
    settings = InputSettings(raw_dir=raw_dir, out=out, **split)
    inputs = run_inputs(settings, cfg, teacher, given=options, baselines=baselines)
    from isp_env.report import printed_table
    from isp_env.run import run

    with kept_on_interrupt(out), ExitStack() as held:  # --out held from run's first write to the end
        summary = run(
            inputs,  # with --test-fraction, --synth-photos, --base, --test-raws, --group-by
            cfg,
            baselines=baselines,
            cma_global_budget=cma_global_budget,
            cma_image_budget=cma_image_budget,
            teacher=teacher,
            unwritable=unwritable,
            held=held,
        )
    if not summary:  # --test-fraction 0: a policy trained on every raw, nothing held out to report
        return
    columns, rows, legend = printed_table(summary)
    _print_named_rows(f"isp-tune: held-out raws ({summary[0]['n_images']})", "method", columns, rows, legend)
    method = "teacher" if cfg.algo == "teacher" else "agent"  # the folder isp_env.run.evaluate writes
    console.print(
        f"report: {plain_name(out / 'report.md')}, renders: {plain_name(out / 'test' / method / 'renders')}"
    )


@app.command()
def check(
    raw_dir: Path = typer.Argument(..., help="Folder of raws, searched recursively."),
    policy: str = typer.Option(
        "default",
        "--policy",
        help="policy.safetensors from an isp-tune run (or the run folder), or `default`.",
    ),
    model: str | None = typer.Option(None, "--model", "--reward-model", "-m", help=_MODEL_HELP),
    out: Path = typer.Option(Path("runs/policy_check"), "--out", "-o", help="Report folder."),
    test_raws: int | None = typer.Option(
        None,
        min=1,
        help="Evaluates at most this many of the raws, spread over the scene groups (DIR/manifest.csv), "
        f"seeded by --seed, as isp-tune's held-out raws (default {TEST_RAWS}).",
    ),
    seed: int = seed_option("Seed of the --test-raws sample."),
    group_by: str = typer.Option(
        GROUP_BY_DEFAULT,
        "--group-by",
        help="What the --test-raws sample is spread over: scene (groups) or camera — each raw's camera read "
        "as isp-tune --group-by camera reads it, a raw with none refused the same way.",
    ),
) -> None:
    """A policy against the neutral render on a folder of raws — before trusting it on another camera's raws.

    Each raw (at most --test-raws of them) rendered neutral and with the policy, both scored by the reward
    model (MOS, and MOS minus the over-processing penalty); no search, minutes not hours. OUT gets
    results.csv, summary.json, report.md, grid.png and the renders. A teacher policy is for the cameras it
    was trained on: on a camera left out of training it can fail badly (docs/isp.md, "Leave one camera
    out"); the checked setting (`isp-tune render --check`: the best of the
    policy, its base and neutral by the reward) is shown beside it. Whether a recipe carries to a new
    camera at all: `isp-tune --raw-dir DIR --group-by camera` trains on some cameras' raws and tests on
    the others'.
    """
    import statistics

    if not raw_dir.is_dir():
        from attiqa.io.formats import RAW_EXTENSIONS

        one = raw_dir.is_file() and raw_dir.suffix.lower() in RAW_EXTENSIONS  # check one raw: render --check
        cmd = shlex.join(["isp-tune", "render", str(raw_dir), "--policy", policy, "--check"])
        cmd += f" -m {shlex.quote(model)}" if model else ""
        raise ConfigError(
            f"{raw_dir}: "
            + (
                f"a raw file, not a folder — for this one raw, {cmd} -o {shlex.quote(raw_dir.stem + '.png')} "
                "renders the best of the policy, its base and neutral by the reward; or give the folder "
                "that holds the raws"
                if one
                else "not a folder — give the folder that holds the raws"
            )
        )
    output_folder(out, "--out", create=False)
    from isp_env.run_inputs import check_inputs

    refuse_unknown_scorer(model)  # before the raws are probed
    # what needs no model, said before torch loads (a raw no camera names, by camera, in the run's line)
    inputs = check_inputs(raw_dir, out, policy, group_by)
    from isp_env.report import better_than, kept_counts
    from isp_env.run import check_policy

    given = {} if test_raws is None else {"test_raws_cap": test_raws}  # else check_policy's one default
    # held from before its first write (two checks into one --out wrote each other's report); a new --out
    # made for it, removed again if a refusal (a reward model that cannot load) leaves it empty
    busy = resumed_busy_fix()
    with (
        kept_on_interrupt(out),
        folder_held(out, "checking a policy in", busy, command=Command.ISP_CHECK, make="--out"),
    ):
        rows = check_policy(inputs, model, seed=seed, **given)
    cols = ("neutral_mos", "policy_mos", "neutral_guarded", "policy_guarded", "checked_guarded")
    short = ("MOS neu", "MOS pol", "grd neu", "grd pol", "grd chk")
    _print_named_rows(
        f"isp-tune check: {policy} against neutral ({len(rows)} raws)",
        "raw",
        {**{c.replace("_", " "): sh for c, sh in zip(cols, short, strict=True)}, "checked kept": "kept"},
        [(str(r["image"]), [*(f"{float(r[k]):.2f}" for k in cols), str(r["checked_kept"])]) for r in rows],
        "MOS neu / pol: MOS of the neutral render / the policy's; grd neu / pol / chk: guarded reward of "
        "neutral / the policy / the checked setting; kept: the candidate the check kept",
    )
    for what, who, key in (
        ("MOS", "policy", "mos"),
        ("guarded reward", "policy", "guarded"),
        ("guarded reward", "checked", "guarded"),
    ):
        before = [float(r[f"neutral_{key}"]) for r in rows]
        after = [float(r[f"{who}_{key}"]) for r in rows]
        gains = [a - b for a, b in zip(after, before, strict=True)]
        wins = sum(better_than(a, b) for a, b in zip(after, before, strict=True))  # a tie is no win
        stdout.print(
            f"{what}: {who} above neutral on {wins} of {len(gains)} raws; mean "
            f"{statistics.mean(before):.2f} -> {statistics.mean(after):.2f} "
            f"(median gain {statistics.median(gains):+.2f})"
        )
    kept = kept_counts(str(r["checked_kept"]) for r in rows)
    stdout.print(
        "checked (isp-tune render --check): kept "
        + ", ".join(f"the {who} on {n}" for who, n in kept.items())
        + " raws"
    )
    console.print(f"report: {plain_name(out / 'report.md')}, grid: {plain_name(out / 'grid.png')}")


@app.command()
def render(
    raw: Path = typer.Argument(..., help="Raw file (DNG or a camera format LibRaw reads)."),
    output: Path = typer.Option(..., "--output", "--out", "-o", help=f"Output image: {format_list()}."),
    policy: str | None = typer.Option(
        None,
        "--policy",
        help="policy.safetensors from an isp-tune run (or the run folder), or `default` for the policy "
        "shipped with the package.",
    ),
    params: Path | None = typer.Option(
        None,
        "--params",
        help="JSON of parameters (name -> value; a run's test/METHOD/params/RAW.json, "
        "baselines/cma_global.json or, for its raws, baselines/cma_per_image.json; a render's OUT.png.json); "
        "missing names take the neutral default.",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="With --policy: score the policy's setting, its base and neutral with the reward model and "
        "render the best (two or three scorer calls) — for raws of a camera the policy never saw.",
    ),
    model: str | None = typer.Option(None, "--model", "--reward-model", "-m", help=_MODEL_HELP),
) -> None:
    """Render one raw at full resolution: with a trained policy, a parameter file, or the neutral defaults.

    Beside the image, OUTPUT.json (e.g. out.png.json) records what it was rendered with — the setting, the
    policy (its file and sha256) or parameter file, the checked candidate kept — and the parameters: `--params
    out.png.json` renders it again."""
    from PIL import Image

    from attiqa.io.images import save_format, save_image
    from isp_env.params import neutral
    from isp_env.raw import read_raw

    if policy is not None and params is not None:
        raise ConfigError("pass either --policy or --params, not both")
    if (check or model is not None) and policy is None:
        raise ConfigError(
            f"{'--check' if check else '--model'} checks a policy's setting: pass --policy too "
            "(e.g. --policy default --check)"
        )
    if model is not None and not check:
        raise ConfigError("--model is the reward model of --check: pass --check too")
    refuse_unknown_scorer(model)  # before the raw is read and tuned
    if raw.is_dir():
        raise ConfigError(_folder_to_render(raw, policy))
    if output.is_dir():
        raise ConfigError(f"--output {output}: a folder — give a file name, e.g. {output / 'render.png'}")
    save_format(output)  # an unknown suffix is refused before the raw is read
    output_folder(output.parent, "--output")
    from isp_env.isp import develop, finish  # torch: after the checks above

    raw_img = read_raw(raw)
    if policy is not None:
        from attiqa.io.hashes import sha256_of
        from isp_env.policy_files import resolve_policy
        from isp_env.policy_io import load_policy
        from isp_env.report import policy_label
        from isp_env.tuning import tune_with_policy

        policy_file = resolve_policy(policy)  # a run whose training has not finished: refused there
        pol, card = load_policy(policy_file)
        values = tune_with_policy(pol, card, raw)
        kind = policy_label("teacher" if card.get("algo") == "teacher" else "agent", card)  # the card's own
        record: dict[str, Any] = {
            "setting": "policy",
            "rendered_with": f"the policy {policy} ({kind})",
            "policy": policy,
            "policy_file": str(policy_file),
            "policy_sha256": sha256_of(policy_file),
        }
        if check:
            c, reward_model = _checked_render_setting(policy, card, raw, raw_img, values, model)
            values = c.params
            record |= {
                "setting": "policy, checked",
                "rendered_with": f"{record['rendered_with']}, checked by {reward_model}: the {c.chosen}'s "
                "setting",
                "reward_model": reward_model,
                "kept": c.chosen,
                "scores": c.scores,
            }
    elif params is not None:
        from isp_env.policy_io import policy_given_as_params

        policy_path = policy_given_as_params(params)
        if policy_path is not None:  # it was "unknown ISP parameter(s) ['algo', ...]" or a decode error
            run_dir = policy_path if policy_path.is_dir() else policy_path.parent
            example = next(iter(sorted(run_dir.glob("test/*/params/*.json"))), None)
            raise ConfigError(
                f"{params}: an isp-tune {'run folder' if params.is_dir() else 'policy'}, not parameter "
                f"values — render with its policy: --policy "
                f"{shlex.quote(str(policy_path))}"
                + (
                    f"; or pass --params a setting the run tuned, e.g. {shlex.quote(str(example))}"
                    if example
                    else ""
                )
            )
        values, of_raw = _given_setting(params, raw)
        record = {
            "setting": "parameter file",
            "rendered_with": f"the parameters in {params}" + (f" for the raw {of_raw}" if of_raw else ""),
            "params_file": str(params),
        }
    else:
        values = neutral()
        record = {"setting": "neutral", "rendered_with": "the neutral defaults (no --policy or --params)"}
    rgb = finish(develop(raw_img), values)
    save_image(Image.fromarray(rgb), output)
    sidecar = Path(f"{output}.json")  # out.png.json: a render's setting beside it, --params reads it back
    write_json_atomic(
        sidecar, {"raw": os.path.abspath(raw), "render": str(output), **record, "params": values}
    )
    console.print(
        f"{plain_name(raw)} -> {plain_name(output)} ({rgb.shape[1]}x{rgb.shape[0]}), rendered with "
        f"{plain(record['rendered_with'])}; setting: {plain_name(sidecar)}",
        highlight=False,
    )
    stdout.print_json(json.dumps(values))


def _folder_to_render(folder: Path, policy: str | None) -> str:
    """``render DIR``'s line: the command that renders one of its raws, and ``isp-tune check``, which
    renders each of them with a policy (it was "pass one raw (`isp-tune --raw-dir` takes folders)":
    a command that tunes, not one that renders)."""
    from isp_env.raw import find_raws

    first = next(iter(find_raws(folder)), None)
    if first is None:
        return f"{folder}: a folder, not a raw file — pass one camera raw or DNG; this folder holds none"
    given = ["--policy", policy] if policy else []
    one = shlex.join(["isp-tune", "render", str(first), *given, "-o", first.stem + ".png"])
    every = shlex.join(["isp-tune", "check", str(folder), "--policy", policy or "default", "-o", "OUT"])
    return (
        f"{folder}: a folder, not a raw file — render one raw of it ({one}), or render each of its raws "
        f"with a policy: {every} (full resolution, in OUT/test/policy/renders/)"
    )


def _setting_of(doc: dict[str, Any], raw: Path) -> list[str]:
    """The names in a setting per raw that may be ``raw``'s: the one recording ``raw`` itself, else those
    whose raw's path under its folder (:func:`isp_env.params.recorded_tail`) ends ``raw``'s path — the
    longest such end — else (earlier files, no raw recorded) those named after its stem. By the stem
    alone, ``sub__x.dng`` took the setting saved under ``sub__x``: ``sub/x.dng``'s; by the path as the run
    was given it, relative to its working folder, a render from another folder matched by file name only."""
    from isp_env.params import recorded_tail

    recorded = {k: v for k, v in doc.items() if isinstance(v.get("raw"), str)}
    here = raw.resolve()
    same = [k for k, v in recorded.items() if Path(v["raw"]).resolve() == here]
    if same:
        return same
    ends = (Path(os.path.abspath(raw)).parts, here.parts)
    tails = {
        k: t for k, v in recorded.items() if (t := recorded_tail(v)) and any(e[-len(t) :] == t for e in ends)
    }
    longest = max(map(len, tails.values()), default=0)
    named = [k for k, t in tails.items() if len(t) == longest]
    return named + [k for k in doc if k not in recorded and (k == raw.stem or k.endswith(f"__{raw.stem}"))]


def _given_setting(path: Path, raw: Path) -> tuple[dict[str, float], str | None]:
    """``render --params FILE``'s values, and the raw they are for when FILE holds a setting per raw (an
    isp-tune run's ``baselines/cma_per_image.json``, which report.md lists as the per-image search's
    parameters: its raws' names were "unknown ISP parameters")."""
    from isp_env.params import given_values

    problem, fix = "not a usable parameter JSON", "see isp_env/params.py for the names and ranges"
    try:  # read once: a setting per raw picks this raw's, any other document is the setting itself
        doc = json.loads(path.read_text())
        of_raw = None
        if isinstance(doc, dict) and doc and all(isinstance(v, dict) and "params" in v for v in doc.values()):
            mine = _setting_of(doc, raw)
            if len(mine) != 1:
                some = ", ".join(sorted(doc)[:3])
                raise ConfigError(
                    f"{path}: a setting per raw ({len(doc)} raws: {some}, …), "
                    + ("none" if not mine else f"{len(mine)}")
                    + f" for {raw.name} — render one of its raws, or pass a single setting (a run's "
                    "baselines/cma_global.json, test/METHOD/params/RAW.json)"
                )
            of_raw = mine[0]
            doc = doc[of_raw]
        elif isinstance(doc, dict) and isinstance(doc.get("raw"), str) and not _setting_of({"": doc}, raw):
            # another raw's tuned setting (RAW.json, a render's OUT.png.json) was rendered without a word
            tuned_for = Path(doc["raw"]).name
            console.print(
                f"[yellow]note[/] {plain_name(path)} is the setting tuned for {plain(tuned_for)}, "
                f"not {plain(raw.name)} — rendered with it as given",
                highlight=False,
            )
        return given_values(doc), of_raw
    except OSError as exc:  # "not a usable parameter JSON … see isp_env/params.py" for a path typo
        what = "a folder, not a parameter JSON file" if path.is_dir() else f"cannot read it ({exc.strerror})"
        raise ConfigError(
            f"{path}: {what} — check the --params path (a run's test/METHOD/params/RAW.json, "
            "baselines/cma_global.json, a render's OUT.png.json)"
        ) from None
    except (ValueError, AttributeError) as exc:  # read_values' one line, for either kind of file
        raise ConfigError(f"{path}: {problem} ({exc}) — {fix}") from None


def _checked_render_setting(
    spec: str,
    card: dict[str, Any],
    raw: Path,
    raw_img: RawImage,
    values: dict[str, float],
    model: str | None,
) -> tuple[CheckedSetting, str]:
    """``isp-tune render --check``: the policy's ``values`` checked against its base and neutral by the
    reward model at the scale ``isp-tune check`` scores (:func:`isp_env.tuning.checked_setting`)."""
    from isp_env.mos_function import load_mos_function
    from isp_env.reward import guarded_item, scorer_view
    from isp_env.tuning import check_reward_model, checked_setting

    mos = load_mos_function(model)  # a misspelt --model refused before a warning about its weights
    check_reward_model(spec, card, model, refuse=False)
    item = guarded_item(raw, scorer_view(mos), raw=raw_img)
    c = checked_setting(values, card, item, mos)
    scores = ", ".join(f"{who} {score:.2f}" for who, score in c.scores.items())
    console.print(f"checked by {mos.name}: kept the {c.chosen}'s setting ({scores})")
    return c, mos.name


def main() -> None:
    from attiqa.cli import run_app

    run_app(app, SYNONYMS)


if __name__ == "__main__":
    main()
