"""Late-stage fine-tuning of EfficientNet-Lite0 on AGIQA-3k, from cached early activations (ours; issue 15).

Every frozen-feature recipe lands at median SROCC 0.794-0.825 (docs/agiqa3k_model.md): the representation is
the limit. This trains the LAST stages of the backbone (``blocks[TRAIN_FROM:]`` + head conv; BatchNorm
statistics stay frozen, their affine parameters train) plus a linear MOS head on their pooled features, on
the activations ``late_cache.py`` stored (the early stages never run again), on the splits `attiqa bench
single --group-by none|prompt` makes (seeds 0..). Per split, everything fixed in advance (no choice on a
test part; the last epoch is reported):

- the head starts from a closed-form ridge on the frozen pooled features of the training images (LOO
  penalty), so the backbone's first gradients come from a sensible head, not a random one
  (``train_split`` in ``experiments/late_stages.py``, shared with ``generalisation/s28/late_probe.py``);
- each epoch sees every training image once, through one of its five crops at random; MSE on the
  training part's standardised MOS; AdamW (backbone LR, head LR 10x), cosine;
- test prediction = mean over the five crops.

Reported per split: ``ft_head`` (the fine-tuned network's head), ``ridge_frozen`` (the product's ridge head
on the frozen depthwise statistics: the baseline), ``ridge_ft`` (the same ridge rule on depthwise statistics
whose late taps come from the fine-tuned stages: what the product would fit after fine-tuning) and
``mix`` = 0.4 ft_head + 0.6 ridge_ft (the recipe's fixed 0.4 / 0.6 split between its MLP and its ridge).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/agiqa3k/late_finetune.py ../shared/data/agiqa3k-dev \
        --splits random:0,prompt:0 --out runs/agiqa3k/late/ft.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from attiqa.evaluation.metrics import correlations
from attiqa.io.atomic import write_json_atomic
from attiqa.models import create_backbone
from attiqa.models.ridge_head import signed_power
from attiqa.training.ridge import fit_ridge

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from cache_features import load_features, prompts_and_mos  # noqa: E402
from late_stages import (  # noqa: E402
    BACKBONE,
    add_finetune_options,
    first_late_column,
    late_dw_stats,
    load_cache,
    run_all,
    train_split,
)
from recipes import split_sets  # noqa: E402


def ridge_predict(x: torch.Tensor, y: torch.Tensor, tr: torch.Tensor, te: torch.Tensor) -> torch.Tensor:
    fit = fit_ridge(x[tr], y[tr])
    return fit.predict(x[te]).double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--acts", type=Path, default=Path("runs/agiqa3k/late/act_b4.npy"))
    ap.add_argument("--train-from", type=int, default=5, help="train blocks[TRAIN_FROM:] (>= cached start)")
    ap.add_argument("--splits", default="random:0,prompt:0", help="KIND:SEED,... (bench splits, seeds 0-9)")
    add_finetune_options(ap)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/late/ft.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    def log(msg: str) -> None:
        print(msg, flush=True)

    meta = json.loads(a.acts.with_suffix(".json").read_text())
    start = int(meta["start"])
    acts = load_cache(a.acts, "late_cache.py", "images")  # (N, 5, C, H, W) fp16
    prompts, y = prompts_and_mos(a.root)
    _, stats = load_features(Path(meta["csv"]), progress=False, stages=False)  # (N, 5, 19200), cached
    net = create_backbone(BACKBONE).body.net.eval()
    if a.train_from > start:  # frozen blocks between the cache and the trained part: run them once
        with torch.no_grad():
            frozen = nn.Sequential(*[net.blocks[i] for i in range(start, a.train_from)])
            acts = run_all(frozen, acts).half()
    # columns of the frozen depthwise statistics the fine-tuned blocks replace
    first_late = first_late_column(net, a.train_from)
    frozen_x = signed_power(stats[:, :5], 0.5).mean(1)
    sets = split_sets(prompts, 10)
    results = json.loads(a.out.read_text()) if a.out.is_file() else {}
    for spec in a.splits.split(","):
        kind, seed = spec.split(":")
        sp = sets[kind][int(seed)]
        key = f"{kind}:{seed} from{a.train_from} ep{a.epochs} lr{a.lr:g} wd{a.wd:g} s{a.seed}"
        if key in results:
            log(f"{key}: done before")
            continue
        tr, te = torch.tensor(sp.train), torch.tensor(sp.test)
        t0 = time.perf_counter()
        log(f"{key}: {len(tr)} train / {len(te)} test")
        model = train_split(net, acts, y, tr, a.train_from, a, log)
        ft_head = run_all(model, acts[te]).mean(1).double() * y[tr].std() + y[tr].mean()
        late = signed_power(late_dw_stats(model, acts), 0.5).mean(1)
        ft_x = torch.cat([frozen_x[:, :first_late], late], 1)
        preds = {
            "ft_head": ft_head,
            "ridge_frozen": ridge_predict(frozen_x, y, tr, te),
            "ridge_ft": ridge_predict(ft_x, y, tr, te),
        }
        preds["mix"] = 0.4 * preds["ft_head"] + 0.6 * preds["ridge_ft"]
        preds["mix_frozen"] = 0.4 * preds["ft_head"] + 0.6 * preds["ridge_frozen"]
        row = {}
        for name, p in preds.items():
            m = correlations(p.numpy(), y[te].numpy())
            row[name] = {"srocc": m["srocc"], "plcc": m["plcc"]}
        row["seconds"] = time.perf_counter() - t0
        log(f"{key}: " + "  ".join(f"{k} {v['srocc']:.4f}/{v['plcc']:.4f}" for k, v in row.items()
                                    if isinstance(v, dict)) + f"  ({row['seconds']:.0f} s)")  # fmt: skip
        results[key] = row
        write_json_atomic(a.out, results)


if __name__ == "__main__":
    main()
