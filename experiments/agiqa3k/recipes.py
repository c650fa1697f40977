"""Recipe research for an AGIQA-3k quality model on cached frozen Lite0 features (ours).

Every recipe is measured on the same 10 random 80/20 image splits (paper §4.1; seeds 0-9, the splits
`attiqa bench single` makes) AND on 10 prompt-grouped 80/20 splits (20 % of the prompts held out with all
their images: what a user with new prompts sees). Reported: median SROCC / PLCC of ``mos_quality`` on the
held-out part, side by side. Nothing is chosen on held-out images: ridge penalties by leave-one-out on the
training part, mixing weights by inner cross-validation (product recipe).

Two kinds of recipe:

- closed-form ridge variants on the cached statistics (``--ridge``; seconds each): which features, which
  power, five crops vs their mean;
- the product's fine-tuning (``--config C.yaml``, its ``finetune:`` section; optional ``--init``): one
  :func:`attiqa.training.finetune.finetune` run per split on a CSV with a split column, exactly what
  `attiqa train` would do on that split; the reported numbers are its last history entry (the combined
  model when it has a ridge head).

    python experiments/agiqa3k/recipes.py ../shared/data/agiqa3k-dev --ridge
    python experiments/agiqa3k/recipes.py ../shared/data/agiqa3k-dev \
        --config configs/agiqa3k_model.yaml --out runs/agiqa3k/research/product
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from attiqa.bench_splits import Split, random_splits
from attiqa.config import FinetuneConfig, from_dict, read_yaml
from attiqa.datasets import get_dataset
from attiqa.evaluation.metrics import correlations
from attiqa.models.ridge_head import signed_power
from attiqa.protocols import write_split_csv
from attiqa.training.ridge import fit_ridge

HERE = Path(__file__).resolve().parent


def split_sets(prompts: list[str], repeats: int) -> dict[str, list[Split]]:
    """Image-wise and prompt-grouped splits: those `attiqa bench single --group-by none|prompt` makes."""
    n = len(prompts)
    return {"random": random_splits(n, repeats, 0), "prompt": random_splits(n, repeats, 0, groups=prompts)}


def summarise(per_split: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    return {
        kind: {m: float(statistics.median(r[m] for r in rows)) for m in ("srocc", "plcc")}
        | {"min_srocc": min(r["srocc"] for r in rows), "n": len(rows)}
        for kind, rows in per_split.items()
    }


# ---------------------------------------------------------------------------------------------------------
# Closed-form ridge variants


def ridge_recipes(
    feats: torch.Tensor | None, stats: torch.Tensor | None
) -> dict[str, Callable[[], torch.Tensor]]:
    """name -> design matrix builder (N, F); each is fitted by the product's fit_ridge (LOO alpha)."""
    five = slice(0, 5)

    def dw(p: float) -> torch.Tensor:
        return signed_power(stats[:, five], p).mean(1)

    return {
        "ridge dw sqrt (attiqa-default's head)": lambda: dw(0.5),
        "ridge dw raw": lambda: dw(1.0),
        "ridge dw power 0.25": lambda: dw(0.25),
        "ridge stages sqrt": lambda: signed_power(feats[:, five], 0.5).mean(1),
        "ridge dw sqrt + stages sqrt": lambda: torch.cat(
            [dw(0.5), signed_power(feats[:, five], 0.5).mean(1)], 1
        ),
        "ridge dw sqrt, mean+std over crops": lambda: torch.cat(
            [dw(0.5), signed_power(stats[:, five], 0.5).std(1)], 1
        ),
    }


def run_ridge(
    x: torch.Tensor, y: torch.Tensor, splits: list[Split], alphas: tuple[float, ...] | None = None
) -> list[dict]:
    """Ridge per split; ``alphas`` None = the product's grid with leave-one-out choice."""
    rows = []
    for sp in splits:
        tr, te = torch.tensor(sp.train), torch.tensor(sp.test)
        fit = fit_ridge(x[tr], y[tr]) if alphas is None else fit_ridge(x[tr], y[tr], alphas)
        pred = fit.predict(x[te])
        m = correlations(pred.double().numpy(), y[te].double().numpy())
        rows.append({"split": sp.name, "alpha": fit.alpha, **{k: m[k] for k in ("srocc", "plcc")}})
    return rows


def run_linear_rank(
    x: torch.Tensor, y: torch.Tensor, prompts: list[str], splits: list[Split], rank_weight: float,
    epochs: int = 60, l2: float = 1e-2,
) -> list[dict]:  # fmt: skip
    """A linear model on the standardised features trained by Adam on MSE + ``rank_weight`` x a margin
    ranking loss over the pairs of one prompt in each batch (paper eq. 3's hinge, margin 0.1 on the unit
    scale) — does a ranking objective beat ridge's squared error? Weight decay ``l2``."""
    rows = []
    for sp in splits:
        tr, te = torch.tensor(sp.train), torch.tensor(sp.test)
        mu, sd = x[tr].mean(0), x[tr].std(0).clamp_min(1e-6)
        z = (x - mu) / sd
        lo, hi = float(y[tr].min()), float(y[tr].max())
        t = (y - lo) / (hi - lo)
        gen = torch.Generator().manual_seed(sp.seed or 0)
        w = torch.zeros(x.shape[1], requires_grad=True)
        b = torch.full((), float(t[tr].mean()), requires_grad=True)
        opt = torch.optim.AdamW([w, b], lr=1e-3, weight_decay=l2)
        pid = {p: k for k, p in enumerate(sorted(set(prompts)))}
        ptr = torch.tensor([pid[prompts[i]] for i in sp.train])
        for _ in range(epochs):
            order = torch.randperm(len(tr), generator=gen)
            for s in range(0, len(order), 64):
                idx = order[s : s + 64]
                rows_i = tr[idx]
                pred = z[rows_i] @ w + b
                loss = torch.mean((pred - t[rows_i]) ** 2)
                if rank_weight:
                    same = ptr[idx][:, None] == ptr[idx][None, :]
                    dt = t[rows_i][:, None] - t[rows_i][None, :]
                    dp = pred[:, None] - pred[None, :]
                    mask = same & (dt > 0)
                    if mask.any():
                        loss = loss + rank_weight * torch.relu(0.1 - dp[mask]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            pred = z[te] @ w + b
        m = correlations(pred.double().numpy(), y[te].double().numpy())
        rows.append({"split": sp.name, **{k: m[k] for k in ("srocc", "plcc")}})
    return rows


def run_dual_ridge(x: torch.Tensor, y: torch.Tensor, sets: dict[str, list[Split]]) -> dict[str, list[dict]]:
    """Ridge for many splits at the cost of one: features standardised once over ALL images (transductive,
    no labels; the product standardises over the training images), one Gram matrix, then per split the
    same leave-one-out choice of alpha over the product's grid (ALPHAS) in dual form. Ours, for speed on a
    loaded CPU (20 splits x 19,200 features); the product's fit_ridge is the reference (``--ridge``)."""
    from attiqa.training.ridge import ALPHAS

    z = x.double()
    z = (z - z.mean(0)) / z.std(0, unbiased=False).clamp_min(1e-12)
    gram = z @ z.T
    y = y.double()
    out: dict[str, list[dict]] = {}
    for kind, splits in sets.items():
        rows = []
        for sp in splits:
            tr, te = torch.tensor(sp.train), torch.tensor(sp.test)
            k = gram[tr][:, tr]
            one = torch.ones(len(tr), dtype=torch.float64) / len(tr)
            kc = k - one @ k - (k @ one)[:, None] + one @ k @ one  # centred (the unpenalised intercept)
            s2, u = torch.linalg.eigh(kc)
            s2 = s2.clamp_min(0)
            yc = y[tr] - y[tr].mean()
            uty = u.T @ yc
            best = None
            for alpha in ALPHAS:
                shrink = s2 / (s2 + alpha)
                loo = (yc - u @ (shrink * uty)) / (1.0 - ((u**2) @ shrink + 1.0 / len(tr)))
                err = float((loo**2).mean())
                if best is None or err < best[1]:
                    best = (alpha, err)
            alpha = best[0]
            dual = u @ (uty / (s2 + alpha))
            kte = gram[te][:, tr]
            kte_c = kte - (kte @ one)[:, None] - (one @ k)[None, :] + one @ k @ one
            pred = kte_c @ dual + y[tr].mean()
            m = correlations(pred.numpy(), y[te].numpy())
            rows.append({"split": sp.name, "alpha": alpha, "srocc": m["srocc"], "plcc": m["plcc"]})
        out[kind] = rows
    return out


# ---------------------------------------------------------------------------------------------------------
# The product's fine-tuning


def run_product(
    ds, cfg: FinetuneConfig, init: Path | None, splits: list[Split], out: Path, progress: bool
) -> list[dict]:
    from dataclasses import replace

    from attiqa.training.finetune import finetune

    rows = []
    for sp in splits:
        run_dir = out / sp.name
        done = run_dir / "result.json"
        if done.is_file():
            rows.append(json.loads(done.read_text()))
            continue
        csv_path = write_split_csv(run_dir / "split.csv", ds.items, sp)
        t0 = time.perf_counter()
        res = finetune(replace(cfg, csv=str(csv_path), image_root=""), init, run_dir, progress=progress)
        last = res.history[-1]
        mlp = [h for h in res.history if not h.get("ridge")][-1]
        row = {"split": sp.name, "srocc": last["srocc"], "plcc": last["plcc"], "mlp_srocc": mlp["srocc"],
               "mlp_plcc": mlp["plcc"], "seconds": time.perf_counter() - t0}  # fmt: skip
        for f in (run_dir / "finetune").glob("*.safetensors"):
            f.unlink()
        done.write_text(json.dumps(row))
        rows.append(row)
        print(f"  {sp.name}: SROCC {row['srocc']:.4f} PLCC {row['plcc']:.4f} "
              f"(MLP alone {row['mlp_srocc']:.4f})", flush=True)  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--ridge", action="store_true", help="closed-form ridge variants")
    ap.add_argument("--dual", action="store_true", help="ridge variants, all splits from one Gram matrix")
    ap.add_argument("--only", default="", help="with --ridge: only recipes whose name contains one of these")
    ap.add_argument("--ridge-alphas", action="store_true", help="ridge with fixed penalties (regularisation)")
    ap.add_argument("--rank", action="store_true", help="linear model on MSE vs MSE + ranking loss")
    ap.add_argument("--config", type=Path, help="product recipe: a config with a finetune: section")
    ap.add_argument("--init", type=Path, help="initial checkpoint for --config (e.g. a pretrained model)")
    ap.add_argument("--set", action="append", default=[], help="finetune.KEY=VALUE override (YAML value)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--kinds", default="random,prompt")
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/research"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = get_dataset("agiqa3k", a.root)
    prompts = [it.meta.get("prompt", "") for it in ds.items]
    y = torch.tensor([it.mos for it in ds.items])
    sets = {k: v for k, v in split_sets(prompts, a.repeats).items() if k in a.kinds.split(",")}
    results: dict[str, dict] = {}
    if a.ridge:
        import sys

        sys.path.insert(0, str(HERE))
        from cache_features import load_features, write_csv

        names = [k for k in ridge_recipes(None, None) if not a.only or any(o in k for o in a.only.split(","))]
        need_stages = any("stages" in k for k in names)
        feats, stats = load_features(write_csv(a.root, a.out / "all.csv"), progress=False, stages=need_stages)
        recipes = {k: v for k, v in ridge_recipes(feats, stats).items() if k in names}
        for name, build in recipes.items():
            x = build()
            per = {kind: run_ridge(x, y, splits) for kind, splits in sets.items()}
            results[name] = {"summary": summarise(per), "splits": per}
            s = results[name]["summary"]
            print(f"{name:45s} " + "  ".join(
                f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f} (min {v['min_srocc']:.3f})" for k, v in s.items()),
                flush=True)  # fmt: skip
    if a.dual:
        import sys

        sys.path.insert(0, str(HERE))
        from cache_features import load_features, write_csv

        names = [k for k in ridge_recipes(None, None) if not a.only or any(o in k for o in a.only.split(","))]
        need_stages = any("stages" in k for k in names)
        feats, stats = load_features(write_csv(a.root, a.out / "all.csv"), progress=False, stages=need_stages)
        for name, build in ridge_recipes(feats, stats).items():
            if name not in names:
                continue
            per = run_dual_ridge(build(), y, sets)
            key = f"{name} [dual, global standardisation]"
            results[key] = {"summary": summarise(per), "splits": per}
            s = results[key]["summary"]
            print(f"{name:45s} " + "  ".join(
                f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f} (min {v['min_srocc']:.3f})" for k, v in s.items()),
                flush=True)  # fmt: skip
            save(a.out, results)
    if a.ridge_alphas or a.rank:
        import sys

        sys.path.insert(0, str(HERE))
        from cache_features import load_features, write_csv

        _, stats = load_features(write_csv(a.root, a.out / "all.csv"), progress=False, stages=False)
        x = signed_power(stats[:, :5], 0.5).mean(1)
        runs: dict[str, Callable[[list[Split]], list[dict]]] = {}
        if a.ridge_alphas:  # the regularisation curve: fixed penalties vs the leave-one-out choice
            for alpha in (10.0, 100.0, 1e3, 3e3, 1e4, 3e4, 1e5):
                runs[f"ridge dw sqrt, fixed alpha {alpha:g}"] = lambda sp, al=alpha: run_ridge(
                    x, y, sp, (al,)
                )
        if a.rank:
            for rw in (0.0, 1.0):
                runs[f"linear dw sqrt, Adam, rank weight {rw:g}"] = lambda sp, rw=rw: run_linear_rank(
                    x, y, prompts, sp, rw
                )
        for name, fn in runs.items():
            per = {kind: fn(splits) for kind, splits in sets.items()}
            results[name] = {"summary": summarise(per), "splits": per}
            s = results[name]["summary"]
            print(f"{name:45s} " + "  ".join(
                f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f} (min {v['min_srocc']:.3f})" for k, v in s.items()),
                flush=True)  # fmt: skip
    if a.config:
        import yaml

        data = read_yaml(a.config)
        data = data.get("finetune", data)
        for kv in a.set:
            k, v = kv.split("=", 1)
            data[k.removeprefix("finetune.")] = yaml.safe_load(v)
        cfg = from_dict(FinetuneConfig, data, str(a.config))
        name = f"{a.config.stem}{' ' + ' '.join(a.set) if a.set else ''}{' init' if a.init else ''}"
        per = {kind: run_product(ds, cfg, a.init, splits, a.out / kind, progress=False)
               for kind, splits in sets.items()}  # fmt: skip
        s = summarise(per)
        mlp = {k: float(np.median([r["mlp_srocc"] for r in rows])) for k, rows in per.items()}
        results[name] = {"summary": s, "mlp_median_srocc": mlp, "splits": per}
        text = "  ".join(f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f} (min {v['min_srocc']:.3f}, "
                         f"MLP alone {mlp[k]:.4f})" for k, v in s.items())  # fmt: skip
        print(f"{name}: {text}", flush=True)
    save(a.out, results)


def save(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    target = out / "results.json"
    old = json.loads(target.read_text()) if target.is_file() else {}
    target.write_text(json.dumps({**old, **results}, indent=1))


if __name__ == "__main__":
    main()
