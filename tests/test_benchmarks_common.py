"""The benchmarks' measuring helpers (``benchmarks/_common.py``): a model load in a fresh process, step by
step, and the real ``attiqa score`` in a child with each process's own peak memory. Real child processes,
the bundled default model; the figures themselves are the benchmarks' business, not asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import photo_folder, run_load, run_score  # noqa: E402
from model_load_memory import status  # noqa: E402


def test_run_load_reports_the_real_loads_steps_and_its_peak():
    """**Was** two places: `run_load` timed `attiqa.load_scorer` in a child without steps, and
    `model_load_memory.py` rebuilt the load by hand (and still imported timm, which the load no longer
    does). Now one child program: the real `load_scorer`, its steps marked where the load's own functions
    return, the peak when loaded and after the forwards."""
    load = run_load("attiqa-default", {"OMP_NUM_THREADS": "1"}, threads=1, forwards=1)
    names = [s["step"] for s in load.steps]
    inside = [n.split(" (")[0] for n in names[names.index("attiqa.models, attiqa.scorers") + 1 :]]
    assert inside == [
        "read the checkpoint",
        "build the network",
        "load the weights, checkpoint tensors freed",
        "fold BatchNorm",
        "attiqa.load_scorer returned",
        "forward 1, 1 crop of 320 px",
    ]
    loaded = load.steps[names.index("attiqa.load_scorer returned (the scorer around the network)")]
    assert load.peak_mib == loaded["VmHWM"] <= load.peak_after
    assert load.steps[-1]["VmRSS"] > load.steps[0]["VmRSS"] and load.seconds > load.steps[-1]["seconds"] > 0
    assert not any("timm" in n or "torchvision" in n for n in names)
    assert status()["VmHWM"] > 0  # the same reader the child used, on this process


def test_run_score_reports_the_commands_own_peak_not_this_processs(tmp_path):
    """**Was** the waited child's ``ru_maxrss``, which Linux carries across fork and exec: at least this
    process's size at the fork. With 1 GiB more here than the command ever holds, it reported this
    process's size; now the command's own VmHWM (polled from /proc; a high-water mark)."""
    ballast = bytearray(b"\x01") * (1 << 30)  # written: resident, not zero pages
    here = status()["VmRSS"]
    folder = photo_folder(2, size=64)
    seconds, own, worker, cpu = run_score(folder, "classical", tmp_path / "s.csv", {}, ("-q", "-w", "0"))
    assert (tmp_path / "s.csv").is_file() and seconds > 0 and cpu > 0
    assert 0 < own < here - 512, (own, here)  # the command: the interpreter, torch, the classical scorer
    assert worker == 0  # -w 0: no decode worker
    del ballast
