"""Cache the frozen early part's activations of every AGIQA-3k image once (ours; for late-stage fine-tuning).

Issue 15: end-to-end fine-tuning does not fit this CPU, but the late stages of EfficientNet-Lite0 are cheap
(measured: blocks 5-6 + head conv, forward and backward on 16 crops of 320 px, 0.74 s on one core; the early
part's forward alone 1.25 s). So the input of ``blocks[START]`` (default 4: stage 5's input, 80 channels at
1/16 of the crop = 20×20) of the product's view (shorter edge 500, five 320-px crops) is stored once per image
as fp16 in a memory-mapped array; ``late_finetune.py`` then trains the stages after it without ever running
the early ones again. Resumable: chunks of 32 images, a ``done`` mask written atomically after each. The
machinery is ``experiments/late_stages.py`` (shared with ``generalisation/s28/late_cache.py``).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/agiqa3k/late_cache.py ../shared/data/agiqa3k-dev
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from cache_features import write_csv  # noqa: E402
from late_stages import cache_block_input  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/late"))
    ap.add_argument("--start", type=int, default=4, help="cache the input of blocks[START]")
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    csv = write_csv(a.root, a.out / "all.csv")
    cache_block_input(csv, a.out, a.start, a.chunk, early_stats=False, unit="images")


if __name__ == "__main__":
    main()
