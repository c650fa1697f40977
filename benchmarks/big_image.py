"""Scoring a 24-megapixel photo: throughput (five-crop and single-pass) and peak memory.

Each measurement runs in a fresh subprocess (peak RSS = its ru_maxrss, and the VmHWM of its decode worker,
where the photo is decoded: ru_maxrss alone missed it). The baseline, measured in the same
run, is the same scorer on a 0.25-megapixel version of the same photo, so the printed ratios say what
the big file costs on top of the model itself.

    python benchmarks/big_image.py [--model CHECKPOINT] [--n 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from attiqa.cli import run_app

CHILD = r"""
import json, os, resource, sys, time
import attiqa
from attiqa.errors import AttiqaError
from attiqa.scoring import score_paths
model, crops, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
try:
    scorer = attiqa.load_scorer(model, crops=crops)
except AttiqaError as exc:
    sys.exit(f"error: {exc}")
paths = [path] * n
score_paths(paths[:1], scorer, batch_size=1, num_workers=1)
t = time.perf_counter()
run = score_paths(paths, scorer, batch_size=1, num_workers=1)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def hwm(pid):  # the decode workers decode the photo: their peak, read while they live (kept across calls)
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0.0
me = os.getpid()
kids = [int(k) for t in os.listdir(f"/proc/{me}/task")
        for k in open(f"/proc/{me}/task/{t}/children").read().split()]
worker = max((hwm(k) for k in kids), default=0.0) or None
got = {"ips": len(run.rows) / dt, "peak_mb": peak, "worker_mb": worker, "failed": len(run.failed)}
print(json.dumps(got))
"""


def make_photos(d: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(Path(__file__).parent))
    from attiqa.demo import skimage_photo

    img = skimage_photo("astronaut")
    big, small = d / "big_24mp.jpg", d / "small_025mp.jpg"
    img.resize((6000, 4000)).save(big, quality=92)
    img.resize((612, 408)).save(small, quality=92)
    return big, small


def default_model(d: Path) -> str:
    """The shipped default model; an untrained EfficientNet-Lite0 model if none is bundled."""
    import torch

    from attiqa.scorers import DEFAULT_MODEL
    from attiqa.scorers.zoo import named_models

    if DEFAULT_MODEL in named_models():
        return DEFAULT_MODEL

    from attiqa.models import AttiqaModel, create_backbone, save_model

    torch.manual_seed(0)
    m = AttiqaModel(create_backbone("efficientnet_lite0", pretrained=False), mos_hidden=512)
    m.set_mos_range(0.0, 100.0)
    return str(save_model(m, d / "bench.safetensors", card={"name": "bench"}))


def child(model: str, crops: str, path: Path, n: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, crops, str(path), str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:  # the child's last line: its one-line error (a model that does not load), else the end
        raise SystemExit(
            (out.stderr.strip().splitlines() or [f"the scoring child failed ({out.returncode})"])[-1]
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", default=None, help="checkpoint or model name (default: the shipped default model)"
    )
    ap.add_argument("--n", type=int, default=4, help="scorings per measurement")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="attiqa-big-"))
    big, small = make_photos(d)
    model = args.model or default_model(d)
    print(
        f"photo: {big.name} 6000x4000 JPEG ({big.stat().st_size / 1e6:.1f} MB); baseline {small.name} 612x408"
    )
    for crops in ("five", "center"):
        b, s = child(model, crops, big, args.n), child(model, crops, small, args.n)
        print(
            f"[{crops:6s}] 24 MP: {b['ips']:6.2f} img/s, peak {b['peak_mb']:7.0f} MB{worker(b)} | "
            f"0.25 MP: {s['ips']:6.2f} img/s, peak {s['peak_mb']:7.0f} MB{worker(s)} | "
            f"speed ratio {b['ips'] / s['ips']:.2f}, "
            f"memory ratio {b['peak_mb'] / s['peak_mb']:.2f}"
            + (
                f", decode worker {b['worker_mb'] / s['worker_mb']:.2f}"
                if b["worker_mb"] and s["worker_mb"]
                else ""
            )
        )


def worker(r: dict) -> str:
    """The decode worker's peak (where the photo is decoded), or that none was seen alive."""
    return f" (decode worker {r['worker_mb']:.0f} MB)" if r["worker_mb"] else " (decode worker not measured)"


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
