"""Horizontal strips on a small thread pool: how the ISP renders 12 megapixels fast (issue 6's speed target).

Why: a full-resolution render must stay within 2x of ``rawpy.postprocess()``, and LibRaw uses every free
core while plain numpy runs on one. The ISP therefore runs each pass over the image (the front end, every
element-wise stage of the back end, the pyramid's box averaging) strip by strip: a strip of a few dozen
rows keeps its temporaries in the CPU caches, so a chain of element-wise numpy operations costs about one
trip to memory, and the strips run on a thread pool (numpy and scipy release the GIL in their loops).

Determinism: the strip boundaries depend only on the image size, never on the thread count, and every
strip computes each output element with the same operations in the same order, so renders are bit-identical
whatever the number of threads (tested).

Thread count: the environment variable ``ISP_THREADS`` if set, else the cores this process may run on
(``attiqa.io.cores.usable_cores``); :func:`set_threads` overrides both. Images under
:data:`PARALLEL_MIN_PIXELS` run on the calling thread: the agent's small previews are rendered in one
process per environment already.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from attiqa.errors import ConfigError
from attiqa.io.cores import usable_cores

ENV_VAR = "ISP_THREADS"
STRIP_ELEMENTS = 1 << 17
"""Values per plane in one strip (512 KiB of float32): a strip's temporaries stay in the L2/L3 caches;
smaller strips pay numpy's per-call overhead (the measured sizes: docs/isp.md, "Speed")."""
PARALLEL_MIN_PIXELS = 1_000_000

_override: int | None = None
_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)
_in_worker = threading.local()  # set in the pool's threads: a nested run_strips runs inline (no deadlock)


def set_threads(n: int | None) -> None:
    """Use ``n`` threads (``None``: back to ``ISP_THREADS`` or the available cores)."""
    global _override
    if n is not None and int(n) < 1:
        raise ConfigError(f"ISP thread count must be >= 1, got {n}")
    _override = None if n is None else int(n)


def threads() -> int:
    """The thread count in use: :func:`set_threads`, else ``ISP_THREADS``, else the available cores."""
    if _override is not None:
        return _override
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"{ENV_VAR}={env!r} is not a thread count; set a positive integer or unset it")
        return int(env)
    return usable_cores()


def strip_rows(width: int, multiple: int = 2) -> int:
    """Rows per strip for planes ``width`` wide: about :data:`STRIP_ELEMENTS` values, a multiple of
    ``multiple`` (2 keeps the Bayer phase). Depends on the image only, so results don't depend on threads."""
    rows = max(1, STRIP_ELEMENTS // max(width, 1))
    return max(multiple, rows // multiple * multiple)


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, re-created after a fork (a forked child inherits the pool but not its threads)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] != workers:
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)
            _pool = (os.getpid(), workers, ThreadPoolExecutor(workers, thread_name_prefix="isp"))
        return _pool[2]


def run_strips(fn: Callable[[int, int], None], n_rows: int, rows: int, pixels: int) -> None:
    """Call ``fn(lo, hi)`` for the strips ``[0, rows), [rows, 2 rows), ...`` of ``n_rows`` rows, on the
    thread pool when the image has at least :data:`PARALLEL_MIN_PIXELS` ``pixels``. ``fn`` writes its own
    rows of preallocated outputs; the first exception raised by a strip is re-raised here."""
    bounds = [(lo, min(lo + rows, n_rows)) for lo in range(0, n_rows, rows)]
    workers = min(threads(), len(bounds))
    if workers <= 1 or pixels < PARALLEL_MIN_PIXELS or getattr(_in_worker, "active", False):
        for lo, hi in bounds:
            fn(lo, hi)
        return
    todo = iter(bounds)
    take = threading.Lock()

    failed = threading.Event()

    def worker() -> None:  # each worker takes the next strip until none is left (or a strip failed)
        _in_worker.active = True
        while not failed.is_set():
            with take:
                strip = next(todo, None)
            if strip is None:
                return
            try:
                fn(*strip)
            except BaseException:
                failed.set()
                raise

    futures = [_executor(threads()).submit(worker) for _ in range(workers)]
    for future in futures:
        future.result()
