"""A one-shot `attiqa score` / `attiqa eval` run, end to end, of two source trees alternated (session 37).

    python experiments/speed/oneshot_cli_s37.py --base TREE_A --cand TREE_B [--pairs 5] [--command eval]

Each run is the real command in a child process (``benchmarks/_common.run_score``: 48 generated 512-px
JPEGs, ``-m attiqa-default``, torch's default threads and decode workers), with ``PYTHONPATH`` set to the
tree; the pairs alternate which tree goes first. Prints each pair's seconds and the median of cand / base.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import photo_folder, run_score  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--cand", required=True)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--command", default="score", choices=["score", "eval"])
    ap.add_argument("--model", default="attiqa-default")
    args = ap.parse_args()
    folder = photo_folder(48)
    rows = [f"{p.name},{i % 7}" for i, p in enumerate(sorted(folder.glob("*.jpg")))]
    (folder / "mos.csv").write_text("image,mos\n" + "\n".join(rows) + "\n")
    out_dir = Path(tempfile.mkdtemp(prefix="attiqa-oneshot-"))
    out = out_dir / ("scores.csv" if args.command == "score" else "ev")
    ratios = []
    for pair in range(args.pairs):
        order = ["base", "cand"] if pair % 2 == 0 else ["cand", "base"]
        secs = {}
        for arm in order:
            env = {"PYTHONPATH": getattr(args, arm)}
            secs[arm] = run_score(folder, args.model, out, env, ("-q",), command=args.command)[0]
        ratios.append(secs["cand"] / secs["base"])
        first = " then ".join(order)
        print(f"pair {pair + 1} ({first}): base {secs['base']:.2f} s, cand {secs['cand']:.2f} s, "
              f"cand/base {ratios[-1]:.3f}", flush=True)  # fmt: skip
    print(f"median cand/base: {statistics.median(ratios):.3f} over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
