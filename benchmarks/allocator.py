"""`attiqa score` with malloc tuned for tensor work (the command lines' default) against glibc's defaults.

Each side is the real command in its own process (``ATTIQA_MALLOC=system`` for the baseline), alternating
over ``--rounds`` so both see the same machine load; wall time includes start-up, as a user sees it. Also
prints each side's peak resident memory (the price: freed pages stay with the process).

    python benchmarks/allocator.py [--n 48] [--root ../shared/data/clive-dev/images] [--model attiqa-default]

See :mod:`attiqa.allocator` for why; figures in docs/default_model.md ("Implementation speed notes").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, photo_folder, run_score  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.io.images import discover_images  # noqa: E402


def score_rate(folder: Path, n: int, model: str, malloc: str, out: Path, peak: dict[str, float]) -> float:
    """Images/s of one ``attiqa score`` process; its peak RSS (MiB) kept in ``peak[malloc]`` (the max)."""
    seconds, rss, _, _ = run_score(folder, model, out, {"ATTIQA_MALLOC": malloc})
    peak[malloc] = max(peak.get(malloc, 0.0), rss)
    return n / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=48, help="number of generated photos (without --root)")
    ap.add_argument("--root", type=Path, help="a folder of photos instead of generated ones")
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    folder = args.root or photo_folder(args.n)
    n = len(discover_images([folder]))
    out_dir = Path(tempfile.mkdtemp(prefix="attiqa-alloc-"))
    peak: dict[str, float] = {}
    best, per_round = interleaved(
        args.rounds,
        system=lambda: score_rate(folder, n, args.model, "system", out_dir / "system.csv", peak),
        tuned=lambda: score_rate(folder, n, args.model, "tuned", out_dir / "tuned.csv", peak),
    )
    print(f"{n} photos, model {args.model}, {args.rounds} alternating rounds, `attiqa score` start to end")
    for side, label in (("system", "glibc defaults (ATTIQA_MALLOC=system)"), ("tuned", "tuned (default)")):
        print(f"  {label:40s}: {best[side]:6.2f} images/s  peak RSS {peak[side]:7.0f} MiB")
    print(f"speed-up, best of rounds      : {best['tuned'] / best['system']:.2f}x")
    print(f"speed-up, median per round    : {per_round['tuned']:.2f}x")
    print(f"peak memory, tuned / system   : {peak['tuned'] / peak['system']:.2f}x")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
