"""Shared fixtures: real photos from scikit-image (bundled in the package, no download), the official dataset
layouts with a run config for them, a `make-distorted` set."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# The maintainers' data beside the checkout (../shared/data), the one place every test finds it. A clean
# clone (CI, a user) has none: ATTIQA_TEST_NO_SHARED=1 hides it here, to see what such a run skips without
# moving the folder (docs/architecture.md, "Tests").
SHARED_DATA = (
    Path("/nonexistent/attiqa-shared-hidden")
    if os.environ.get("ATTIQA_TEST_NO_SHARED") == "1"
    else Path(__file__).resolve().parents[2] / "shared" / "data"
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Ctrl-C as a user's terminal delivers it, however the suite was started: a shell's background job (``cmd
    &`` without job control, ``nohup``) starts with SIGINT ignored, which Python keeps (no KeyboardInterrupt)
    and every child inherits across exec — so the tests of what a Ctrl-C keeps failed under such a launch
    (session 51: three of them in a fresh-clone run started as ``( … & )``), not in the code."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # children get SIG_DFL across exec


def pytest_configure(config: pytest.Config) -> None:
    """Registers ``tree_guard`` (a run that writes into the source tree fails), ``serial_files`` (`-m
    serial` collects the files of the serial tests alone) and ``file_order`` (the files that took longest
    at the last run first). In a pytest-xdist worker
    (`make test` runs two on a 2-core machine) torch and every process a test starts take one thread
    (OMP_NUM_THREADS, inherited): two workers of a thread per core each oversubscribe the cores, and a tiny
    run is mostly threads' overhead. Tests of the thread count set it themselves; the
    ones marked ``serial`` run alone, after, with the default count (docs/architecture.md, "Tests")."""
    for name in ("tree_guard", "serial_files", "file_order"):
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.register(importlib.import_module(name), name)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def skimage_rgb(name: str) -> Image.Image:
    from skimage import data

    arr = np.asarray(data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)())
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    return Image.fromarray(arr[..., :3].astype(np.uint8), "RGB")


def resized(img: Image.Image, shorter: int | None = None, longer: int | None = None) -> Image.Image:
    """``img`` scaled (Lanczos) so its shorter (or longer) edge has the given length."""
    s = shorter / min(img.size) if shorter else longer / max(img.size)
    return img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    """Real colour photographs shipped with scikit-image."""
    return {n: skimage_rgb(n) for n in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")}


@pytest.fixture()
def photo_dir(tmp_path: Path, photos) -> Path:
    """A folder of real photos (downscaled for speed) in a nested layout."""
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    for i, (name, img) in enumerate(photos.items()):
        small = img.resize((img.width // 2, img.height // 2), Image.BICUBIC)
        target = d / "sub" if i % 2 else d
        small.save(target / f"{name}.png" if i % 2 else target / f"{name}.jpg")
    return d


def photo_folder(folder: Path, photos: dict[str, Image.Image], n: int = 4, side: int = 96) -> Path:
    """``folder`` with the first ``n`` of ``photos`` as PNGs ``side`` pixels wide."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in list(photos.items())[:n]:
        img.resize((side, side * img.height // img.width), Image.BICUBIC).save(folder / f"{name}.png")
    return folder


def exiqa_files(folder: Path, photos: dict[str, Image.Image]) -> tuple[Path, Path]:
    """``folder`` with a `make-distorted` set of 5 real photos (3 rounds), a MOS CSV of 10 of its images."""
    from attiqa.distortions.multi import make_distorted_set

    src = photo_folder(folder / "src", photos, n=5, side=64)
    data = folder / "md"
    make_distorted_set(sorted(src.glob("*.png")), data, rounds=3, seed=0, max_k=2)
    images = sorted((data / "images").rglob("*.png"))[:10]
    mos = folder / "mos.csv"
    mos.write_text("image,mos\n" + "".join(f"{p},{10 + 7 * i % 60}\n" for i, p in enumerate(images)))
    return data, mos


@pytest.fixture()
def exiqa_set(tmp_path, photos) -> tuple[Path, Path]:
    """:func:`exiqa_files` in the test's own folder."""
    return exiqa_files(tmp_path, photos)


@pytest.fixture(scope="session")
def scored_photo_run(tmp_path_factory, photos) -> Path:
    """``genbench_helpers.make_photo_run``'s run scored by `classical` (the real command), made once: a test
    works on its own copy (``genbench_helpers.copied_run``)."""
    from genbench_helpers import make_photo_run

    from genbench.cli import main

    run = make_photo_run(tmp_path_factory.mktemp("scored") / "run", photos)
    assert in_process("genbench", main)("score", run, "-m", "classical").returncode == 0
    return run


# ------------------------------------------------------------------------------------------------------
# session 48's official dataset layouts (`dataset_layouts.LAYOUTS`) and a run config fine-tuning on one

TINY = {"mos_hidden": 8, "epochs": 1, "batch_size": 4, "lr": 0.003, "resize_shorter": 40, "crop_size": 32,
        "num_workers": 0, "device": "cpu"}  # fmt: skip
"""A fine-tuning section's settings for the tiny random network on a few images."""


@pytest.fixture()
def layout() -> Callable[[Path, str], Path]:
    """``layout(tmp_path, case)``: session 48's official layout of ``case`` made under ``tmp_path/case``."""
    from dataset_layouts import LAYOUTS  # (skips the test where openpyxl is missing)

    def make(tmp_path: Path, case: str) -> Path:
        root = tmp_path / case
        root.mkdir()
        LAYOUTS[case][1](root)
        return root

    return make


@pytest.fixture()
def dataset_config() -> Callable[..., Path]:
    """``dataset_config(tmp_path, **finetune)``: ``tmp_path/run.yaml``, a run config that fine-tunes the tiny
    network with ``finetune``'s settings (a dataset: ``dataset=``, ``root=``); runs go to ``tmp_path/run``."""

    def make(tmp_path: Path, **finetune: object) -> Path:
        cfg = tmp_path / "run.yaml"
        cfg.write_text(
            f"out_dir: {tmp_path / 'run'}\n"
            "model:\n  backbone: tiny\n  pretrained_backbone: false\n  head_hidden: 8\n"
            "finetune:\n" + "".join(f"  {k}: {v}\n" for k, v in {**finetune, **TINY}.items())
        )
        return cfg

    return make


@pytest.fixture(autouse=True)
def _restore_torch_threads(request):
    """ISP envs and `isp_env.tuning.train` set torch's thread count for their process (documented); inside the
    shared pytest process that must not leak into later tests (e.g. bitwise resume checks)."""
    if not request.module.__name__.startswith("test_isp"):
        yield
        return
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def isp_raws(tmp_path_factory) -> list[Path]:
    """Real photos unprocessed into DNGs, one per Bayer layout (RGGB, BGGR, GRBG, GBRG), read with rawpy."""
    from isp_env.dng import demo_raws

    return demo_raws(tmp_path_factory.mktemp("raws"), long_side=192)


# ------------------------------------------------------------------------------------------------------
# a tiny random ViT open_clip model (torch and open_clip imported inside: not every test needs them)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a whole module; a module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A Hugging Face-style open_clip folder: open_clip_config.json + random safetensors weights."""
    import json

    import open_clip
    import torch
    from helpers import TINY_CFG
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tiny_clip")
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CFG))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = open_clip.model.CLIP(**TINY_CFG["model_cfg"])
    # Spread the projections a little so cosines (and scores) differ visibly between images.
    with torch.no_grad():
        model.visual.proj.mul_(4.0)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder


def _plain_consoles(mp: pytest.MonkeyPatch) -> None:
    """The CLIs' rich consoles choose their colours once, when their module is imported, from the real
    stderr / stdout: imported under `pytest -s` at a terminal, a call here would capture colour codes that a
    pipe (a subprocess's output) never gets. For the call, those already imported write plain text."""
    from rich.console import Console

    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in ("attiqa", "genbench", "isp_env"):
            for value in list(vars(module).values()):
                if isinstance(value, Console):
                    mp.setattr(value, "_color_system", None)


def in_process(program: str, main: Callable[[], None]) -> Callable[..., subprocess.CompletedProcess]:
    """``program ARGS`` run by its entry point ``main`` in this process, as a completed process. Captures by
    redirecting sys.stdout / sys.stderr itself (no capsys), with argv and COLUMNS set for the call only, so
    a module-scoped fixture can use it too."""

    def invoke(*args) -> subprocess.CompletedProcess:
        import torch

        out, err, code, threads = io.StringIO(), io.StringIO(), 0, torch.get_num_threads()
        with (
            pytest.MonkeyPatch.context() as mp,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            mp.setattr(sys, "argv", [program, *map(str, args)])
            mp.setenv("COLUMNS", "200")
            _plain_consoles(mp)
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                torch.set_num_threads(threads)  # isp-tune's envs and training set it for their process
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    return invoke


@pytest.fixture()
def cli():
    """`attiqa` as a user runs it — the entry point ``attiqa.cli.main``: exit codes, one-line errors — in this
    process (fast; a real subprocess: ``helpers.run_attiqa``). The default for a command a test checks: each
    subprocess pays the interpreter's and torch's start-up again, the suite's largest shared cost. A real
    one only where the check needs a fresh process: signals and kills, what a start-up imports, the
    terminal's width, the output's encoding, an environment, folder or user of its own."""
    from attiqa.cli import main

    return in_process("attiqa", main)


@pytest.fixture()
def genbench_cli():
    """`genbench` as :func:`cli` runs `attiqa` (``genbench.cli.main``; a subprocess: ``run_genbench``)."""
    from genbench.cli import main

    return in_process("genbench", main)


@pytest.fixture()
def isp_cli():
    """`isp-tune` as :func:`cli` runs `attiqa` (``isp_env.cli.main``; a subprocess: ``run_isp_tune``)."""
    from isp_env.cli import main

    return in_process("isp-tune", main)


# ------------------------------------------------------------------------------------------------------
# one headless Chromium a module for the browser tests (genbench_helpers.chromium)


@pytest.fixture(scope="module")
def module_chromium():
    """One ``genbench_helpers.chromium`` for a module's tests (a start is ~3 s of the 2-core machine)."""
    from genbench_helpers import chromium

    with chromium() as driver:
        yield driver


@pytest.fixture()
def browser(module_chromium):
    """The module's Chromium as a fresh one (``genbench_helpers.as_started`` before and after)."""
    from genbench_helpers import as_started

    as_started(module_chromium)
    yield module_chromium
    as_started(module_chromium)
