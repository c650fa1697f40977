"""The tap maps of a shipped model and the errors of a tap-statistics function on them: one capture for
``benchmarks/tap_stats.py`` (the native kernel against torch) and ``experiments/speed/tap_stats_variants.py``
(read-only variants against today's two-pass)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from attiqa.io.images import load_image
from attiqa.models.backbones import tap_points
from attiqa.scorers.attiqa_scorer import AttiqaScorer

Stats = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def capture_tap_maps(
    sc: AttiqaScorer, photos: list[Path], chunk: int = 20, ridge_only: bool = False
) -> list[torch.Tensor]:
    """Every map the scorer's forward hands to the tap statistics for the photos' crops, in chunks of
    ``chunk`` crops as ``attiqa score`` runs them (channels_last, as the model makes them): each tap of the
    heads' set and of the ridge head's set (a module in both is read twice, as the scorer does), or the
    ridge head's alone."""
    body = sc.model.backbone.body
    ridge = [sc.model.ridge.taps] if sc.model.ridge is not None else []
    sets = ridge if ridge_only else [body.taps, *ridge]
    maps: list[torch.Tensor] = []

    def keep(_m: object, _i: object, y: torch.Tensor) -> None:
        maps.append(y.clone(memory_format=torch.channels_last))

    handles = [m.register_forward_hook(keep) for taps in sets for m in tap_points(body.net, taps)[0]]
    try:
        crops = torch.cat([sc.transform(load_image(p, min_shorter=sc.info.min_shorter)) for p in photos])
        with torch.inference_mode():
            for i in range(0, len(crops), chunk):
                sc.model(crops[i : i + chunk].contiguous(memory_format=torch.channels_last))
    finally:
        for h in handles:
            h.remove()
    return maps


def stat_errors(maps: list[torch.Tensor], stats: Stats) -> tuple[float, float, float]:
    """``stats``' worst errors against ``torch.std_mean`` in float64: the mean relative to |mean| + std, the
    std relative to the std (channels with std > 0), and the largest std where the float64 one is 0."""
    em = es = ez = 0.0
    for y in maps:
        rs, rm = torch.std_mean(y.double(), (2, 3))
        m, s = stats(y)
        em = max(em, ((m.double() - rm).abs() / (rm.abs() + rs).clamp_min(1e-30)).max().item())
        pos = rs > 0
        if pos.any():
            es = max(es, ((s.double() - rs).abs() / rs)[pos].max().item())
        if (~pos).any():
            ez = max(ez, s[~pos].abs().max().item())
    return em, es, ez
