"""Where a named model's load memory goes, step by step: resident memory (anonymous and file-backed, from
/proc/PID/status) and wall time after torch, after the imports `attiqa score` holds before a load, after the
imports the load adds, then inside the real ``attiqa.load_scorer`` after reading the checkpoint, building the
network, loading the weights and folding BatchNorm, and after its first forwards.

    python benchmarks/model_load_memory.py [--model attiqa-default] [--threads 1]

The load runs in a fresh child process (each step's cost is what it adds to the steps before), the one
``benchmarks/_common.run_load`` starts (``score_memory.py`` prices a load with it). The steps inside the load
are marked where those functions return, found by name: a tree without one of them (``--against`` an older
checkout) shows fewer steps, never other ones. Figures in docs/default_model.md ("Implementation speed notes",
the memory row).

This file is also the child's program (``--child``): it imports nothing of the benchmarks, so a child run
against another tree (``PYTHONSAFEPATH=1 PYTHONPATH=TREE``) measures only that tree's attiqa.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import time
from pathlib import Path

CHILD_MARK = "model_load_memory:"
FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process in MiB (``{}`` for a process without memory: a zombie);
    OSError when it is gone."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in FIELDS:
                out[key] = int(value.split()[0]) / 1024
    return out


class Steps:
    """Records this process's memory and the time after each step."""

    def __init__(self) -> None:
        self.rows: list[dict] = [
            {"step": "start (interpreter, malloc tuned)", **status(), "t": time.perf_counter()}
        ]

    def __call__(self, name: str) -> None:
        """Mark step ``name`` done; a step's function returning inside another of the same step (an older
        tree's ``load_model`` around ``model_from_checkpoint``) ends it at the outer one's return."""
        row = {"step": name, **status(), "t": time.perf_counter()}
        if self.rows[-1]["step"] == name:
            self.rows[-1] = row
        else:
            self.rows.append(row)


def _read_label(args: tuple, result: tuple) -> str:
    tensors = result[0]
    mib = sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20
    size = Path(args[0]).stat().st_size / 2**20
    return f"read the checkpoint ({size:.1f} MiB file, {mib:.1f} MiB tensors)"


WEIGHTS_STEP = "load the weights"  # load_model's (before session 53), model_from_checkpoint's (the scorer's)

# (module, function, step): marked inside the real load where the function returns
PROBES = (
    ("attiqa.io.checkpoints", "load_checkpoint", _read_label),
    ("attiqa.io.checkpoints", "load_checkpoint_hashed", _read_label),  # the scorer's read (session 53)
    ("attiqa.models.attiqa_model", "build_model_from_config", "build the network (random initial weights)"),
    ("attiqa.models.attiqa_model", "load_model", WEIGHTS_STEP),
    ("attiqa.models.attiqa_model", "model_from_checkpoint", WEIGHTS_STEP),
    ("attiqa.models.fold", "fold_batchnorm", "fold BatchNorm"),
)


def _probe(step: Steps) -> None:
    """Wrap each PROBES function wherever an attiqa module holds it, so ``step`` runs when it returns."""
    for module, name, label in PROBES:
        try:
            original = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue

        @functools.wraps(original)
        def marked(*args, _f=original, _label=label, **kwargs):
            result = _f(*args, **kwargs)
            step(_label if isinstance(_label, str) else _label(args, result))
            return result

        for mod in [m for n, m in sys.modules.items() if n.startswith("attiqa")]:
            for attr, value in list(vars(mod).items()):
                if value is original:
                    setattr(mod, attr, marked)


def measure(model: str, threads: int | None, forwards: int) -> dict:
    """Load ``model`` with ``attiqa.load_scorer`` in this process step by step, then ``forwards`` forwards."""
    from attiqa.allocator import tune_allocator

    tune_allocator()  # as the command lines do
    step = Steps()
    import torch

    if threads:
        torch.set_num_threads(threads)
    step("import torch")
    import attiqa.interface
    import attiqa.io.checkpoints
    import attiqa.scoring  # noqa: F401  (what `attiqa score` holds before it loads a model)

    step("attiqa.scoring, attiqa.interface, checkpoints")
    import attiqa.models
    import attiqa.scorers  # noqa: F401

    step("attiqa.models, attiqa.scorers")
    _probe(step)
    scorer = attiqa.load_scorer(model)
    step("attiqa.load_scorer returned (the scorer around the network)")
    loaded = {"seconds": time.perf_counter() - step.rows[0]["t"], "peak": step.rows[-1]["VmHWM"]}
    net = getattr(scorer, "model", None)
    if forwards and net is not None:
        x = torch.rand(1, 3, 320, 320).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            for k in range(forwards):
                net(x)
                step(f"forward {k + 1}, 1 crop of 320 px")
    t0 = step.rows[0]["t"]
    rows = [{**{k: v for k, v in r.items() if k != "t"}, "seconds": r["t"] - t0} for r in step.rows]
    return {"steps": rows, "loaded": loaded, "peak": status()["VmHWM"]}


def print_steps(steps: list[dict], peak: float) -> None:
    print(f"{'step':<62} {'RSS':>6} {'+RSS':>6} {'+anon':>6} {'+file':>6} {'s':>6}  (MiB)")
    for prev, now in zip(steps, steps[1:], strict=False):
        d = {k: now[k] - prev[k] for k in FIELDS}
        print(
            f"{now['step']:<62} {now['VmRSS']:6.0f} {d['VmRSS']:+6.0f} {d['RssAnon']:+6.0f} "
            f"{d['RssFile']:+6.0f} {now['seconds'] - prev['seconds']:6.2f}"
        )
    print(f"peak RSS {peak:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="attiqa-default", help="a named ATTIQA model (`attiqa models`)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--forwards", type=int, default=2, help="1-crop forwards after the load")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # run_load's child: one JSON line after the mark
        print(CHILD_MARK + json.dumps(measure(args.model, args.threads, args.forwards)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import run_load

    load = run_load(args.model, {}, threads=args.threads, forwards=args.forwards)
    print_steps(load.steps, load.peak_after)
    print(f"child: {load.seconds:.2f} s start to exit; peak RSS when loaded {load.peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
