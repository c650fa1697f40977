"""`isp-tune --raw-dir DIR`: split, train, apply the agent to the test images, run the baselines, report.

* Split (issue 19): by *scene group* — repeat shots of one subject stay on one side. Groups come from a
  ``manifest.csv`` in DIR (columns ``file`` and ``scene_group``) when there is one, else every raw is its own
  group. ``group_by="camera"`` (``--group-by camera``): by camera instead, no camera on both sides
  (:func:`isp_env.run_inputs.raw_cameras`). Only held-out raws are evaluated.
* Synthetic training raws (``--synth-photos``, :mod:`isp_env.synth`) are added to the training side only.
* Every method is scored the way the agent's reward is (the render at the scorer's scale, one pass) and
  reported with the guard's penalty, the fraction of pixels with a clipped channel and the mean HSV
  saturation of the full-resolution render.

Every stage is resumable: training from its checkpoint, per-image outputs are skipped when present, baseline
results are saved image by image. Unreadable raws are skipped and listed in ``summary.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from attiqa.errors import AttiqaError, ConfigError, ImageLoadError
from attiqa.io.atomic import (
    FOLDER_LOCK,
    folder_held,
    json_text,
    output_folder,
    remove_orphan_temps,
    resumed_busy_fix,
    write_json_atomic,
)
from attiqa.io.commands import Command
from attiqa.io.formats import RAW_EXTENSIONS
from attiqa.io.images import load_image, save_image
from attiqa.io.names import portable_stem
from attiqa.io.run_meta import differing_settings
from attiqa.progress import console, plain, plain_failure, plain_name, progress_task
from attiqa.scorers import scorer_identity
from isp_env.baselines import cma_search, guarded_objective, kept_generations, search_plan
from isp_env.isp import Developed, develop, finish
from isp_env.mos_function import MOSFunction, load_mos_function
from isp_env.params import RunFiles, file_stamp, neutral, raw_record, written_values
from isp_env.policy_files import find_state, init_policy_file
from isp_env.policy_io import load_policy, policy_digest
from isp_env.raw import (
    RawImage,
    RawReadError,
    find_raws,
    libraw_text,
    read_raw,
)
from isp_env.registration import CMA_GLOBAL_BUDGET, CMA_IMAGE_BUDGET, TEST_RAWS
from isp_env.report import CHECK_CANDIDATES, GRID_ROWS, Report, policy_label, policy_record, write_report
from isp_env.reward import (
    Guard,
    clipped_and_saturation,
    finish_view,
    guarded_item,
    rawpy_or_none,
    rawpy_render,
    resized,
    scorer_view,
    to_view,
)
from isp_env.run_inputs import (
    FINISHED_JSON,
    CheckInputs,
    RunInputs,
    refuse_too_few,
    say_run_ignores,
    training_need,
)
from isp_env.teacher import KeptFor, inputs_digest, spread_sample
from isp_env.train_config import SETTING_NAMES, TeacherSettings, TrainConfig, check_config
from isp_env.tuning import (
    check_reward_model,
    checked_agent_init,
    checked_prior,
    checked_setting,
    describe_reward_model,
    teacher_fit_key,
    teacher_prior,
    train,
    train_teacher,
    tune_with_policy,
)


def split_names(plan: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A run's split (``run.json``) as raw names relative to its raw folder: the same split whether
    ``--raw-dir`` was given as an absolute or a relative path (a rerun or ``benchmarks/isp_heldout.py``
    compared the paths as typed and refused the same split)."""
    root = Path(plan.get("raw_dir", ""))

    def rel(p: str) -> str:
        q = Path(p)
        return str(q.relative_to(root)) if q.is_relative_to(root) else str(q)

    return [rel(p) for p in plan.get("train", [])], [rel(p) for p in plan.get("test", [])]


def image_key(path: Path, root: Path, stems: Counter[str] | None = None) -> str:
    """The name of an image's outputs: its path under ``root`` without the extension — unless another raw
    of that stem sits beside it (``IMG_1.CR2`` + ``IMG_1.dng``): then with it, so neither overwrites the
    other; undecodable bytes as ``_`` (the key goes into UTF-8 reports). ``stems``: :func:`raw_stems` of
    the raw's folder, when known."""
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    twins = (raw_stems(path.parent) if stems is None else stems)[path.stem]
    key = str(rel if twins > 1 else rel.with_suffix("")).replace("/", "__")
    return portable_stem(key, max_bytes=200)


def raw_stems(folder: Path) -> Counter[str]:
    """How many raws of ``folder`` each stem names, a raw counted under every name it starts with before a
    dot (``a.b.dng``: ``a`` and ``a.b``; as a glob of ``STEM.*`` finds them). One listing of the folder, not
    a glob per raw: every raw of a folder is named (:func:`image_keys`), and FiveK's hold thousands."""
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if Path(name).suffix.lower() in RAW_EXTENSIONS:
                counts.update(name[:i] for i in range(1, len(name)) if name[i] == ".")
    return counts


def image_keys(raws: list[Path], root: Path) -> dict[str, Path]:
    """Each raw's output name (:func:`image_key`) -> the raw, no two names alike even where the file system
    ignores case: ``sub/x.dng`` and ``sub__x.dng`` were both ``sub__x`` (one raw dropped without a word, the
    other's files written over), ``IMG_1.dng`` and ``img_1.DNG`` one file on macOS or Windows. Of two raws
    of one name, the later of ``root``'s whole listing (sorted) gets a hash of its path added
    (``sub__x-1a2b3c4d``): named over ``raws`` alone, the name depended on which raws a run evaluated (a
    sample without the first raw gave the second the bare name), so another ``--test-raws`` sample renamed
    a raw's render and parameters, or gave one raw's files to the other."""
    listing = set(find_raws(root)) if root.is_dir() else set()
    named = assigned_names(sorted(listing | set(raws), key=str), root)
    return {named[p]: p for p in raws}


def assigned_names(order: list[Path], root: Path) -> dict[Path, str]:
    """Raw -> output name, a raw whose :func:`image_key` is taken (ignoring case) by an earlier raw of
    ``order`` with a hash of its path added."""
    names: dict[Path, str] = {}
    taken: set[str] = set()
    stems: dict[Path, Counter[str]] = {}
    for p in order:
        if p.parent not in stems:
            stems[p.parent] = raw_stems(p.parent)
        key = image_key(p, root, stems[p.parent])
        if key.casefold() in taken:
            rel = p.relative_to(root) if p.is_relative_to(root) else p
            tag = hashlib.sha256(os.fsencode(str(rel))).hexdigest()[:8]
            key = f"{portable_stem(key, max_bytes=190)}-{tag}"
        taken.add(key.casefold())
        names[p] = key
    return names


def names_raw(recorded: object, path: Path, root: Path) -> bool:
    """Whether a parameter file's ``raw`` (the path as the run was given it) is ``path``: the same path
    under ``root``, wherever ``root`` was then. A file under a raw's name written for another raw (names
    of an earlier isp-tune, :func:`image_keys`) is not that raw's setting."""
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return isinstance(recorded, str) and Path(recorded).parts[-len(rel.parts) :] == rel.parts


def say_renamed(
    paths: dict[str, Path], root: Path, out: Path, methods: list[str], files: RunFiles
) -> set[str]:
    """One line for the raws whose outputs an earlier isp-tune wrote under another name (its names
    depended on the raws evaluated: :func:`image_keys`) and that have none under their name yet: they are
    made again under the new name. Returns those earlier names: their files are another raw's now."""
    moved: dict[str, str] = {}
    for key, p in paths.items():
        old = image_key(p, root)  # an earlier version's other name: the bare one (a sample without the first)
        for m in methods:
            pdir = out / "test" / m / "params"
            made = (pdir / f"{key}.json").exists()
            if old != key and not made and names_raw(files.read(pdir / f"{old}.json").get("raw"), p, root):
                moved[old] = key
    if moved:
        shown = ", ".join(f"{plain(o)} -> {plain(k)}" for o, k in list(moved.items())[:3])
        console.print(
            f"{len(moved)} raw(s) have new output names ({shown}{', …' if len(moved) > 3 else ''}): names no "
            "longer depend on which raws are evaluated — their settings and renders are made again under "
            "the new names, once",
            highlight=False,
        )
    return set(moved)


FRONT_ENDS_KEPT = 100
"""How many held-out raws' front ends and guards (:func:`guarded_item`) the evaluation keeps between its
passes (the probe, the checked setting, the per-image CMA-ES, the scoring): each kept raw is built once,
not once a pass. 100, the default ``--test-raws``, so a default run rebuilds none. A count, not all of
them: each kept raw holds its front end at the scorer's scale (and its rawpy render in a run with
baselines, :class:`RawpyRender`), so ``isp-tune check`` of thousands of raws holding every one would not
fit in memory (times and sizes: docs/isp.md, "At FiveK scale")."""


def capped(
    raws: list[Path], cap: int, groups: dict[Path, str], seed: int, what: str, group_by: str = "scene"
) -> tuple[list[Path], int | None]:
    """The raws an evaluation renders — at most ``cap`` (``--test-raws``) of ``raws``, spread over the
    ``groups`` (scene groups; cameras when ``group_by`` is camera) and seeded
    (:func:`isp_env.teacher.spread_sample`) — and, when that is fewer than all, how many they were drawn
    from (:func:`evaluate`'s ``held_out``), said in one line naming ``what``: the run's held-out raws,
    ``isp-tune check``'s and ``benchmarks/isp_heldout.py``'s."""
    evaluated = spread_sample(raws, cap, groups, seed)
    if len(evaluated) == len(raws):
        return evaluated, None
    over = "cameras" if group_by == "camera" else "scene groups"
    console.print(
        f"evaluating {len(evaluated)} of the {len(raws)} {what} (--test-raws), spread over the {over}"
    )
    return evaluated, len(raws)


def refuse_undecodable(
    raws: list[Path], need: int, raw_dir: Path, what: str = "", group_by: str = "scene"
) -> None:
    """Decode ``raws`` until ``need`` of them read, else one line: a raw damaged after a valid header passes
    the split's probe, and a run whose training raws are all such wrote run.json, a global base searched
    on no raw and ``teacher/`` before it stopped (so did a split leaving the teacher one training raw).
    Costs ``need`` decodes when the raws are whole."""
    refuse_too_few(len(raws), need, raw_dir, group_by)  # a high --test-fraction left too few: before writing
    failed: list[RawReadError] = []
    for p in raws:
        if need <= 0:
            return
        try:
            read_raw(p)
            need -= 1
        except RawReadError as exc:
            failed.append(exc)
    if need > 0:
        raise ConfigError(
            f"{raw_dir}: {len(raws) - len(failed)} of the {len(raws)} training raws {what}can be decoded, "
            f"{need} more needed (e.g. {failed[0]}) — replace the damaged raws; nothing was written"
        )


def remove_run_temps(out: Path) -> None:
    """The temp files a run (or a check) killed mid-write left in its folders (:func:`remove_orphan_temps`:
    never a live writer's). They were looked for in ``test/params`` and ``test/renders``, folders nothing
    writes (a method's files are in ``test/METHOD/``): a kill while a render was written left its temp
    beside the renders for good, up to ~70 MB at 24 MP."""
    named = ("baselines", "teacher", "synth", "checkpoint", "preview_cache")
    for folder in (out, *(out / name for name in named), *out.glob("test/*/*")):
        remove_orphan_temps(folder)


def out_held(out: Path) -> AbstractContextManager[None]:
    """``out`` held by this run (:func:`attiqa.io.atomic.folder_held`): a second `isp-tune` into it is one
    line (the checks that only read it pass first)."""
    return folder_held(out, "tuning in", resumed_busy_fix(), command=Command.ISP_TUNE)


def run(
    inputs: RunInputs,
    cfg: TrainConfig,
    *,
    baselines: bool = True,
    subprocess: bool = True,
    cma_global_budget: int = CMA_GLOBAL_BUDGET,
    cma_image_budget: int = CMA_IMAGE_BUDGET,
    teacher: TeacherSettings | None = None,
    unwritable: Exception | None = None,
    held: ExitStack | None = None,
) -> list[dict[str, Any]]:
    """Split, train, evaluate at most ``--test-raws`` of the held-out raws (spread over the scene groups,
    seeded: :func:`isp_env.teacher.spread_sample`). ``inputs``: the run's one way in, made of ``cfg`` (and
    ``teacher``) by :func:`isp_env.run_inputs.run_inputs` — which checks the config first, then the output
    folder and the raws — with its raw folder, output folder, ``--test-fraction``, ``--synth-photos``,
    ``--group-by`` (scene: whole scene groups held out; camera: whole cameras), ``--base`` and
    ``--test-raws`` (:class:`isp_env.run_inputs.InputSettings`, each default there once); a ``cfg`` of
    another seed or ``--init-policy`` than the one they were made with is refused in one line
    (:meth:`isp_env.run_inputs.RunInputs.refuse_other`). ``--base`` (residual actions): ``neutral``,
    ``global`` (the global CMA-ES setting of the training raws: the same search as the baseline, run once)
    or a parameter JSON.
    ``cfg.algo == "teacher"``: the per-image policy of :mod:`isp_env.teacher` (per-image CMA-ES on at most
    ``teacher.raws`` training raws, spread over the scene groups:
    :class:`isp_env.train_config.TeacherSettings`) instead of an RL agent. ``unwritable``: why ``out``
    cannot be written (a read-only, archived run), raised unless the run finished with these very settings
    and raws and nothing in it changed since (:func:`finished_run`): then its summary is returned, nothing
    written — as for a writable ``out`` holding such a finished run. ``held``: ``out`` is held in it from
    its first write (:func:`out_held`; `isp-tune` lets go as the command ends); without one, to this call's
    end (two library runs into one ``out`` searched and trained over each other's files)."""
    with ExitStack() as own:  # no stack handed in: ``out`` held to this call's end, let go as it returns
        held = own if held is None else held
        given_teacher = inputs.teacher_for(teacher)  # run's, else run_inputs' (it was dropped: the defaults)
        teacher = given_teacher or TeacherSettings()
        # run_inputs checked them before the raws: again for a cfg or teacher changed since (cheap)
        check_config(cfg, teacher if cfg.algo == "teacher" else None)
        inputs.refuse_other(cfg)  # the split was drawn by its seed, the start checks read its policy
        given = inputs.made_for
        raw_dir, out, test_fraction = given.raw_dir, given.out, given.test_fraction
        synth_photos, group_by, base, test_raws_cap = (
            given.synth_photos,
            given.group_by,
            given.base,
            given.test_raws_cap,
        )
        files, given_base = inputs.start.files, inputs.start.base
        # a library run's settings it ignores, in one line with run()'s own (isp-tune's: said by run_inputs)
        say_run_ignores(
            inputs,
            cfg,
            given_teacher,
            baselines,
            {"cma_image_budget": cma_image_budget, "cma_global_budget": cma_global_budget},
        )
        if cfg.algo in ("sac", "td3") and cfg.timesteps <= cfg.learning_starts:  # the policy never learns
            # a library run is told its TrainConfig's names (it typed no option)
            typed = inputs.given is not None
            steps, starts = (SETTING_NAMES[n][0 if typed else 1] for n in ("timesteps", "learning_starts"))
            init = "--init-policy" if typed else "TrainConfig.init_policy"
            console.print(
                f"[yellow]warning[/] {steps} {cfg.timesteps} is not above {starts} "
                f"{cfg.learning_starts}: {cfg.algo.upper()} takes only random steps and never learns — its "
                f"policy stays where it started (the base, or {init}); raise {steps} or lower {starts}"
            )
        if cfg.algo != "teacher" and cfg.init_policy:  # its weights start the agent: checked before any work
            if given_base is not None and cfg.action_mode == "residual":
                cfg.base = given_base
            # takes the policy's base and scale, refuses other settings
            checked_agent_init(cfg, out=out)
        listing = inputs.listing  # (isp-tune lists them before torch loads: isp_env.run_inputs)
        raws, skipped, groups = listing.raws, listing.skipped, listing.groups
        train_raws, test_raws = listing.train, listing.test
        mos = load_mos_function(cfg.scorer)  # fail early (e.g. no default model), before writing anything
        reward = scorer_identity(cfg.scorer)
        old = files.read(out / "run.json")
        old_algo = old.get("config", {}).get("algo")
        if old_algo not in (None, cfg.algo):  # its policy.safetensors and results would be replaced
            raise ConfigError(
                f"{out}: this run folder holds a --algo {old_algo} run, not {cfg.algo} — use a new --out"
            )
        if old.get("reward_model") not in (None, reward):  # its searches, baselines and policy are another's
            raise ConfigError(
                f"{out}: this run folder was made with the reward model "
                f"{describe_reward_model(old['reward_model'])}, not this run's "
                f"{describe_reward_model(reward)} — use a new --out"
            )
        old_group_by = old.get("group_by", "scene")  # (runs before --group-by were split by scene group)
        if old and old_group_by != group_by:  # said before the split compare's "other raws or seed"
            raise ConfigError(
                f"{out}: this run folder's split is by {old_group_by} (--group-by {old_group_by}), not by "
                f"{group_by} — pass --group-by {old_group_by} to resume it, or use a new --out"
            )
        # before any work: a refused rerun of another split searched (and cached over the run's own) a global
        # base
        split_now = {
            "raw_dir": str(raw_dir),
            "train": [str(p) for p in train_raws],
            "test": [str(p) for p in test_raws],
        }
        if old and split_names(old) != split_names(split_now):
            raise ConfigError(
                f"{out}: this run folder holds another split (other raws or seed) — use a new --out"
            )
        searched_with = files.read(out / "baselines" / "cma_global.json").get("budget")
        if (
            old.get("config", {}).get("base") is not None
            and base == "global"
            and cfg.action_mode == "residual"
            and cfg.base is None
            and not cfg.init_policy  # (its base is the policy's)
            and searched_with not in (None, cma_global_budget)
        ):  # another budget searched a new base over it (its calls spent), then the trained agent was refused
            raise ConfigError(
                f"{out}: this run's base was searched with --cma-global-budget {searched_with}, not "
                f"{cma_global_budget} — pass --cma-global-budget {searched_with} to resume it, or use a new "
                "--out"
            )
        state = find_state(out / "checkpoint") if cfg.algo != "teacher" else None  # an agent's resume state
        trained = files.read(state / "state.json").get("config", {}) if state is not None else {}
        resolved_later = ("base", "view_shorter")
        trained = {k: v for k, v in trained.items() if k not in resolved_later}
        now = {k: v for k, v in cfg.learning_key().items() if k not in resolved_later}
        if trained and trained != now:
            # was found by train() after run.json had been rewritten with them: "the checkpoint was trained
            # with other settings — resume with the same options", which options unsaid
            raise ConfigError(
                f"{out}: its agent was trained with other settings ({differing_settings(trained, now)}) — "
                "pass the run's own options to resume it, or use a new --out"
            )
        invocation = invocation_record(
            raw_dir,
            [*raws, *map(Path, skipped)],
            cfg,
            reward,
            {
                "test_fraction": test_fraction,
                "baselines": baselines,
                "synth_photos": None if synth_photos is None else str(synth_photos),
                "cma_global_budget": cma_global_budget,
                "cma_image_budget": cma_image_budget,
                "base": base,
                "teacher": asdict(teacher),
                "test_raws_cap": test_raws_cap,
                "inputs": input_stamps(base, cfg.init_policy, synth_photos, out),
                # by scene: no key, so a run finished before --group-by is still found finished
                **({"group_by": group_by} if group_by != "scene" else {}),
            },
        )
        # a finished run with these settings and raws has nothing left to do: it was scored again and its
        # reports rewritten (docs/robustness.md, session 55); read-only (an archived run), it is all it may do
        done = finished_run(out, invocation)
        if done is None and unwritable is not None:
            raise unwritable
        if done is not None:
            made = out / ("report.md" if done else "policy.safetensors")
            console.print(
                f"{plain_name(out)}: finished, nothing to do — its results are complete and were made with "
                f"these settings and raws ({'report' if done else 'policy'}: {plain_name(made)}); "
                + (
                    "the folder is read-only, nothing was written"
                    if unwritable is not None
                    else f"nothing was written (to make them again, delete {plain_name(out / FINISHED_JSON)})"
                ),
                highlight=False,
            )
            return done
        if not old and synth_photos is None:  # a new run: refuse before run.json, a base search or teacher/
            searched = (
                spread_sample(train_raws, teacher.raws, groups, cfg.seed) if cfg.algo == "teacher" else []
            )
            need = training_need(cfg.algo, cfg.init_policy)
            what = "the teacher searches (--teacher-raws) " if searched else ""
            refuse_undecodable(searched or train_raws, need, raw_dir, what, listing.group_by)
        remove_run_temps(out)
        if cfg.preview is None and cfg.view_shorter is None:
            cfg.view_shorter = scorer_view(mos)
        prior = None  # (before the synthetic raws are written: a prior of other settings is refused)
        if cfg.algo == "teacher" and cfg.init_policy:  # the prior's rows are statistics of its base's renders
            prior = teacher_prior(cfg.init_policy, cfg, out)
            if base != "global":
                cfg.base = given_base
            checked_prior(cfg, prior)  # takes the prior's base and scale, refuses others
        synth: list[Path] = []
        if synth_photos is not None:
            from isp_env.synth import find_photos, synth_raws

            photos = find_photos(synth_photos)
            if not photos:
                raise ConfigError(f"{synth_photos}: no photos found for --synth-photos (png, jpg, webp, tif)")
        # every check above passed: the folder made before the first work writes into it — the global search
        # ran its whole budget and then could not save into an --out that cannot be made
        output_folder(out, "--out")
        # two runs into one --out searched and trained over each other's files
        held.enter_context(out_held(out))
        if synth_photos is not None:
            synth = synth_raws(photos, out / "synth", seed=cfg.seed, skipped=skipped)
        base_calls = 0  # scorer calls spent on finding the base: part of the agent's training cost
        if cfg.action_mode == "residual" and cfg.base is None and base != "neutral":
            if base == "global":
                g = global_cma(out, cfg, mos, train_raws, skipped, cma_global_budget, files)
                cfg.base, base_calls = g["params"], int(g["calls"])
            else:
                cfg.base = given_base
        searched = spread_sample(train_raws + synth, teacher.raws, groups, cfg.seed)  # a teacher's raws
        asked = (  # what its policy is of, once finished (policy_files.training_left)
            {"teacher_fit": teacher_fit_key(cfg, teacher, searched, cfg.init_policy)}
            if cfg.algo == "teacher"
            else {"timesteps": cfg.timesteps}
        )
        plan = {
            **split_now,
            **listing.split_record(),  # group_by (and by camera, the cameras on each side)
            "seed": cfg.seed,
            "test_fraction": test_fraction,
            "synthetic": len(synth),
            "base_scorer_calls": base_calls,
            "reward_model": reward,
            "asked": asked,
            "inputs": invocation["inputs"],  # its --init-policy's file (policy_files.init_policy_file)
        }
        files.write(out / "run.json", run_record(old, {**plan, "config": cfg.learning_key()}))
        console.print(
            f"{len(train_raws)} training raws (+{len(synth)} synthetic), {len(test_raws)} test raws -> "
            f"{plain_name(out)}"
        )

        if cfg.algo == "teacher":
            training = train_teacher(out, searched, cfg, mos, groups, teacher, prior=prior, files=files)
        else:
            training = train(out, train_raws + synth, cfg, subprocess=subprocess, files=files)
        agent_calls = int(training["scorer_calls"]) + base_calls
        agent_budget = {"train": agent_calls, "test": 0} | searches_asked(
            cfg.algo, training, cma_global_budget if base_calls else 0, base_calls
        )
        if not test_raws:
            console.print(
                f"trained on all {len(train_raws)} raws (+{len(synth)} synthetic); no test raws to "
                f"evaluate (--test-fraction 0): {plain_name(out / 'policy.safetensors')}"
            )
            record_finished(out, invocation)
            return []
        policy, card = load_policy(out / "policy.safetensors")
        name = "teacher" if cfg.algo == "teacher" else "agent"
        evaluated, held_out = capped(test_raws, test_raws_cap, groups, cfg.seed, "held-out raws")
        summary = evaluate(
            raw_dir,
            out,
            cfg,
            mos,
            evaluated,
            train_raws,
            {name: (policy, card)},
            {name: agent_budget},
            skipped | training.get("skipped", {}),
            baselines,
            cma_global_budget,
            cma_image_budget,
            held_out=held_out,
            files=files,
            split=listing.split_record(),
        ).summary
        record_finished(out, invocation)
        return summary


def searches_asked(algo: str, training: dict[str, Any], base_asked: int, base_calls: int) -> dict[str, int]:
    """The policy's budgeted CMA-ES searches, for the report's calls used of those asked: its base's
    (``base_asked`` of --cma-global-budget, 0 when none ran) and a teacher's per-raw targets (its
    training.json's ``search_calls`` of ``search_calls_asked``); ``{}`` when there is none, or when a
    teacher's fit was recorded before its searches' budget was (session 55)."""
    asked, searched = base_asked, base_calls
    if algo == "teacher":
        if "search_calls_asked" not in training:
            return {}
        asked += int(training["search_calls_asked"])
        searched += int(training["search_calls"])
    return {"asked": asked, "searched": searched} if asked else {}


def invocation_record(
    raw_dir: Path, raws: list[Path], cfg: TrainConfig, reward: Any, settings: dict[str, Any]
) -> dict[str, Any]:
    """What a run's results follow from: every option, the reward model and each raw's size and mtime —
    as JSON reads it back (a tuple is a list), so a record read from disk compares equal."""
    record = {
        "raw_dir": str(raw_dir),
        "raws": {str(p): file_stamp(p, hashed=False) for p in sorted(raws)},
        "config": asdict(cfg),
        "reward_model": reward,
        **settings,
    }
    parsed: dict[str, Any] = json.loads(json_text(record))  # as finished.json stores it (write_json_atomic)
    return parsed


def input_stamps(base: str, init_policy: str | None, synth_photos: Path | None, out: Path) -> dict[str, Any]:
    """The stamps (:func:`file_stamp`) of the files other than raws a run reads — a ``--base`` JSON, the
    ``--init-policy`` (the file the run in ``out`` starts from) and the ``--synth-photos``: a finished run
    whose base file was edited since is not finished (:func:`finished_run`), as one whose raws were; run.json
    keeps them too, for :func:`isp_env.policy_files.init_policy_file`."""
    from isp_env.synth import find_photos

    named = [] if base in ("neutral", "global") else [Path(base)]
    if init_policy:
        with contextlib.suppress(AttiqaError):  # (refused in its own words by the run's checks)
            named.append(init_policy_file(init_policy, out))  # the file read
    if synth_photos is not None:
        named += find_photos(synth_photos)
    return {str(p): file_stamp(p, hashed=False) for p in named}


def run_files(out: Path) -> dict[str, list[int | str] | None]:
    """Every file in a run folder but :data:`FINISHED_JSON` and the run's lock file (there while a run holds
    it, or left by a killed one), by its path inside it, with its stamp."""
    return {
        p.relative_to(out).as_posix(): file_stamp(p, hashed=False)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in (FINISHED_JSON, FOLDER_LOCK)
    }


def record_finished(out: Path, invocation: dict[str, Any]) -> None:
    """Record that the run in ``out`` finished with ``invocation``, and its files as they are now."""
    write_json_atomic(out / FINISHED_JSON, {"invocation": invocation, "files": run_files(out)})


def finished_run(out: Path, invocation: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The summary rows of the run in ``out`` when it finished with ``invocation`` and no file in it was
    added, removed or changed since (a rerun would only write its reports again); else None — work left."""
    try:
        record = json.loads((out / FINISHED_JSON).read_text())
        if record["invocation"] != invocation or record["files"] != run_files(out):
            return None
        if invocation["test_fraction"] == 0:
            return []
        methods = json.loads((out / "summary.json").read_text())["methods"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return methods if isinstance(methods, list) else None


def run_record(old: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """run.json: this invocation's plan and settings (what a resume compares and the benchmarks read), with
    ``started`` (the first run's UTC time) and ``resumes`` (each rerun's time and the values it changed,
    ``key: [before, after]``, config's keys as ``config.KEY``). It was rewritten with the last rerun's
    alone: a resume from a moved raw folder or with more ``--timesteps`` lost the run's first values."""
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if not old:
        return {**now, "started": at}
    flat = [(k, old.get(k), v) for k, v in now.items() if k != "config"]
    was, config = old.get("config"), now.get("config", {})
    was = was if isinstance(was, dict) else {}
    flat += [(f"config.{k}", was.get(k), config.get(k)) for k in sorted(set(was) | set(config))]
    changed = {k: [a, b] for k, a, b in flat if a != b}
    resumes = [*old.get("resumes", []), {"at": at, **({"changed": changed} if changed else {})}]
    return {**now, **({"started": old["started"]} if "started" in old else {}), "resumes": resumes}


def evaluate(
    raw_dir: Path,
    out: Path,
    cfg: TrainConfig,
    mos: MOSFunction,
    test_raws: list[Path],
    train_raws: list[Path],
    agents: dict[str, tuple[Any, dict]],
    budgets: dict[str, dict[str, int]],
    skipped: dict[str, str],
    baselines: bool = True,
    cma_global_budget: int = CMA_GLOBAL_BUDGET,
    cma_image_budget: int = CMA_IMAGE_BUDGET,
    checked: bool = True,
    held_out: int | None = None,
    front_ends: int = FRONT_ENDS_KEPT,
    checked_policy: dict[str, str] | None = None,
    files: RunFiles | None = None,
    unread: int = 0,
    split: dict[str, Any] | None = None,
) -> Report:
    """Tune + render the test raws with each agent (name -> (policy, card)), run the baselines, report.
    ``checked``: also each agent's setting checked against its base and neutral by the reward
    (``NAME_checked``: :func:`isp_env.tuning.checked_setting`, two or three scorer calls per raw; its rows
    say which candidate was kept, ``kept``). ``held_out``: the split's held-out raws when ``test_raws``
    are a sample of them (``--test-raws``). ``front_ends``: how many raws' front ends are kept between the
    passes (:data:`FRONT_ENDS_KEPT`). ``checked_policy``: ``isp-tune check``'s policy and folder, which the
    report names (summary.json's ``checked_policy``). ``files``: the run folder's kept files as checked
    (:meth:`isp_env.params.RunFiles.checked`); else each read when first needed. ``unread``: raws to
    evaluate that the caller's probe left out (in ``skipped``), counted when none can be read (unless
    ``held_out``: then the raws to evaluate were drawn from the readable ones). ``split``: a run's split
    record (:meth:`isp_env.run_inputs.RawListing.split_record`), which summary.json keeps and report.md
    says (held out by scene group or by camera)."""
    files = files or RunFiles(out)
    view = cfg.view_shorter if cfg.preview is None else None
    skipped = dict(skipped)
    paths = image_keys(test_raws, raw_dir)
    stale = say_renamed(paths, raw_dir, out, list(agents), files)
    items = HeldOutItems(paths, view, cfg.preview, front_ends, rawpy=baselines)
    params: dict[str, dict[str, dict[str, float]]] = {name: {} for name in agents}
    digests = {name: policy_digest(policy, card) for name, (policy, card) in agents.items()}
    earlier = dict.fromkeys(agents, 0)  # settings an earlier version wrote (no digest): tuned again
    found = {
        (k, name): files.read(out / "test" / name / "params" / f"{k}.json") for k in paths for name in agents
    }

    def mine(key: str, name: str) -> bool:
        """Outputs of this very policy for this raw: kept (a step count was compared: another policy's
        were kept; and a name of an earlier isp-tune may hold another raw's)."""
        done = found[key, name]
        return done.get("policy_digest") == digests[name] and names_raw(done.get("raw"), paths[key], raw_dir)

    kept = {(key, name) for key, name in found if mine(key, name)}  # in the bar from its first frame
    with progress_task(
        f"{', '.join(agents)}: read + tune", total=len(paths) * len(agents), unit="img", kept=len(kept)
    ) as adv:
        for key, path in list(paths.items()):
            try:  # a raw damaged after its header is skipped here, before its tuning
                raw = items.probe(key)
            except RawReadError as exc:
                del paths[key]
                skipped[str(path)] = str(exc)
                console.print(f"[yellow]skipped[/] {plain_failure(exc)}")
                adv(sum((key, name) not in kept for name in agents))
                continue
            for name, (policy, card) in agents.items():
                pfile = out / "test" / name / "params" / f"{key}.json"
                done = found[key, name]
                earlier[name] += bool(done) and "policy_digest" not in done
                if (key, name) in kept:
                    values = written_values(done["params"])
                else:  # from the kept front end or the probe's decode: the raw is not read again
                    values = tune_with_policy(policy, card, path, items.kept_front_end(key), raw)
                    files.write(
                        pfile,
                        {
                            **raw_record(path, raw_dir),
                            "params": values,
                            "policy_timesteps": card["timesteps"],
                            "policy_digest": digests[name],
                        },
                    )
                    adv(1)
                params[name][key] = values
            del raw  # (one decoded raw at a time)
    for name, n in earlier.items():
        say_earlier(n, out / "test" / name / "params", "tuned again with the policy")
    if not items:  # a drawn sample counts what it was given: the probe's rejects were never in the draw
        drawn = f" (drawn from {held_out}, --test-raws)" if held_out else ""
        raise ConfigError(
            f"{raw_dir}: none of the {len(test_raws) + (0 if held_out else unread)} raws to evaluate{drawn} "
            "could be read (each listed above) — give complete camera raws or DNGs"
        )
    params = {"neutral": {k: neutral() for k in items}, **params}
    budgets = {"neutral": {}, "rawpy": {}, **budgets}
    chosen: dict[str, dict[str, str]] = {}  # per checked method and raw: the candidate kept
    if checked:
        for name, (_, card) in list(agents.items()):
            calls, chosen[f"{name}_checked"] = _checked(
                out, name, card, digests[name], params, items, mos, scorer_identity(cfg.scorer), files
            )
            budgets[f"{name}_checked"] = {"train": budgets.get(name, {}).get("train", 0), "test": calls}
    if baselines:
        _baselines(
            out,
            cfg,
            mos,
            items,
            raw_dir,
            train_raws,
            params,
            budgets,
            skipped,
            cma_global_budget,
            cma_image_budget,
            files,
            stale,
        )

    rows: list[dict[str, Any]] = []
    crops: dict[str, dict[str, np.ndarray]] = {}
    no_rawpy: dict[str, str] = {}  # raws rawpy.postprocess() cannot render: no rawpy row, why
    with progress_task("score + full-res render", total=len(items), unit="img") as adv:
        for key in list(items):
            try:  # read once for the scored view and the full-resolution render
                raw = read_raw(paths[key])
            except RawReadError as exc:  # deleted or cut short since it was tuned: the others are scored
                items.drop(key, exc)
                adv(1)
                continue
            dev, guard, v = items.front_end(key, raw)
            full_dev = develop(raw)
            grid = len(crops) < GRID_ROWS  # crops of the grid's rows only, not of every raw
            if grid:
                crops[key] = {}
            renders = {m: finish(full_dev, per[key]) for m, per in params.items()}
            views = {
                m: (finish_view(dev, per[key], v) if v else finish(dev, per[key]))
                for m, per in params.items()
            }
            measured = {m: clipped_and_saturation(img) for m, img in renders.items()}
            cut = {m: _center_crop(img, 256) for m, img in renders.items()} if grid else {}
            if baselines:  # the guard's rawpy render, kept as the scoring uses it (it was rendered again)
                rp = scored_rawpy(items, key, dev, v, renders["neutral"].shape[:2], no_rawpy)
                if rp is not None:
                    views["rawpy"], measured["rawpy"] = rp.view, (rp.clipped, rp.saturation)
                    cut["rawpy"] = rp.crop
            scored = dict(zip(views, mos(list(views.values())), strict=True))  # one reward call per raw
            for m, img in views.items():
                score = float(scored[m])
                pen = guard.penalty(img) * mos.width / 100.0
                clipped, saturation = measured[m]
                rows.append(
                    {
                        "image": key,
                        "method": m,
                        "mos": score,
                        "guarded": score - pen,
                        "clipped": clipped,
                        "saturation": saturation,
                        **({"kept": chosen[m][key]} if m in chosen else {}),
                    }
                )
                if grid:
                    crops[key][m] = cut[m]
                if m not in ("neutral", "rawpy"):
                    png = out / "test" / m / "renders" / f"{key}.png"
                    save_render(
                        png, renders[m], {**raw_record(paths[key], raw_dir), "params": params[m][key]}
                    )
            adv(1)
    if not items:  # every raw gone since its tuning: the settings are kept in test/METHOD/params
        raise ConfigError(
            f"{raw_dir}: none of the {len(test_raws)} raws to evaluate could be read again to score (each "
            "listed above) — restore them and rerun to resume; their settings are kept"
        )
    meta = {
        "scorer": mos.name,
        "view_shorter": view,
        "preview": cfg.preview,
        # the evaluated policies' own algorithms (isp_heldout.py's cfg is a default TrainConfig: "teacher")
        "algo": ", ".join(dict.fromkeys(str(card.get("algo")) for _, card in agents.values())) or None,
        "policies": {name: policy_record(card) for name, (_, card) in agents.items()},
        "n_train": len(train_raws),
        "n_test": len(items),
        **({} if held_out is None else {"n_held_out": held_out}),  # a sample of them (--test-raws)
        **({} if split is None else {"split": split}),  # a run's: how its raws were held out
        **({} if checked_policy is None else {"checked_policy": checked_policy}),
        "skipped": skipped | items.dropped,
        **({"no_rawpy": no_rawpy} if no_rawpy else {}),  # (their other methods' rows are in the report)
        "test_raws": sorted(items),
    }
    labels = {name: policy_label(name, card) for name, (_, card) in agents.items()}
    if checked:
        labels |= {f"{name}_checked": f"{labels[name]}, checked" for name in agents}  # report.md says how
    return write_report(out, rows, budgets, meta, crops, labels)


def scored_rawpy(
    items: HeldOutItems,
    key: str,
    dev: Developed,
    view: int | None,
    size: tuple[int, int],
    failed: dict[str, str],
) -> RawpyRender | None:
    """Raw ``key``'s rawpy render as the scoring pass takes it — the guard's when kept at this ``size``,
    else rendered now — or None, with a warning naming the raw and why in ``failed``, when
    ``rawpy.postprocess()`` cannot render it: one such raw ended the whole evaluation on LibRaw's traceback
    after every search and tuning (only an X-Trans raw had a fallback)."""
    rp = items.rawpy_of(key)
    if rp is not None and rp.size == size:
        return rp
    path = items.paths[key]
    try:
        return RawpyRender.of(rawpy_render(path), dev, view, size)
    except Exception as exc:  # noqa: BLE001  (any failure of LibRaw's post-processing: this raw's row alone)
        failed[key] = libraw_text(exc)
        console.print(
            f"[yellow]warning[/] {plain_name(path)}: rawpy.postprocess() cannot render it "
            f"({plain(failed[key])}) — its rawpy row is left out of the report; its other methods are scored"
        )
        return None


def save_render(png: Path, img: np.ndarray, record: dict[str, Any] | None = None) -> bool:
    """Write a method's full-resolution render unless ``png`` already holds these very pixels (a resumed
    run's); True when written. A render was kept whenever the file existed: a run continued with more
    ``--timesteps``, whose policy tuned the raw anew, kept the old policy's picture beside its parameters.

    ``PNG.json`` beside it (:func:`render_record`: ``record``, e.g. the raw and its setting, and the
    pixels' SHA-256 with the file's :func:`file_stamp`) lets a resume tell without decoding: decoding every
    render to compare took minutes at FiveK scale (docs/robustness.md). A file the record does not
    describe (a render of an earlier version, copied, replaced or damaged) is decoded and compared as
    before, then recorded or written again."""
    sidecar = Path(f"{png}.json")
    pixels = pixel_digest(img)
    try:
        kept = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none (an earlier version's render), or damaged: as if none
        kept = {}
    stamp = file_stamp(png, hashed=True)
    if stamp is not None and isinstance(kept, dict) and kept.get("file") == stamp:
        if kept.get("pixels_sha256") == pixels:
            return False
    elif stamp is not None:
        try:
            same = np.array_equal(np.asarray(load_image(png)), img)
        except ImageLoadError:  # a damaged file: written again
            same = False
        if same:
            write_json_atomic(sidecar, render_record(png, pixels, record))
            return False
    save_image(Image.fromarray(img), png)
    write_json_atomic(sidecar, render_record(png, pixels, record))
    return True


def pixel_digest(img: np.ndarray) -> str:
    """SHA-256 of a render's pixels and shape: far cheaper than decoding the PNG to compare them."""
    h = hashlib.sha256(repr((img.shape, str(img.dtype))).encode())
    h.update(np.ascontiguousarray(img).data)
    return h.hexdigest()


def render_record(png: Path, pixels: str, record: dict[str, Any] | None) -> dict[str, Any]:
    """A render's sidecar: ``record`` (the raw, its setting: ``isp-tune render RAW --params PNG.json``
    renders it again), the pixels' digest and the file's stamp as written."""
    return {
        **(record or {}),
        "render": png.name,
        "pixels_sha256": pixels,
        "file": file_stamp(png, hashed=True),
    }


@dataclass(frozen=True)
class RawpyRender:
    """What the scoring pass takes of a raw's full-size ``rawpy.postprocess()`` render — its scored view,
    the report's clipped share and saturation, the grid's centre crop — so that the guard's render serves it
    too (it was rendered a second time for them: ~0.3-0.6 s at 24 MP), and kept instead of the render
    (72 MB at 24 MP; these ~1.3 MiB at the default model's scale). ``size``: the (h, w) the render was
    resized to before its view — the neutral render's, which the scoring pass checks."""

    size: tuple[int, int]
    view: np.ndarray
    clipped: float
    saturation: float
    crop: np.ndarray

    @classmethod
    def of(cls, rgb: np.ndarray, dev: Developed, view: int | None, size: tuple[int, int]) -> RawpyRender:
        """From the render ``rgb`` of a raw whose front end is ``dev`` at ``view`` (None: a preview)."""
        scored = to_view(resized(rgb, size), view) if view else resized(rgb, dev.linear.shape[:2])
        return cls(size, scored, *clipped_and_saturation(rgb), _center_crop(rgb, 256))


Item = tuple[Developed, Guard, int | None]


class HeldOutItems(Mapping[str, Item]):
    """The evaluated raws' front ends at the scorer's scale and guards (:func:`guarded_item`), made when
    first asked for: the first ``keep`` raws' are kept (the passes go over the raws in one order, so an
    LRU of ``keep`` would lose every raw before its next pass when there are more), the others' made again
    in each pass, the last one kept — memory bounded whatever the number of raws. ``rawpy``: keep with each
    what the scoring pass takes of the guard's rawpy render (:class:`RawpyRender`; ``isp-tune check``
    reports no rawpy row)."""

    def __init__(
        self,
        paths: dict[str, Path],
        view: int | None,
        preview: int | None,
        keep: int = FRONT_ENDS_KEPT,
        rawpy: bool = False,
    ) -> None:
        self.paths, self.view, self.preview, self.keep, self.rawpy = paths, view, preview, keep, rawpy
        self.kept: dict[str, tuple[Item, RawpyRender | None]] = {}
        self.last: tuple[str, tuple[Item, RawpyRender | None]] | None = None
        self.dropped: dict[str, str] = {}  # raw path -> why: unreadable since its probe (:meth:`drop`)

    def drop(self, key: str, exc: RawReadError) -> None:
        """Raw ``key``, unreadable since it was probed and tuned (deleted, cut short), out of every later
        pass, listed in :attr:`dropped` and said in one line: a pass that read it again (its front end not
        kept, or the scoring's full decode) ended the whole evaluation on LibRaw's error."""
        path = self.paths.pop(key)
        self.kept.pop(key, None)
        self.dropped[str(path)] = str(exc)
        console.print(f"[yellow]skipped[/] (unreadable since it was tuned) {plain_failure(exc)}")

    def readable(self, key: str) -> Item | None:
        """Raw ``key``'s front end and guard, kept or made; None once :meth:`drop` dropped it, unreadable."""
        try:
            return self.front_end(key)
        except RawReadError as exc:
            self.drop(key, exc)
            return None

    def _held(self, key: str) -> tuple[Item, RawpyRender | None] | None:
        """Raw ``key``'s front end and rawpy render when kept or the last made (None: to be made)."""
        if key in self.kept:
            return self.kept[key]
        return self.last[1] if self.last is not None and self.last[0] == key else None

    def _made(self, key: str, raw: RawImage | None = None) -> tuple[Item, RawpyRender | None]:
        held = self._held(key)
        if held is not None:
            return held
        path = self.paths[key]
        raw = read_raw(path) if raw is None else raw
        rgb = rawpy_or_none(path) if self.rawpy else None  # one full render: the guard's and the report's
        item = guarded_item(path, self.view, self.preview, raw=raw, rawpy_rgb=rgb)
        rp = None if rgb is None else RawpyRender.of(rgb, item[0], self.view, rgb.shape[:2])
        if len(self.kept) < self.keep:
            self.kept[key] = (item, rp)
        self.last = (key, (item, rp))
        return item, rp

    def front_end(self, key: str, raw: RawImage | None = None) -> Item:
        """Raw ``key``'s front end and guard, kept or made (from ``raw`` when it was read already)."""
        return self._made(key, raw)[0]

    def rawpy_of(self, key: str) -> RawpyRender | None:
        """What the scoring pass takes of raw ``key``'s rawpy render, when its front end is kept or was the
        last made (None without ``rawpy``, or when rawpy failed)."""
        held = self._held(key)
        return None if held is None else held[1]

    def kept_front_end(self, key: str) -> tuple[Developed, int | None, int | None] | None:
        """Raw ``key``'s front end with the view and preview it was made at, when kept (None otherwise: not
        made for this — a guard costs a rawpy render): :func:`isp_env.tuning.tune_with_policy`'s."""
        return (self.kept[key][0][0], self.view, self.preview) if key in self.kept else None

    def probe(self, key: str) -> RawImage:
        """Raw ``key`` decoded — :class:`RawReadError` when it cannot be — with its front end made while
        there is room to keep it (the first pass needs it; kept, it would not be otherwise); the decode is
        returned for the policies' tuning, which may develop it at another scale."""
        raw = read_raw(self.paths[key])
        if len(self.kept) < self.keep:
            self.front_end(key, raw)
        return raw

    def __getitem__(self, key: str) -> tuple[Developed, Guard, int | None]:
        return self.front_end(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def _checked(
    out: Path,
    name: str,
    card: dict[str, Any],
    digest: str,
    params: dict[str, dict[str, dict[str, float]]],
    items: HeldOutItems,
    mos: MOSFunction,
    reward: dict[str, Any] | None,
    files: RunFiles,
) -> tuple[int, dict[str, str]]:
    """``params[name + "_checked"]``: agent ``name``'s setting of each raw checked against its base and
    neutral (cached per raw with the candidates' scores in ``test/NAME_checked/params/``, kept while the
    policy — its ``digest``, :func:`isp_env.policy_io.policy_digest` — and the reward model are the
    same); returns the scorer calls it took (cached ones included) and the candidate kept on each raw."""
    method = f"{name}_checked"
    params[method] = {}
    calls = earlier = 0
    kept: dict[str, str] = {}
    found = {key: files.read(out / "test" / method / "params" / f"{key}.json") for key in items}

    def same(done: dict[str, Any], key: str) -> bool:
        """This policy's check of this setting with this reward model, finished."""
        ours = done.get("policy_digest") == digest and done.get("reward_model") == reward
        return ours and done.get("from") == params[name][key] and done.get("chosen") in CHECK_CANDIDATES

    cached = {key for key, done in found.items() if same(done, key)}  # in the bar from its first frame
    with progress_task(
        f"{method}: policy / base / neutral", total=len(items), unit="img", kept=len(cached)
    ) as adv:
        for key in list(items):  # (a raw's front end is made only when it is checked)
            pfile = out / "test" / method / "params" / f"{key}.json"
            done = found[key]
            earlier += bool(done) and "policy_digest" not in done
            if key in cached:
                values, scored, chosen = written_values(done["params"]), len(done["scores"]), done["chosen"]
            else:
                item = items.readable(key)  # its front end made again: the raw may be gone since
                if item is None:
                    adv(1)
                    continue
                c = checked_setting(params[name][key], card, item, mos)
                values, scored, chosen = c.params, len(c.scores), c.chosen
                files.write(
                    pfile,
                    {
                        "raw": key,
                        "params": values,
                        "chosen": c.chosen,
                        "scores": c.scores,
                        "from": params[name][key],
                        "policy_timesteps": card["timesteps"],
                        "policy_digest": digest,
                        "reward_model": reward,
                    },
                )
                adv(1)
            params[method][key] = values
            calls += scored
            kept[key] = chosen
    say_earlier(earlier, out / "test" / method / "params", "checked again")
    return calls, kept


def say_earlier(n: int, folder: Path, done: str) -> None:
    """One line when ``n`` parameter files in ``folder`` were written by an earlier isp-tune (no
    ``policy_digest``: which policy wrote them is unknown), so were ``done`` now — it was silent, and a
    resume that took as long as a first run read as a bug."""
    if n:
        console.print(
            f"{n} parameter file(s) in {plain_name(folder)} were written by an earlier version of isp-tune "
            f"(no policy_digest: which policy wrote them is unknown) — {done} and rewritten, once"
        )


def _center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """A copy: a view kept the whole full-resolution render alive (72 MB at 24 MP, one per method and raw)."""
    h, w = img.shape[:2]
    s = min(size, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return img[y : y + s, x : x + s].copy()


GLOBAL_PARTIAL = "cma_global.partial.json"  # the global search so far, beside cma_global.json, until it ends


def global_cma(
    out: Path,
    cfg: TrainConfig,
    mos: MOSFunction,
    train_raws: list[Path],
    skipped: dict[str, str],
    global_budget: int,
    files: RunFiles | None = None,
) -> dict[str, Any]:
    """One parameter set for all raws by CMA-ES on a seeded subset of the training raws (``global_budget``
    scorer calls: one raw per 48, in whole generations: :func:`isp_env.baselines.search_plan`), cached
    in ``out/baselines/cma_global.json`` (read and written through ``files`` when given:
    :class:`isp_env.params.RunFiles`). The search so far is kept in ``cma_global.partial.json`` as each
    generation ends, for a rerun after a kill to go on from (:func:`isp_env.baselines.cma_search`'s
    ``kept``), and removed once the result is written."""
    files = files or RunFiles(out)
    view = cfg.view_shorter if cfg.preview is None else None
    gfile = out / "baselines" / "cma_global.json"
    g = files.read(gfile)
    inputs = search_inputs(cfg, view, [p.name for p in train_raws])
    if g.get("budget") != global_budget or not KeptFor(gfile, inputs, "searched").matches(g):
        rng = np.random.default_rng(cfg.seed)
        n = min(len(train_raws), max(1, global_budget // (12 * 4)))  # >= 4 generations of 12 on the subset
        train_items: list[tuple[Developed, Guard | None, int | None]] = []
        for i in rng.permutation(len(train_raws)):
            if len(train_items) >= n:
                break
            p = train_raws[int(i)]
            try:
                train_items.append(guarded_item(p, view, cfg.preview))
            except RawReadError as exc:
                skipped[str(p)] = str(exc)
        plan = search_plan(global_budget, len(train_items))
        console.print(  # "on 1 training raws" (of 30) read as a bug: say it is a sample, and why this size
            f"global CMA-ES on {len(train_items)} of the {len(train_raws)} training raws, budget "
            f"{global_budget} scorer calls (--cma-global-budget: one raw per 48 calls; a larger budget "
            f"searches more raws) — {plan.said(global_budget)}"
        )
        # each generation kept as it ends (a search of minutes was lost to a Ctrl-C): a rerun replays them
        partial = gfile.with_name(GLOBAL_PARTIAL)
        log = files.read(partial)
        kept = (
            log.get("search") if log.get("inputs") == inputs and log.get("budget") == global_budget else None
        )
        replayed = kept_generations(kept) if isinstance(kept, dict) else None
        if replayed is not None:
            console.print(
                f"global CMA-ES: the start and {replayed} generation(s) kept from the run "
                f"before ({plain_name(partial)}): not scored again"
            )

        def keep(search: dict[str, Any]) -> None:
            files.write(partial, {"inputs": inputs, "budget": global_budget, "search": search})

        objective = guarded_objective(train_items, mos)
        res = cma_search(objective, global_budget, len(train_items), cfg.seed, kept=kept, on_generation=keep)
        g = {
            "params": res.params,
            "train_score": res.mos,
            "calls": res.calls,
            "n_images": len(train_items),
            "budget": global_budget,
            "inputs": inputs,
        }
        files.write(gfile, g)
    # its search is cma_global.json now (also when a kill came between that write and this)
    gfile.with_name(GLOBAL_PARTIAL).unlink(missing_ok=True)
    return g


def search_inputs(cfg: TrainConfig, view: int | None, raws: list[str] | None = None) -> str:
    """The digest a baseline search is kept with (:func:`isp_env.teacher.inputs_digest`): its objective's
    scale (``--preview`` or the scorer's view), seed and reward model, and the raws a global search drew
    from. Searches saved without it are made again (:class:`isp_env.teacher.KeptFor`)."""
    said = {"preview": cfg.preview, "view_shorter": view, "seed": cfg.seed, "raws": raws}
    return inputs_digest([], said | {"reward_model": scorer_identity(cfg.scorer)})


def _baselines(
    out: Path,
    cfg: TrainConfig,
    mos: MOSFunction,
    items: HeldOutItems,
    raw_dir: Path,
    train_raws: list[Path],
    params: dict[str, dict[str, dict[str, float]]],
    budgets: dict[str, dict[str, int]],
    skipped: dict[str, str],
    global_budget: int,
    image_budget: int,
    files: RunFiles,
    stale: set[str] | None = None,
) -> None:
    """The global and per-image CMA-ES baselines; per-image searches saved under ``stale`` names (another
    raw's, :func:`say_renamed`) are made again."""
    g = global_cma(out, cfg, mos, train_raws, skipped, global_budget, files)
    params["cma_global"] = {k: g["params"] for k in items}
    budgets["cma_global"] = {"train": g["calls"], "test": 0, "asked": global_budget}
    per = per_image_cma(out, cfg, mos, items, raw_dir, image_budget, stale, files)
    params["cma_per_image"] = {k: per[k]["params"] for k in items}
    budgets["cma_per_image"] = {
        "train": 0,
        "test": int(sum(per[k]["calls"] for k in items)),
        "asked": image_budget * len(items),
    }


def per_image_cma(
    out: Path,
    cfg: TrainConfig,
    mos: MOSFunction,
    items: HeldOutItems,
    raw_dir: Path,
    image_budget: int,
    stale: set[str] | None = None,
    files: RunFiles | None = None,
) -> dict[str, dict[str, Any]]:
    """CMA-ES on each evaluated raw alone (``image_budget`` scorer calls, the agent's guarded reward),
    cached in ``out/baselines/cma_per_image.json`` by output name with the raw it searched: a result is
    used only for that raw. Keyed by name alone, a resume killed between a renamed raw's files and its new
    search gave it the other raw's result under that name (:func:`image_keys`). A result saved without
    the digest of its scale, seed and reward model (:func:`search_inputs`; also every one without its raw)
    and searches saved under ``stale`` names (:func:`say_renamed`) are made again."""
    files = files or RunFiles(out)
    pfile = out / "baselines" / "cma_per_image.json"
    per: dict[str, dict[str, Any]] = files.read(pfile)  # other raws' results stay in the file
    kept_for = KeptFor(
        pfile, search_inputs(cfg, cfg.view_shorter if cfg.preview is None else None), "searched"
    )

    def usable(key: str) -> bool:
        v = per.get(key)
        if not isinstance(v, dict) or v.get("budget") != image_budget or key in (stale or set()):
            return False
        if not kept_for.matches(v):  # searched at another scale, seed or reward model, or not said
            return False
        return "raw" in v and names_raw(v["raw"], items.paths[key], raw_dir)

    todo = [key for key in items if not usable(key)]  # the rest kept, in the bar from its first frame
    with progress_task("per-image CMA-ES", len(items), unit="img", kept=len(items) - len(todo)) as advance:
        for key in todo:  # (a raw's front end is made only when it is searched)
            item = items.readable(key)  # its front end made again: the raw may be gone since
            if item is not None:
                res = cma_search(guarded_objective([item], mos), image_budget, 1, cfg.seed)
                per[key] = {
                    **raw_record(items.paths[key], raw_dir),
                    "params": res.params,
                    "score": res.mos,
                    "calls": res.calls,
                    "budget": image_budget,
                    "inputs": kept_for.digest,
                }
                files.write(pfile, per)
            advance(1)
    return per


def check_policy(
    inputs: CheckInputs,
    scorer: str | None = None,
    test_raws_cap: int = TEST_RAWS,
    seed: int = 0,
    front_ends: int = FRONT_ENDS_KEPT,
) -> list[dict[str, float | str]]:
    """A policy against the neutral render on the readable raws of a folder (``isp-tune check``) — at most
    ``test_raws_cap`` of them, spread over the scene groups and seeded as a run's held-out raws
    (:func:`capped`; 5,000 FiveK raws took hours) — both rendered and scored by the reward model (MOS, and
    MOS minus the guard's penalty), no search and no baseline — what a user runs before trusting a policy
    on another camera's raws (a teacher policy is for the cameras it was trained on: docs/isp.md, "Leave
    one camera out"). ``inputs``: the raw folder, report folder, policy and grouping with the checks made
    of them before torch (:func:`isp_env.run_inputs.check_inputs`, which ``isp-tune check`` calls before
    torch loads). Writes ``evaluate``'s report into ``inputs.out``; returns per raw ``image``,
    ``neutral_mos``, ``policy_mos``, ``neutral_guarded``, ``policy_guarded``, and the same of the checked
    setting (``checked_mos``, ``checked_guarded``, and ``checked_kept``: policy, base or neutral;
    :func:`isp_env.tuning.checked_setting`). By camera (``inputs.group_by``) the sample is spread over the
    raws' cameras (:func:`isp_env.run_inputs.raw_cameras`, which refuses a raw with none as the run does),
    else over the scene groups."""
    raw_dir, out, spec, group_by = inputs.raw_dir, inputs.out, inputs.spec, inputs.group_by
    policy, card = load_policy(inputs.policy)
    mos = load_mos_function(scorer)  # a misspelt --model refused before a warning about its weights
    check_reward_model(spec, card, scorer, refuse=False)
    cfg = TrainConfig(algo=str(card.get("algo", "teacher")), scorer=scorer)
    cfg.view_shorter = scorer_view(mos)
    raws, skipped, groups, files = inputs.raws, inputs.skipped, inputs.groups, inputs.files
    evaluated, sampled = capped(raws, test_raws_cap, groups, seed, "raws found", group_by)
    # evaluate skips (and lists) the raws it cannot read, and makes ``out`` only once it has rows to write
    remove_run_temps(out)
    report = evaluate(
        raw_dir,
        out,
        cfg,
        mos,
        evaluated,
        [],
        {"policy": (policy, card)},
        {},
        skipped,
        baselines=False,
        held_out=sampled,
        unread=len(skipped),
        front_ends=front_ends,
        checked_policy={"policy": spec, "raw_dir": str(raw_dir)},
        files=files,
    )
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for r in report.rows:  # every method on every raw evaluate could read
        by.setdefault(r["image"], {})[r["method"]] = r
    return [
        {
            "image": key,
            **{f"{m}_mos": v[m]["mos"] for m in ("neutral", "policy")},
            **{f"{m}_guarded": v[m]["guarded"] for m in ("neutral", "policy")},
            "checked_mos": v["policy_checked"]["mos"],
            "checked_guarded": v["policy_checked"]["guarded"],
            "checked_kept": v["policy_checked"]["kept"],
        }
        for key, v in sorted(by.items())
    ]
