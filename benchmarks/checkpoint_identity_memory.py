"""Peak memory of a checkpoint's identity and of a scorer's load that hashes it, against a plain safetensors
load of the same file measured in the same run: each in a fresh child process, its peak resident memory
(VmHWM) above what it held after its imports, as a ratio to the plain load's.

    python benchmarks/checkpoint_identity_memory.py [--mib 256] [--half 0.25] [--against TREE]

Each child reads every value it loaded (a mapped file's pages count once touched, as a network's load
touches them). The checkpoint is written once to a temporary folder: ``--mib`` of tensors, ``--half`` of
them fp16 (as `attiqa export` stores weights). ``--against TREE`` runs the same children on another
checkout (a tree without ``load_checkpoint_hashed``: its scorer's way, ``load_checkpoint`` then
``checkpoint_hashes``). Figures in docs/robustness.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys

import torch  # noqa: F401 (held before the baseline, as `attiqa score` holds it)
import safetensors.torch
import attiqa.io.checkpoints as ck


def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024


how, path = sys.argv[1], sys.argv[2]
base = status("VmRSS")
if how == "plain safetensors load (safetensors.torch.load_file)":
    out = safetensors.torch.load_file(path)
elif how == "load_checkpoint (the loader without hashes)":
    out = ck.load_checkpoint(path)
elif how == "identity only (checkpoint_hashes)":
    out = ck.checkpoint_hashes(path)
elif not hasattr(ck, "load_checkpoint_hashed"):  # a tree before it: the load, then the identity's reading
    out = (ck.load_checkpoint(path)[0], ck.checkpoint_hashes(path))
else:
    out = ck.load_checkpoint_hashed(path)
tensors = out if isinstance(out, dict) else out[0] if isinstance(out, tuple) else {}
for t in tensors.values():  # every value in memory, as a network loading them reads them
    float(t.float().sum())
print(status("VmHWM") - base)
"""

HOWS = (
    "plain safetensors load (safetensors.torch.load_file)",
    "load_checkpoint (the loader without hashes)",
    "identity only (checkpoint_hashes)",
    "scorer's load + identity (load_checkpoint_hashed)",
)


def write_checkpoint(folder: Path, mib: int, half: float) -> Path:
    import torch

    from attiqa.io.checkpoints import save_checkpoint

    n = mib * 2**20 // 4 // 8  # 8 fp32 tensors of this many values make ``mib``
    torch.manual_seed(0)
    tensors = {f"layer{i}.weight": torch.randn(n) for i in range(8)}
    for i in range(round(8 * half)):  # stored fp16 (half the bytes), loaded as float32
        tensors[f"layer{i}.weight"] = tensors[f"layer{i}.weight"].half()
    return save_checkpoint(folder / "big.safetensors", tensors, {"name": "big"})


def peak(tree: Path, how: str, path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    cmd = [sys.executable, "-c", CHILD, how, str(path)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    return res.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--half", type=float, default=0.25)
    ap.add_argument("--against", type=Path, help="another checkout to measure the same way")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    trees = {"this tree": here, **({"against": args.against.resolve()} if args.against else {})}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_checkpoint(Path(tmp), args.mib, args.half)
        size = path.stat().st_size / 2**20
        print(f"checkpoint: {size:.0f} MiB file ({args.half:.0%} of its tensors fp16)")
        for label, tree in trees.items():
            plain = float(peak(tree, HOWS[0], path))
            print(f"\n{label} ({tree})")
            for how in HOWS:
                got = plain if how == HOWS[0] else peak(tree, how, path)
                mib = float(got)
                print(f"  {how:<52} {mib:7.0f} MiB peak  {mib / plain:4.2f}x the plain load")


if __name__ == "__main__":
    main()
