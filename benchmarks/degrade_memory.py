"""Peak memory and time of ``attiqa degrade`` on one big photo (default 24 MP, 6000x4000: a real photo
enlarged, with grain), against two baselines measured in the same run: the decoded image's size (uint8
H x W x 3) and the same command on a 0.25 MP version of the photo (the floor: interpreter, numpy, scipy,
PIL). With ``--before PATH`` (another checkout, e.g. the main branch) the same command runs from that tree
too, alternating over ``--rounds``, and the before / after ratios of peak RSS and time are printed.

Each run is the real command (``python -m attiqa.cli degrade``) in a fresh process with ``PYTHONPATH`` set to
the tree under test; its peak RSS is its VmHWM read while it runs (``_common.watch``). Printed: peak RSS,
the peak above the floor in decoded images, seconds (start-up and PNG writing included).

    python benchmarks/degrade_memory.py [--megapixels 24] [--levels 5] [--rounds 1] [--before ../main]
    python benchmarks/degrade_memory.py --peaks [--megapixels 1] [--before ../main]

``--peaks`` prints instead, for every registered type at level 5, its ``tracemalloc`` peak inside
``apply_distortion`` per byte of the decoded image (one process per tree, the types one after another).

Figures in docs/robustness.md (the row of `attiqa degrade` on a 24 MP photo).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import watch  # noqa: E402

from attiqa.cli import run_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_photo(path: Path, width: int, height: int) -> None:
    """A photo-like JPEG of ``width`` x ``height``: scikit-image's astronaut enlarged, with grain."""
    import numpy as np
    from PIL import Image

    from attiqa.demo import skimage_photo

    img = skimage_photo("astronaut").resize((width, height), Image.Resampling.BICUBIC)
    grain = np.random.default_rng(0).integers(-6, 7, (height, width, 3), dtype=np.int16)
    Image.fromarray(np.clip(np.asarray(img) + grain, 0, 255).astype(np.uint8)).save(path, quality=92)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=24.0, help="size of the big photo (3:2)")
    ap.add_argument("--levels", default="5", help="attiqa degrade --levels (default 5)")
    ap.add_argument("--distortions", help="attiqa degrade --distortions (default: its default set)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--before", type=Path, help="another checkout to compare with (e.g. the main branch)")
    ap.add_argument("--peaks", action="store_true", help="every type's traced peak per byte of the image")
    ap.add_argument("--peaks-of", type=Path, help=argparse.SUPPRESS)  # the child of --peaks: one tree
    args = ap.parse_args()
    if args.peaks_of is not None:
        print_peaks(args.peaks_of)
        return

    height = round((args.megapixels * 1e6 / 1.5) ** 0.5)
    width = round(height * 1.5)
    trees = {"after": ROOT} if args.before is None else {"before": args.before.resolve(), "after": ROOT}
    tmp = Path(tempfile.mkdtemp(prefix="attiqa-degrade-mem-"))
    if args.peaks:
        try:
            compare_peaks(trees, tmp, width, height)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        for name, (w, h) in {"big": (width, height), "small": (612, 408)}.items():
            (tmp / name).mkdir()
            make_photo(tmp / name / "photo.jpg", w, h)
        extra = ["--levels", args.levels] + (["--distortions", args.distortions] if args.distortions else [])

        def run(tree: Path, size: str) -> tuple[float, float]:
            out = tmp / "out"
            shutil.rmtree(out, ignore_errors=True)  # made afresh: existing outputs would be skipped
            cmd = [sys.executable, "-m", "attiqa.cli", "degrade", str(tmp / size), "--out", str(out), *extra]
            env = {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}  # the tree, not the cwd
            seconds, peak, _, _ = watch(cmd, env, "attiqa degrade")
            return seconds, peak

        got: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(max(1, args.rounds)):
            for label, tree in trees.items():
                for size in ("small", "big"):
                    got.setdefault((label, size), []).append(run(tree, size))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    decoded = width * height * 3 / 2**20
    print(f"attiqa degrade {' '.join(extra)} on one {width}x{height} photo ({width * height / 1e6:.1f} MP; "
          f"decoded uint8 {decoded:.0f} MiB), {args.rounds} round(s)")  # fmt: skip
    best: dict[str, tuple[float, float]] = {}
    for label in trees:
        floor = min(p for _, p in got[(label, "small")])
        seconds = min(s for s, _ in got[(label, "big")])
        peak = max(p for _, p in got[(label, "big")])
        best[label] = (seconds, peak)
        print(f"  {label:6s}: peak RSS {peak:6.0f} MiB = floor {floor:.0f} MiB (0.25 MP photo) + "
              f"{(peak - floor) / decoded:4.1f} decoded images; {seconds:6.1f} s")  # fmt: skip
    if "before" in best:
        (tb, pb), (ta, pa) = best["before"], best["after"]
        print(f"  before / after: peak RSS {pb / pa:.2f}x, time {tb / ta:.2f}x (best of rounds)")


def print_peaks(photo: Path) -> None:
    """Every registered type's traced peak at level 5 per byte of ``photo`` decoded, a line each."""
    import tracemalloc

    from PIL import Image

    from attiqa.distortions import apply_distortion, list_distortions

    with Image.open(photo) as im:
        img = im.convert("RGB")
    tracemalloc.start()
    for name in list_distortions():
        tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0]  # the photo and what the imports keep
        apply_distortion(img, name, 5, seed=5)
        print(name, (tracemalloc.get_traced_memory()[1] - held) / (img.width * img.height * 3), flush=True)


def compare_peaks(trees: dict[str, Path], tmp: Path, width: int, height: int) -> None:
    """:func:`print_peaks` run from each tree in a fresh process, printed side by side."""
    import os
    import subprocess

    make_photo(tmp / "photo.jpg", width, height)
    got: dict[str, dict[str, float]] = {}
    for label, tree in trees.items():
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--peaks-of", str(tmp / "photo.jpg")]
        lines = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.split()
        got[label] = {name: float(v) for name, v in zip(lines[::2], lines[1::2], strict=True)}
    print(f"traced peak of apply_distortion(level 5) per byte of one {width}x{height} photo (uint8 RGB)")
    print(f"  {'type':30s}" + "".join(f"{label:>8s}" for label in trees))
    for name in got["after"]:
        print(f"  {name:30s}" + "".join(f"{got[label].get(name, float('nan')):7.1f}x" for label in trees))


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
