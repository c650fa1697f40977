"""The form of a ``--device`` / ``device:`` value, checked without torch: a command says a mistyped device
(``gpu``, ``cuda0``, ``CUDA``) before its lock probe and before torch loads — the first line a user sees is
the real mistake. Whether the device is on this machine stays :func:`attiqa.device.resolve_device`'s check."""

from __future__ import annotations

import re

from attiqa.errors import ConfigError

# the device types torch.device parses (torch 2.x: "Expected one of ... device type"); "auto" is ours
DEVICE_TYPES = frozenset(
    [
        "cpu",
        "cuda",
        "ipu",
        "xpu",
        "mkldnn",
        "opengl",
        "opencl",
        "ideep",
        "hip",
        "ve",
        "fpga",
        "maia",
        "xla",
        "lazy",
        "vulkan",
        "mps",
        "meta",
        "hpu",
        "mtia",
        "privateuseone",
    ]
)
_FORM = re.compile(r"(?P<type>[a-z]+)(?::\d+)?")


def unknown_device(spec: str) -> str:
    """The one line for a device value that names no device."""
    return f"unknown device {spec!r} — use auto, cpu, cuda or cuda:N"


def check_device_form(spec: str) -> None:
    """``spec`` is ``auto`` or TYPE[:N] of a device type torch knows; else :func:`unknown_device`'s line."""
    m = _FORM.fullmatch(spec)
    if spec != "auto" and (m is None or m.group("type") not in DEVICE_TYPES):
        raise ConfigError(unknown_device(spec))
