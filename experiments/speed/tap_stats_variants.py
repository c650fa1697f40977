"""Read-only tap statistics against today's blocked two-pass, on activations captured from a shipped model.

    PYTHONPATH=$PWD python experiments/speed/tap_stats_variants.py --model attiqa-default \
        --root ../shared/data/clive-dev/images --photos 8 --rounds 5 --threads 1

Captures every map the scorer's forward hands to the tap statistics (both tap sets, chunks of 20 crops as
``attiqa score`` runs them), then times each variant over all of them in alternating rounds (ms per photo,
median and range of rounds) and reports its worst error against ``torch.std_mean`` in float64: the mean
relative to |mean| + std, the std relative to the std (channels with std > 0), and the largest std where
the float64 one is 0. Session 34, issues #15/#20 (experiments/speed/tap_stats_rule_s34.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from tap_maps import Stats, capture_tap_maps, stat_errors  # noqa: E402  (the one capture of the tap maps)

from attiqa.io.images import discover_images  # noqa: E402
from attiqa.models import backbones  # noqa: E402
from attiqa.scorers.attiqa_scorer import AttiqaScorer  # noqa: E402
from attiqa.scorers.zoo import resolve_weights  # noqa: E402


def today(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return backbones.spatial_mean_std(y)


def bn_stats(y: torch.Tensor, correct: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """torch.batch_norm_update_stats per crop (two read-only passes about its own float32 mean; biased var),
    optionally with the mean from an accurate reduction and var corrected by the shift identity."""
    n, c, h, w = y.shape
    hw = h * w
    pairs = [torch.batch_norm_update_stats(y[i : i + 1], None, None, 0.0) for i in range(n)]
    m1 = torch.stack([p[0] for p in pairs])
    v1 = torch.stack([p[1] for p in pairs])
    if not correct:
        return m1, (v1 * (hw / max(hw - 1, 1))).sqrt()
    flat = y.permute(0, 2, 3, 1).reshape(n, hw, c)
    s = flat.sum(1) if correct == "sum" else torch.bmm(flat.new_ones(n, 1, hw), flat).squeeze(1)
    mean = s / hw
    d = mean.double() - m1.double()
    var = (v1.double() - d * d).clamp_min(0) * (hw / max(hw - 1, 1))
    return mean, var.sqrt().float()


def bn_blocks(y: torch.Tensor, rows: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_norm_update_stats per block of ``rows`` positions of each crop (shorter float32 sequences),
    blocks combined by the parallel-variance formula in float64."""
    n, c, h, w = y.shape
    hw = h * w
    flat = y.permute(0, 2, 3, 1).reshape(n, hw, c)
    parts = [
        torch.batch_norm_update_stats(flat[i, s : s + rows].t().unsqueeze(0).unsqueeze(3), None, None, 0.0)
        for i in range(n)
        for s in range(0, hw, rows)
    ]
    nb = -(-hw // rows)
    means = torch.stack([p[0] for p in parts]).view(n, nb, c).double()
    vars_ = torch.stack([p[1] for p in parts]).view(n, nb, c).double()
    counts = torch.tensor([min(rows, hw - s) for s in range(0, hw, rows)], dtype=torch.float64).view(1, nb, 1)
    mean = (means * counts).sum(1) / hw
    m2 = (vars_ * counts).sum(1) + ((means - mean.unsqueeze(1)) ** 2 * counts).sum(1)
    return mean.float(), (m2 / max(hw - 1, 1)).sqrt().float()


def bn_interleaved(
    y: torch.Tensor, width: int = 8192, ratio: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_norm_update_stats per crop on the (HW / K, K * C) view of its (HW, C) rows (a view: row r holds
    positions rK .. rK + K - 1), so each float32 sequence is K times shorter and each of the K interleaved
    subsets has about the global mean; subsets combined by the parallel-variance formula in float64.
    K: the largest power of two dividing HW with K * C <= ``width``. ``ratio`` > 0: channels with
    |mean| > ratio * std are recomputed exactly by today's code (on a copy of just those channels)."""
    n, c, h, w = y.shape
    hw = h * w
    k = 1
    while hw % (2 * k) == 0 and 2 * k * c <= width:
        k *= 2
    flat = y.permute(0, 2, 3, 1).reshape(n, hw, c)
    parts = [
        torch.batch_norm_update_stats(
            flat[i].view(hw // k, k * c).t().unsqueeze(0).unsqueeze(3), None, None, 0.0
        )
        for i in range(n)
    ]
    means = torch.stack([p[0] for p in parts]).view(n, k, c).double()
    vars_ = torch.stack([p[1] for p in parts]).view(n, k, c).double()
    mean = means.mean(1)
    m2 = vars_.sum(1) * (hw // k) + ((means - mean.unsqueeze(1)) ** 2).sum(1) * (hw // k)
    mean32, std32 = mean.float(), (m2 / max(hw - 1, 1)).sqrt().float()
    if ratio > 0:
        risky = (mean32.abs() > ratio * std32).any(0).nonzero().flatten()
        if len(risky):
            m, sd = today(y.index_select(1, risky))
            mean32[:, risky], std32[:, risky] = m, sd
    return mean32, std32


def bn_fallback(y: torch.Tensor, ratio: float = 16.0) -> tuple[torch.Tensor, torch.Tensor]:
    """bn per crop; a crop with any channel whose |mean| > ratio * std (where its float32 sequential mean
    is least trustworthy, e.g. near-constant channels) is recomputed by today's two-pass."""
    mean, std = bn_stats(y)
    risky = (mean.abs() > ratio * std).any(1).nonzero().flatten().tolist()
    if risky:
        m, s = today(y[risky])
        mean[risky], std[risky] = m, s
    return mean, std


def var_mean_view(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, c, h, w = y.shape
    v, m = torch.var_mean(y.permute(0, 2, 3, 1).reshape(n, h * w, c), 1)
    return m, v.sqrt()


def naive_norm(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and vector_norm (read-only), E[x^2] - E[x]^2 combined in float64."""
    n, c, h, w = y.shape
    hw = h * w
    flat = y.permute(0, 2, 3, 1).reshape(n, hw, c)
    s = flat.sum(1).double()
    s2 = torch.linalg.vector_norm(flat, 2, 1).double() ** 2
    var = ((s2 - s * s / hw) / max(hw - 1, 1)).clamp_min(0)
    return (s / hw).float(), var.sqrt().float()


VARIANTS: dict[str, Stats] = {
    "today": today,
    "bn per crop": bn_stats,
    "bn + sum mean": partial(bn_stats, correct="sum"),
    "bn + bmm mean": partial(bn_stats, correct="bmm"),
    "bn per block 2048": bn_blocks,
    "bn + fallback": bn_fallback,
    "bn interleaved": bn_interleaved,
    "bn interleaved 2k": partial(bn_interleaved, width=2048),
    "bn interleaved 64k": partial(bn_interleaved, width=65536),
    "bn interleaved + exact |m|>16s": partial(bn_interleaved, ratio=16.0),
    "bn interleaved 2k + exact |m|>32s": partial(bn_interleaved, width=2048, ratio=32.0),
    "var_mean view": var_mean_view,
    "sum + vector_norm": naive_norm,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="attiqa-default")
    ap.add_argument("--root", required=True)
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = discover_images([args.root])[: args.photos]
    with torch.inference_mode():
        maps = capture_tap_maps(AttiqaScorer(resolve_weights(args.model)), paths, args.chunk)
        size = sum(m.numel() for m in maps) / 1e6
        print(f"{args.model}: {len(maps)} maps from {len(paths)} photos, {size:.0f} M elements")
        times: dict[str, list[float]] = {v: [] for v in args.variants}
        for _ in range(args.rounds):
            for v in args.variants:
                t0 = time.perf_counter()
                for y in maps:
                    VARIANTS[v](y)
                times[v].append((time.perf_counter() - t0) * 1e3 / len(paths))
        for v in args.variants:
            em, es, ez = stat_errors(maps, VARIANTS[v])
            t = times[v]
            print(
                f"{v:18s} ms/photo median {statistics.median(t):7.1f} ({min(t):.1f}-{max(t):.1f})  "
                f"mean err {em:.1e}  std err {es:.1e}  std where 0: {ez:.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
