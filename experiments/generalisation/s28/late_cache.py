"""Cache the input of Lite0's ``blocks[START]`` for the five crops of every photo of MOS CSVs (ours).

Issue 20, stop 28 (``decision_rule_s28.txt``): ``experiments/agiqa3k/late_cache.py`` generalised to any
``image,mos`` CSV (clive-dev, BIQ2021-val). Per photo the product's view (shorter edge 500, five 320-px crops)
runs through the frozen stem + ``blocks[:START]`` once; the input of ``blocks[START]`` is stored as fp16 in a
memory-mapped array (N, 5, 80, 20, 20 for START 4), and the depthwise statistics of the early taps (the
columns of the product's 19,200 that the late stages never change) as float32 (N, 5, D_early), so the late
scripts can rebuild the product's statistics without running the early stages again. Resumable (chunks,
``done`` mask written atomically). The machinery is ``experiments/late_stages.py``.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/generalisation/s28/late_cache.py \
        ../shared/data/clive-dev/mos.csv --out runs/s28/late/clive
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from late_stages import cache_block_input  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="image,mos CSV (paths relative to it or absolute)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--start", type=int, default=4, help="cache the input of blocks[START]")
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cache_block_input(a.csv, a.out, a.start, a.chunk, early_stats=True, unit="photos")


if __name__ == "__main__":
    main()
