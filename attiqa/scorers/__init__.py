"""Scorer registry (pyiqa-style): create any quality metric by name, with metadata.

``load_scorer(name_or_path)`` is the entry every command uses for ``--model``: a path to a
``.safetensors`` checkpoint, a named model from the model table, or a registered scorer name.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from attiqa.errors import ModelLoadError
from attiqa.io.checkpoints import model_table, resolve_named_model
from attiqa.scorers.base import Scorer, ScorerInfo

DEFAULT_MODEL = "attiqa-default"


@dataclass(frozen=True)
class ScorerEntry:
    info: ScorerInfo
    factory: Callable[..., Scorer]


_REGISTRY: dict[str, ScorerEntry] = {}


def register_scorer(info: ScorerInfo, factory: Callable[..., Scorer]) -> None:
    _REGISTRY[info.name] = ScorerEntry(info, factory)


def _register_builtins() -> None:
    from attiqa.scorers import classical_scorer, clip_scorers, exiqa_entry, zeroshot_scorer

    register_scorer(classical_scorer.INFO, classical_scorer.ClassicalScorer)
    register_scorer(zeroshot_scorer.INFO, zeroshot_scorer.ZeroShotScorer)
    register_scorer(clip_scorers.CLIPIQA_INFO, clip_scorers.clipiqa)
    register_scorer(clip_scorers.CLIPIQA_ATTR_INFO, clip_scorers.clipiqa_attributes)
    register_scorer(clip_scorers.TEMU_INFO, clip_scorers.temu_multilayer)
    register_scorer(clip_scorers.TEMU_LAYER_INFO, clip_scorers.temu_layer)
    register_scorer(exiqa_entry.INFO, exiqa_entry.create_exiqa)


_register_builtins()


def list_scorers() -> list[ScorerInfo]:
    """Registered scorers plus the named ATTIQA models, with their metadata."""
    infos = [e.info for e in _REGISTRY.values()]
    for name, entry in model_table().items():
        infos.append(
            ScorerInfo(
                name=name,
                kind="trained",
                score_range=tuple(entry.get("score_range", (0.0, 100.0))),
                higher_is_better=True,
                needs="bundled" if entry.get("file") else f"download: {entry.get('url')}",
                description=entry.get("description", ""),
            )
        )
    return infos


def _suggest(name: str) -> str:
    names = list(_REGISTRY) + list(model_table())
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f"did you mean {', '.join(close)}?" if close else f"known names: {', '.join(sorted(names))}"


def create_scorer(name: str, device: str | torch.device = "cpu", **overrides) -> Scorer:
    """Create a registered scorer by name; unknown names get the closest suggestions.

    ``NAME:ARG`` passes ARG as the scorer's first argument (its weights: a CLIP spec or folder for the
    CLIP scorers, e.g. ``clipiqa:path/to/open_clip_folder``).
    """
    if name in _REGISTRY:
        return _REGISTRY[name].factory(device=device, **overrides)
    head, sep, arg = name.partition(":")
    if sep and head in _REGISTRY:
        return _REGISTRY[head].factory(arg, device=device, **overrides)
    if name in model_table():
        from attiqa.scorers.attiqa_scorer import AttiqaScorer

        return AttiqaScorer(resolve_named_model(name), device=device, **overrides)
    raise ModelLoadError(f"unknown scorer {name!r}: {_suggest(name)} (see `attiqa models`)")


def load_scorer(
    name_or_path: str | Path | None = None, device: str | torch.device = "cpu", **overrides
) -> Scorer:
    """A scorer from a checkpoint path, a named model, or a registry name (None = the default model)."""
    if name_or_path is None:
        if DEFAULT_MODEL not in model_table():
            raise ModelLoadError(
                "no default model is bundled with this version — pass --model PATH to a checkpoint from "
                "`attiqa train` (or `make demo`), or --model classical for the weight-free baseline"
            )
        name_or_path = DEFAULT_MODEL
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or p.exists():
        from attiqa.scorers.attiqa_scorer import AttiqaScorer

        if p.is_dir():
            for cand in ("finetune/best.safetensors", "pretrain/model.safetensors", "model.safetensors"):
                if (p / cand).exists():
                    p = p / cand
                    break
            else:
                raise ModelLoadError(
                    f"{p}: folder holds no ATTIQA checkpoint (finetune/best.safetensors, ...)"
                )
        return AttiqaScorer(p, device=device, **overrides)
    return create_scorer(str(name_or_path), device=device, **overrides)


__all__ = ["Scorer", "ScorerInfo", "create_scorer", "list_scorers", "load_scorer", "register_scorer"]
