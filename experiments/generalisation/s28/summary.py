"""The stop-28 table: medians over the splits run and paired counts against the reference (ours; issue 20).

    python experiments/generalisation/s28/summary.py runs/s28/late/probe_R.json \
        runs/s28/late/probe_B.json runs/s28/late/probe_A.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

REF = "ridge_frozen"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", type=Path)
    a = ap.parse_args()
    rows: dict[str, dict[int, dict]] = {}  # candidate -> split -> metrics (+ that run's reference)
    for path in a.json:
        for key, row in json.loads(path.read_text()).items():
            m = re.match(r"split(\d+)", key)
            if not m:
                continue
            split = int(m.group(1))
            for name, v in row.items():
                if isinstance(v, dict):
                    rows.setdefault(name, {})[split] = {**v, "ref": row[REF]}
    print("| row | splits | CLIVE median SROCC | BIQ2021-val median SROCC | BIQ vs R (same splits) | "
          "splits BIQ up | splits CLIVE up |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, by in rows.items():
        s = sorted(by)
        c = np.array([by[i]["clive_srocc"] for i in s])
        b = np.array([by[i]["biq_srocc"] for i in s])
        rc = np.array([by[i]["ref"]["clive_srocc"] for i in s])
        rb = np.array([by[i]["ref"]["biq_srocc"] for i in s])
        print(f"| {name} | {len(s)} ({','.join(map(str, s))}) | {np.median(c):.4f} "
              f"(R {np.median(rc):.4f}) | {np.median(b):.4f} (R {np.median(rb):.4f}) | "
              f"{np.median(b) - np.median(rb):+.4f} | {int((b > rb).sum())}/{len(s)} | "
              f"{int((c > rc).sum())}/{len(s)} |")  # fmt: skip


if __name__ == "__main__":
    main()
