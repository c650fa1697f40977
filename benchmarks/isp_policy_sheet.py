"""A contact sheet of a policy on raws anyone can make: neutral | policy [| checked], a row per raw.

Without RAW arguments it uses the DNGs ``isp_env.dng.demo_raws`` unprocesses from the bundled photos, so the
sheet can be checked from a fresh clone (the shared real raws may not be redistributed, nor renders of them).
Prints each raw's tuned exposure and saturation (how much the policy adapts per image). No scorer call,
except with ``--check`` (session 44): a third column renders what ``isp-tune render --check`` keeps — the best
of the policy's setting, its base and neutral by the reward model (``--model``) — named in its panel with
each candidate's reward (session 47), and each row's raw is named in its first panel.

    python benchmarks/isp_policy_sheet.py [RAW ...] [--policy default] [--check] [--out sheet.jpg]
        [--long-side 256]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from attiqa.cli import run_app
from attiqa.drawing import draw_fitted, font
from attiqa.io.atomic import atomic_path
from attiqa.io.images import save_format
from isp_env.isp import develop, finish
from isp_env.mos_function import load_mos_function
from isp_env.params import neutral
from isp_env.policy_files import resolve_policy
from isp_env.policy_io import load_policy
from isp_env.raw import read_raw
from isp_env.reward import guarded_item, scorer_view
from isp_env.tuning import checked_setting, tune_with_policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raws", nargs="*", type=Path)
    ap.add_argument("--policy", default="default")
    ap.add_argument("--out", type=Path, default=Path("isp_policy_sheet.jpg"))
    ap.add_argument("--long-side", type=int, default=256)
    ap.add_argument("--check", action="store_true", help="add the checked setting (isp-tune render --check)")
    ap.add_argument("--model", default=None, help="reward model of --check (default: the bundled one)")
    args = ap.parse_args()
    policy, card = load_policy(resolve_policy(args.policy))
    mos = load_mos_function(args.model) if args.check else None
    kept: list[str] = []  # per raw, the checked setting's candidate kept and the reward of each
    names: list[str] = []
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
            panels = [finish(dev, neutral()), finish(dev, values)]
            names.append(path.name)
            if mos is not None:
                c = checked_setting(values, card, guarded_item(path, scorer_view(mos)), mos)
                print(
                    f"{'':28s} checked: kept the {c.chosen}'s setting",
                    {k: round(v, 2) for k, v in c.scores.items()},
                )
                panels.append(finish(dev, c.params))
                scores = ", ".join(f"{who} {v:.3g}" for who, v in c.scores.items())
                kept.append(f"kept: {c.chosen} (reward {scores})")
            rows.append(np.concatenate(panels, axis=1))
    w = max(r.shape[1] for r in rows)
    heights = [r.shape[0] for r in rows]
    rows = [np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    d = ImageDraw.Draw(sheet)
    n = 3 if kept else 2
    text_font, part = font(), w // n
    titles = ["neutral", f"policy {args.policy}", "checked (best by the reward)"][:n]
    yellow, black = (255, 255, 0), (0, 0, 0)  # outlined: yellow alone was unreadable on a bright photo
    for i, title in enumerate(titles):  # a long --policy path: wrapped
        draw_fitted(d, (i * part + 6, 6), title, text_font, part - 12, 3, fill=yellow, outline=black)
    for j, (top, h) in enumerate(zip(np.cumsum([0, *heights[:-1]]), heights, strict=True)):
        bottom = int(top) + h - 32  # each row's raw, and what its checked setting kept by which rewards
        draw_fitted(d, (6, bottom + 12), names[j], text_font, part - 12, 1, fill=yellow, outline=black)
        if kept:
            draw_fitted(
                d, (2 * part + 6, bottom), kept[j], text_font, part - 12, 2, fill=yellow, outline=black
            )
    with atomic_path(args.out) as tmp:
        sheet.save(tmp, format=save_format(args.out), quality=85)
    print(f"-> {args.out}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
