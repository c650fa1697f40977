"""Which torch device a ``--device`` / ``device:`` value means (one rule for every command and stage)."""

from __future__ import annotations

import os

import torch

from attiqa.device_names import unknown_device
from attiqa.errors import ConfigError
from attiqa.launch import launched_local_rank


def resolve_device(spec: str = "auto") -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available (one process: ``cuda:0`` whatever
    LOCAL_RANK its shell holds, :func:`attiqa.launch.launched_local_rank`), else CPU; ``"cuda"`` also
    picks the local rank's GPU under DDP; anything else is passed to :class:`torch.device`. A device this
    machine lacks (no GPU, ``cuda:N`` past the visible ones, no MPS) is a one-line :class:`ConfigError`
    here, before any model loads, not torch's driver traceback at the first ``.to()``."""
    if spec in ("auto", "cuda"):
        if torch.cuda.is_available():
            return process_gpu(launched_local_rank(), torch.cuda.device_count())
        if spec == "cuda":
            raise ConfigError("device 'cuda' requested but CUDA is not available — use device: auto or cpu")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(unknown_device(spec)) from None
    missing = _missing(dev)
    if missing:
        raise ConfigError(f"device {spec!r}: {missing} — use auto or cpu")
    return dev


def process_gpu(local_rank: int, count: int) -> torch.device:
    """The GPU of torchrun's process ``local_rank`` (one a process) among the ``count`` this process sees.
    More processes than GPUs (--nproc_per_node 4 on 2) was torch.cuda.set_device's traceback in the
    process group's join; now a one-line :class:`ConfigError` naming both fixes."""
    if local_rank < count:
        return torch.device(f"cuda:{local_rank}")
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    sees = f"{count} GPU(s) (torch.cuda.device_count()" + (f"; CUDA_VISIBLE_DEVICES={shown}" if shown else "")
    raise ConfigError(
        f"LOCAL_RANK={local_rank}: this process sees {sees}), one a process — start at most {count} "
        f"process(es) a machine (torchrun --nproc_per_node {count}), or run on the CPU (--device cpu, or "
        "device: cpu in the config)"
    )


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
