"""Score a fixed real image set (+ edge-case edits) with a shipped model through the real scorer and save
every column to JSON; run it once per code version (PYTHONPATH) and compare the files with ``--compare``.

    PYTHONPATH=OLD python experiments/speed/tap_stats_scores.py --model attiqa-default -o runs/s34/old.json
    PYTHONPATH=NEW python experiments/speed/tap_stats_scores.py --model attiqa-default -o runs/s34/new.json
    python experiments/speed/tap_stats_scores.py --compare runs/s34/old.json runs/s34/new.json

Images: the first 40 of clive-dev, agiqa3k-dev and biq2021-val each (sorted), plus a constant grey, an
all-white, an all-black, a tiny (24x18) and a saturated-colour image written next to the output.
Session 34 (experiments/speed/tap_stats_rule_s34.md).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path("../shared/data")
SETS = ("clive-dev/images", "agiqa3k-dev/AGIQA-3K", "biq2021-val/images")


def edits(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sat = np.zeros((384, 512, 3), np.uint8)
    sat[..., 0] = 255
    sat[:, 256:, 0] = 0
    sat[:, 256:, 2] = 255
    sat[192:, :, 1] = rng.integers(200, 256, (192, 512), dtype=np.uint8)
    imgs = {
        "grey": np.full((384, 512, 3), 128, np.uint8),
        "white": np.full((384, 512, 3), 255, np.uint8),
        "black": np.zeros((384, 512, 3), np.uint8),
        "tiny": rng.integers(0, 256, (18, 24, 3), dtype=np.uint8),
        "saturated": sat,
    }
    out = []
    for name, a in imgs.items():
        p = folder / f"edit_{name}.png"
        Image.fromarray(a).save(p)
        out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("-o", "--out", type=Path)
    ap.add_argument("--per-set", type=int, default=40)
    ap.add_argument("--compare", nargs=2, type=Path)
    args = ap.parse_args()
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        cols = [c for c in a[0] if c != "image"]
        dmos = max(abs(x[cols[0]] - y[cols[0]]) for x, y in zip(a, b, strict=True))
        datt = max(abs(x[c] - y[c]) for x, y in zip(a, b, strict=True) for c in cols[1:])
        nan = sum(math.isnan(r[c]) for r in b for c in cols)
        print(f"{len(a)} images: max |dMOS| {dmos:.2e}  max |d attribute| {datt:.2e}  NaN in new {nan}")
        return
    from attiqa import load_scorer
    from attiqa.io.images import discover_images
    from attiqa.scoring import score_paths

    paths = [p for s in SETS for p in sorted(discover_images([DATA / s]))[: args.per_set]]
    paths += edits(args.out.parent / "edits")
    run = score_paths(paths, load_scorer(args.model), 8, num_workers=0)
    if run.failed:
        print("failed:", run.failed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(run.rows))
    print(f"{len(run.rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
