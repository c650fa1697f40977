"""Shared helpers for benchmarks: a folder of real photos (scikit-image's bundled ones) as JPEG files."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

from model_load_memory import CHILD_MARK, status

from attiqa.allocator import tune_allocator
from attiqa.demo import DEMO_PHOTOS, skimage_photo

# Measure what the command lines run: they tune malloc at start (``ATTIQA_MALLOC=system`` to compare without;
# benchmarks/allocator.py prices it).
tune_allocator()


def photo_folder(n: int, size: int = 512) -> Path:
    """``n`` JPEG files cycling through the bundled photos, resized so the shorter edge is ``size``."""
    d = Path(tempfile.mkdtemp(prefix="attiqa-bench-"))
    photos = [skimage_photo(name) for name in DEMO_PHOTOS]
    for i in range(n):
        img = photos[i % len(photos)]
        s = size / min(img.size)
        img = img.resize((round(img.width * s), round(img.height * s)))
        img.save(d / f"img_{i:04d}.jpg", quality=92)
    return d


def first_photos(root: str | Path | None, n: int) -> list[Path]:
    """The first ``n`` photos found under ``root`` (``--root``), or ``n`` generated ones
    (:func:`photo_folder`) when it is None: the benchmarks run without ../shared/data."""
    from attiqa.io.images import discover_images

    return discover_images([Path(root) if root else photo_folder(n)])[:n]


class LoadReport(NamedTuple):
    seconds: float  # start of the child to its end, the model loaded
    peak_mib: float  # the child's VmHWM right after the load
    steps: list[dict]  # model_load_memory.measure's rows: step, VmRSS, VmHWM, RssAnon, RssFile, seconds
    peak_after: float  # its VmHWM at the end (after the forwards, if any)


def run_load(model: str, env: dict[str, str], threads: int | None = None, forwards: int = 0) -> LoadReport:
    """Load scorer ``model`` (``attiqa.load_scorer``, as ``attiqa score`` does before its first photo) in a
    fresh child process with ``env`` added, step by step (``benchmarks/model_load_memory.py --child``).
    The child reads its own VmHWM: a waited-for child's ``ru_maxrss`` keeps the parent's size at the fork
    (Linux carries it across exec), which would hide a small model."""
    import json
    import os
    import subprocess
    import sys
    import time

    script = Path(__file__).with_name("model_load_memory.py")
    cmd = [sys.executable, str(script), "--child", "--model", model, "--threads", str(threads or 0)]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, "--forwards", str(forwards)], env={**os.environ, **env}, capture_output=True,
                          text=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(CHILD_MARK)), None)
    if proc.returncode or line is None:
        raise SystemExit(f"loading {model} failed ({env}):\n{proc.stderr}")
    got = json.loads(line[len(CHILD_MARK) :])
    return LoadReport(seconds, got["loaded"]["peak"], got["steps"], got["peak"])


def run_score(
    folder: Path,
    model: str,
    out: Path,
    env: dict[str, str],
    args: tuple[str, ...] = (),
    launcher: tuple[str, ...] = (),
    command: str = "score",
):
    """Run the real ``attiqa score FOLDER -m MODEL -o OUT [ARGS]`` in a child process with ``env`` added
    (``launcher``: a module to run ``attiqa.cli`` under, e.g. ``("torch.distributed.run", "--standalone")``;
    ``command="eval"``: ``attiqa eval folder --root FOLDER -m MODEL -o OUT --no-cache [ARGS]``, FOLDER holding
    a mos.csv, OUT a folder);
    returns (seconds start to end, peak RSS in MiB of the command's own process (under a launcher: the
    launcher's), peak RSS of its largest descendant (decode worker; under a launcher: rank or worker) or
    None when no descendant was sampled alive (none forked, or each ended between two samples: not
    measured, never reported as 0 MiB), CPU seconds of all of them).

    Peaks are each process's VmHWM, read from /proc every 50 ms while it runs: a high-water mark, so a
    reading after the peak holds it (only growth in the last 50 ms before the exit would be missed). Not
    the waited child's ``ru_maxrss``: Linux carries that across fork and exec, so it is at least the
    benchmark's own size at the fork and would hide a command smaller than this process."""
    import shutil
    import sys

    for stale in out.parent.glob(f"*{out.name}*"):  # the output and its hidden records: score afresh
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    head = [sys.executable, "-m", *launcher, *(["-m"] if launcher else []), "attiqa.cli"]
    what = (
        ["eval", "folder", "--root", str(folder), "--no-cache"]
        if command == "eval"
        else ["score", str(folder)]
    )
    return watch([*head, *what, "-m", model, "-o", str(out), *args], env, f"attiqa {command}")


def watch(cmd: list[str], env: dict[str, str], what: str) -> tuple[float, float, float | None, float]:
    """Run ``cmd`` with ``env`` added to this environment; returns :func:`run_score`'s (seconds, own peak
    RSS MiB, largest descendant's or None, CPU seconds of all), each peak a VmHWM read every 50 ms."""
    import os
    import subprocess
    import time

    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a long run's progress would fill a pipe
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err)
        own = 0.0
        worker: float | None = None
        while True:
            own = max(own, _peak_rss_mib(proc.pid))  # before wait4: a reaped pid may be reused
            pid, status_, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            # a zombie's status has no VmHWM (0 here): a sample of it is no measurement
            seen = [m for c in _descendants(proc.pid) if _is_python(c) and (m := _peak_rss_mib(c)) > 0]
            if seen:
                worker = max(seen if worker is None else [worker, *seen])
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status_):
            err.seek(0)
            raise SystemExit(f"{what} failed ({env}):\n{err.read().decode()}")
    cpu = usage.ru_utime + usage.ru_stime  # reaped workers included
    return seconds, own, worker, cpu


def _descendants(pid: int) -> list[int]:
    """Children of ``pid`` and theirs (decode workers; a launcher's ranks and their workers)."""
    import contextlib

    out: list[int] = []
    todo = [pid]
    while todo:
        kids: list[int] = []
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            with contextlib.suppress(OSError):  # the thread or the process ended
                kids += [int(k) for k in task.read_text().split()]
        out += kids
        todo += kids
    return out


def _is_python(pid: int) -> bool:
    """Whether ``pid`` runs this interpreter: a decode worker (forked) or a launcher's rank, not a helper
    program that an import runs for a moment (torch's CUDA library lookup runs ``ldconfig -p``). Asked
    twice, 20 ms apart: such a helper is this interpreter too from its fork to its exec, with the parent's
    memory as its own (CI under load once sampled it there: a 644 MiB "decode worker" with ``-w 0``)."""
    import os
    import sys
    import time

    def runs_python() -> bool:
        try:
            return os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(sys.executable)
        except OSError:
            return False

    if not runs_python():
        return False
    time.sleep(0.02)
    return runs_python()


def _peak_rss_mib(pid: int) -> float:
    """VmHWM of a live process (0 when it is gone or a zombie)."""
    try:
        return status(pid).get("VmHWM", 0.0)
    except OSError:
        return 0.0


def forward_rate(net, batches) -> float:
    """Images per second of ``net`` over already transformed ``batches`` (one warm-up batch first); a
    five-crop batch (N, 5, C, H, W) is run as N*5 crops, as the scorer does."""
    import time

    import torch

    def run(b):
        net(b.flatten(0, 1) if b.dim() == 5 else b)

    n = sum(len(b) for b in batches)
    with torch.inference_mode():
        run(batches[0])
        t0 = time.perf_counter()
        for b in batches:
            run(b)
        return n / (time.perf_counter() - t0)


def interleaved(rounds: int, **runs):
    """Call each ``runs`` function (returning images/s) once per round, alternating, ``rounds`` times.

    Returns ``{name: best rate}`` and the median over rounds of each run's rate divided by the first run's
    rate in that same round. On a machine whose load changes by the minute (other jobs), alternating keeps
    both sides of a ratio under the same load, and the best of several rounds is the least disturbed one.
    """
    import statistics

    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(max(1, rounds)):
        for name, fn in runs.items():
            rates[name].append(fn())
    first = next(iter(runs))
    base = rates[first]
    per_round = {}
    for name, rs in rates.items():
        per_round[name] = statistics.median(r / b for r, b in zip(rs, base, strict=True))
    return {name: max(rs) for name, rs in rates.items()}, per_round
