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
        "load the weights",  # the scorer loads the bytes it hashed (session 53: load_checkpoint_hashed)
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
    process's size; now the command's own VmHWM (polled from /proc; a high-water mark).

    Session 37: the worker peak **was** any descendant's, and CI once caught ``ldconfig -p`` (run by torch's
    CUDA library lookup at import, and by our allocator's ``find_library`` until then): 0.93 MiB of "decode
    worker" with ``-w 0``. Now only descendants running this interpreter count.

    Session 43: a run with no worker sampled **was** reported as a worker of 0 MiB, the same figure as a
    measurement; now None ("not measured"), and a forked worker's peak is its own (a real ``-w 1``)."""
    ballast = bytearray(b"\x01") * (1 << 30)  # written: resident, not zero pages
    here = status()["VmRSS"]
    folder = photo_folder(2, size=64)
    seconds, own, worker, cpu = run_score(folder, "classical", tmp_path / "s.csv", {}, ("-q", "-w", "0"))
    assert (tmp_path / "s.csv").is_file() and seconds > 0 and cpu > 0
    assert 0 < own < here - 512, (own, here)  # the command: the interpreter, torch, the classical scorer
    assert worker is None  # -w 0: no decode worker, so none measured
    del ballast
    # Session 51: CI missed the worker of 2 images of 64 px (alive ~60 ms, shorter than a sample and its
    # second look): 64 images of 128 px keep it decoding for about half a second
    many = photo_folder(64, size=128)
    *_, worker, _ = run_score(many, "classical", tmp_path / "w.csv", {}, ("-q", "-w", "1"))
    assert worker is not None and worker > 50, worker  # a fork of a process that imported torch


def test_the_tap_maps_are_captured_in_one_place_as_the_scorer_reads_them():
    """Session 36 review: `benchmarks/tap_stats.py` and `experiments/speed/tap_stats_variants.py` each had
    their own forward-hook capture of the tap maps (and their own error measure). Now `tap_maps.py`, which
    both import: from the bundled model, one map per tap and forward (channels_last, every crop of the
    chunk), today's statistics on them within float32 error of float64."""
    import torch
    from tap_maps import capture_tap_maps, stat_errors

    from attiqa.models.backbones import spatial_mean_std, tap_points
    from attiqa.scorers.attiqa_scorer import AttiqaScorer
    from attiqa.scorers.zoo import resolve_weights

    photos = sorted(photo_folder(2, size=320).glob("*.jpg"))
    sc = AttiqaScorer(resolve_weights("attiqa-default"))
    body, ridge_head = sc.model.backbone.body, sc.model.ridge
    assert ridge_head is not None  # the shipped model has its ridge head
    n_heads, n_ridge = (len(tap_points(body.net, taps)[0]) for taps in (body.taps, ridge_head.taps))
    every = capture_tap_maps(sc, photos, chunk=4)  # 2 photos x 5 crops: forwards of 4, 4 and 2 crops
    ridge = capture_tap_maps(sc, photos, chunk=10, ridge_only=True)
    assert len(every) == 3 * (n_heads + n_ridge) and [y.shape[0] for y in every[-n_ridge:]] == [2] * n_ridge
    assert len(ridge) == n_ridge and all(y.shape[0] == 10 for y in ridge)
    assert all(y.is_contiguous(memory_format=torch.channels_last) for y in every + ridge)
    em, es, ez = stat_errors(ridge, spatial_mean_std)
    assert em < 1e-5 and es < 1e-4 and ez < 1e-4
    for script in ("benchmarks/tap_stats.py", "experiments/speed/tap_stats_variants.py"):
        text = (ROOT / script).read_text()
        assert "from tap_maps import" in text and "register_forward_hook" not in text, script


STEPS_OF_LOAD_MODEL = """
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import attiqa.models
from model_load_memory import Steps, _probe

step = Steps()
_probe(step)
attiqa.models.load_model(Path(sys.argv[2]))
print("|".join(r["step"].split(" (")[0] for r in step.rows[1:]))
"""


def test_the_weights_step_has_one_name_whichever_function_loads_them(tmp_path):
    """**Was** two names for one step: `load_model`'s return was "load the weights, checkpoint tensors
    freed" and `model_from_checkpoint`'s (the scorer's, inside `load_model` too) "load the weights", so a
    load through `load_model` (a tree before session 53, `--against`) showed the step twice under two names.
    Now one name, marked where the outermost of its functions returns (a real child process: the probes
    wrap the modules' functions for good)."""
    import subprocess

    from helpers import attiqa_env, tiny_attiqa_checkpoint

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cmd = [sys.executable, "-c", STEPS_OF_LOAD_MODEL, str(ROOT / "benchmarks"), str(ckpt)]
    res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().split("|") == ["read the checkpoint", "build the network", "load the weights"]
