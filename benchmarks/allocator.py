"""`attiqa score` with malloc tuned for tensor work (the command lines' default) against glibc's defaults.

Each side is the real command in its own process (``ATTIQA_MALLOC=system`` for the baseline), alternating
over ``--rounds`` so both see the same machine load; wall time includes start-up, as a user sees it. Also
prints each side's peak resident memory (the price: freed pages stay with the process).

    python benchmarks/allocator.py [--n 48] [--root ../shared/data/clive-dev/images] [--model attiqa-default]

See :mod:`attiqa.allocator` for why; figures in docs/default_model.md ("Implementation speed notes").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import photo_folder  # noqa: E402

from attiqa.io.images import discover_images  # noqa: E402


def run_score(folder: Path, model: str, malloc: str, out: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one ``attiqa score`` process."""
    for stale in out.parent.glob(f"*{out.name}*"):
        stale.unlink()
    env = {**os.environ, "ATTIQA_MALLOC": malloc}
    cmd = [sys.executable, "-m", "attiqa.cli", "score", str(folder), "-m", model, "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"attiqa score failed ({malloc}):\n{err}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


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
    runs: dict[str, list[tuple[float, float]]] = {"system": [], "tuned": []}
    for _ in range(max(1, args.rounds)):
        for side in runs:
            runs[side].append(run_score(folder, args.model, side, out_dir / f"{side}.csv"))
    rounds = len(runs["system"])
    print(f"{n} photos, model {args.model}, {rounds} alternating rounds, `attiqa score` start to end")
    for side, label in (("system", "glibc defaults (ATTIQA_MALLOC=system)"), ("tuned", "tuned (default)")):
        best = min(s for s, _ in runs[side])
        rss = max(r for _, r in runs[side])
        print(f"  {label:40s}: {n / best:6.2f} images/s  peak RSS {rss:7.0f} MiB")
    speed = [s0 / s1 for (s0, _), (s1, _) in zip(runs["system"], runs["tuned"], strict=True)]
    best_sys = min(s for s, _ in runs["system"])
    best_tuned = min(s for s, _ in runs["tuned"])
    print(f"speed-up, best of rounds      : {best_sys / best_tuned:.2f}x")
    print(f"speed-up, median per round    : {statistics.median(speed):.2f}x")
    rss_ratio = max(r for _, r in runs["tuned"]) / max(r for _, r in runs["system"])
    print(f"peak memory, tuned / system   : {rss_ratio:.2f}x")


if __name__ == "__main__":
    main()
