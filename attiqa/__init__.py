"""ATTIQA: attribute-aware image quality assessment.

Public API::

    import attiqa
    scorer = attiqa.load_scorer("runs/demo/pretrain/model.safetensors")   # or a name, e.g. "classical"
    scorer(["a.jpg", "b.png"])      # {"mos": array([...]), "sharpness": array([...]), ...}
"""

from __future__ import annotations

from attiqa.attributes import ATTRIBUTES

__version__ = "0.1.0"


def load_scorer(name_or_path=None, device="cpu", **overrides):
    """See :func:`attiqa.scorers.load_scorer` (imported lazily to keep ``import attiqa`` light)."""
    from attiqa.scorers import load_scorer as _load

    return _load(name_or_path, device=device, **overrides)


def create_scorer(name, device="cpu", **overrides):
    from attiqa.scorers import create_scorer as _create

    return _create(name, device=device, **overrides)


def list_scorers():
    from attiqa.scorers import list_scorers as _list

    return _list()


__all__ = ["ATTRIBUTES", "__version__", "create_scorer", "list_scorers", "load_scorer"]
