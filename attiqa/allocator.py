"""Keep freed activation memory in the process instead of handing it back to the OS after every batch.

A CPU forward pass allocates tensors of tens of MB (a batch of five-crop activations) and frees them
again. glibc's malloc serves blocks above its mmap threshold with ``mmap`` and returns them with
``munmap``, and trims the top of the heap when more than its trim threshold is free; so every batch maps
fresh pages, and the kernel zero-fills each one on first touch. On virtual machines those page faults are
expensive: ``benchmarks/allocator.py`` prices it (figures: docs/default_model.md, "Implementation speed
notes"). Raising both
thresholds keeps the pages mapped: the process's peak memory is what the work needs, and it stays
resident until the command ends — the trade every CPU inference server makes (the PyTorch CPU tuning
guide suggests jemalloc or tcmalloc through ``LD_PRELOAD`` for the same reason; this needs no extra
library).

The command lines call :func:`tune_allocator` once at start; library users may call it themselves.
``ATTIQA_MALLOC=system`` leaves malloc alone, as does any platform whose C library is not glibc. Forked
workers (DataLoader, decode workers) inherit the setting.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Blocks up to this size come from the heap and stay there once freed; larger ones (rare: a whole batch of
# full-size images) are still mapped and unmapped each time.
KEEP_BYTES = 1 << 30

_tuned: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`KEEP_BYTES` (once per process).

    Returns whether malloc was tuned: False with ``ATTIQA_MALLOC=system``, off glibc, or when glibc refused
    a value.
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    opted_out = os.environ.get("ATTIQA_MALLOC", "").strip().lower() == "system"
    if opted_out or not sys.platform.startswith("linux"):
        return False
    try:
        # The process's own symbols (libc among them): ``ctypes.util.find_library`` would run ``ldconfig -p``
        # in a child process at every command start.
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: mallopt is a no-op or absent
            return False
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES) != 1:
        return False
    if mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES) != 1:
        return False
    trim = libc.malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    # A forked worker (decode, DataLoader) shares every mapped page with the parent until one side writes:
    # the parent's kept-but-free pages would then be copied one by one as it reuses them. Giving them back
    # just before a fork turns that into one zero-filled fault per page, as without the tuning.
    os.register_at_fork(before=lambda: trim(0))
    _tuned = True
    return True


__all__ = ["KEEP_BYTES", "tune_allocator"]
