"""Decoding in the scoring process, between forward passes: ``-w 0`` decodes each batch by several threads,
the same tensors as one thread, bad files reported in their batch; on a CPU whose cores torch's threads take,
scoring's default is this path instead of a decode worker beside the model. Real files, real threads, the real
transform of the shipped scorer."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import attiqa_env
from PIL import Image

from attiqa.io.batching import (
    close_kept_workers,
    default_num_workers,
    inference_num_workers,
    iter_image_batches,
)
from attiqa.io.cores import usable_cores
from attiqa.models.transforms import ChannelsLastFiveCropTest
from attiqa.scorers.attiqa_scorer import AttiqaScorer
from attiqa.scorers.zoo import resolve_weights
from attiqa.scoring import score_paths


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    """Nine photo-sized JPEGs of noise, and a truncated one fifth."""
    rng = np.random.default_rng(1)
    names = [f"img{i}.jpg" for i in range(4)] + ["bad.jpg"] + [f"img{i}.jpg" for i in range(4, 9)]
    for k, name in enumerate(names):
        if name == "bad.jpg":
            (tmp_path / name).write_bytes(b"\xff\xd8 truncated")
        else:
            pixels = rng.integers(0, 255, (360 + 7 * k, 400, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name, quality=90)
    return [tmp_path / name for name in names]


@pytest.fixture
def threads2():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def decoded(paths, threads):
    transform = ChannelsLastFiveCropTest([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 340, 320)
    out = []
    for b in iter_image_batches(paths, transform, 3, num_workers=0, min_shorter=340, decode_threads=threads):
        out.append((b.indices, None if b.tensor is None else b.tensor.clone(), [e.path for e in b.errors]))
    return out


def test_threaded_batches_equal_one_threads_bit_for_bit(files):
    one, three = decoded(files, 1), decoded(files, 3)
    assert [b[0] for b in three] == [b[0] for b in one] == [[0, 1, 2], [3, 5], [6, 7, 8], [9]]
    assert [b[2] for b in three] == [b[2] for b in one] == [[], [str(files[4])], [], []]
    for (_, a, _), (_, b, _) in zip(one, three, strict=True):
        assert a.shape == b.shape and a.stride() == b.stride()  # channels-last order kept
        assert torch.equal(a, b)


def test_a_consumer_that_stops_early_leaves_no_decode_thread(files):
    batches = iter_image_batches(files, lambda img: torch.zeros(1), 3, num_workers=0, decode_threads=2)
    first = next(batches)
    assert first.indices == [0, 1, 2]
    assert any(t.name.startswith("attiqa-decode") for t in threading.enumerate())
    batches.close()
    assert not any(t.name.startswith("attiqa-decode") for t in threading.enumerate())


def test_default_workers_follow_the_cores_torch_leaves(threads2):
    cores = usable_cores()
    assert inference_num_workers("cpu") == max(0, min(8, cores - 2))
    torch.set_num_threads(cores)
    assert inference_num_workers("cpu") == 0  # torch takes every core: decode between its passes
    torch.set_num_threads(1)
    assert inference_num_workers("cpu") == min(8, cores - 1)  # a spare core: a worker there
    assert inference_num_workers("cuda") == inference_num_workers("mps") == default_num_workers()


def test_scoring_on_a_full_cpu_forks_no_worker_and_matches_a_workers_scores(files, threads2):
    torch.set_num_threads(usable_cores())  # torch's threads take every core (the fixture restores the count)
    close_kept_workers()
    scorer = AttiqaScorer(resolve_weights("attiqa-default"))
    default = score_paths(files, scorer, 4)
    assert not multiprocessing.active_children()
    worker = score_paths(files, scorer, 4, num_workers=1)
    close_kept_workers()
    assert [r["image"] for r in default.rows] == [r["image"] for r in worker.rows]
    assert [e.path for e in default.failed] == [e.path for e in worker.failed] == [str(files[4])]
    got = np.array([[r[c] for c in scorer.columns] for r in default.rows])
    ref = np.array([[r[c] for c in scorer.columns] for r in worker.rows])
    assert np.abs(got[:, 0] - ref[:, 0]).max() <= 1e-3  # MOS: another first batch moves float rounding only
    assert np.abs(got[:, 1:] - ref[:, 1:]).max() <= 1e-5


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity (Linux) and two usable cores to restrict",
)
def test_the_worker_defaults_follow_a_real_affinity_restriction():
    """Session 43: ``default_num_workers`` **was** one worker per core of the machine (``os.cpu_count``) while
    ``usable_cores`` honours the CPU affinity: under ``taskset -c 0`` training and GPU scoring forked a
    decode worker onto the one core the model runs on. Now both count the cores this process may use. A
    child restricted to one core (the real ``sched_setaffinity``, as taskset does) forks none."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from attiqa.io.batching import default_num_workers\nfrom attiqa.io.cores import usable_cores\n"
        "print(usable_cores(), os.cpu_count(), default_num_workers())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=attiqa_env(), check=True
    )
    usable, machine, workers = map(int, out.stdout.split())
    assert usable == 1 and machine >= 2  # the restriction is real; the machine still has more cores
    assert workers == 0
