"""Where `attiqa eval`'s time goes next to the bare backbone, counted (session 36).

    python experiments/speed/eval_count_s36.py --root ../shared/data/agiqa3k-dev [--n 48] [--rounds 3]

As ``benchmarks/eval_throughput.py`` (the same images, model, batch 16, one decode worker), in one process;
per round: the bare forward and the whole model on pre-decoded tensors, then ``evaluate`` with its parts
timed — the model calls (``score_tensors``: wall, this process's minor page faults), the wait for decoded
batches, the outputs (metrics, CSV/JSON/PNG) — and ``getrusage`` of this process and of the reaped decode
worker (CPU, minor faults). Then the worker's stages, in this process at one torch thread as in a worker:
decode, resize, normalisation + crops, stacking.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import forward_rate  # noqa: E402
from eval_throughput import dataset  # noqa: E402

import attiqa.evaluation.evaluate as ev  # noqa: E402
from attiqa.io.batching import stack_batch  # noqa: E402
from attiqa.io.images import load_image  # noqa: E402
from attiqa.scorers import load_scorer  # noqa: E402
from attiqa.scoring import score_paths  # noqa: E402


def usage(who: int) -> tuple[float, int]:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime, r.ru_minflt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--model", default="attiqa-agiqa3k")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    ds, paths = dataset(argparse.Namespace(root=args.root, n=args.n))
    scorer = load_scorer(args.model)
    out = Path(tempfile.mkdtemp(prefix="attiqa-evalcount-"))
    score_paths(paths[: args.batch_size], scorer, args.batch_size, num_workers=0)  # as the benchmark
    tensors = [scorer.transform(load_image(p, min_shorter=scorer.info.min_shorter)) for p in paths]
    bs = args.batch_size
    batches = [torch.stack(tensors[i : i + bs]) for i in range(0, len(tensors), bs)]
    net = scorer.model.backbone
    n = len(paths)

    acc: dict[str, float] = {}
    inner = scorer.score_tensors

    def timed_score(batch: torch.Tensor) -> torch.Tensor:
        t0, (c0, f0) = time.perf_counter(), usage(resource.RUSAGE_SELF)
        got = inner(batch)
        c1, f1 = usage(resource.RUSAGE_SELF)
        acc["model_s"] += time.perf_counter() - t0
        acc["model_cpu"] += c1 - c0
        acc["model_faults"] += f1 - f0
        acc.setdefault("first_faults", f1 - f0)
        return got

    def timed(fn: Any, key: str) -> Any:
        """``fn`` with its wall time added to ``acc[key]``."""

        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            got = fn(*a, **k)
            acc[key] += time.perf_counter() - t0
            return got

        return wrapper

    scorer.score_tensors = timed_score  # type: ignore[method-assign]
    ev.write_outputs = timed(ev.write_outputs, "write_s")
    ev.score_items = timed(ev.score_items, "items_s")

    def whole() -> tuple[float, int]:
        f0 = usage(resource.RUSAGE_SELF)[1]
        with torch.inference_mode():
            t0 = time.perf_counter()
            for b in batches:
                inner(b)
            sec = time.perf_counter() - t0
        return n / sec, usage(resource.RUSAGE_SELF)[1] - f0

    print(f"{n} images, {args.model}, batch {bs}, 1 decode worker, torch threads {torch.get_num_threads()}")
    rows = []
    for r in range(args.rounds):
        load0 = os.getloadavg()[0]
        f0 = usage(resource.RUSAGE_SELF)[1]
        bare = forward_rate(net, batches)
        bare_faults = usage(resource.RUSAGE_SELF)[1] - f0
        full, full_faults = whole()
        acc.clear()
        acc.update(model_s=0.0, model_cpu=0.0, model_faults=0, write_s=0.0, items_s=0.0)
        (c0, f0), (k0, g0) = usage(resource.RUSAGE_SELF), usage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        ev.evaluate(ds, scorer, out, batch_size=bs, num_workers=1, cache=False, progress=False)
        sec = time.perf_counter() - t0
        (c1, f1), (k1, g1) = usage(resource.RUSAGE_SELF), usage(resource.RUSAGE_CHILDREN)
        row = {
            "bare": bare, "full": full, "e2e": n / sec, "sec": sec,
            "model_s": acc["model_s"], "wait_s": acc["items_s"] - acc["model_s"], "write_s": acc["write_s"],
            "rest_s": sec - acc["items_s"] - acc["write_s"], "main_cpu": c1 - c0,
            "model_cpu": acc["model_cpu"], "main_faults": f1 - f0, "model_faults": acc["model_faults"],
            "first_faults": acc["first_faults"], "bare_faults": bare_faults, "full_faults": full_faults,
            "worker_cpu_ms": (k1 - k0) / n * 1e3, "worker_faults": g1 - g0,
        }  # fmt: skip
        rows.append(row)
        print(
            f"round {r} (load {load0:.1f}-{os.getloadavg()[0]:.1f}): bare {bare:.2f}/s, "
            f"whole model {full:.2f}/s, "
            f"eval {n / sec:.2f}/s = {n / sec / bare:.3f} of bare, {n / sec / full:.3f} of whole model\n"
            f"  eval {sec:.2f} s: model calls {acc['model_s']:.2f} s "
            f"(whole model on ready tensors would take "
            f"{n / full:.2f} s), waiting for batches {row['wait_s']:.2f} s, outputs {acc['write_s']:.2f} s, "
            f"the rest (checks, metrics) {row['rest_s']:.2f} s\n"
            f"  main process: CPU {c1 - c0:.2f} s (model calls {acc['model_cpu']:.2f}), "
            f"minor faults {f1 - f0} "
            f"(during model calls {acc['model_faults']}, first call {acc['first_faults']}; bare run "
            f"{bare_faults}, whole model run {full_faults})\n"
            f"  decode worker: CPU {row['worker_cpu_ms']:.1f} ms per image, minor faults {g1 - g0}",
            flush=True,
        )
    parts = ("model_s", "wait_s", "write_s", "rest_s", "sec")
    med = {k: statistics.median(rw[k] for rw in rows) for k in parts}
    print("median seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))

    # the worker's stages, at one torch thread as in a DataLoader worker
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tf = scorer._transform  # noqa: SLF001 - the experiment prices the scorer's own view
    stage = {"decode": [], "resize": [], "normalise+crops": [], "stack": []}
    for _ in range(3):
        t = {k: 0.0 for k in stage}
        outs = []
        for p in paths:
            t0 = time.thread_time()
            img = load_image(p, min_shorter=scorer.info.min_shorter)
            t1 = time.thread_time()
            small = tf._resized(img)  # noqa: SLF001
            t2 = time.thread_time()
            outs.append(tf(small))  # resize is a no-op now: normalisation and crops
            t3 = time.thread_time()
            t["decode"] += t1 - t0
            t["resize"] += t2 - t1
            t["normalise+crops"] += t3 - t2
        t0 = time.thread_time()
        for i in range(0, n, bs):
            stack_batch(outs[i : i + bs])
        t["stack"] = time.thread_time() - t0
        for k, v in t.items():
            stage[k].append(v / n * 1e3)
    torch.set_num_threads(threads)
    print("worker stages, ms per image (thread time, 1 torch thread, best of 3): "
          + ", ".join(f"{k} {min(v):.1f}" for k, v in stage.items()))  # fmt: skip


if __name__ == "__main__":
    main()
