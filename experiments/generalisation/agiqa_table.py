"""AGIQA-3k's MOS table for the ridge's extra rows (issue 20, stops 23-26): ``image,mos``.

Why: ``finetune.ridge_extra`` (configs s25/C4.yaml, s26/C4.yaml, s26/D1A.yaml) and the screenings
(``second_dataset.py --agiqa``, ``candidates_s24.py``) read agiqa3k-dev's 1,491 images with their
``mos_quality`` as one ``image,mos`` table. Image paths are written absolute, so the table works from any
folder (a MOS table's relative paths are read from its own folder).

    python experiments/generalisation/agiqa_table.py -o runs/generalisation/s23/agiqa_all.csv
    python experiments/generalisation/agiqa_table.py -o runs/guard26/agiqa_all.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from attiqa.io.atomic import write_bytes_atomic
from attiqa.io.tables import csv_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/agiqa3k-dev"),
                    help="agiqa3k-dev's folder (data.csv, AGIQA-3K/)")  # fmt: skip
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    root = args.data.resolve()
    with open(root / "data.csv", newline="") as fh:
        rows = [(str(root / "AGIQA-3K" / r["name"]), r["mos_quality"]) for r in csv.DictReader(fh)]
    write_bytes_atomic(args.out, csv_bytes(["image", "mos"], rows))
    print(f"{args.out}: {len(rows)} images")


if __name__ == "__main__":
    main()
