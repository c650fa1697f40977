"""SB3 policies and training state as safetensors + JSON (never pickle, unlike SB3's own ``.zip``).

* the policy: its ``state_dict`` in ``policy.safetensors`` with a JSON card (algorithm, spaces, network and
  environment settings) in the header and beside it — enough to rebuild it without the training env;
* resume state: policy + every optimizer (``attiqa.io.checkpoints.save_training_state``) + the replay
  buffer + counters, written into a fresh folder that replaces the previous one, so a kill leaves one whole
  checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_np
from safetensors.numpy import save_file as save_np

from attiqa.errors import ModelLoadError
from attiqa.io.atomic import atomic_path, write_json_atomic
from attiqa.io.checkpoints import load_checkpoint, load_training_state, save_checkpoint, save_training_state
from isp_env.env import N_STATS, spaces_for
from isp_env.params import NAMES
from isp_env.policy_files import find_state
from isp_env.registration import RL_ALGOS
from isp_env.teacher import TeacherPolicy

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.policies import BasePolicy

POLICY_KIND = "isp_env-policy"
# 2 (session 26): a teacher policy's row counts live only in its tensors (format 1 also wrote them in the card
# as policy_kwargs.n_train, policy_kwargs.n_rows and teacher.rows.n; read, ignored) and the card records the
# reward model it was fitted against (``reward_model``: name + sha256; format 1: unknown)
POLICY_FORMAT = 2
_OLD_COUNTS = ("n_train", "n_rows")


def policy_given_as_params(path: Path) -> Path | None:
    """The policy ``path`` names when it was given where parameter values go (``render --params``): a run
    folder with a policy, a ``.safetensors`` file, or a policy's JSON card (``RUN/policy.json``)."""
    if path.is_dir():
        return path if (path / "policy.safetensors").is_file() else None
    if path.suffix.lower() == ".safetensors":
        return path
    try:
        card = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None  # not readable as JSON: the parameter reader says why
    is_card = isinstance(card, dict) and card.get("kind") == POLICY_KIND
    return path.with_suffix(".safetensors") if is_card else None


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    from stable_baselines3 import PPO, SAC, TD3

    return dict(zip(RL_ALGOS, (SAC, PPO, TD3), strict=True))


def save_policy(model: BaseAlgorithm | TeacherPolicy, path: str | Path, card: dict[str, Any]) -> Path:
    """``model.policy`` weights (an SB3 model, or a :class:`isp_env.teacher.TeacherPolicy` itself) +
    ``card`` (must hold ``algo``, ``policy_kwargs``, ``env``)."""
    tensors = _unshared((model if isinstance(model, TeacherPolicy) else model.policy).state_dict())
    full = {"kind": POLICY_KIND, "policy_format": POLICY_FORMAT, "param_names": list(NAMES), **card}
    return save_checkpoint(path, tensors, full)


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies of tensors that share memory (PPO's shared feature extractor): safetensors refuses aliases;
    ``load_state_dict`` fills every alias from its own copy, so nothing is lost."""
    seen: set[int] = set()
    out = {}
    for k, v in state.items():
        ptr = v.untyped_storage().data_ptr()
        out[k] = v.detach().clone() if ptr in seen else v
        seen.add(ptr)
    return out


def policy_digest(policy: TeacherPolicy | BasePolicy, card: dict[str, Any]) -> str:
    """A fingerprint of what a policy computes — its card and weights —, which the outputs made with it
    record: a step count does not tell two policies apart (two runs of the default 3,000 steps)."""
    h = hashlib.sha256(json.dumps(card, sort_keys=True, default=str).encode())
    for name, tensor in sorted(policy.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def policy_name(obs_mode: str) -> str:
    """SB3's policy for an observation mode: a CNN + MLP on the image observation, an MLP on the stats."""
    return "MlpPolicy" if obs_mode == "stats" else "MultiInputPolicy"


def build_policy(
    card: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None
) -> TeacherPolicy | BasePolicy:
    """An untrained policy of the card's shape; a teacher's row counts are read from its ``tensors``."""
    if card["algo"] == "teacher":  # no SB3: standardisation + a linear map or stored neighbours
        kw = {k: v for k, v in card["policy_kwargs"].items() if k not in _OLD_COUNTS}
        tensors = tensors or {}
        return TeacherPolicy(
            **kw, n_train=len(tensors.get("train_z", ())), n_rows=len(tensors.get("rows_x", ()))
        )
    algo = algorithms()[card["algo"]]
    obs_mode = card["env"].get("obs_mode", "image")
    obs_space, act_space = spaces_for(int(card["env"]["obs_size"]), obs_mode)
    cls = algo.policy_aliases[policy_name(obs_mode)]
    return cls(obs_space, act_space, lambda _: 0.0, **card.get("policy_kwargs", {}))


def load_policy(path: str | Path) -> tuple[TeacherPolicy | BasePolicy, dict[str, Any]]:
    """(policy in eval mode, card) from :func:`save_policy` output; a format-1 card comes back in the
    current form (no row counts: ``len(policy.rows_x)`` is the one count)."""
    tensors, card = load_checkpoint(path)
    if card.get("kind") != POLICY_KIND:
        raise ModelLoadError(
            f"{path}: not an isp-tune policy (no '{POLICY_KIND}' card) — pass the "
            "policy.safetensors written by `isp-tune`"
        )
    if int(card.get("policy_format", 1)) > POLICY_FORMAT:
        raise ModelLoadError(
            f"{path}: policy format {card['policy_format']} is newer than this isp_env's "
            f"({POLICY_FORMAT}) — upgrade attiqa"
        )
    if card.get("param_names") != list(NAMES):
        raise ModelLoadError(f"{path}: policy was trained for other ISP parameters — retrain it")
    if card["algo"] == "teacher":
        card = current_teacher_card(card)
    policy = build_policy(card, tensors)
    n_obs = int(card.get("policy_kwargs", {}).get("n_features", N_STATS + 1))
    try:
        if card["algo"] == "teacher" and n_obs != N_STATS + 1:
            raise RuntimeError(f"{n_obs - 1} image statistics")
        if card["algo"] == "teacher":  # its training rows (none before session 24: empty)
            for k in ("rows_x", "rows_y"):
                tensors.setdefault(k, getattr(policy, k))
        policy.load_state_dict(tensors)
    except RuntimeError as exc:  # the observation changed under it (12 statistics until session 23)
        what = str(exc) if card["algo"] == "teacher" else "its network does not fit"
        raise ModelLoadError(
            f"{path}: policy was trained on another observation ({what}; this isp_env has "
            f"{N_STATS} image statistics) — retrain it with isp-tune"
        ) from None
    groups = card.get("teacher", {}).get("rows", {}).get("groups")
    if isinstance(policy, TeacherPolicy) and groups is not None and len(groups) != len(policy.rows_x):
        raise ModelLoadError(
            f"{path}: its card names {len(groups)} scene groups for {len(policy.rows_x)} "
            "training rows (edited or damaged) — refit it with isp-tune --algo teacher"
        )
    policy.set_training_mode(False)
    return policy, card


def current_teacher_card(card: dict[str, Any]) -> dict[str, Any]:
    """A teacher card in the current format: format 1's three copies of the row count dropped."""
    card = {
        **card,
        "policy_kwargs": {k: v for k, v in card.get("policy_kwargs", {}).items() if k not in _OLD_COUNTS},
    }
    if isinstance(card.get("teacher", {}).get("rows"), dict):
        card["teacher"] = {
            **card["teacher"],
            "rows": {k: v for k, v in card["teacher"]["rows"].items() if k != "n"},
        }
    return card


# ---------------------------------------------------------------------------------------------------------
# resume state


def _buffer_arrays(buffer: ReplayBuffer) -> dict[str, np.ndarray]:
    n = buffer.buffer_size if buffer.full else buffer.pos
    out: dict[str, np.ndarray] = {}
    for name in ("observations", "next_observations"):
        field = getattr(buffer, name)
        if isinstance(field, dict):
            for key, arr in field.items():
                out[f"{name}.{key}"] = np.ascontiguousarray(arr[:n])
        else:
            out[name] = np.ascontiguousarray(field[:n])
    for name in ("actions", "rewards", "dones", "timeouts"):
        out[name] = np.ascontiguousarray(getattr(buffer, name)[:n])
    return out


def _restore_buffer(buffer: ReplayBuffer, arrays: dict[str, np.ndarray], pos: int, full: bool) -> None:
    for k, arr in arrays.items():
        if "." in k:
            name, key = k.split(".", 1)
            target = getattr(buffer, name)[key]
        else:
            target = getattr(buffer, k)
        if arr.shape[1:] != target.shape[1:] or len(arr) > len(target):
            raise ModelLoadError(
                f"replay buffer field {k} does not fit ({arr.shape} vs {target.shape}) — "
                "the run was started with other settings; use a new --out"
            )
        target[: len(arr)] = arr
    buffer.pos, buffer.full = int(pos), bool(full)


def save_state(model: BaseAlgorithm, folder: str | Path, extra: dict[str, Any]) -> None:
    """Everything needed to continue ``model.learn`` after a kill, written atomically as one folder."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    last = find_state(folder)
    if last is not None and last != folder and not folder.exists():  # a kill hit the last swap: finish it
        last.rename(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state_dicts, variables = model._get_torch_save_params()
    params = model.get_parameters()
    save_checkpoint(tmp / "policy.safetensors", _unshared(params["policy"]), {"kind": "isp_env-train-state"})
    for name in state_dicts:
        if name != "policy" and name in params:
            save_training_state(tmp / f"optim_{name}.safetensors", params[name], {})
    tensors = {v: getattr(model, v).detach().cpu().numpy().reshape(-1) for v in variables}
    buffer = getattr(model, "replay_buffer", None)
    doc = {
        "num_timesteps": int(model.num_timesteps),
        "episode_num": int(getattr(model, "_episode_num", 0)),
        "variables": sorted(tensors),
        **extra,
    }
    if buffer is not None:
        with atomic_path(tmp / "buffer.safetensors") as p:
            save_np({**_buffer_arrays(buffer), **{f"var.{k}": v for k, v in tensors.items()}}, str(p))
        doc["buffer"] = {"pos": int(buffer.pos), "full": bool(buffer.full)}
    elif tensors:
        with atomic_path(tmp / "buffer.safetensors") as p:
            save_np({f"var.{k}": v for k, v in tensors.items()}, str(p))
    write_json_atomic(tmp / "state.json", doc)
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_state(model: BaseAlgorithm, folder: Path, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote into a freshly built ``model``; returns the state document
    (``doc``: its ``state.json`` as already read and checked, :class:`isp_env.params.RunFiles`)."""
    doc = json.loads((folder / "state.json").read_text()) if doc is None else doc
    state_dicts, _ = model._get_torch_save_params()
    tensors, _ = load_checkpoint(folder / "policy.safetensors")
    params: dict[str, Any] = {"policy": tensors}
    for name in state_dicts:
        f = folder / f"optim_{name}.safetensors"
        if name != "policy" and f.exists():
            params[name], _ = load_training_state(f)
    model.set_parameters(params, exact_match=False)
    arrays = load_np(str(folder / "buffer.safetensors")) if (folder / "buffer.safetensors").exists() else {}
    for k in doc.get("variables", []):
        with torch.no_grad():
            getattr(model, k).copy_(torch.from_numpy(arrays[f"var.{k}"]).reshape(getattr(model, k).shape))
    buffer: ReplayBuffer | None = getattr(model, "replay_buffer", None)  # off-policy algorithms only
    if "buffer" in doc and buffer is not None:
        _restore_buffer(
            buffer,
            {k: v for k, v in arrays.items() if not k.startswith("var.")},
            doc["buffer"]["pos"],
            doc["buffer"]["full"],
        )
    model.num_timesteps = int(doc["num_timesteps"])
    model._episode_num = int(doc.get("episode_num", 0))
    return doc
