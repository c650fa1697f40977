"""Pair tables for a domain-balanced guard detector (issue 20, stop 26; decision_rule_s26.txt).

Why: the guard's edit detector (``finetune.ridge_guard``, :func:`attiqa.training.ridge.fit_guard`) is fitted
to -1 on the run's CLIVE training photos + the pair table's originals and +1 on the table's edits. With
s25's table (edits of 110 natural photos only) "edited" was predictable from the domain: the detector
opened on 66-74 % of held-out natural originals and on no CLIVE photo. This writes three tables:

- ``D1_pairs.csv``: s25's table + clive-dev photos given make_variants.py's random training edits
  (``train_variants``: 7 over-processings + 3 random degradations). Only the photos on the training side of
  every split seed 0-9 (``split_indices(862, 0.2, seed)``: 104 photos), so one table serves all 10 bench
  splits without a test photo of any split in it.
- ``D3_pairs.csv``: s25's table + two mild re-framings of each natural training original (a crop keeping
  80-95 % of each side; a Lanczos downscale to 80-95 %) as more unedited rows (each the better side of a
  pair with that photo's ``tr_sharpen`` edit, so the edit set is unchanged).
- ``D2_pairs.csv``: both.

    python experiments/generalisation/s26/balanced_table.py --natural runs/guard26/natural \
        --out runs/guard26/s26
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_variants import is_test, train_variants  # noqa: E402

from attiqa.io.atomic import write_bytes_atomic  # noqa: E402
from attiqa.io.images import load_image  # noqa: E402
from attiqa.io.tables import csv_bytes  # noqa: E402
from attiqa.splits import split_indices  # noqa: E402

SEEDS = range(10)


def always_train(n: int) -> list[int]:
    """Rows on the training side of every split seed 0-9 (attiqa train / bench single's 80/20 splits)."""
    keep = set(range(n))
    for s in SEEDS:
        keep &= set(split_indices(n, 0.2, s)[0])
    return sorted(keep)


def clive_pairs(clive_csv: Path, out: Path) -> list[tuple[str, str]]:
    with open(clive_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    idx = always_train(len(rows))
    for s in SEEDS:
        assert not set(idx) & set(split_indices(len(rows), 0.2, s)[1])
    (out / "clive_images").mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in idx:
        src = clive_csv.parent / "images" / rows[i]["image"]
        img = load_image(src).convert("RGB")
        stem = Path(rows[i]["image"]).stem
        for kind, im in train_variants(img, np.random.default_rng(200_000 + i), i):
            target = out / "clive_images" / f"{stem}__{kind}.png"
            if not target.exists():
                im.convert("RGB").save(target)
            pairs.append((str(src), str(target)))
    print(f"CLIVE: {len(idx)} photos on the training side of splits 0-9, {len(pairs)} pairs")
    return pairs


def reframe_pairs(natural: Path, out: Path) -> list[tuple[str, str]]:
    with open(natural / "natural_train110x.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_photo: dict[str, dict[str, str]] = {}
    for r in rows:
        assert r["split"] == "train" and not is_test(r["photo"])
        by_photo.setdefault(r["photo"], {})[r["kind"]] = str(natural / r["image"])
    (out / "reframe_images").mkdir(parents=True, exist_ok=True)
    pairs = []
    for n, (photo, kinds) in enumerate(sorted(by_photo.items())):
        rng = np.random.default_rng(300_000 + n)
        img = load_image(Path(kinds["original"])).convert("RGB")
        w, h = img.size
        fx, fy = rng.uniform(0.8, 0.95, 2)
        cw, ch = int(round(w * fx)), int(round(h * fy))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        f = float(rng.uniform(0.8, 0.95))
        stem = photo.replace("/", "__").rsplit(".", 1)[0]
        for kind, im in (
            ("rf_crop", img.crop((x0, y0, x0 + cw, y0 + ch))),
            ("rf_scale", img.resize((round(w * f), round(h * f)), Image.Resampling.LANCZOS)),
        ):
            target = out / "reframe_images" / f"{stem}__{kind}.png"
            if not target.exists():
                im.save(target)
            pairs.append((str(target), kinds["tr_sharpen"]))
    print(f"re-framings: {len(by_photo)} natural training photos, {len(pairs)} unedited rows")
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--natural", type=Path, required=True, help="make_variants.py's output folder")
    ap.add_argument("--clive", type=Path, default=Path("../shared/data/clive-dev/mos.csv"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    # absolute paths in the tables: a pair CSV's relative paths are read from its own folder (read_pairs_csv)
    args.natural, args.clive, args.out = args.natural.resolve(), args.clive.resolve(), args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.natural / "natural_train110x_pairs.csv", newline="") as fh:
        base = [(str(args.natural / r["better"]), str(args.natural / r["worse"])) for r in csv.DictReader(fh)]
    clive = clive_pairs(args.clive, args.out)
    reframe = reframe_pairs(args.natural, args.out)
    for name, pairs in (("D1", base + clive), ("D2", base + clive + reframe), ("D3", base + reframe)):
        write_bytes_atomic(args.out / f"{name}_pairs.csv", csv_bytes(["better", "worse"], pairs))
        print(f"{name}: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
