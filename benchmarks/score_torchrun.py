"""`attiqa score` (or `attiqa eval`) in one process against the same command under
`torchrun --nproc_per_node N`, start to end.

On a GPU machine each torchrun process drives its own GPU. On a CPU the question is whether N processes of
1 torch thread each (torchrun's default OMP_NUM_THREADS=1) score faster than one process using every core
through intra-op threads. Both sides are the real commands (interpreter start, model load, decode workers,
the output file) on the same photos, in alternating rounds, so the printed ratio holds on a noisy machine.

    python benchmarks/score_torchrun.py [--root PHOTOS] [--n 48] [--model attiqa-default] [--nproc 2]
        [--command score|eval]   # eval: a folder dataset of these photos (made-up MOS), no score cache
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import first_photos, interleaved, run_score  # noqa: E402

from attiqa.cli import run_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", help="a folder of photos (default: generated 512-px JPEGs)")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--command", choices=("score", "eval"), default="score")
    args = ap.parse_args()
    photos = first_photos(args.root, args.n)
    folder = Path(tempfile.mkdtemp(prefix="attiqa-torchrun-"))
    for p in photos:  # exactly these photos, whatever else the folder holds
        (folder / p.name).symlink_to(p.resolve())
    if args.command == "eval":  # the folder adapter's CSV; the MOS values only need to vary
        rows = "".join(f"{p.name},{1 + i % 5}\n" for i, p in enumerate(photos))
        (folder / "mos.csv").write_text("image,mos\n" + rows)
    out = folder.parent / f"{folder.name}{'.csv' if args.command == 'score' else '-eval'}"
    torchrun = ("torch.distributed.run", "--standalone", "--nproc_per_node", str(args.nproc))

    def rate(launcher: tuple[str, ...] = ()) -> float:
        seconds = run_score(folder, args.model, out, {}, ("-q",), launcher, args.command)[0]
        return len(photos) / seconds

    best, per_round = interleaved(args.rounds, one=rate, torchrun=lambda: rate(torchrun))
    what = "CSV" if args.command == "score" else "metrics, predictions, plot"
    print(f"attiqa {args.command}: {len(photos)} photos, {args.model}, start to end (interpreter, model "
          f"load, decode, {what})")  # fmt: skip
    print(f"one process (torch's threads)      : {best['one']:6.2f} images/s")
    print(f"torchrun, {args.nproc} processes x 1 thread : {best['torchrun']:6.2f} images/s")
    ratio = best["torchrun"] / best["one"]
    print(f"ratio torchrun / one process       : {ratio:6.2f} (best of {args.rounds} each)")
    print(f"median per-round ratio             : {per_round['torchrun']:6.2f}")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
