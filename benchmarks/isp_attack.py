"""Can per-image CMA-ES game the reward? (issue 19) — with and without the over-processing guard.

For each raw, CMA-ES searches the 16 parameters for the highest reward within ``--budget`` scorer calls,
once on the bare MOS and once on the guarded reward (:mod:`isp_env.reward`). Prints MOS, fraction of pixels
with a clipped channel and mean HSV saturation of neutral, ``rawpy.postprocess()`` and both searches'
renders, and writes to ``--out`` (default ``isp_attack/``) a PNG strip per raw (neutral | rawpy | bare-MOS
search | guarded search) to look at, and the printed rows as ``attack.json``.

    python benchmarks/isp_attack.py RAW [RAW ...] [--budget 120] [--model NAME|CKPT] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from attiqa.cli import run_app
from attiqa.drawing import draw_fitted, font
from attiqa.io.atomic import write_json_atomic
from attiqa.io.images import save_image
from isp_env.baselines import cma_search, guarded_objective
from isp_env.mos_function import load_mos_function
from isp_env.params import neutral
from isp_env.raw import read_raw
from isp_env.reward import develop_view, finish_view, make_guard, rawpy_render, render_stats, to_view


def captioned_strip(imgs: dict[str, np.ndarray], captions: dict[str, str]) -> Image.Image:
    """The renders side by side, each with its caption fitted to its own panel (wrapped, never drawn into
    the next panel or off the strip, however narrow the view)."""
    pil = Image.fromarray(np.concatenate(list(imgs.values()), axis=1))
    d, text_font, x = ImageDraw.Draw(pil), font(), 0
    for k, im in imgs.items():
        draw_fitted(d, (x + 6, 6), captions[k], text_font, im.shape[1] - 12, 3, fill=(255, 255, 0))
        x += im.shape[1]
    return pil


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raws", nargs="+", type=Path)
    ap.add_argument("--budget", type=int, default=120)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=Path("isp_attack"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    mos = load_mos_function(args.model)
    view = mos.view_shorter or 384
    report = []
    for path in args.raws:
        dev = develop_view(read_raw(path), view)
        guard = make_guard(dev, path, view)
        imgs = {"neutral": finish_view(dev, neutral(), view)}
        imgs["rawpy"] = (
            to_view(rawpy_render(path, imgs["neutral"].shape[:2]), view)
            if min(imgs["neutral"].shape[:2]) == view
            else rawpy_render(path, imgs["neutral"].shape[:2])
        )
        params = {}
        for name, g in (("attack_bare_mos", None), ("attack_guarded", guard)):
            res = cma_search(guarded_objective([(dev, g, view)], mos), args.budget, 1, seed=0)
            params[name] = res.params
            imgs[name] = finish_view(dev, res.params, view)
        row = {"raw": path.name, "params": params}
        scored = dict(zip(imgs, mos(list(imgs.values())), strict=True))  # one reward call per raw
        for k, im in imgs.items():
            st = render_stats(im)
            row[k] = {"mos": float(scored[k]), "penalty": guard.penalty(im) * mos.width / 100, **st.as_dict()}
            print(
                f"{path.name:28s} {k:16s} MOS {row[k]['mos']:6.2f}  penalty {row[k]['penalty']:7.2f}  "
                f"clipped {100 * st.clipped:5.1f} %  saturation {st.saturation:.3f}",
                flush=True,
            )
        report.append(row)
        captions = {k: f"{k}  MOS {row[k]['mos']:.1f}  clip {100 * row[k]['clipped']:.0f}%" for k in imgs}
        args.out.mkdir(parents=True, exist_ok=True)  # at the first strip: an unread raw leaves none
        save_image(captioned_strip(imgs, captions), args.out / f"{path.stem}_attack.png")
    write_json_atomic(args.out / "attack.json", report)


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
