"""Peak resident memory of ``attiqa demo --train``'s pretraining step with the blocks' activations recomputed
in the backward pass (the demo's setting, ``pretrain.checkpoint_activations``) against kept (the behaviour
before session 48), measured in the same run, and whether both train the same weights bit for bit.

    python benchmarks/demo_train_memory.py [--steps 3] [--malloc tuned|system]

The demo's photos are written and labelled once (classical teacher, as the demo does); then each setting
pretrains with the demo's own config (:func:`attiqa.demo.demo_pretrain_config`; one epoch of ``--steps``
steps, then the calibration pass) in a fresh child process, which reports its peak resident memory (VmHWM)
and a hash of the saved model. ``--malloc system``: both children with ``ATTIQA_MALLOC=system`` (glibc's
default thresholds instead of :mod:`attiqa.allocator`'s). Figures in docs/robustness.md (session 48).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from attiqa.cli import run_app

CHILD_MARK = "demo_train_memory:"


def child(labels: str, out: str, steps: int, recompute: bool) -> None:
    """Pretrain as the demo does (one epoch of ``steps`` steps); print VmHWM (MiB) and the model's hash."""
    from dataclasses import replace

    from safetensors.torch import load_file

    from attiqa.allocator import tune_allocator
    from attiqa.demo import demo_pretrain_config
    from attiqa.training.pretrain import pretrain

    tune_allocator()  # as the command line does (a no-op with ATTIQA_MALLOC=system)
    cfg = replace(
        demo_pretrain_config(), epochs=1, max_steps_per_epoch=steps, checkpoint_activations=recompute
    )
    path = pretrain(cfg, Path(labels), Path(out), progress=False)
    sd = load_file(str(path))
    digest = hashlib.sha256(b"".join(sd[k].numpy().tobytes() for k in sorted(sd))).hexdigest()[:16]
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))
    print(CHILD_MARK + json.dumps({"peak_mib": hwm, "weights": digest}), flush=True)


def measure(labels: Path, work: Path, steps: int, recompute: bool, malloc: str) -> dict:
    env = dict(os.environ)
    if malloc == "system":
        env["ATTIQA_MALLOC"] = "system"
    out = work / ("recompute" if recompute else "keep")
    cmd = [sys.executable, __file__, "--child", str(labels), str(out), str(steps), str(int(recompute))]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    line = next((x for x in res.stdout.splitlines() if x.startswith(CHILD_MARK)), None)
    if res.returncode != 0 or line is None:
        sys.exit(f"child failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
    return dict(json.loads(line[len(CHILD_MARK) :]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3, help="pretraining steps (batches of 32) per child")
    ap.add_argument("--malloc", choices=("tuned", "system"), default="tuned")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        labels, out, steps, recompute = args.child
        child(labels, out, int(steps), recompute == "1")
        return
    from attiqa.config import LabelConfig, TrainConfig
    from attiqa.demo import make_demo_images
    from attiqa.runner import run

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images = make_demo_images(work / "images")
        cfg = TrainConfig(
            out_dir=str(work / "run"),
            label=LabelConfig(images=[str(work / "images")], teacher="classical", batch_size=32),
        )
        labels = run(cfg, progress=False).labels
        assert labels is not None
        what = f"pretraining {args.steps} step(s) of 32 crops, malloc {args.malloc}"
        print(f"{len(images)} demo photos labelled; {what}")
        keep = measure(labels, work, args.steps, False, args.malloc)
        new = measure(labels, work, args.steps, True, args.malloc)
    print(f"activations kept (before):     peak {keep['peak_mib']:7.0f} MiB  weights {keep['weights']}")
    print(f"activations recomputed (demo): peak {new['peak_mib']:7.0f} MiB  weights {new['weights']}")
    same = "the same weights bit for bit" if keep["weights"] == new["weights"] else "DIFFERENT weights"
    print(f"recomputed / kept peak: {new['peak_mib'] / keep['peak_mib']:.2f}; {same}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
