"""The cores this process may run on — one count for the decode workers (attiqa.io.batching) and the ISP's
render threads (isp_env.strips). Torch-free, so the raw pipeline can import it alone."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a container's cpuset);
    where the platform has no affinity call (macOS, Windows), the machine's cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
