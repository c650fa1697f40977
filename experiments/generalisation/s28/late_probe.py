"""Partial unfreezing of Lite0's last stages: CLIVE splits + BIQ2021-val zero-shot (ours; issue 20, stop 28).

Reads the caches of ``late_cache.py`` (clive-dev and BIQ2021-val: input of ``blocks[4]`` of the five 320-px
crops, fp16, + the early taps' depthwise statistics). ``blocks[4]`` runs frozen once (its taps' statistics
kept); then, per row of ``decision_rule_s28.txt``, the product's ridge rule (signed square root of the
19,200 depthwise statistics per crop, mean over the five crops, ``fit_ridge`` with LOO alpha on the CLIVE
training part's MOS), each split's model scoring its CLIVE test part and all of BIQ2021-val zero-shot:

- ``ridge_frozen`` (reference R): every column from the frozen network (rebuilt here from the caches;
  ``--check`` compares them with the product's cached five-crop statistics of clive-dev first);
- ``--late-state FILE`` (candidate B): the late taps' columns (``blocks[5:]`` + final features) from the
  late stages stored by ``rank_pretrain.py train`` (``B_ridge``);
- ``--finetune`` (candidate A, ``late_finetune.py``'s recipe per split): ``ft_head`` (the fine-tuned
  linear head), ``A_ridge_ft`` (the ridge on the fine-tuned late taps' statistics) and ``A_mix``
  (0.4 ft_head + 0.6 A_ridge_ft).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/generalisation/s28/late_probe.py --check \
        --late-state runs/s28/late/rank/late_rank.safetensors --splits 0-9 \
        --out runs/s28/late/probe_B.json
    OMP_NUM_THREADS=1 nice -n 10 python experiments/generalisation/s28/late_probe.py --finetune \
        --splits 0,1,2 --out runs/s28/late/probe_A.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from attiqa.evaluation.metrics import correlations
from attiqa.io.atomic import write_json_atomic
from attiqa.models import create_backbone
from attiqa.models.ridge_head import signed_power
from attiqa.splits import split_indices
from attiqa.training.ridge import fit_ridge

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
from late_stages import (  # noqa: E402
    BACKBONE,
    Late,
    add_finetune_options,
    block_taps,
    late_dw_stats,
    load_cache,
    recording_stats,
    run_all,
    train_split,
)

RUNS = Path("runs/s28/late")
START, TRAIN_FROM = 4, 5


def load_caches(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input of blocks[4] (N, 5, 80, 20, 20) fp16, early statistics (N, 5, D), MOS (N,))."""
    meta = json.loads((folder / f"act_b{START}.json").read_text())
    acts = load_cache(folder / f"act_b{START}.npy", "late_cache.py")  # its done mask covers both arrays
    early = torch.from_numpy(np.load(folder / f"early_b{START}.npy")[:].copy())
    with open(meta["csv"], newline="") as f:
        mos = torch.tensor([float(r["mos"]) for r in csv.DictReader(f)], dtype=torch.float64)
    return acts, early, mos


@torch.no_grad()
def frozen_block(net, acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``blocks[k]`` (frozen) on (N, 5, ...) activations: (output fp16, its taps' statistics (N, 5, D))."""
    with recording_stats(block_taps(net, k, k + 1)) as store:

        def fn(x: torch.Tensor) -> torch.Tensor:
            store.clear()
            out = net.blocks[k](x)
            return torch.cat([out.flatten(1), *store], 1)

        both = run_all(fn, acts)
    probe = net.blocks[k](acts[:1, 0].float())
    n_out = probe[0].numel()
    return both[:, :, :n_out].reshape(*acts.shape[:2], *probe.shape[1:]).half(), both[:, :, n_out:]


def powered(x: torch.Tensor) -> torch.Tensor:
    return signed_power(x, 0.5).mean(1).double()


def ridge(x_tr, y_tr, *xs) -> list[torch.Tensor]:
    fit = fit_ridge(x_tr, y_tr)
    return [fit.predict(x).double() for x in xs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clive", type=Path, default=RUNS / "clive")
    ap.add_argument("--biq", type=Path, default=RUNS / "biq")
    ap.add_argument("--splits", default="0-9", help="clive-dev split seeds: 0-9 or 0,1,2")
    ap.add_argument("--check", action="store_true", help="compare with the product's cached statistics")
    ap.add_argument("--late-state", type=Path, help="candidate B: late stages from rank_pretrain.py")
    ap.add_argument("--finetune", action="store_true", help="candidate A (late_finetune.py's recipe)")
    add_finetune_options(ap)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seeds = (list(range(int(a.splits.split("-")[0]), int(a.splits.split("-")[1]) + 1)) if "-" in a.splits
             else [int(s) for s in a.splits.split(",")])  # fmt: skip

    def log(msg: str) -> None:
        print(msg, flush=True)

    t0 = time.perf_counter()
    net = create_backbone(BACKBONE).body.net.eval()
    acts_c, early_c, y = load_caches(a.clive)
    acts_b, early_b, y_b = load_caches(a.biq)
    nc = len(y)
    acts = torch.cat([acts_c, acts_b])  # clive rows first, then BIQ2021-val
    early = torch.cat([early_c, early_b])
    del acts_c, acts_b
    acts5, b4 = frozen_block(net, acts, START)
    del acts
    log(f"blocks[4] on {len(acts5)} photos: {time.perf_counter() - t0:.0f} s")
    frozen = Late(net, TRAIN_FROM).eval()
    late0 = late_dw_stats(frozen, acts5)
    per_crop = torch.cat([early, b4, late0], 2)
    first_late = early.shape[2] + b4.shape[2]
    x0 = powered(per_crop)
    log(f"frozen statistics {tuple(per_crop.shape)} (late from column {first_late}): "
        f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    results = json.loads(a.out.read_text()) if a.out.is_file() else {}
    if a.check:
        import features  # experiments/generalisation (on sys.path above)

        cached = features.load("../shared/data/clive-dev/mos.csv", crops="five", product_cache=True)["dw"]
        d = (x0[:nc] - cached.double()).abs()
        results["check"] = {"max_abs": float(d.max()), "max_abs_late": float(d[:, first_late:].max()),
                            "max_abs_early": float(d[:, :first_late].max()),
                            "max_rel_late": float((d[:, first_late:] / (cached[:, first_late:].abs().double()
                                                                       + 1e-3)).max())}  # fmt: skip
        log(f"check against the product's cached clive-dev statistics (signed sqrt, 5-crop mean): "
            f"{results['check']}")  # fmt: skip
    xs = {"ridge_frozen": x0}
    if a.late_state is not None:
        model = Late(net, TRAIN_FROM)
        model.load_state_dict(load_file(str(a.late_state)))
        model.eval()
        xs["B_ridge"] = torch.cat([x0[:, :first_late], powered(late_dw_stats(model, acts5))], 1)
        log(f"B statistics: {time.perf_counter() - t0:.0f} s")
    tag = f"ft ep{a.epochs} lr{a.lr:g} wd{a.wd:g} s{a.seed}" if a.finetune else ""
    for seed in seeds:
        key = f"split{seed}" + (f" {tag}" if tag else "") + (" B" if a.late_state is not None else "")
        if key in results:
            log(f"{key}: done before")
            continue
        ts = time.perf_counter()
        tr_l, te_l = split_indices(nc, 0.2, seed)
        tr, te = torch.tensor(tr_l), torch.tensor(te_l)
        biq = torch.arange(nc, len(x0))
        preds: dict[str, list[torch.Tensor]] = {}
        for name, x in xs.items():
            preds[name] = ridge(x[tr], y[tr], x[te], x[biq])
        if a.finetune:
            model = train_split(net, acts5[:nc], y, tr, TRAIN_FROM, a, log)
            sd, mu = y[tr].std(), y[tr].mean()
            late = late_dw_stats(model, acts5)  # its last 1,280 columns: the pooled final features
            with torch.no_grad():
                head = model.head(late[:, :, -1280:]).squeeze(2).mean(1).double() * sd + mu
            preds["ft_head"] = [head[te], head[biq]]
            xa = torch.cat([x0[:, :first_late], powered(late)], 1)
            preds["A_ridge_ft"] = ridge(xa[tr], y[tr], xa[te], xa[biq])
            pairs = zip(preds["ft_head"], preds["A_ridge_ft"], strict=True)
            preds["A_mix"] = [0.4 * h + 0.6 * r for h, r in pairs]
        row: dict = {}
        for name, (pc, pb) in preds.items():
            c, b = correlations(pc.numpy(), y[te].numpy()), correlations(pb.numpy(), y_b.numpy())
            row[name] = {"clive_srocc": c["srocc"], "clive_plcc": c["plcc"], "biq_srocc": b["srocc"],
                         "biq_plcc": b["plcc"]}  # fmt: skip
        row["seconds"] = time.perf_counter() - ts
        log(f"{key}: " + "  ".join(f"{k} {v['clive_srocc']:.4f}/{v['biq_srocc']:.4f}" for k, v in row.items()
                                   if isinstance(v, dict)) + f"  ({row['seconds']:.0f} s)")  # fmt: skip
        results[key] = row
        write_json_atomic(a.out, results)


if __name__ == "__main__":
    main()
