"""The strip-parallel ISP (issue 6 speed work) renders what the whole-image pipeline rendered, whatever the
thread count: real DNGs (scikit-image photos unprocessed, all four Bayer layouts) read back with rawpy."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import isp_reference as ref
import numpy as np
import pytest

from attiqa.errors import ConfigError
from isp_env import isp, strips
from isp_env.dng import demo_raws
from isp_env.params import from_normalized, neutral
from isp_env.raw import read_raw

LONG_SIDE = 1536  # 1.5 MP: above strips.PARALLEL_MIN_PIXELS (threads engage), pyramid factors f up to 12
SETTINGS = {
    "neutral": neutral(),
    "all_active": from_normalized(np.full(16, 0.3)),  # the benchmark's setting: every module runs
    "all_high": from_normalized(np.full(16, 1.0)),
    "all_low": from_normalized(np.full(16, -1.0)),
    "random": from_normalized(np.random.default_rng(0).uniform(-1, 1, 16)),
}


@pytest.fixture(scope="module")
def big_raws(tmp_path_factory) -> list[Path]:
    return demo_raws(tmp_path_factory.mktemp("raws_1536"), long_side=LONG_SIDE)


@pytest.fixture()
def threads():
    yield strips.set_threads
    strips.set_threads(None)


def test_big_raws_engage_the_thread_pool(big_raws):
    h, w = read_raw(big_raws[0]).shape
    assert h * w >= strips.PARALLEL_MIN_PIXELS and h // strips.strip_rows(w) > 8


@pytest.mark.parametrize("long_side", [None, 1200, 256])  # full, demosaic + area resize, 2x2 binning
def test_renders_match_the_whole_image_reference(big_raws, long_side):
    """Max |diff| <= 1 of 255 (float rounding flips a quantisation step), on very few pixels."""
    for path in big_raws:
        raw = read_raw(path)
        new, old = isp.develop(raw, long_side), ref.develop(raw, long_side)
        np.testing.assert_allclose(new.linear, old.linear, rtol=1e-5, atol=1e-6)
        assert new.ae_gain == pytest.approx(old.ae_gain, rel=1e-5)
        for name, values in SETTINGS.items():
            diff = np.abs(isp.finish(new, values).astype(int) - ref.finish(old, values).astype(int))
            assert diff.max() <= 1, (path.name, long_side, name)
            assert (diff > 0).mean() < 1e-3, (path.name, long_side, name)


def test_thread_count_does_not_change_a_single_bit(big_raws, threads):
    raw = read_raw(big_raws[2])  # GRBG
    out = {}
    for n in (1, 2, 3):
        threads(n)
        dev = isp.develop(raw)
        out[n] = dev.linear, dev.ae_gain, isp.finish(dev, SETTINGS["all_active"])
    for n in (2, 3):
        np.testing.assert_array_equal(out[n][0], out[1][0])
        assert out[n][1] == out[1][1]
        np.testing.assert_array_equal(out[n][2], out[1][2])


def test_thread_count_setting(monkeypatch, threads):
    monkeypatch.delenv(strips.ENV_VAR, raising=False)
    assert strips.threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(strips.ENV_VAR, "3")
    assert strips.threads() == 3
    threads(1)
    assert strips.threads() == 1
    threads(None)
    monkeypatch.setenv(strips.ENV_VAR, "many")
    with pytest.raises(ConfigError, match="ISP_THREADS='many' is not a thread count"):
        strips.threads()
    with pytest.raises(ConfigError, match=">= 1"):
        threads(0)


def test_thread_count_where_the_platform_has_no_affinity_call(monkeypatch, threads):
    """macOS and Windows have no ``os.sched_getaffinity``: the render's thread count was an AttributeError
    there (strips counted the affinity itself); now the one core count, which falls back to the machine's
    cores — the same count the decode workers use."""
    from attiqa.io.cores import usable_cores

    monkeypatch.delenv(strips.ENV_VAR, raising=False)
    monkeypatch.delattr(os, "sched_getaffinity")
    assert strips.threads() == usable_cores() == (os.cpu_count() or 1)


def test_a_strip_error_reaches_the_caller(threads):
    threads(2)

    def fn(lo: int, hi: int) -> None:
        if lo >= 40:
            raise RuntimeError(f"strip {lo}")

    with pytest.raises(RuntimeError, match="strip"):
        strips.run_strips(fn, 100, 8, strips.PARALLEL_MIN_PIXELS)


def test_nested_strips_run_inline_instead_of_deadlocking(threads):
    threads(2)
    done = np.zeros(64, dtype=bool)

    def inner(lo: int, hi: int) -> None:
        done[lo:hi] = True

    def outer(lo: int, hi: int) -> None:  # a strip that itself runs strips, on a pool of 2 busy workers
        strips.run_strips(lambda a, b: inner(lo + a, lo + b), hi - lo, 2, strips.PARALLEL_MIN_PIXELS)

    strips.run_strips(outer, 64, 8, strips.PARALLEL_MIN_PIXELS)
    assert done.all()


def _render_in_child(path: str, queue) -> None:
    queue.put(int(isp.finish(isp.develop(read_raw(path)), neutral()).sum()))


def test_a_forked_child_gets_its_own_pool(big_raws, threads):
    """A fork copies the parent's pool object but not its threads: the child must build a new pool."""
    threads(2)
    expected = int(isp.finish(isp.develop(read_raw(big_raws[0])), neutral()).sum())  # parent's pool exists
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_render_in_child, args=(str(big_raws[0]), queue))
    child.start()
    child.join(120)
    if child.is_alive():
        child.kill()
        pytest.fail("render in a forked child hung")
    assert child.exitcode == 0 and queue.get(timeout=5) == expected
