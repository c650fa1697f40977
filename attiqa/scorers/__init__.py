"""Create any quality metric by name (the zoo table, :mod:`attiqa.scorers.zoo`) or from a checkpoint.

``load_scorer(name_or_path)`` is the entry every command uses for ``--model``: a path to a
``.safetensors`` checkpoint (or a run folder holding one), a named model, or a built-in scorer name.

Light to import: torch comes with the scorer a function creates, so :func:`list_scorers` (``attiqa
models``), :data:`DEFAULT_MODEL` and :func:`scorer_identity` cost no torch import. :class:`Scorer` and
:func:`weights_sha256` are re-exported on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from attiqa.errors import ModelLoadError
from attiqa.lazy import lazy_names
from attiqa.scorer_info import ScorerInfo
from attiqa.scorers.zoo import (
    ATTIQA_TARGET,
    checkpoint_file,
    checkpoint_in,
    is_attiqa_model,
    is_checkpoint,
    resolve_target,
    resolve_weights,
    unknown_scorer,
    zoo_entry,
    zoo_table,
)

if TYPE_CHECKING:
    import torch

    from attiqa.interface import Scorer
    from attiqa.io.checkpoints import CheckpointHashes, weights_sha256

DEFAULT_MODEL = "attiqa-default"
# re-exported names whose modules import torch, imported on first use
__getattr__ = lazy_names(__name__, {"Scorer": "attiqa.interface", "weights_sha256": "attiqa.io.checkpoints"})


def list_scorers() -> list[ScorerInfo]:
    """Every zoo entry's metadata (built-in scorers, then the named ATTIQA models)."""
    return [e.info for e in zoo_table().values()]


def create_scorer(name: str, device: str | torch.device = "cpu", **overrides: Any) -> Scorer:
    """Create a zoo scorer by name; unknown names get the closest suggestions.

    ``NAME:ARG`` passes ARG as the scorer's first argument (its weights: a CLIP spec or folder for the
    CLIP scorers, e.g. ``clipiqa:path/to/open_clip_folder``).
    """
    table = zoo_table()
    head, sep, arg = name.partition(":")
    entry = zoo_entry(name)
    if entry is None:
        if is_checkpoint(name):  # create_scorer takes names; load_scorer takes both
            raise ModelLoadError(f"{name}: a checkpoint, not a scorer name — load it with attiqa.load_scorer")
        raise unknown_scorer(name)
    if entry.has_weights:
        if sep and name not in table:
            raise ModelLoadError(f"named model {head!r} takes no ':' argument (got {name!r})")
        first: Any = resolve_weights(entry.info.name)
    else:
        first = arg if (sep and name not in table) else entry.default_arg
    factory = resolve_target(entry.target)
    kwargs = {**entry.kwargs, **overrides}
    if entry.target != ATTIQA_TARGET:
        kwargs["info"] = entry.info
    return factory(first, device=device, **kwargs) if first is not None else factory(device=device, **kwargs)


def load_scorer(
    name_or_path: str | Path | None = None, device: str | torch.device = "cpu", **overrides: Any
) -> Scorer:
    """A scorer from a checkpoint path, a named model, or a zoo name (None = the default model)."""
    if name_or_path is None:
        if DEFAULT_MODEL not in zoo_table():
            raise ModelLoadError(
                "no default model is bundled with this version — pass --model PATH to a checkpoint from "
                "`attiqa train` (or `make demo`), or --model classical for the weight-free baseline"
            )
        name_or_path = DEFAULT_MODEL
    if is_checkpoint(name_or_path):
        factory = resolve_target(ATTIQA_TARGET)
        return factory(checkpoint_in(Path(name_or_path)), device=device, **overrides)
    return create_scorer(str(name_or_path), device=device, **overrides)


def scorer_identity(
    name_or_path: str | Path | None = None, read: CheckpointHashes | None = None
) -> dict[str, str | None]:
    """What a scorer is, for a record that must notice when it changes (e.g. the reward model an ISP policy
    was fitted against): ``{"name", "sha256"}`` — the SHA-256 of the weights file of a checkpoint or of a
    named model (the registry's, ``attiqa/data/models.json``, checked on every load), ``None`` for a scorer
    with no weights file of its own (``classical``, CLIP scorers). ``None`` = the default model. A file is
    hashed once per process (:func:`weights_sha256`); ``read``: that checkpoint's hashes when the caller has
    read it (:func:`attiqa.evaluation.cache.resume_identity`)."""
    from attiqa.io.checkpoints import weights_sha256

    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    if is_checkpoint(name):
        path = checkpoint_file(name)
        read_here = read is not None and read.path == path.resolve()
        return {
            "name": name,
            "sha256": read.sha256 if read is not None and read_here else weights_sha256(path),
        }
    entry = zoo_table().get(name)
    if entry is not None and entry.has_weights:
        return {"name": name, "sha256": entry.sha256 or weights_sha256(resolve_weights(name))}
    return {"name": name, "sha256": None}


__all__ = [
    "DEFAULT_MODEL",
    "Scorer",
    "ScorerInfo",
    "create_scorer",
    "is_attiqa_model",
    "is_checkpoint",
    "list_scorers",
    "load_scorer",
    "scorer_identity",
    "weights_sha256",
]
