"""Decode workers kept across calls of ``iter_image_batches``: forked once, not once per call, and every
behaviour of a per-call loader kept — bad files reported, results as with in-process decoding, a nested or
interrupted call, another transform, the worker's end with its parent. Real workers, real files."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from attiqa.io.batching import close_kept_workers, iter_image_batches


class Shrink:
    """A transform owned by an object, as a scorer's is (a bound method)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def transform(self, img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.array(img.resize((self.size, self.size)))).permute(2, 0, 1).float()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(7):
        out.append(tmp_path / f"img{i}.png")
        Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(out[-1])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out.insert(3, bad)
    return out


@pytest.fixture(autouse=True)
def no_kept_workers():
    close_kept_workers()
    yield
    close_kept_workers()


def decoded(paths, transform, workers=1, batch=3):
    got, failed = {}, []
    for b in iter_image_batches(paths, transform, batch, workers):
        failed += [e.path for e in b.errors]
        if b.tensor is not None:
            got.update({i: t.clone() for i, t in zip(b.indices, b.tensor, strict=True)})
    return got, failed


def worker_pids() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_worker_is_kept_across_calls_with_the_same_results_as_in_process(files):
    owner = Shrink(8)
    want, want_failed = decoded(files, owner.transform, workers=0)
    assert len(want) == 7 and want_failed == [str(files[3])]
    first = decoded(files, owner.transform)
    pids = worker_pids()
    assert len(pids) == 1  # kept after the call ended
    for part in (files, files[2:5], files[::-1]):  # other lists, other positions: the call's own
        got, failed = decoded(part, owner.transform)
        want_part = {i: want[files.index(p)] for i, p in enumerate(part) if files.index(p) in want}
        assert same(got, want_part) and failed == [str(files[3])]
        assert worker_pids() == pids
    assert same(first[0], want) and first[1] == want_failed


def test_another_transform_replaces_the_kept_worker_and_the_owner_is_not_kept_alive(files):
    owner = Shrink(8)
    decoded(files, owner.transform)
    before = worker_pids()
    dead = weakref.ref(owner)
    del owner
    gc.collect()
    assert dead() is None  # the kept loader holds no reference to the transform's owner
    got, _ = decoded(files, Shrink(5).transform)
    assert {t.shape[-1] for t in got.values()} == {5}
    after = worker_pids()
    assert len(after) == 1 and not (after & before)


def test_a_nested_call_gets_its_own_worker_and_both_finish(files):
    outer, inner = Shrink(8), Shrink(6)
    want_outer, _ = decoded(files, outer.transform, workers=0)
    want_inner, _ = decoded(files, inner.transform, workers=0)
    got_outer, got_inner = {}, None
    for b in iter_image_batches(files, outer.transform, 3, 1):
        got_outer.update(
            {i: t.clone() for i, t in zip(b.indices, b.tensor, strict=True)} if b.tensor is not None else {}
        )
        if got_inner is None:
            got_inner, failed = decoded(files, inner.transform)
            assert failed == [str(files[3])]
    assert same(got_outer, want_outer) and same(got_inner, want_inner)


def test_a_call_stopped_early_ends_the_worker_and_the_next_call_is_whole(files):
    owner = Shrink(8)
    want, _ = decoded(files, owner.transform, workers=0)
    batches = iter_image_batches(files, owner.transform, 2, 1)
    next(batches)
    first = worker_pids()
    batches.close()  # what an interruption or a consumer that stops early does
    assert not (worker_pids() & first)
    got, failed = decoded(files, owner.transform)
    assert same(got, want) and failed == [str(files[3])]


def test_a_dead_kept_worker_is_replaced(files):
    owner = Shrink(8)
    want, _ = decoded(files, owner.transform, workers=0)
    decoded(files, owner.transform)
    (pid,) = worker_pids()
    os.kill(pid, signal.SIGTERM)  # exits quietly (worker_init)
    deadline = time.monotonic() + 10
    while pid in worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    got, failed = decoded(files, owner.transform)
    assert same(got, want) and failed == [str(files[3])]
    assert pid not in worker_pids() and len(worker_pids()) == 1


KEEP_AND_WAIT = """
import sys, time, multiprocessing
from pathlib import Path
import numpy as np, torch
from attiqa.io.batching import iter_image_batches
shrink = lambda img: torch.from_numpy(np.array(img.resize((8, 8)))).float()
list(iter_image_batches(sorted(Path(sys.argv[1]).glob("*.png")), shrink, 2, 1))
print(*[p.pid for p in multiprocessing.active_children()], flush=True)
if sys.argv[2] == "wait":
    time.sleep(600)
"""


def test_the_kept_worker_ends_with_its_parent(files):
    proc = subprocess.Popen([sys.executable, "-c", KEEP_AND_WAIT, str(files[0].parent), "wait"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    pid = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up in the parent at all
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30  # torch's worker checks its parent every 5 s
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(pid)


def running(pid: int) -> bool:
    """Alive and not a zombie (an ended process that init has not reaped yet)."""
    try:
        state = next(
            ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:")
        )
    except (OSError, StopIteration):
        return False
    return "zombie" not in state


def test_a_process_with_a_kept_worker_exits_at_once_and_quietly(files):
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-c", KEEP_AND_WAIT, str(files[0].parent), "exit"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0 and run.stderr == "", run.stderr
    (pid,) = map(int, run.stdout.split())
    assert not running(pid)
    assert time.monotonic() - t0 < 30


KILL_WHILE_IDLE = """
import os, signal, sys, time, multiprocessing
from pathlib import Path
import numpy as np, torch
from attiqa.io.batching import iter_image_batches
shrink = lambda img: torch.from_numpy(np.array(img.resize((8, 8)))).float()
files = sorted(Path(sys.argv[1]).glob("*.png"))
n = len(list(iter_image_batches(files, shrink, 2, 1)))
(pid,) = [p.pid for p in multiprocessing.active_children()]
os.kill(pid, signal.SIGKILL)  # the OOM killer's way, between two calls
time.sleep(1.5)  # the caller's own code: torch's worker check must not raise here
print(n, len(list(iter_image_batches(files, shrink, 2, 1))), flush=True)
"""


def test_a_kept_worker_killed_between_calls_raises_nowhere_and_is_replaced(files):
    run = subprocess.run([sys.executable, "-c", KILL_WHILE_IDLE, str(files[0].parent)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0 and "Error" not in run.stderr, run.stderr
    first, second = run.stdout.split()
    assert first == second == "5"  # 8 files (one bad) in batches of 1, 2, 2, 2, 1


WITHOUT_TORCH_INTERNALS = """
import sys, multiprocessing
from pathlib import Path
import numpy as np, torch
import torch.utils.data  # torch's own loader took its references at import
del torch._C._set_worker_pids  # a torch without the internals kept workers steer
from attiqa.io.batching import iter_image_batches
shrink = lambda img: torch.from_numpy(np.array(img.resize((8, 8)))).float()
files = sorted(Path(sys.argv[1]).glob("*.png"))
for _ in range(2):
    batches = list(iter_image_batches(files, shrink, 2, 1))
    done, bad = sum(len(b.indices) for b in batches), sum(len(b.errors) for b in batches)
    print(done, bad, len(multiprocessing.active_children()))
"""


def test_a_torch_without_the_internals_gets_a_loader_per_call(files):
    """Kept workers steer DataLoader internals that are not public API; without them each call forks and ends
    its own worker, as before kept workers, with the same results."""
    run = subprocess.run([sys.executable, "-c", WITHOUT_TORCH_INTERNALS, str(files[0].parent)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    # each call: 7 decoded, the bad file reported, no worker left behind
    assert run.stdout.split("\n")[:2] == ["7 1 0", "7 1 0"]
