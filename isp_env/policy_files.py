"""Which file a policy argument (``--policy``, ``--init-policy``) names, torch-free: ``isp-tune`` says a
missing one before torch loads; :mod:`isp_env.policy_io` reads what it names."""

from __future__ import annotations

import shlex
from pathlib import Path

from attiqa.errors import ModelLoadError, did_you_mean

DEFAULT_POLICY = Path(__file__).parent / "data" / "policy-default.safetensors"
FINISH_RUN = "finish it: rerun the isp-tune command that started it (--out {run}: it resumes), then use it"
"""The fix for a run folder given as a policy before its training finished."""


def resolve_policy(spec: str | Path, option: str = "--policy", finished: bool = True) -> Path:
    """``default`` -> the policy shipped with the package (docs/isp.md has its card); a run folder -> its
    policy.safetensors, once its training has finished (:func:`training_left`: the one place that decides it,
    for ``render``, ``check`` and ``--init-policy`` alike — render alone refused a stale one, the others took
    it without a word); else a path. ``option``: the caller's option, named in the refusal's fix.
    ``finished=False``: a run folder's policy whatever its training is at since — the ``--init-policy`` of a
    run already started (:func:`started_from`), which started from that file."""
    if str(spec) == "default":
        if not DEFAULT_POLICY.exists():
            raise ModelLoadError(
                "no default ISP policy is bundled with this install — pass --policy PATH to "
                "a policy.safetensors written by `isp-tune`"
            )
        return DEFAULT_POLICY
    path = Path(spec)
    if path.is_dir():  # a run folder: its policy
        if not (path / "policy.safetensors").is_file() and (path / "run.json").is_file():
            raise ModelLoadError(  # was "a folder without policy.safetensors — pass an isp-tune run folder"
                f"{path}: an isp-tune run whose training has not finished (no policy.safetensors yet) — "
                f"{FINISH_RUN.format(run=path)}"
            )
        if not (path / "policy.safetensors").is_file():
            raise ModelLoadError(
                f"{path}: a folder without policy.safetensors — pass an isp-tune run folder or its "
                "RUN/policy.safetensors"
            )
        # an earlier, shorter training's policy: was used without a word
        if finished and (left := training_left(path)):
            raise ModelLoadError(
                f"{option} {path}: its training has not finished ({left}) — {FINISH_RUN.format(run=path)}; "
                f"or use that earlier policy anyway: {option} {shlex.quote(str(path / 'policy.safetensors'))}"
            )
        return path / "policy.safetensors"
    card_of = path.with_suffix(".safetensors")
    if path.suffix.lower() == ".json" and path.is_file():  # RUN/policy.json: the card beside the policy
        fix = f"pass the policy itself, {card_of}" if card_of.is_file() else "pass a policy.safetensors"
        raise ModelLoadError(f"{path}: a JSON file, not a policy — {fix} (a parameter file goes to --params)")
    if not path.is_file():
        if hint := did_you_mean(str(spec), ["default"]):  # `--policy defualt`
            raise ModelLoadError(
                f"{path}: no such policy file{hint} — `default` is the policy shipped with the package"
            )
        raise ModelLoadError(
            f"{path}: no such policy file — pass a policy.safetensors written by `isp-tune` "
            "(RUN/policy.safetensors), or `default` for the policy shipped with the package"
        )
    return path


def training_left(run: Path) -> str | None:
    """What says a run folder's training has not finished though a ``policy.safetensors`` is there (one an
    earlier, shorter training wrote; a run continued with more steps and stopped): its checkpoint further on
    than the policy, as the files on disk say — else None. Read torch-free, from the JSON beside each."""
    import json

    state = find_state(run / "checkpoint")
    try:
        reached = json.loads((state / "state.json").read_text())["num_timesteps"] if state else None
        saved = json.loads((run / "policy.json").read_text())["timesteps"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(reached, int) or not isinstance(saved, int) or reached <= saved:
        return None
    return f"its checkpoint is at step {reached}, its policy.safetensors of step {saved}"


def find_state(folder: str | Path) -> Path | None:
    """The last complete checkpoint folder: ``folder``, or if a kill hit the swap the finished
    ``folder.tmp`` (its ``state.json`` is written last: complete when that exists) or ``folder.old``."""
    folder = Path(folder)
    for cand in (folder, folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")):
        if (cand / "state.json").is_file():
            return cand
    return None


def started_from(out: Path) -> bool:
    """Whether the run in ``out`` has started (its ``run.json``): its ``--init-policy`` is the file it
    started from, not refused as a run whose training has not finished — a finished run started from RUN,
    rerun after RUN was continued and stopped, was refused though nothing it read had changed."""
    return (Path(out) / "run.json").is_file()
