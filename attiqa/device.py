"""Which torch device a ``--device`` / ``device:`` value means (one rule for every command and stage)."""

from __future__ import annotations

import os

import torch

from attiqa.errors import ConfigError


def resolve_device(spec: str = "auto") -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``"cuda"`` also picks the
    local rank's GPU under DDP; anything else is passed to :class:`torch.device`."""
    if spec in ("auto", "cuda"):
        if torch.cuda.is_available():
            return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
        if spec == "cuda":
            raise ConfigError("device 'cuda' requested but CUDA is not available — use device: auto or cpu")
        return torch.device("cpu")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r} — use auto, cpu, cuda or cuda:N") from None
