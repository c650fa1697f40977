"""Does the agent's cheap reward rank renders the way full-resolution scoring does? (issue 19)

For each raw, random parameter sets are rendered (a) at full resolution and scored with the paper's protocol
(shorter side -> the model's scale, five 320-px crops, §4.2) — the reference; (b) at the scorer's own scale
and scored in one pass: its centre crop (the reward's default) and the whole view; (c) the earlier
reward: a 256-px preview,
upscaled by the scorer and cut into five crops. Two sweeps: ``all`` (every parameter random) and ``detail``
(only the denoise / sharpening / texture parameters random — the settings a preview may not carry over).
Prints Spearman's rho of (b) and (c) against (a) per raw and sweep, and the seconds per reward.

    python benchmarks/isp_reward_agreement.py RAW [RAW ...] [--n 20] [--model NAME|CKPT] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from attiqa.cli import run_app
from attiqa.io.atomic import write_json_atomic
from isp_env.isp import develop, finish
from isp_env.mos_function import load_mos_function
from isp_env.params import N_PARAMS, NAMES, from_normalized, neutral, to_normalized
from isp_env.raw import read_raw
from isp_env.reward import develop_view, finish_view

DETAIL = [NAMES.index(n) for n in NAMES if n.startswith(("uv_nr", "y_nr", "sharpen", "texture"))]


def sweep(kind: str, n: int, rng: np.random.Generator) -> list[dict[str, float]]:
    base = to_normalized(neutral())
    out = []
    for _ in range(n):
        x = base.copy()
        if kind == "all":
            x = np.clip(base + rng.normal(0, 0.5, N_PARAMS), -1, 1)
        else:
            x[DETAIL] = rng.uniform(-1, 1, len(DETAIL))
        out.append(from_normalized(x))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raws", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    one = load_mos_function(args.model, one_pass="center")
    whole = load_mos_function(args.model, one_pass="whole")
    five = load_mos_function(args.model, one_pass=False)
    view = one.view_shorter or 384
    rows, times = [], {"one_pass": [], "whole": [], "five_crop_full": []}
    for path in args.raws:
        raw = read_raw(path)
        full, small, old = develop(raw), develop_view(raw, view), develop(raw, 256)
        for kind in ("all", "detail"):
            params = sweep(kind, args.n, np.random.default_rng(0))
            ref, new, prev, wh = [], [], [], []
            for v in params:
                t = time.perf_counter()
                ref.append(five.one(finish(full, v)))
                times["five_crop_full"].append(time.perf_counter() - t)
                t = time.perf_counter()
                img = finish_view(small, v, view)
                new.append(one.one(img))
                times["one_pass"].append(time.perf_counter() - t)
                t = time.perf_counter()
                wh.append(whole.one(img))
                times["whole"].append(time.perf_counter() - t)
                prev.append(five.one(finish(old, v)))
            rho = {
                "center": spearmanr(ref, new)[0],
                "whole": spearmanr(ref, wh)[0],
                "old_preview": spearmanr(ref, prev)[0],
            }
            rows.append(
                {
                    "raw": path.name,
                    "size": list(raw.shape),
                    "sweep": kind,
                    **rho,
                    "ref_range": [min(ref), max(ref)],
                }
            )
            print(
                f"{path.name:28s} {kind:6s} rho: centre crop {rho['center']:.3f}, whole view "
                f"{rho['whole']:.3f}, 256 px + 5 crops {rho['old_preview']:.3f}  (ref MOS {min(ref):.1f}.."
                f"{max(ref):.1f})",
                flush=True,
            )
    for kind in ("all", "detail"):
        print(
            f"mean rho {kind}: "
            + ", ".join(
                f"{k} {np.mean([r[k] for r in rows if r['sweep'] == kind]):.3f} "
                f"(min {np.min([r[k] for r in rows if r['sweep'] == kind]):.3f})"
                for k in ("center", "whole", "old_preview")
            )
        )
    sec = {k: float(np.median(v)) for k, v in times.items()}
    print(
        "median seconds: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sec.items())
        + f" (five-crop full-res / centre crop: {sec['five_crop_full'] / sec['one_pass']:.1f}x)"
    )
    if args.out:
        write_json_atomic(args.out, {"rows": rows, "seconds": sec})


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
