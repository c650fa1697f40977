"""The tap statistics' native kernel (attiqa/models/tapstats_native.c): built where a C compiler is, exact
against float64 where torch's float32 shortcuts cancel, split over threads (torch's own OpenMP team, or its
own pthreads where that runtime is not found) with the same bits either way, and out of the way of every input
it does not handle (those take the torch path unchanged)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from attiqa.errors import AttiqaError
from attiqa.models.backbones import native_kernel, native_mean_std, spatial_mean_std
from attiqa.scorers.attiqa_scorer import AttiqaScorer
from attiqa.scorers.zoo import resolve_weights

ROOT = Path(__file__).resolve().parents[1]


def _compiler_present() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return sys.platform != "win32" and shutil.which(cc) is not None and headers.exists()


needs_kernel = pytest.mark.skipif(native_kernel() is None, reason="native kernel not built (no C compiler)")


def test_the_kernel_is_built_wherever_a_c_compiler_is(monkeypatch):
    """The install (``pip install -e .``, ``make venv``) builds the optional extension when it can; a
    compiler but no kernel means a stale or failed build, which would leave the speed-up silently off."""
    monkeypatch.delenv("ATTIQA_NATIVE", raising=False)
    if not _compiler_present():
        pytest.skip("no C compiler or Python headers: the torch path is the expected one here")
    assert native_kernel() is not None, "the native kernel is missing or stale: run `make native`"
    assert native_kernel().variant() in ("avx512", "avx2+fma", "baseline")


def test_the_extension_is_optional_a_failing_compiler_does_not_fail_the_build(tmp_path):
    """setuptools with a compiler that fails: the build step warns and succeeds (so does an install)."""
    for name in ("pyproject.toml", "README.md", "attiqa/models/tapstats_native.c"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    env = {"PATH": "/usr/bin:/bin", "CC": "false", "LDSHARED": "false"}
    run = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "build_ext", "--inplace"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "tapstats_native" in run.stdout + run.stderr  # it was attempted ...
    assert not list((tmp_path / "attiqa" / "models").glob("tapstats_native*.so"))  # ... and skipped


def test_which_path_the_statistics_take_is_said_with_how_to_build_the_kernel(tmp_path, monkeypatch):
    """**Was** (session 61's notes): a compiler that refused the optional kernel left only a build warning,
    then a silently slower torch path — nothing a user runs said which path scored. Now
    :func:`attiqa.models.backbones.stats_path` says it and how to build the kernel, and
    ``benchmarks/score_throughput.py`` prints it. The package as such an install leaves it (every file but
    the built kernel), in a process of its own."""
    from attiqa.models.backbones import stats_path

    monkeypatch.delenv("ATTIQA_NATIVE", raising=False)
    package = tmp_path / "attiqa"
    (package / "models").mkdir(parents=True)
    for entry in (ROOT / "attiqa").iterdir():
        if entry.name != "models":
            (package / entry.name).symlink_to(entry)
    for entry in (ROOT / "attiqa" / "models").iterdir():
        if not entry.name.startswith("tapstats_native.") or entry.suffix == ".c":
            (package / "models" / entry.name).symlink_to(entry)
    code = "import attiqa.models.backbones as b; print(b.__file__); print(b.stats_path())"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    where, said = run.stdout.splitlines()
    assert where.startswith(str(tmp_path)), where  # the copy, not the checkout's build
    assert said == (
        "torch (the native kernel is not built: `make native`, or reinstall where a C compiler is, e.g. "
        "`pip install -e .`)"
    ), said
    if native_kernel() is not None:  # here, built: the kernel, and ATTIQA_NATIVE=0 said as the reason
        assert stats_path().startswith("native kernel (")
        monkeypatch.setenv("ATTIQA_NATIVE", "0")
        assert stats_path() == "torch (ATTIQA_NATIVE=0)"


def _avx512_cpu() -> bool:
    """The CPU has x86-64-v4's AVX-512 (F, BW, CD, DQ, VL) and the compiler is GCC 12 or later."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n")[0].split())
    except (OSError, IndexError):
        return False
    cc = subprocess.run(["cc", "-dumpfullversion"], capture_output=True, text=True, check=False)
    gcc12 = cc.returncode == 0 and int(cc.stdout.split(".")[0] or 0) >= 12
    return gcc12 and {f"avx512{x}" for x in ("f", "bw", "cd", "dq", "vl")} <= flags


@pytest.mark.skipif(shutil.which("gcc-11") is None, reason="no gcc-11 on this machine")
def test_the_kernel_compiles_with_gcc_11_which_has_no_x86_64_v4_name(tmp_path):
    """GCC 11 refuses "arch=x86-64-v4" in target_clones and __builtin_cpu_supports (GCC bug 101696). The
    extension is optional, so a clone list it refuses left no kernel at all — silently — on Ubuntu 22.04's and
    RHEL 9's default compiler (session 61 review); the AVX-512 clone is for GCC 12 on."""
    include = sysconfig.get_paths()["include"]
    src = Path(__file__).parents[1] / "attiqa" / "models" / "tapstats_native.c"
    cc = subprocess.run(
        ["gcc-11", "-O2", "-fPIC", "-I", include, "-c", str(src), "-o", str(tmp_path / "k.o")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert cc.returncode == 0, cc.stderr


@needs_kernel
@pytest.mark.skipif(not _avx512_cpu(), reason="no AVX-512 (x86-64-v4) CPU, or a compiler before GCC 12")
def test_an_avx512_cpu_gets_the_avx512_clone_with_the_avx2_clones_bits(tmp_path):
    """Session 61: the statistics cloned for x86-64-v4 ran 1.8x the AVX2 clone's speed alone on an AVX-512
    host. Each channel's sums run in the same order at any vector width, so the clone must give the same bits
    as an AVX2-only build of the same source (built here, loaded beside the product's)."""
    assert native_kernel().variant() == "avx512"
    for name in ("pyproject.toml", "README.md", "attiqa/models/tapstats_native.c"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    source = tmp_path / "attiqa/models/tapstats_native.c"
    text = source.read_text()
    assert '"arch=x86-64-v4", ' in text
    source.write_text(text.replace('"arch=x86-64-v4", ', ""))
    run = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "build_ext", "--inplace"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (built,) = (tmp_path / "attiqa" / "models").glob("tapstats_native*.so")
    name = "attiqa.models.tapstats_native"
    loader = importlib.machinery.ExtensionFileLoader(name, str(built))
    spec = importlib.util.spec_from_file_location(name, built, loader=loader)
    assert spec is not None
    avx2 = importlib.util.module_from_spec(spec)
    loader.exec_module(avx2)  # not put in sys.modules: the product's kernel stays the loaded one
    g = torch.Generator().manual_seed(61)
    for flat in [*_maps(61).values(), torch.randn(4, 6400, 480, generator=g) * 3 + 1]:
        n, hw, c = flat.shape
        outs = []
        for kernel in (native_kernel(), avx2):
            mean, std = flat.new_empty((n, c)), flat.new_empty((n, c))
            kernel.mean_std(flat.data_ptr(), n, hw, c, mean.data_ptr(), std.data_ptr(), 2, True)
            outs.append((mean, std))
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def _maps(seed: int) -> dict[str, torch.Tensor]:
    """(N, HW, C) maps, contiguous float32: random, |mean| / std ~ 1e4, constant channels, odd sizes."""
    g = torch.Generator().manual_seed(seed)
    rnd = torch.randn(3, 517, 37, generator=g) * 3 + 1
    big = 1e4 + torch.randn(2, 4096, 24, generator=g)
    const = torch.randn(2, 300, 20, generator=g)
    const[:, :, :6] = torch.tensor([0.0, 6.0, 0.3, 1.4, -2.5e3, 1e-20])  # every position: std exactly 0
    return {
        "random": rnd,
        "large mean": big,
        "constant channels": const,
        "one position": torch.randn(5, 1, 7, generator=g),
        "one map, many channels": torch.rand(1, 999, 131, generator=g),
        "odd N*C": torch.randn(7, 33, 3, generator=g) - 4,
    }


@needs_kernel
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_native_statistics_are_float64_exact_to_float32_rounding(threads):
    for name, flat in _maps(threads).items():
        # one position: std 0 (spatial_mean_std's convention), not torch's NaN
        ref_std, ref_mean = torch.std_mean(flat.double(), 1, correction=int(flat.shape[1] > 1))
        mean, std = native_mean_std(flat, threads=threads)
        assert mean.dtype == std.dtype == torch.float32 and mean.shape == std.shape == ref_mean.shape
        assert ((mean.double() - ref_mean).abs() <= 1e-7 * (ref_mean.abs() + ref_std)).all(), name
        zero = ref_std == 0
        assert std[zero].eq(0).all() and (mean.double()[zero] == ref_mean[zero]).all(), name
        rel = (std.double() - ref_std).abs()[~zero] / ref_std[~zero]
        assert rel.numel() == 0 or rel.max() < 1e-7, name  # float32 rounding of the output (6e-8)
        # the threads split the work, they do not change it, on torch's OpenMP team or on pthreads
        for openmp in (True, False):
            one = native_mean_std(flat, threads=1, openmp=openmp)
            own = native_mean_std(flat, threads=threads, openmp=openmp)
            assert torch.equal(mean, one[0]) and torch.equal(std, one[1]), name
            assert torch.equal(mean, own[0]) and torch.equal(std, own[1]), name


def _openmp_runtimes() -> list[str]:
    """The OpenMP runtimes mapped into this process (from /proc/self/maps)."""
    names = ("libgomp", "libomp", "libiomp5")
    lines = Path("/proc/self/maps").read_text().splitlines()
    return sorted({ln.split()[-1] for ln in lines if any(n in ln.rsplit("/", 1)[-1] for n in names)})


torch_openmp = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info(),
    reason="torch's intra-op threads are OpenMP ones on Linux builds only",
)


@needs_kernel
@torch_openmp
def test_the_kernel_runs_on_torchs_own_openmp_threads_and_loads_no_runtime(monkeypatch):
    """Its threads are torch's OpenMP team: it loads no runtime and adds no thread to the process."""
    monkeypatch.setenv("ATTIQA_NATIVE", "1")
    before = _openmp_runtimes()
    path = native_kernel().runtime()
    real = [os.path.realpath(p) for p in before]  # /proc/self/maps names resolved paths; a venv may be a link
    assert path is not None and before and os.path.realpath(path) in real, (path, before)
    threads = torch.get_num_threads()
    flat = torch.randn(6, 2000, 40)
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            (flat * 2).sum()  # torch's team of n threads, formed once as torch would
            tasks = len(os.listdir("/proc/self/task"))
            got = spatial_mean_std(flat.view(6, 40, 50, 40).permute(0, 3, 1, 2))
            assert len(os.listdir("/proc/self/task")) == tasks, n  # the kernel started none of its own
            want = native_mean_std(flat, threads=1)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), n
    finally:
        torch.set_num_threads(threads)
    assert _openmp_runtimes() == before


@needs_kernel
def test_the_pthreads_fallback_gives_the_same_bits(monkeypatch):
    """``ATTIQA_NATIVE=pthreads`` (the kernel on its own threads, as where torch's OpenMP is not found) and
    torch's team give the same results at any thread count."""
    y = (torch.randn(3, 131, 17, 19) * 5 + 2).contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    got = {}
    try:
        for setting in ("1", "pthreads"):
            monkeypatch.setenv("ATTIQA_NATIVE", setting)
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                got[setting, n] = spatial_mean_std(y)
    finally:
        torch.set_num_threads(threads)
    first = got["1", 1]
    for key, (mean, std) in got.items():
        assert torch.equal(mean, first[0]) and torch.equal(std, first[1]), key


@needs_kernel
def test_without_torch_loaded_the_kernel_finds_no_runtime_and_uses_its_own_threads(tmp_path):
    """The extension alone in a process without torch (so no OpenMP runtime of torch's to find): it says so,
    and asked for the OpenMP dispatch it computes the same statistics on pthreads."""
    script = f"""
import array, importlib.util, math, sys
spec = importlib.util.spec_from_file_location("tapstats_native", {native_kernel().__file__!r})
k = importlib.util.module_from_spec(spec); spec.loader.exec_module(k)
assert "torch" not in sys.modules and k.runtime() is None, k.runtime()
n, hw, c = 3, 101, 19
x = array.array("f", [((i * 7919) % 1000) / 37.0 - 9.0 for i in range(n * hw * c)])
for threads in (1, 2, 3):
    m, s = array.array("f", [0.0] * (n * c)), array.array("f", [0.0] * (n * c))
    ptr = lambda a: a.buffer_info()[0]
    k.mean_std(ptr(x), n, hw, c, ptr(m), ptr(s), threads, True)
    for i in range(n):
        for ch in range(c):
            v = [x[(i * hw + r) * c + ch] for r in range(hw)]
            mu = math.fsum(v) / hw
            sd = math.sqrt(math.fsum((a - mu) ** 2 for a in v) / (hw - 1))
            assert abs(m[i * c + ch] - mu) <= 1e-6 * (abs(mu) + sd) and abs(s[i * c + ch] - sd) <= 1e-6 * sd
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


@needs_kernel
def test_attiqa_native_is_read_once_per_statistics_call(monkeypatch):
    """**Was** (session 36): each tap's statistics read ``ATTIQA_NATIVE`` two or three times (the dispatch,
    then the kernel's availability and its choice of threads); now once, passed down. Counted over a real
    forward pass of the depthwise taps under each setting, whose statistics stay as they were."""
    from attiqa.models import create_backbone
    from attiqa.models.backbones import tap_points

    bb = create_backbone("efficientnet_lite0_ms", pretrained=False).tap_view("depthwise").eval()
    n_taps = len(tap_points(bb.body.net, "depthwise")[0])
    x = torch.rand(2, 3, 96, 96)
    reads: list[str] = []
    environ_get = type(os.environ).get

    def counted_get(self, key, default=None):
        if key == "ATTIQA_NATIVE":
            reads.append(key)
        return environ_get(self, key, default)

    got = {}
    for setting in ("0", "1", "pthreads", ""):
        monkeypatch.setenv("ATTIQA_NATIVE", setting)
        with monkeypatch.context() as m, torch.inference_mode():
            m.setattr(type(os.environ), "get", counted_get)
            reads.clear()
            got[setting] = bb.forward_raw(x)
            assert len(reads) == n_taps, (setting, len(reads), n_taps)
    default = "1" if native_kernel().runtime() is not None or torch.get_num_threads() == 1 else "0"
    assert n_taps > 10 and torch.equal(got["1"], got["pthreads"]) and torch.equal(got[default], got[""])
    assert torch.allclose(got["0"], got["1"], rtol=1e-5, atol=1e-6)


def test_a_wrong_attiqa_native_value_is_named(monkeypatch):
    y = torch.randn(1, 4, 5, 5)
    monkeypatch.setenv("ATTIQA_NATIVE", "yes")
    with pytest.raises(AttiqaError, match="ATTIQA_NATIVE='yes'"):
        spatial_mean_std(y)


@needs_kernel
def test_native_statistics_carry_nan_and_inf_as_the_torch_path_does(monkeypatch):
    flat = torch.randn(2, 50, 4, generator=torch.Generator().manual_seed(0))
    flat[0, 10, 0] = float("nan")
    flat[0, :, 1] = float("inf")
    flat[1, 0, 2] = float("-inf")
    monkeypatch.setenv("ATTIQA_NATIVE", "0")
    ref_mean, ref_std = spatial_mean_std(flat.view(2, 5, 10, 4).permute(0, 3, 1, 2))
    monkeypatch.delenv("ATTIQA_NATIVE")
    mean, std = native_mean_std(flat)
    for got, want in ((mean, ref_mean), (std, ref_std)):
        assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.isinf(), want.isinf())
        finite = want.isfinite()  # atol: means near 0, float32 sums in another order
        assert torch.allclose(got[finite], want[finite], rtol=1e-6, atol=1e-6)


@needs_kernel
def test_spatial_mean_std_takes_the_native_path_only_for_contiguous_cpu_float32(monkeypatch):
    y = (torch.randn(2, 24, 9, 11) * 2 + 3).contiguous(memory_format=torch.channels_last)
    flat = y.permute(0, 2, 3, 1).reshape(2, 99, 24)
    monkeypatch.setenv("ATTIQA_NATIVE", "0")
    assert native_kernel() is None
    torch_path = spatial_mean_std(y)
    nchw = spatial_mean_std(y.contiguous())  # (N, HW, C) is then a strided view: the torch path
    f64 = spatial_mean_std(y.double())
    monkeypatch.setenv("ATTIQA_NATIVE", "1")  # forced, at any thread count
    native = native_mean_std(flat)
    for got, want in zip(spatial_mean_std(y), native, strict=True):
        assert torch.equal(got, want)
    # unset: the kernel at any thread count on torch's OpenMP team; where that is not found, at one thread
    # only (its own threads lost to the torch path end to end at two)
    monkeypatch.delenv("ATTIQA_NATIVE")
    threads = torch.get_num_threads()
    on_torch_team = native_kernel().runtime() is not None
    try:
        for n, want_path in ((1, native), (2, native if on_torch_team else torch_path)):
            torch.set_num_threads(n)
            assert all(torch.equal(a, b) for a, b in zip(spatial_mean_std(y), want_path, strict=True)), n
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(spatial_mean_std(y.contiguous()), nchw, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(spatial_mean_std(y.double()), f64, strict=True))
    assert all(torch.allclose(a, b, rtol=1e-6) for a, b in zip(native, torch_path, strict=True))
    with pytest.raises(ValueError, match="contiguous CPU float32"):
        native_mean_std(y.contiguous().permute(0, 2, 3, 1).reshape(2, 99, 24))


@needs_kernel
def test_training_through_the_native_forward_gets_the_analytic_gradient(monkeypatch):
    y = (torch.rand(2, 16, 12, 12) * 6).contiguous(memory_format=torch.channels_last)
    grads = []
    for native in ("1", "0"):
        monkeypatch.setenv("ATTIQA_NATIVE", native)
        yg = y.clone().requires_grad_(True)
        mean, std = spatial_mean_std(yg)
        (mean.sum() + (std * torch.arange(16.0)).sum()).backward()
        grads.append(yg.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)


@needs_kernel
def test_shipped_model_scores_the_same_on_either_path(photos, monkeypatch):
    """Through the shipped model on real photos the native kernel moves the scores by float rounding only."""
    sc = AttiqaScorer(resolve_weights("attiqa-default"))
    x = torch.stack([sc.transform(img) for img in photos.values()])
    out = []
    for native in ("1", "0"):
        monkeypatch.setenv("ATTIQA_NATIVE", native)
        with torch.inference_mode():
            out.append(sc.score_tensors(x))
    assert (out[0][:, 0] - out[1][:, 0]).abs().max() < 2e-3  # MOS (0-100)
    assert (out[0][:, 1:] - out[1][:, 1:]).abs().max() < 1e-4  # attributes
