"""`attiqa eval` of the same images, base and one candidate strictly alternated in ONE process (session 61;
rule: experiments/speed/eval_rule_s61.md, figures: eval_results_s61.md).

    PYTHONPATH=$PWD python experiments/speed/eval_ab_s61.py --candidate none --pairs 4
    PYTHONPATH=$PWD python experiments/speed/eval_ab_s61.py --candidate avx512 --kernel OTHER_BUILD.so

A pair = one full ``evaluate`` call (score cache off, outputs and the PNG written) of the base, then one of
the candidate, with nothing between the calls (a bare forward between pairs favoured the call after it: the
A/A control ``none`` won 3 of 4 pairs by 9-12 % so); ``os.getloadavg()`` before each pair; the bare
backbone's rate once before and once after the pairs, for the host's speed. Candidates: ``none`` (an A/A
control), ``avx512`` (the loaded statistics kernel swapped for ``--kernel``, another build of
``tapstats_native.c``), and ``ahead`` / ``plot``, which set ``ATTIQA_DECODE_AHEAD`` (threads decoding the next
batch) / ``ATTIQA_PLOT_FAST=1``, read by the candidates' code while it was measured — that code is not on
main (decode ahead was not kept; the cheaper PNG is the only way now), so there they switch nothing. Prints
each pair's images/s, the candidate's over the base's, and whether every score of every row has the same
float64 bits as the base's.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _common import forward_rate  # noqa: E402

from attiqa.datasets import get_dataset  # noqa: E402
from attiqa.evaluation.evaluate import evaluate  # noqa: E402
from attiqa.io.images import load_image  # noqa: E402
from attiqa.models import backbones  # noqa: E402
from attiqa.scorers import load_scorer  # noqa: E402


def bits(rows: list[dict[str, Any]]) -> list[tuple]:
    """Every value of every row, floats as their float64 bit patterns."""
    return [
        tuple((k, struct.pack("<d", v) if isinstance(v, float) else v) for k, v in sorted(r.items()))
        for r in rows
    ]


def load_kernel(path: str) -> Any:
    """A build of tapstats_native.c at ``path`` as a module object (not put in sys.modules)."""
    name = "attiqa.models.tapstats_native"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def switches(args: argparse.Namespace) -> tuple[Callable[[], None], Callable[[], None]]:
    """(to base, to candidate)."""
    if args.candidate == "ahead":
        return (lambda: os.environ.pop("ATTIQA_DECODE_AHEAD", None),
                lambda: os.environ.__setitem__("ATTIQA_DECODE_AHEAD", str(args.ahead_threads)))  # fmt: skip
    if args.candidate == "none":  # an A/A control: both sides the base, to see what the order alone does
        return (lambda: None, lambda: None)
    if args.candidate == "plot":
        return (lambda: os.environ.pop("ATTIQA_PLOT_FAST", None),
                lambda: os.environ.__setitem__("ATTIQA_PLOT_FAST", "1"))  # fmt: skip
    base_kernel = vars(backbones)["_NATIVE"]
    cand_kernel = load_kernel(args.kernel)
    assert base_kernel is not None and cand_kernel.VERSION == base_kernel.VERSION
    return (lambda: vars(backbones).__setitem__("_NATIVE", base_kernel),
            lambda: vars(backbones).__setitem__("_NATIVE", cand_kernel))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", required=True, choices=["ahead", "plot", "avx512", "none"])
    ap.add_argument("--root", default="../shared/data/agiqa3k-dev")
    ap.add_argument("--model", default="attiqa-agiqa3k")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--ahead-threads", type=int, default=2)
    ap.add_argument("--kernel", help="the AVX-512 build of the statistics kernel (--candidate avx512)")
    args = ap.parse_args()

    items = get_dataset("agiqa3k", args.root).items[: args.n]
    csv_dir = Path(tempfile.mkdtemp(prefix="attiqa-evalab-"))
    (csv_dir / "mos.csv").write_text("image,mos\n" + "".join(f"{it.image},{it.mos}\n" for it in items))
    ds = get_dataset("folder", csv_dir, csv=csv_dir / "mos.csv")
    scorer = load_scorer(args.model)
    out = {side: Path(tempfile.mkdtemp(prefix=f"attiqa-evalab-{side}-")) for side in ("base", "cand")}
    to_base, to_cand = switches(args)
    # the bare backbone on the same decoded tensors: how fast the host is during the run (not the rule)
    tensors = [scorer.transform(load_image(it.image, min_shorter=scorer.info.min_shorter)) for it in items]
    batches = [torch.stack(tensors[i : i + args.batch_size]) for i in range(0, len(tensors), args.batch_size)]
    net = scorer.model.backbone

    def run(side: str) -> tuple[float, list[tuple]]:
        t0 = time.perf_counter()
        res = evaluate(ds, scorer, out[side], batch_size=args.batch_size, cache=False, progress=False)
        return len(items) / (time.perf_counter() - t0), bits(res.rows)

    kernel = vars(backbones)["_NATIVE"].variant()
    print(f"{args.candidate}: {args.model}, {len(items)} images of {args.root}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, kernel {kernel}")  # fmt: skip
    to_base()
    _, ref = run("base")  # warm-up of both sides (allocations, matplotlib, thread pools)
    to_cand()
    _, got = run("cand")
    same = got == ref
    to_base()
    print(f"bare backbone before the pairs {forward_rate(net, batches):.2f} images/s", flush=True)
    wins = 0
    for p in range(args.pairs):
        load = os.getloadavg()
        to_base()
        b, got = run("base")
        same &= got == ref
        to_cand()
        c, got = run("cand")
        same &= got == ref
        wins += c > b
        print(f"pair {p + 1} load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}: base {b:.2f}  cand {c:.2f}  "
              f"cand/base {c / b:.3f}  ({'cand' if c > b else 'base'})", flush=True)  # fmt: skip
    to_base()
    print(f"bare backbone after the pairs {forward_rate(net, batches):.2f} images/s")
    print(f"candidate faster in {wins} of {args.pairs} pairs; scores bit for bit the same: {same}")


if __name__ == "__main__":
    main()
