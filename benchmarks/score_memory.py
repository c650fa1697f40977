"""`attiqa score`'s peak memory and speed with the crops run through the network a few at a time (the CPU
default, ``attiqa.scorers.attiqa_scorer.CPU_CHUNK``) against the whole batch at once (``ATTIQA_CHUNK=0``).

Each side is the real command in its own process, alternating over ``--rounds`` so both see the same machine
load (``_common.interleaved``); wall time includes start-up, as a user sees it. Printed: images/s (best of
rounds and the median per-round ratio), each side's peak RSS (the command; its decode worker apart), CPU time
per photo (steadier than wall time on a shared machine) and the largest MOS difference between the two
sides' outputs (float rounding: a pass's size picks the kernels and the statistics' blocks).

    python benchmarks/score_memory.py [--n 48] [--root ../shared/data/clive-dev/images] [--chunk N]

Figures in docs/default_model.md ("Implementation speed notes").
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, photo_folder, run_score  # noqa: E402

from attiqa.io.images import discover_images  # noqa: E402


def first_images(root: Path, n: int) -> Path:
    """A folder of links to the first ``n`` images under ``root`` (in discovery order)."""
    d = Path(tempfile.mkdtemp(prefix="attiqa-mem-"))
    for i, p in enumerate(discover_images([root])[:n]):
        (d / f"{i:04d}{p.suffix}").symlink_to(p.resolve())
    return d


def mos_column(path: Path) -> dict[str, float]:
    with open(path, newline="") as fh:
        return {r["image"]: float(r["mos"]) for r in csv.DictReader(fh)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=48, help="number of photos")
    ap.add_argument("--root", type=Path, help="take the first --n photos of this folder (default: generated)")
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--batch-size", type=int, default=16, help="attiqa score --batch-size (default 16)")
    ap.add_argument("--chunk", type=int, help="crops per pass, chunked side (default CPU_CHUNK)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    folder = first_images(args.root, args.n) if args.root else photo_folder(args.n)
    n = len(discover_images([folder]))
    out_dir = Path(tempfile.mkdtemp(prefix="attiqa-mem-out-"))
    sides = {"whole": {"ATTIQA_CHUNK": "0"}, "chunked": {}}
    if args.chunk is not None:
        sides["chunked"] = {"ATTIQA_CHUNK": str(args.chunk)}
    peaks: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    cpu_ms: dict[str, list[float]] = {side: [] for side in sides}

    def rate(side: str) -> float:
        seconds, rss, worker, cpu = run_score(
            folder, args.model, out_dir / f"{side}.csv", sides[side], ("-b", str(args.batch_size), "-q")
        )
        peaks[side].append((rss, worker))
        cpu_ms[side].append(1000 * cpu / n)
        return n / seconds

    best, per_round = interleaved(args.rounds, **{side: (lambda s=side: rate(s)) for side in sides})
    whole, chunked = mos_column(out_dir / "whole.csv"), mos_column(out_dir / "chunked.csv")
    diff = max(abs(whole[k] - chunked[k]) for k in whole)
    print(f"{n} photos, model {args.model}, batch {args.batch_size}, {args.rounds} alternating rounds, "
          "`attiqa score` start to end")  # fmt: skip
    for side, label in (("whole", "whole batch (ATTIQA_CHUNK=0)"), ("chunked", "chunked (default)")):
        rss = ", ".join(f"{p:.0f}" for p, _ in peaks[side])
        work = ", ".join(f"{w:.0f}" for _, w in peaks[side])
        print(f"  {label:30s}: {best[side]:5.2f} images/s  peak RSS {rss} MiB (worker {work})")
        print(f"  {'':30s}  CPU ms per photo (all processes) {', '.join(f'{c:.0f}' for c in cpu_ms[side])}")
    print(f"speed, chunked / whole, best of rounds : {best['chunked'] / best['whole']:.2f}x")
    print(f"speed, chunked / whole, median per round: {per_round['chunked']:.2f}x")
    top = [max(p for p, _ in peaks[s]) for s in ("chunked", "whole")]
    print(f"peak RSS, chunked / whole (max of rounds): {top[0] / top[1]:.2f}x")
    print(f"largest MOS difference, chunked vs whole : {diff:.2g}")


if __name__ == "__main__":
    main()
