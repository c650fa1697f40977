"""A contact sheet of a policy on raws anyone can make: neutral | policy, one row per raw (issue 19).

Without RAW arguments it uses the DNGs ``isp_env.dng.demo_raws`` unprocesses from the bundled photos, so the
sheet can be checked from a fresh clone (the shared real raws may not be redistributed, nor renders of them).
Prints each raw's tuned exposure and saturation (how much the policy adapts per image). No scorer call.

    python benchmarks/isp_policy_sheet.py [RAW ...] [--policy default] [--out sheet.jpg] [--long-side 256]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from attiqa.drawing import draw_fitted, font
from isp_env.isp import develop, finish
from isp_env.params import neutral
from isp_env.policy_io import load_policy, resolve_policy
from isp_env.raw import read_raw
from isp_env.tuning import tune_with_policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("raws", nargs="*", type=Path)
    ap.add_argument("--policy", default="default")
    ap.add_argument("--out", type=Path, default=Path("isp_policy_sheet.jpg"))
    ap.add_argument("--long-side", type=int, default=256)
    args = ap.parse_args()
    policy, card = load_policy(resolve_policy(args.policy))
    with tempfile.TemporaryDirectory() as tmp:
        raws = args.raws
        if not raws:
            from isp_env.dng import demo_raws

            raws = demo_raws(Path(tmp), long_side=512)
        rows = []
        for path in raws:
            values = tune_with_policy(policy, card, path)
            print(
                f"{path.name:28s} exposure {values['tone_exposure']:+.2f} EV  saturation "
                f"{values['saturation']:.2f}  contrast {values['contrast']:.2f}"
            )
            dev = develop(read_raw(path), args.long_side)
            pair = [finish(dev, neutral()), finish(dev, values)]
            rows.append(np.concatenate(pair, axis=1))
    w = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    d = ImageDraw.Draw(sheet)
    text_font, half = font(), w // 2
    for x, title in ((6, "neutral"), (half + 6, f"policy {args.policy}")):  # a long --policy path: wrapped
        draw_fitted(d, (x, 6), title, text_font, half - 12, 3, fill=(255, 255, 0))
    sheet.save(args.out, quality=85)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
