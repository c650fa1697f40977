"""Scores with BatchNorm folded (the scorer's default) vs the checkpoint's layers, on real photos and edits.

Six of scikit-image's bundled photos, each as is, saturation x2, sharpened x4, contrast x1.8 and blurred
(30 images, five crops each); prints the largest MOS and attribute difference per checkpoint.

    python benchmarks/fold_agreement.py [attiqa-default attiqa-agiqa3k run/finetune/best.safetensors ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from attiqa.cli import run_app
from attiqa.demo import DEMO_PHOTOS, skimage_photo
from attiqa.scorers.attiqa_scorer import AttiqaScorer
from attiqa.scorers.zoo import resolve_weights


def images() -> list[Image.Image]:
    out = []
    for name in DEMO_PHOTOS[:6]:
        im = skimage_photo(name)
        out += [
            im,
            ImageEnhance.Color(im).enhance(2.0),
            ImageEnhance.Sharpness(im).enhance(4.0),
            ImageEnhance.Contrast(im).enhance(1.8),
            im.filter(ImageFilter.GaussianBlur(3)),
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=["attiqa-default", "attiqa-agiqa3k"])
    args = ap.parse_args()
    imgs = images()
    for name in args.models:
        path = Path(name) if Path(name).exists() else resolve_weights(name)
        plain, folded = AttiqaScorer(path, fold=False), AttiqaScorer(path)
        a, b = plain(imgs), folded(imgs)
        cfg = plain.card["model"]
        guard = (cfg.get("ridge") or {}).get("guard", 0.0)
        d_attr = max(float(np.abs(a[k] - b[k]).max()) for k in plain.columns[1:])
        print(
            f"{name}: {len(imgs)} images, ridge guard {guard}, edit guard {'edit_guard' in cfg} | "
            f"largest |folded - unfolded|: MOS {np.abs(a['mos'] - b['mos']).max():.2e} "
            f"(MOS range {cfg.get('mos_range')}), attributes {d_attr:.2e}"
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
