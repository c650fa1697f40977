"""The cores this process may run on — one count for the decode workers (attiqa.io.batching) and the ISP's
render threads (isp_env.strips). Torch-free, so the raw pipeline can import it alone."""

from __future__ import annotations

import os

# The most decode workers a command or config may ask for (`--workers`, `num_workers`): each is a process
# forked from the command: `attiqa label -w 100000` forked about 50 a second, memory growing ~0.7 GB a
# second on 2 cores, until the machine ran out; the defaults stay at most 8 (attiqa.io.batching).
MAX_WORKERS = 64


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a container's cpuset);
    where the platform has no affinity call (macOS, Windows), the machine's cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
