"""ATTIQA: attribute-aware image quality assessment.

Public API::

    import attiqa
    scorer = attiqa.load_scorer("runs/demo/pretrain/model.safetensors")   # or a name, e.g. "classical"
    scorer(["a.jpg", "b.png"])      # {"mos": array([...]), "sharpness": array([...]), ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from attiqa.attributes import ATTRIBUTES

if TYPE_CHECKING:
    import torch

    from attiqa.interface import Scorer
    from attiqa.scorer_info import ScorerInfo

__version__ = "0.1.0"


def load_scorer(
    name_or_path: str | Path | None = None, device: str | torch.device = "cpu", **overrides: Any
) -> Scorer:
    """See :func:`attiqa.scorers.load_scorer` (imported lazily to keep ``import attiqa`` light)."""
    from attiqa.scorers import load_scorer as _load

    return _load(name_or_path, device=device, **overrides)


def create_scorer(name: str, device: str | torch.device = "cpu", **overrides: Any) -> Scorer:
    from attiqa.scorers import create_scorer as _create

    return _create(name, device=device, **overrides)


def list_scorers() -> list[ScorerInfo]:
    from attiqa.scorers import list_scorers as _list

    return _list()


__all__ = ["ATTRIBUTES", "__version__", "create_scorer", "list_scorers", "load_scorer"]
