"""ISP speed: full-resolution render of a 12-megapixel raw against ``rawpy.postprocess()`` on the same DNG,
and preview renders per second (the agent's inner loop).

Both sides are measured in this run, in turns (best of ``--repeats``), so the ratio is meaningful on a noisy
machine.
Targets (issue 6): full-resolution time within 2x of rawpy's (ratio <= 2), >= 20 preview renders/s.
The raw is a real photo (scikit-image's astronaut, upscaled to 4000x3000) unprocessed into an RGGB DNG.
Our full-resolution render runs on ``--threads`` threads (default: ``ISP_THREADS`` or the available cores,
as in normal use; see :mod:`isp_env.strips`), LibRaw on its own default (OpenMP, the available cores).

    python benchmarks/isp_speed.py [--width 4000 --height 3000] [--repeats 3] [--preview 512] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import rawpy
from PIL import Image
from skimage import data

from attiqa.cli import run_app
from isp_env.dng import dng_from_photo
from isp_env.isp import develop, finish
from isp_env.params import from_normalized, neutral
from isp_env.raw import read_raw
from isp_env.strips import set_threads, threads


def best_of_interleaved(fns: list, repeats: int) -> list[float]:
    """Best time of each function, run in turns (a, b, c, a, b, c, ...) so a load change hits all alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preview", type=int, default=512, help="preview long side")
    ap.add_argument("--preview-renders", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None, help="ISP threads (default: ISP_THREADS or cores)")
    args = ap.parse_args()
    set_threads(args.threads)

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((args.width, args.height), Image.BICUBIC))
    path = dng_from_photo(Path(tempfile.mkdtemp()) / "bench_12mp.dng", photo, "RGGB")
    active = from_normalized(np.full(16, 0.3))  # every module on (denoisers, sharpening, texture)

    def ours(values):
        return lambda: finish(develop(read_raw(path)), values)

    def theirs():
        with rawpy.imread(str(path)) as raw:
            raw.postprocess()

    t_rawpy, t_neutral, t_active = best_of_interleaved([theirs, ours(neutral()), ours(active)], args.repeats)
    pv = develop(read_raw(path), args.preview)
    finish(pv, active)
    t = time.perf_counter()
    for _ in range(args.preview_renders):
        finish(pv, active)
    fps = args.preview_renders / (time.perf_counter() - t)
    mp = args.width * args.height / 1e6
    print(f"raw: {args.width}x{args.height} ({mp:.1f} MP), best of {args.repeats}, ISP threads: {threads()}")
    print(f"rawpy.postprocess()              {t_rawpy:6.2f} s")
    for label, t in (("neutral parameters", t_neutral), ("all modules active", t_active)):
        print(f"isp_env, {label:22s}  {t:6.2f} s   ratio {t / t_rawpy:.2f} (target <= 2)")
    print(f"preview renders (long side {args.preview}, all modules active): {fps:.1f}/s (target >= 20)")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
