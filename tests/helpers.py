"""Plain helpers shared by test modules (data-set writers, small configs); fixtures are in conftest.py."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageFilter

from attiqa.attributes import ATTRIBUTES
from attiqa.config import FinetuneConfig, PretrainConfig
from attiqa.distortions import apply_distortion

REPO = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------------------
# fine-tuning: a MOS data set

LEVELS = (0, 1, 2, 3, 4)


def mos_of(level: int) -> float:
    """The 'human' score: a known, decreasing function of the blur level (1-5 scale, KonIQ-like)."""
    return 4.6 - 0.8 * level


def write_mos_set(
    folder: Path, photos: dict[str, Image.Image], split_column: bool, shorter: int = 80
) -> Path:
    """Real photos (two crops each) blurred at 5 levels; MOS = mos_of(level). Train/val split by content."""
    img_dir = folder / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    contents = []
    for name, img in photos.items():
        s = shorter / min(img.size)
        small = img.resize((round(img.width * s), round(img.height * s)), Image.BICUBIC)
        w, h = small.size
        contents += [
            (f"{name}_l", small.crop((0, 0, w * 2 // 3, h))),
            (f"{name}_r", small.crop((w // 3, 0, w, h))),
        ]
    for c, (cname, im) in enumerate(contents):
        for lv in LEVELS:
            blurred = im.filter(ImageFilter.GaussianBlur(radius=1.2 * lv)) if lv else im
            rel = f"{cname}_blur{lv}.jpg"
            blurred.save(img_dir / rel, quality=95)
            row = {"image": rel, "mos": f"{mos_of(lv):.3f}"}
            if split_column:
                row["split"] = "test" if c >= len(contents) - 2 else "train"
            rows.append(row)
    path = folder / "mos.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def ft_cfg(csv_path: Path, **kw) -> FinetuneConfig:
    """A small fine-tuning config; without a pretrained checkpoint the network is a random tiny backbone."""
    base = dict(
        csv=str(csv_path), image_root=str(csv_path.parent / "images"), mos_hidden=32, epochs=8, batch_size=8,
        lr=3e-3, resize_shorter=72, crop_size=64, num_workers=0, seed=0, device="cpu",
        backbone="tiny", pretrained_backbone=False, head_hidden=16,
    )  # fmt: skip
    return FinetuneConfig(**{**base, **kw})


# ----------------------------------------------------------------------------------------------------
# pre-training: a pseudo-label set


def simple_labels(arr: np.ndarray) -> list[float]:
    """Measurable attributes of an image, squashed to [0, 1] (stand-ins for CLIP pseudo-labels)."""
    x = arr.astype(np.float64) / 255.0
    lum = x.mean(-1)
    gy, gx = np.gradient(lum)
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    sharp = np.hypot(gx, gy).mean() * 10
    contrast = lum.std() * 3
    colour = np.hypot(rg.std(), yb.std()) * 3
    noise = 1 - np.abs(lum - np.convolve(lum.ravel(), np.ones(3) / 3, "same").reshape(lum.shape)).mean() * 10
    return [float(np.clip(v, 0, 1)) for v in (sharp, contrast, lum.mean(), colour, noise)]


def write_label_set(
    folder: Path, photos: dict[str, Image.Image], shorter: int = 72, factors=(0.5, 0.8, 1.1, 1.4)
):
    """Real photos at several exposures + their measured attributes, in `attiqa label`'s parquet format."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, img in photos.items():
        s = shorter / min(img.size)
        small = img.resize((round(img.width * s), round(img.height * s)), Image.BICUBIC)
        for f in factors:
            arr = np.clip(np.asarray(small, dtype=np.float64) * f, 0, 255).astype(np.uint8)
            p = folder / "img" / f"{name}_{f}.png"
            p.parent.mkdir(exist_ok=True)
            Image.fromarray(arr).save(p)
            rows.append((f"img/{p.name}", simple_labels(arr)))
    table = pa.table(
        {"image": [r[0] for r in rows], **{a: [r[1][k] for r in rows] for k, a in enumerate(ATTRIBUTES)}}
    )
    table = table.replace_schema_metadata({"teacher": json.dumps({"kind": "test-statistics"})})
    path = folder / "labels.parquet"
    pq.write_table(table, path)
    return path


def label_table(path: Path) -> Path:
    """A two-row label table at ``path`` (images need not exist): what a config's ``labels:`` must name."""
    pq.write_table(pa.table({"image": ["a.png", "b.png"], "sharpness": [0.1, 0.9]}), path)
    return path


def tiny_cfg(**kw) -> PretrainConfig:
    base = dict(
        backbone="tiny", pretrained_backbone=False, head_hidden=32, epochs=6, batch_size=8, lr=1e-3,
        crop_size=64, hflip=True, num_workers=0, seed=3, device="cpu",
    )  # fmt: skip
    return PretrainConfig(**{**base, **kw})


# ----------------------------------------------------------------------------------------------------
# evaluation: an AGIQA-3k-shaped folder


def degraded_agiqa3k_root(root: Path, photos: dict[str, Image.Image], n: int = 24) -> list[dict[str, str]]:
    """An AGIQA-3k folder of ``n`` images: data.csv in the download's columns and names (generator_normal_k,
    prompts shared by generators, both MOS targets), real photos degraded as the images. It read the first
    rows of ../shared/data's real data.csv and skipped without it, though no test of it needs the real
    scores (``test_datasets.py`` checks the real file itself)."""
    from dataset_layouts import AGIQA3K_HEADER

    generators = ("AttnGAN", "glide", "midjourney", "sd1.5", "DALLE2", "stable-diffusion-xl")
    prompts = ("statue of a man", "a tray of sushi", "a red bike", "a lighthouse at dusk")
    rows = [
        dict(
            zip(
                AGIQA3K_HEADER.split(","),
                [f"{generators[i % 6]}_normal_{i:03d}.jpg", prompts[i // 6 % 4], "", "", ""]
                + [f"{v:.6f}" for v in (0.5 + (i * 37 % 23) / 6, 0.4, 0.3 + (i * 11 % 17) / 5, 0.5)],
                strict=True,
            )
        )
        for i in range(n)
    ]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "data.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=AGIQA3K_HEADER.split(","))
        w.writeheader()
        w.writerows(rows)
    srcs = list(photos.values())
    for i, r in enumerate(rows):
        img = srcs[i % len(srcs)]
        small = img.resize((64, round(64 * img.height / img.width)), Image.BICUBIC)
        apply_distortion(small, "gaussian_blur", i % 6, seed=i).save(
            root / r["name"], format="JPEG", quality=92
        )
    return rows


# ----------------------------------------------------------------------------------------------------
# a tiny random ViT open_clip model

TINY_CFG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    },
}


# ----------------------------------------------------------------------------------------------------
# the ISP reward: a tiny ATTIQA checkpoint and renders of random settings


def tiny_attiqa_checkpoint(folder: Path) -> Path:
    """A real ATTIQA checkpoint (tiny backbone, random init: the machinery, not the numbers)."""
    import torch

    from attiqa.models import AttiqaModel, create_backbone, save_model

    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    return save_model(model, folder / "tiny.safetensors", card={"name": "tiny"})


def tiny_attiqa_scorer(folder: Path):
    """:func:`tiny_attiqa_checkpoint`, loaded as the reward loads ``--model ckpt.safetensors``."""
    import attiqa

    return attiqa.load_scorer(tiny_attiqa_checkpoint(folder))


def attiqa_cmd(*args: object, ranks: int = 1, script: Path | None = None) -> list[str]:
    """The command line of ``attiqa ARGS``: one process, or ``ranks`` processes under real ``torchrun
    --standalone`` (gloo on a CPU, a free port of its own: suites running at once do not collide).
    ``script``, a Python file, runs in place of ``-m attiqa.cli`` (a wrapper around :func:`attiqa.cli.main`,
    or a test's own multi-process program) with ARGS as its arguments."""
    entry = [str(script)] if script is not None else ["-m", "attiqa.cli"]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
    return [sys.executable, *(torchrun if ranks > 1 else []), *entry, *map(str, args)]


def attiqa_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``env`` added and this checkout first on ``PYTHONPATH``: a script's
    path starts at its own folder, not at the working directory, and would import an installed attiqa."""
    path = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **(env or {})}


def run_attiqa(
    *args: object,
    ranks: int = 1,
    script: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    unprivileged: bool = False,
) -> subprocess.CompletedProcess:
    """:func:`attiqa_cmd` run to its end (10 minutes at most) in :func:`attiqa_env` (in folder ``cwd``),
    its output captured as text; ``unprivileged``: under :func:`unprivileged_cmd`, so file permissions
    apply to it as root too."""
    cmd = attiqa_cmd(*args, ranks=ranks, script=script)
    return _run_to_end(unprivileged_cmd(cmd) if unprivileged else cmd, env, cwd)


def _run_to_end(cmd: list[str], env: dict[str, str] | None, cwd: Path | None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=attiqa_env(env), cwd=cwd, capture_output=True, text=True, timeout=600)


_NO_OVERRIDE = "-dac_override,-dac_read_search"  # the capabilities by which root ignores file permissions


@functools.cache
def _setpriv_works() -> bool:
    if not shutil.which("setpriv"):
        return False
    probe = ["setpriv", f"--inh-caps={_NO_OVERRIDE}", f"--bounding-set={_NO_OVERRIDE}", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0  # needs CAP_SETPCAP


def unprivileged_cmd(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file permissions apply to it: as root (CI), the same user without the two
    capabilities that override them (util-linux's ``setpriv``), so a read-only folder is read-only and an
    unreadable file unreadable, while the venv, the checkout and the test's own files stay as they are. The
    test is skipped only where root cannot drop them (no ``setpriv``, or no CAP_SETPCAP)."""
    if os.geteuid() != 0:
        return cmd
    if not _setpriv_works():
        pytest.skip("running as root, and setpriv cannot drop CAP_DAC_OVERRIDE: permissions cannot be tested")
    return ["setpriv", f"--inh-caps={_NO_OVERRIDE}", f"--bounding-set={_NO_OVERRIDE}", *cmd]


def genbench_cmd(*args: object) -> list[str]:
    """The command line of ``genbench ARGS`` (run it in :func:`attiqa_env`, as :func:`run_genbench` does)."""
    return [sys.executable, "-m", "genbench.cli", *map(str, args)]


def run_genbench(
    *args: object, env: dict[str, str] | None = None, cwd: Path | None = None, unprivileged: bool = False
) -> subprocess.CompletedProcess:
    """:func:`genbench_cmd` run as :func:`run_attiqa` runs its command."""
    cmd = genbench_cmd(*args)
    return _run_to_end(unprivileged_cmd(cmd) if unprivileged else cmd, env, cwd)


def isp_tune_cmd(*args: object, script: Path | None = None) -> list[str]:
    """The command line of ``isp-tune ARGS`` (run it in :func:`attiqa_env`, as :func:`run_isp_tune` does);
    ``script`` runs in place of ``-m isp_env.cli``, as in :func:`attiqa_cmd` (:func:`signal_after`'s
    ``entry``: ``isp_env.cli``)."""
    entry = [str(script)] if script is not None else ["-m", "isp_env.cli"]
    return [sys.executable, *entry, *map(str, args)]


def run_isp_tune(
    *args: object, script: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """:func:`isp_tune_cmd` run as :func:`run_attiqa` runs its command."""
    return _run_to_end(isp_tune_cmd(*args, script=script), env, cwd)


def isp_heldout(raw_dir: Path, out: Path, *runs: str, global_budget: int = 12) -> dict:
    """``python benchmarks/isp_heldout.py RAW_DIR --run NAME=RUN ...`` into ``out`` with the classical
    scorer and tiny CMA-ES budgets, run to a successful end (asserted); its summary.json."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "isp_heldout.py"), str(raw_dir), "--out", str(out)]
    cmd += [f"--run={r}" for r in runs] + ["--model", "classical", "--test-fraction", "0.3"]
    cmd += ["--cma-global-budget", str(global_budget), "--cma-image-budget", "4"]
    res = _run_to_end(cmd, None, None)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


# the options of tiny_teacher_run's command (a rerun with them resumes its run)
TINY_TEACHER_OPTIONS = (
    "--model", "classical", "--preview", "64", "--obs-size", "36", "--base", "neutral",
    "--teacher-budget", "6", "--teacher-raws", "2", "--test-fraction", "0.3",
)  # fmt: skip


TINY_SAC = (
    "--algo", "sac", "--obs-size", "36", "--max-steps", "2", "--batch-size", "16", "--learning-starts", "20",
)  # fmt: skip
"""`isp-tune` options of a SAC agent small enough to train in seconds."""


def exiqa_stopped_after_one_epoch(data: Path, run: Path, tiny_dir: Path):
    """`train_exiqa` of a 3-epoch run on ``data`` (tiny CLIP) into ``run``, stopped by a Ctrl-C after its
    first epoch (its state file kept); returns the run's config (`attiqa train-exiqa … --epochs 3
    --warmup-epochs 1 --prompts 2 -b 8 --val-fraction 0.2` resumes it)."""
    from attiqa.exiqa.train import ExiqaTrainConfig, train_exiqa

    cfg = ExiqaTrainConfig(
        str(tiny_dir), epochs=3, warmup_epochs=1, batch_size=8, n_prompts=2, val_fraction=0.2
    )

    def ctrl_c(epoch: int, _row: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_exiqa(data, run, cfg, on_epoch=ctrl_c)
    return cfg


def tiny_teacher_run(tmp_path: Path, raws: list[Path], *extra: object) -> tuple[Path, Path]:
    """``raws`` copied into ``tmp_path/raws`` and a seconds-long `isp-tune` teacher run on them (classical
    scorer, 2 searched raws of 6 calls) into ``tmp_path/run``; ``extra``: more options. (raw folder, run).
    The run is made in this process (its entry point, as ``conftest.isp_cli``: no interpreter and torch
    start-up a call); the reruns a test checks stay real subprocesses where it says so."""
    from conftest import in_process

    from isp_env.cli import main

    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    run = tmp_path / "run"
    res = in_process("isp-tune", main)("--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS, *extra)
    assert res.returncode == 0, res.stderr[-2000:]
    return raw_dir, run


def interrupt_when(
    cmd: list[str], sig: signal.Signals, ready: Callable[[], bool], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``cmd`` in :func:`attiqa_env` and send it ``sig`` (a real Ctrl-C, or SIGTERM) as soon as
    ``ready()`` — a real sign of finished work — holds (2 minutes at most); its exit code and output."""
    ctrl_c = signal.SIG_DFL  # under a background job SIGINT is ignored, and Python would keep ignoring it
    proc = subprocess.Popen(cmd, env=attiqa_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, ctrl_c))  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL ``proc`` (no clean-up) as soon as ``ready()`` — a real sign of finished work — holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the command finished (or failed) before it could be killed"


def isp_renders(raws, view: int, per_raw: int, seed: int = 0) -> list[np.ndarray]:
    """``per_raw`` renders of random settings of each raw at the scorer's scale (``view``), the raws
    interleaved (views of raws of other aspect ratios differ in shape)."""
    from isp_env.params import N_PARAMS, from_normalized
    from isp_env.raw import read_raw
    from isp_env.reward import develop_view, finish_view

    rng = np.random.default_rng(seed)
    devs = [develop_view(read_raw(p), view) for p in raws]
    return [
        finish_view(d, from_normalized(np.clip(rng.normal(0, 0.5, N_PARAMS), -1, 1)), view)
        for _ in range(per_raw)
        for d in devs
    ]


def quick_isp_tune(tmp_path: Path, raws: list[Path], teacher_raws: int = 2, test_fraction: str = "0.3"):
    """A copy of ``raws`` in ``tmp_path/raws`` (for bad files to join) and the arguments of a seconds-long
    ``isp-tune`` run on it into ``tmp_path/run``: the classical scorer, tiny teacher budgets, no baselines."""
    raw_dir, out = tmp_path / "raws", tmp_path / "run"
    raw_dir.mkdir()
    for p in raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    args = ["--raw-dir", str(raw_dir), "--out", str(out), "--model", "classical", "--preview", "64",
            "--base", "neutral", "--teacher-budget", "4", "--teacher-raws", str(teacher_raws),
            "--teacher-restarts", "1", "--test-fraction", test_fraction, "--no-baselines"]  # fmt: skip
    return raw_dir, out, args


def tiny_train_config(root: Path, mos_csv: str | None = None, **finetune: object) -> Path:
    """``root/run.yaml``: fine-tune a random tiny network on 8 noise images ``root/set/images/img00..07.png``
    listed in ``root/set/mos.csv`` (``mos_csv``, default MOS 1.0, 1.3, ...); runs go to ``root/run``."""
    (root / "set" / "images").mkdir(parents=True, exist_ok=True)
    for i in range(8):
        arr = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "set" / "images" / f"img{i:02d}.png")
    if mos_csv is None:
        mos_csv = "image,mos\n" + "".join(f"img{i:02d}.png,{1 + 0.3 * i:.1f}\n" for i in range(8))
    (root / "set" / "mos.csv").write_text(mos_csv)
    values = {"mos_hidden": 8, "epochs": 1, "batch_size": 4, "resize_shorter": 40, "crop_size": 32,
              "num_workers": 0, "device": "cpu", **finetune}  # fmt: skip
    cfg = root / "run.yaml"
    cfg.write_text(
        f"out_dir: {root / 'run'}\n"
        "model:\n  backbone: tiny\n  pretrained_backbone: false\n  head_hidden: 8\n"
        f"finetune:\n  csv: {root / 'set' / 'mos.csv'}\n"
        + "".join(f"  {k}: {v}\n" for k, v in values.items())
    )
    return cfg


LABEL_AND_PRETRAIN = [
    "--set",
    "pretrain={epochs: 1, batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0, device: cpu}",
    "--set",
    "finetune=null",
    "--set",
    "label={teacher: classical, num_workers: 0}",
]
"""`--set`s that make :func:`tiny_train_config`'s run label (classical) and pretrain only."""


def renamed_copies(root: Path, n: int = 4) -> Path:
    """``root/junk``: the first ``n`` images of :func:`tiny_train_config`'s set linked under other names —
    other rows of a label table."""
    junk = root / "junk"
    junk.mkdir()
    for i in range(n):
        (junk / f"j{i}.png").hardlink_to(root / "set" / "images" / f"img{i:02d}.png")
    return junk


# ----------------------------------------------------------------------------------------------------
# a real signal at the one moment a command commits an output

SIGNAL_AFTER_COMMIT = """
import importlib, os, signal, sys

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job ignores it)
seam, suffix, after, sig, entry = (os.environ[k] for k in ("SEAM", "SUFFIX", "AFTER", "SIG", "ENTRY"))
real = getattr(os, seam)
seen = 0


def committed(*args, **kw):
    global seen
    result = real(*args, **kw)
    name = str(args[1]) if seam == "replace" else os.readlink(f"/proc/self/fd/{args[0]}")
    if name.endswith(suffix):
        seen += 1
        if seen == int(after):
            os.kill(os.getpid(), getattr(signal, sig))  # a real signal, as the commit returns
    return result


setattr(os, seam, committed)
importlib.import_module(entry).main()
"""


def signal_after(tmp_path: Path, seam: str, suffix: str, after: int, sig: str, entry: str) -> dict:
    """``run_attiqa`` / ``run_isp_tune`` keyword arguments that make the command send itself a real ``sig``
    as the ``after``-th commit (``os.replace`` / ``os.fsync``, seam) of a file ending in ``suffix`` returns
    — the one moment a timed signal from outside hits by luck. The writing, the handlers, the messages and
    the resume are the commands' own."""
    script = tmp_path / "signal_after_commit.py"
    script.write_text(SIGNAL_AFTER_COMMIT)
    env = {"SEAM": seam, "SUFFIX": suffix, "AFTER": str(after), "SIG": sig, "ENTRY": entry}
    return {"script": script, "env": {**env, "OMP_NUM_THREADS": "1"}}


def on_a_terminal(cmd: list[str], columns: int) -> str:
    """``cmd`` run on a real pseudo-terminal ``columns`` wide (rich draws as it would for a person); its
    output without colour codes. The command must succeed."""
    import pty
    import re

    leader, follower = pty.openpty()
    env = attiqa_env({"COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"})
    proc = subprocess.Popen(cmd, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode()).replace("\r", "")


def rank_pid(launcher: subprocess.Popen, rank: int) -> int | None:
    """The pid of the worker process of ``rank`` that torchrun (``launcher``) started, read from its
    environment in Linux's /proc: a test kills one rank as an out-of-memory kill would."""
    found = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()
    for pid in found:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if f"RANK={rank}".encode() in env:
            return int(pid)
    return None


HELP_MODULES = {"attiqa": "attiqa.cli.app", "genbench": "genbench.cli", "isp-tune": "isp_env.cli"}

# Every command's --help of one command line, in one process through run_app (as the console script runs
# it): a JSON list of [command path, {option: shown default}, [option names]] first, then each help after
# a marker line.
_HELP_DRIVER = r"""
import json, sys
import typer
from attiqa.cli import run_app
from {module} import app

root = typer.main.get_command(app)
paths, todo = [], [((), root)]
while todo:
    path, cmd = todo.pop(0)
    shown = {{
        p.opts[0]: str(p.default)
        for p in cmd.params
        if getattr(p, "show_default", False) and isinstance(p.default, (str, int, float))
        and not isinstance(p.default, bool) and str(p.default) and not p.hidden
    }}
    names = [o for p in cmd.params if not getattr(p, "hidden", False) and p.param_type_name == "option"
             for o in (*p.opts, *p.secondary_opts)]
    paths.append([list(path), shown, names])
    todo += [((*path, n), c) for n, c in sorted(getattr(cmd, "commands", {{}}).items()) if not c.hidden]
print(json.dumps(paths), flush=True)
for path, _, _ in paths:
    print("=== " + " ".join(path), flush=True)
    sys.argv = ["prog", *path, "--help"]
    try:
        run_app(app)
    except SystemExit:
        pass
    sys.stdout.flush()
"""


def all_helps(program: str, columns: int) -> list[tuple[list[str], dict[str, str], list[str], str]]:
    """Every command's ``--help`` of ``program`` (attiqa, genbench, isp-tune) as a person sees it on a
    terminal ``columns`` wide: (command path, {option: its shown default}, its option names, the help)."""
    import re

    out = on_a_terminal([sys.executable, "-c", _HELP_DRIVER.format(module=HELP_MODULES[program])], columns)
    head, *helps = re.split(r"^=== .*$", out, flags=re.M)
    paths = json.loads(head)
    assert len(paths) == len(helps), out[:2000]
    return [(path, shown, names, text) for (path, shown, names), text in zip(paths, helps, strict=True)]


AGIQA3K_HEADER = [
    "name",
    "prompt",
    "adj1",
    "adj2",
    "style",
    "mos_quality",
    "std_quality",
    "mos_align",
    "std_align",
]


def agiqa3k_folder(root: Path, extra: list[tuple[int, str]] = ()) -> Path:
    """An AGIQA-3k folder: data.csv of 2 prompts x 3 noise PNGs (MOS 1.0, 2.0, 3.0 per prompt) in
    ``root/AGIQA-3K``; ``extra``: (image index, MOS) rows naming an image again."""
    images = root / "AGIQA-3K"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        name = f"sd1.5_normal_{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / name)
        rows.append([name, f"prompt {i % 2}", "", "", "", f"{1 + i // 2:.1f}", "0.5", "2.0", "0.5"])
    rows += [[rows[i][0], rows[i][1], "", "", "", mos, "0.5", "2.0", "0.5"] for i, mos in extra]
    with open(root / "data.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([AGIQA3K_HEADER, *rows])
    return root


def separate_hashes(path: Path) -> dict[str, str | None]:
    """A checkpoint's hashes as the separate readers gave them before session 53 (the oracle): the file's
    bytes, the header's tensor table (card left out) and data buffer, the tensors as loaded (fp16 as fp32),
    and the card beside a file whose header holds none."""
    import hashlib

    from attiqa.io.checkpoints import load_checkpoint
    from attiqa.io.hashes import CARD_KEY

    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    table = json.loads(data[8 : 8 + n])
    meta = table.pop("__metadata__", None) or {}
    tensors = hashlib.sha256(json.dumps(table, sort_keys=True).encode())
    tensors.update(data[8 + n :])
    values = hashlib.sha256()
    loaded, _ = load_checkpoint(path)
    for k in sorted(loaded):
        t = loaded[k].contiguous()
        values.update(json.dumps([k, str(t.dtype), list(t.shape)]).encode())
        values.update(t.numpy().tobytes())
    side = path.with_suffix(".json")
    card = None if CARD_KEY in meta else hashlib.sha256(side.read_bytes()).hexdigest()
    return {
        "file": hashlib.sha256(data).hexdigest(),
        "tensors": tensors.hexdigest(),
        "values": values.hexdigest(),
        "card": card,
    }


def one_line_error(res: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a command that ended with exit 2, no traceback (asserted)."""
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


LABEL_MARK = 0.125  # a label no teacher run gives back: the rows kept are told from the rows labelled again


def mark_labels(path):
    """Set ``path``'s (a table's or a part's) first label column to :data:`LABEL_MARK`."""
    table = pq.read_table(path)
    values = pa.array([LABEL_MARK] * table.num_rows, pa.float32())
    pq.write_table(table.set_column(1, table.schema.field(1), values), path)


def degrade_config(root):
    """``root/run.yaml``: grade 4 noise images of ``root/src`` (2 levels of one distortion), label them
    (classical), pretrain a tiny network 2 epochs; the run in ``root/run``."""
    (root / "src").mkdir(parents=True)
    for i in range(4):
        arr = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "src" / f"s{i}.png")
    cfg = root / "run.yaml"
    cfg.write_text(
        f"out_dir: {root / 'run'}\n"
        "model: {backbone: tiny, pretrained_backbone: false, head_hidden: 8}\n"
        f"degrade: {{sources: [{root / 'src'}], levels: [1, 3], distortions: [gaussian_blur]}}\n"
        "label: {teacher: classical, num_workers: 0, batch_size: 4}\n"
        "pretrain: {epochs: 2, batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0,"
        " device: cpu}\n"
    )
    return cfg


# ----------------------------------------------------------------------------------------------------
# how often a test's command opened a file: an audit hook, installed once (audit hooks cannot be removed),
# recording only the files a block watches

_WATCHED: set[str] = set()
_OPENED: list[str] = []


def _record_open(event: str, args: tuple) -> None:
    if event == "open" and args and str(args[0]) in _WATCHED:
        _OPENED.append(str(args[0]))


@functools.cache
def _install_open_hook() -> None:
    sys.addaudithook(_record_open)


@contextlib.contextmanager
def opens_of(path: Path) -> Iterator[list[str]]:
    """The opens of ``path`` made inside the block (the list fills as they happen)."""
    _install_open_hook()
    seen: list[str] = []
    _WATCHED.add(str(path))
    start = len(_OPENED)
    try:
        yield seen
    finally:
        _WATCHED.discard(str(path))
        seen.extend(p for p in _OPENED[start:] if p == str(path))
        del _OPENED[start:]


def eval_resumed_from_the_cache(tmp_path: Path, cli: Callable, workers: str) -> list[str]:
    """`attiqa eval folder -b 2 -w WORKERS` of :func:`tiny_train_config`'s 8 images after a first eval of 3 of
    them (a subset CSV) filled the score cache (``ATTIQA_CACHE``, set by the caller): the second run's
    stderr lines, spaces squeezed."""
    tiny_train_config(tmp_path)
    root = tmp_path / "set"
    rows = (root / "mos.csv").read_text().splitlines()
    (root / "first.csv").write_text("\n".join(rows[:4]) + "\n")  # header + 3 images
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    base = ("eval", "folder", "--root", root, "-m", ckpt, "--crops", "center", "-b", "2", "-w", workers)
    assert cli(*base, "--csv", root / "first.csv", "-o", tmp_path / "a").returncode == 0
    res = cli(*base, "-o", tmp_path / "b")
    assert res.returncode == 0, res.stderr
    return [" ".join(ln.split()) for ln in res.stderr.splitlines()]


@contextlib.contextmanager
def terminal_bar(what: str) -> Iterator[list[str]]:
    """Inside the block, `attiqa.progress`'s bars drawn as on a terminal (rich's live bar, 200 columns);
    after it, the list holds every frame of the bars whose description starts with ``what``, in order,
    colour codes out and spaces squeezed (a command's first frame is ``frames[0]``)."""
    import io
    import re

    from rich.console import Console

    import attiqa.progress

    out = io.StringIO()
    frames: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(attiqa.progress, "console", Console(file=out, force_terminal=True, width=200))
        yield frames
    text = re.sub(r"\x1b\[[\d;?]*[A-Za-z]", "", out.getvalue())
    frames += [" ".join(ln.split()) for ln in re.split(r"[\r\n]", text) if ln.startswith(what)]


def isp_run(raw_dir: Path, out: Path, cfg, **kw: object) -> list:
    """:func:`isp_env.run.run` of ``raw_dir`` into ``out`` through its one way in, inputs made as ``isp-tune``
    makes them (:func:`isp_env.run_inputs.run_inputs` of ``cfg`` and ``teacher``): of ``kw``, the
    :class:`isp_env.run_inputs.InputSettings` fields (``test_fraction``, ``base``, …) go to the inputs, the
    rest to ``run``."""
    import dataclasses

    from isp_env.run import run
    from isp_env.run_inputs import InputSettings, run_inputs

    fields = {f.name for f in dataclasses.fields(InputSettings)}
    split = {k: v for k, v in kw.items() if k in fields}
    inputs = run_inputs(InputSettings(raw_dir=raw_dir, out=out, **split), cfg, kw.get("teacher"))
    return run(inputs, cfg, **{k: v for k, v in kw.items() if k not in fields})


PAUSED_AFTER = """
import importlib, os, time
from pathlib import Path

where, _, attr = os.environ["PAUSE_AFTER"].partition(":")
owner = importlib.import_module(where)
*parents, name = attr.split(".")
for parent in parents:
    owner = getattr(owner, parent)
real = getattr(owner, name)
ready, go = Path(os.environ["PAUSED"]), Path(os.environ["GO_ON"])


def paused(*args, **kwargs):
    result = real(*args, **kwargs)
    if not ready.exists():
        ready.touch()
        while not go.exists():
            time.sleep(0.02)
    return result


setattr(owner, name, paused)
importlib.import_module(os.environ["ENTRY"]).main()
"""


@dataclass
class Paused:
    """A run :func:`paused_after` holds at a point of its work; ``done``: how it ended, once let go."""

    proc: subprocess.Popen
    done: subprocess.CompletedProcess | None = None


@contextlib.contextmanager
def paused_after(tmp_path: Path, seam: str, cmd: list[str]) -> Iterator[Paused]:
    """``cmd`` (:func:`attiqa_cmd` or :func:`genbench_cmd`: ``-m attiqa.cli`` / ``-m genbench.cli``) run as a
    real process that waits, once the first call of ``seam`` (``module:Class.method``) has returned, until
    the block is done: a run caught at that point of its work for as long as the test needs. It then goes
    on to its end (asserted: exit 0), in ``Paused.done``."""
    script, ready, go = tmp_path / "paused_after.py", tmp_path / "paused", tmp_path / "go_on"
    script.write_text(PAUSED_AFTER)
    at = cmd.index("-m")
    env = {"PAUSE_AFTER": seam, "PAUSED": str(ready), "GO_ON": str(go), "ENTRY": cmd[at + 1]}
    proc = subprocess.Popen([sys.executable, str(script), *cmd[at + 2 :]], env=attiqa_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    paused = Paused(proc)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), f"never reached {seam}: {proc.communicate(timeout=60)}"
        yield paused
    finally:
        go.touch()
        out, err = proc.communicate(timeout=300)
        paused.done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert proc.returncode == 0, err


def holding(target: Path, call: str) -> subprocess.Popen:
    """A real process holding ``target`` (``call``: a holder of attiqa.io.atomic on T, the target, with
    ``Command`` in scope, e.g. "resumed_output_held(T, Command.SCORE)") until its stdin closes; returned
    once it holds it — a second run of a command meets a live holder, not a lock file alone."""
    holder = "import sys\nfrom attiqa.io.atomic import *\nfrom attiqa.io.commands import Command\n"
    holder += f"T = {str(target)!r}\nwith {call}:\n    print('held', flush=True)\n    sys.stdin.read()"
    first = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=attiqa_env({})
    )
    assert first.stdout is not None and first.stdout.readline() == b"held\n", "the holder never held"
    return first
