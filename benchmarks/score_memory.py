"""`attiqa score`'s peak memory and speed with the crops run through the network a few at a time (the CPU
default, ``attiqa.scorers.attiqa_scorer.CPU_CHUNK``) against the whole batch at once (``ATTIQA_CHUNK=0``);
or, with ``--against PATH``, this tree's code against the code at PATH (e.g. a checkout of main; each side
run with its tree on PYTHONPATH), both at the default chunk, plus the time and peak RSS of loading the
model alone (``attiqa.load_scorer`` in a fresh process: what every start pays).

Each side is the real command in its own process, alternating over ``--rounds`` so both see the same machine
load (``_common.interleaved``); wall time includes start-up, as a user sees it. Printed: images/s (best of
rounds and the median per-round ratio), each side's peak RSS (the command; its decode worker apart, "not
measured" when none was seen alive: on a CPU whose cores torch's threads take, none is forked), CPU time
per photo (steadier than wall time on a shared machine) and the largest MOS difference between the two
sides' outputs (float rounding: a pass's size picks the kernels and the statistics' blocks).

    python benchmarks/score_memory.py [--n 48] [--root ../shared/data/clive-dev/images] [--chunk N]
    python benchmarks/score_memory.py --against ../main [--n 4] [--model attiqa-default]

Figures in docs/default_model.md ("Implementation speed notes").
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, photo_folder, run_load, run_score  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
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
    ap.add_argument("--against", type=Path, help="compare with the code at this path instead of chunk sizes")
    args = ap.parse_args()

    folder = first_images(args.root, args.n) if args.root else photo_folder(args.n)
    n = len(discover_images([folder]))
    out_dir = Path(tempfile.mkdtemp(prefix="attiqa-mem-out-"))
    sides: dict[str, dict[str, str]] = {"whole": {"ATTIQA_CHUNK": "0"}, "chunked": {}}
    labels = {"whole": "whole batch (ATTIQA_CHUNK=0)", "chunked": "chunked (default)"}
    if args.chunk is not None:
        sides["chunked"] = {"ATTIQA_CHUNK": str(args.chunk)}
    if args.against is not None:
        here = str(Path(__file__).resolve().parents[1])
        # PYTHONSAFEPATH (3.11+): the children must not import the current folder's attiqa before PYTHONPATH's
        safe = {"PYTHONSAFEPATH": "1"}
        old = str(args.against.resolve())
        sides = {"old": {**safe, "PYTHONPATH": old}, "new": {**safe, "PYTHONPATH": here}}
        labels = {"old": f"code at {args.against}", "new": "this tree"}
    (base, other), loads = sides, {side: list[tuple[float, float]]() for side in sides}
    peaks: dict[str, list[tuple[float, float | None]]] = {side: [] for side in sides}
    cpu_ms: dict[str, list[float]] = {side: [] for side in sides}

    def rate(side: str) -> float:
        seconds, rss, worker, cpu = run_score(
            folder, args.model, out_dir / f"{side}.csv", sides[side], ("-b", str(args.batch_size), "-q")
        )
        peaks[side].append((rss, worker))
        cpu_ms[side].append(1000 * cpu / n)
        return n / seconds

    def load_rate(side: str) -> float:
        load = run_load(args.model, sides[side])
        loads[side].append((load.seconds, load.peak_mib))
        return 1 / load.seconds

    if args.against is not None:
        load_best, load_round = interleaved(args.rounds, **{s: (lambda s=s: load_rate(s)) for s in sides})
    best, per_round = interleaved(args.rounds, **{side: (lambda s=side: rate(s)) for side in sides})
    first, second = mos_column(out_dir / f"{base}.csv"), mos_column(out_dir / f"{other}.csv")
    diff = max(abs(first[k] - second[k]) for k in first)
    print(f"{n} photos, model {args.model}, batch {args.batch_size}, {args.rounds} alternating rounds, "
          "`attiqa score` start to end")  # fmt: skip
    for side in sides:
        rss = ", ".join(f"{p:.0f}" for p, _ in peaks[side])
        work = ", ".join("not measured" if w is None else f"{w:.0f} MiB" for _, w in peaks[side])
        print(f"  {labels[side]:30s}: {best[side]:5.2f} images/s  peak RSS {rss} MiB (decode worker {work})")
        print(f"  {'':30s}  CPU ms per photo (all processes) {', '.join(f'{c:.0f}' for c in cpu_ms[side])}")
        if loads[side]:
            times = ", ".join(f"{t:.2f}" for t, _ in loads[side])
            top_load = max(r for _, r in loads[side])
            print(f"  {'':30s}  load the model alone: {times} s, peak RSS {top_load:.0f} MiB")
    print(f"speed, {other} / {base}, best of rounds : {best[other] / best[base]:.2f}x")
    print(f"speed, {other} / {base}, median per round: {per_round[other]:.2f}x")
    top = [max(p for p, _ in peaks[s]) for s in (other, base)]
    print(f"peak RSS, {other} / {base} (max of rounds): {top[0] / top[1]:.2f}x")
    if args.against is not None:
        load_rss = [max(r for _, r in loads[s]) for s in (other, base)]
        load = load_best[base] / load_best[other]  # a time ratio: the rates are 1 / seconds
        median = 1 / load_round[other]
        print(f"model load time, {other} / {base}: {load:.2f}x best of rounds, {median:.2f}x median")
        print(f"model load peak RSS, {other} / {base}: {load_rss[0] / load_rss[1]:.2f}x")
    print(f"largest MOS difference, {other} vs {base} : {diff:.2g}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
