"""The form of a ``--device`` / ``device:`` value, checked without torch: a command says a mistyped device
(``gpu``, ``cuda0``, ``CUDA``) before its lock probe and before torch loads — the first line a user sees is
the real mistake. Whether the device is on this machine stays :func:`attiqa.device.resolve_device`'s check.
Only what torch refuses too is refused here: a type torch adds is caught by the test of
:data:`DEVICE_TYPES` against the installed torch's own list, and the name an out-of-tree backend gives
itself (torch_npu's ``npu``) is left to torch."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

from attiqa.errors import ConfigError

# the device types torch.device parses: torch keeps them in C++ (c10 parse_type) and says them in its
# error, "Expected one of ... device type" (tests/test_cli_paths_devices_and_config_keys.py compares the
# two); "auto" is ours
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
# the entry points torch loads as it starts (out-of-tree device backends, torch >= 2.5): such a backend takes
# the place of "privateuseone" under its own name (torch_npu: "npu"), which no list here can hold
TORCH_BACKENDS = "torch.backends"


def unknown_device(spec: str) -> str:
    """The one line for a device value that names no device."""
    return f"unknown device {spec!r} — use auto, cpu, cuda or cuda:N"


def check_device_form(spec: str) -> None:
    """``spec`` is ``auto`` or TYPE[:N] of a device type torch knows; else :func:`unknown_device`'s line —
    unless an out-of-tree backend is installed (:data:`TORCH_BACKENDS`): what it names is torch's to judge,
    after the probe (`--device npu` with torch_npu was refused here, though torch takes it)."""
    m = _FORM.fullmatch(spec)
    if spec == "auto" or (m is not None and m.group("type") in DEVICE_TYPES):
        return
    if entry_points(group=TORCH_BACKENDS):  # read only for a value outside the list
        return
    raise ConfigError(unknown_device(spec))
