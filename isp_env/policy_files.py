"""Which file a policy argument (``--policy``, ``--init-policy``) names, torch-free: ``isp-tune`` says a
missing one before torch loads; :mod:`isp_env.policy_io` reads what it names."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from attiqa.errors import ModelLoadError, did_you_mean
from attiqa.io.run_meta import differing_settings
from isp_env.params import file_stamp

DEFAULT_POLICY = Path(__file__).parent / "data" / "policy-default.safetensors"
FINISH_RUN = "finish it: rerun the last isp-tune command run with --out {run} (it resumes), then use it"
"""The fix for a run folder given as a policy before its training finished: the command that last ran it
(a continued run's, not the one that started it: was "the command that started it")."""


def resolve_policy(spec: str | Path, option: str = "--policy") -> Path:
    """``default`` -> the policy shipped with the package (docs/isp.md has its card); a run folder -> its
    policy.safetensors, once its training has finished (:func:`training_left`: the one place that decides it,
    for ``render``, ``check``, ``--init-policy`` and the benchmarks alike); else a path. ``option``: the
    caller's option, named in the refusal's fix (with a name, ``--policy sac=``: the name and the path are
    one argument). The ``--init-policy`` of a run already started: :func:`init_policy_file`."""
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
        if left := training_left(path):
            flag, _, name = option.partition(" ")  # "--policy sac=": the name goes before the path
            anyway = shlex.quote(name + str(path / "policy.safetensors"))
            raise ModelLoadError(
                f"{flag} {name}{path}: its training has not finished ({left}) — "
                f"{FINISH_RUN.format(run=path)}; or use that earlier policy anyway: {flag} {anyway}"
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
    earlier training wrote), read torch-free from the run's own records — else None: its checkpoint further
    on than the policy (continued and stopped after a checkpoint); fewer steps in the policy than its last
    run asked (run.json's ``asked``: continued with more ``--timesteps`` and stopped before a checkpoint);
    a teacher fitted with other settings than its last run asked (rerun with other ``--teacher-*`` and
    stopped). A run.json of a version before ``asked`` is judged by its checkpoint alone."""
    state = find_state(run / "checkpoint")
    reached = json_field(state / "state.json" if state else None, "num_timesteps")
    saved = json_field(run / "policy.json", "timesteps")
    saved = saved if isinstance(saved, int) else None
    if isinstance(reached, int) and saved is not None and reached > saved:
        return f"its checkpoint is at step {reached}, its policy.safetensors of step {saved}"
    asked = json_field(run / "run.json", "asked")
    if not isinstance(asked, dict):
        return None
    steps = asked.get("timesteps")
    if isinstance(steps, int) and saved is not None and saved < steps:
        return f"its last run asked {steps} steps, its policy.safetensors is of step {saved}"
    fit, fitted = asked.get("teacher_fit"), json_field(run / "training.json", "config")
    if isinstance(fit, dict) and not isinstance(fitted, dict):  # stopped between the policy and its record
        return "its policy.safetensors has no record of the fit it is of (no readable training.json)"
    if isinstance(fit, dict) and isinstance(fitted, dict) and fit != fitted:
        other = differing_settings(fitted, fit)
        return f"its policy.safetensors was fitted with other settings than its last run asked ({other})"
    return None


def json_field(path: Path | None, key: str) -> object:
    """``key`` of the JSON object in ``path``, None when it cannot be read or has none."""
    try:
        doc = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
    return doc.get(key) if isinstance(doc, dict) else None


def find_state(folder: str | Path) -> Path | None:
    """The last complete checkpoint folder: ``folder``, or if a kill hit the swap the finished
    ``folder.tmp`` (its ``state.json`` is written last: complete when that exists) or ``folder.old``."""
    folder = Path(folder)
    for cand in (folder, folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")):
        if (cand / "state.json").is_file():
            return cand
    return None


def init_policy_file(spec: str | Path, out: Path | None) -> Path:
    """The file the run in ``out`` starts from with ``--init-policy spec``: the one its run.json says it
    started from (its ``inputs`` stamp, the file unchanged since) whatever that run's training has done
    since — a finished run started from RUN, rerun after RUN was continued and stopped, was refused though
    nothing it read had changed; else one :func:`resolve_policy` accepts (a run folder's training finished).
    A run.json of a version before ``inputs``: its run folder's policy, as that version took it. ``out``
    None: a run not started (a library caller's training)."""
    record = out / "run.json" if out is not None else None
    if record is not None and record.is_file() and str(spec) != "default":
        path = Path(spec) / "policy.safetensors" if Path(spec).is_dir() else Path(spec)
        started = json_field(record, "inputs")
        if path.is_file() and (
            started is None  # a run.json of a version before the stamps
            or isinstance(started, dict)
            and started.get(str(path)) == file_stamp(path, hashed=False)
        ):
            return path
    return resolve_policy(spec, "--init-policy")
