"""Do a guarded checkpoint's cached-path and real-scorer MOS agree, and which tap statistics differ? (stop 26)

Why: D1's figures through ``guard_bench.py`` (the product's cached five-crop prediction) and through the real
scorer differed by 11.8 MOS points an image. For a few images of a variant table this prints both MOS, the
detector g on both paths, the tap statistics' z differences, and how much of g's shift comes from columns
whose spread is below 1e-3 of the median column's (the ones ``fit_guard`` now leaves out).

    python experiments/generalisation/s26/path_check.py runs/guard26/runs/D1/finetune/last.safetensors \
        runs/D1fix/finetune/last.safetensors --table runs/guard26/natural/natural_test.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from guard_bench import table_of  # noqa: E402

import attiqa  # noqa: E402
from attiqa.models import load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--table", type=Path, required=True, help="a make_variants.py table (image,kind,...)")
    ap.add_argument("--kinds", default="original,saturation")
    ap.add_argument("--n", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(args.table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    pick = [i for i, r in enumerate(rows) if r["kind"] in args.kinds.split(",")][: args.n]
    paths = [args.table.parent / rows[i]["image"] for i in pick]
    for ck in args.checkpoints:
        model, _ = load_model(ck)
        model.eval()
        tab = table_of(model, args.table)
        cached = tab.predict(model, pick)
        scorer = attiqa.load_scorer(ck, crops="five")
        got: list[torch.Tensor] = []

        def keep(_m, inp, _out, got=got):
            got.append(inp[0].detach().clone())

        hook = scorer.model.ridge.register_forward_hook(keep)
        x = torch.stack([scorer.transform(Image.open(p).convert("RGB")) for p in paths])
        real = scorer.score_tensors(x)[:, 0].numpy()
        hook.remove()
        head = model.ridge
        zr = head.standardise(torch.cat(got).float())
        zc = head.standardise(tab.stats[torch.tensor(pick), :5].flatten(0, 1).float())
        dead = head.scale.float() < 1e-3 * head.scale.float().median()
        print(ck)
        print("  MOS cached", np.round(cached, 1), " real", np.round(real, 1))
        d = (zr - zc).abs()
        print(f"  z difference: max {float(d.max()):.3f} over all columns, "
              f"{float(d[:, ~dead].max()):.4f} without the {int(dead.sum())} nearly dead ones")  # fmt: skip
        if head.guard > 0:
            g_shift = ((zr - zc)[:, dead] * head.guard_coef.float()[dead]).sum(1).view(-1, 5).mean(1)
            print("  g real  ", head.detector(zr).view(-1, 5).mean(1).numpy().round(3))
            print("  g cached", head.detector(zc).view(-1, 5).mean(1).numpy().round(3))
            print("  g shift from the nearly dead columns", g_shift.numpy().round(3))


if __name__ == "__main__":
    main()
