"""Which torch device a ``--device`` / ``device:`` value means (one rule for every command and stage)."""

from __future__ import annotations

import os

import torch

from attiqa.errors import ConfigError


def resolve_device(spec: str = "auto") -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``"cuda"`` also picks the
    local rank's GPU under DDP; anything else is passed to :class:`torch.device`. A device this machine
    lacks (no GPU, ``cuda:N`` past the visible ones, no MPS) is a one-line :class:`ConfigError` here,
    before any model loads, not torch's driver traceback at the first ``.to()``."""
    if spec in ("auto", "cuda"):
        if torch.cuda.is_available():
            return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
        if spec == "cuda":
            raise ConfigError("device 'cuda' requested but CUDA is not available — use device: auto or cpu")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r} — use auto, cpu, cuda or cuda:N") from None
    missing = _missing(dev)
    if missing:
        raise ConfigError(f"device {spec!r}: {missing} — use auto or cpu")
    return dev


def _missing(dev: torch.device) -> str:
    """Why ``dev`` cannot be used on this machine ("" = it can)."""
    if dev.type == "cpu":
        return ""
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return "CUDA is not available (no GPU visible)"
        if dev.index is not None and dev.index >= count:
            return f"this machine shows {count} GPU(s), cuda:0 to cuda:{count - 1}"
        return ""
    if dev.type == "mps":
        return "" if torch.backends.mps.is_available() else "Apple MPS is not available on this machine"
    backend = getattr(torch, dev.type, None)  # xpu, ...: torch.<type>.is_available() where torch has one
    available = getattr(backend, "is_available", None)
    if callable(available) and not available():
        return f"{dev.type} is not available on this machine"
    if not callable(available):
        return f"{dev.type} is not a device ATTIQA runs on"
    return ""
