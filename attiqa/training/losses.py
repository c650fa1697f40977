"""Training losses: the margin ranking loss of paper eq. (3)-(4), the L2 ablation (Table 7), and the
fine-tuning objective on MOS.

The pretraining losses take ``pred`` (N, A) raw head outputs and ``target`` (N, A) pseudo-labels in [0, 1]
(higher = better for every column) and return a scalar. NaN labels are ignored (pairs / entries with a NaN
don't count).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

PretrainLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def margin_ranking_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Margin ranking loss over every ordered pair in the batch, summed over attributes (eq. 3-4).

    For attribute a and images i, j with s_a(i) > s_a(j) (label says i is better), the pair costs
    ``max(0, m - (E_a(i) - E_a(j)))`` — zero once the head ranks i above j by at least the margin.

    Deviation from the paper as printed (documented, deliberate): eq. (3) sets F = 1 when
    s(x1) <= s(x2) and eq. (4) multiplies ``max(0, m - (E(x1) - E(x2)))`` by F. Read literally, that
    penalises pairs where x1 is *worse* unless the head scores x1 *higher* — training every head to rank
    in the opposite order of its pseudo-labels, and pushing exact ties both ways (each tie appears as
    (x1, x2) and (x2, x1), both with F = 1, so no ordering can satisfy both). The intended orientation is
    the standard margin ranking loss (``torch.nn.functional.margin_ranking_loss`` with y = +1 for the
    better image first), which is what we implement; exact ties contribute nothing.

    Reduction (ours; the paper gives only the per-pair term): for each attribute, the mean over its
    valid pairs (i, j) with s_a(i) > s_a(j) — every unordered pair of distinct labels counted once, in
    its correct orientation — then the sum over attributes (eq. 4's sum over a). An attribute with no
    valid pair in the batch contributes 0. The per-attribute mean keeps the loss scale independent of
    the batch size, so the learning rate does not need retuning when the batch changes.

    Vectorised: (N, N, A) difference matrices; at N = 256 that is 327k elements per attribute.
    """
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError(
            f"pred and target must both be (N, A); got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    target = target.to(pred.dtype)
    diff = pred.unsqueeze(1) - pred.unsqueeze(0)  # [i, j, a] = E_a(i) - E_a(j)
    better = target.unsqueeze(1) > target.unsqueeze(0)  # [i, j, a] = s_a(i) > s_a(j); False for ties/NaN
    per_pair = torch.relu(margin - diff) * better
    n_pairs = better.sum(dim=(0, 1))  # (A,)
    per_attr = per_pair.sum(dim=(0, 1)) / n_pairs.clamp_min(1)
    return per_attr.sum()


def l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Ablation (b) of Table 7: regress the [0, 1] pseudo-labels directly.

    The heads output unbounded scores, so we squash them with a sigmoid before the MSE (ours: the paper
    says only "L2 loss"); this keeps predictions on the labels' [0, 1] scale. Mean over valid (non-NaN)
    entries per attribute, summed over attributes — the same reduction as the ranking loss.
    """
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError(
            f"pred and target must both be (N, A); got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    target = target.to(pred.dtype)
    valid = torch.isfinite(target)
    sq = (torch.sigmoid(pred) - torch.nan_to_num(target)) ** 2 * valid
    return (sq.sum(0) / valid.sum(0).clamp_min(1)).sum()


def make_pretrain_loss(name: str, margin: float = 0.1) -> PretrainLoss:
    """``"ranking"`` (eq. 3-4, paper default m = 0.1) or ``"l2"`` (Table 7 ablation)."""
    if name == "ranking":
        return _RankingLoss(margin)
    if name == "l2":
        return l2_loss
    raise ValueError(f"unknown pretraining loss {name!r}; choose 'ranking' or 'l2'")


class _RankingLoss:
    """Picklable callable with a fixed margin."""

    def __init__(self, margin: float) -> None:
        self.margin = float(margin)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return margin_ranking_loss(pred, target, self.margin)

    def __repr__(self) -> str:
        return f"margin_ranking_loss(margin={self.margin})"


def plcc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Pearson correlation of the batch (0 = perfectly linear, 2 = perfectly inverted). Invariant to
    any positive affine change of ``pred``, so it rewards the batch's ordering and spacing, not its scale.
    A batch whose predictions or targets are all equal has no correlation: the term is then 0."""
    p = pred - pred.mean()
    t = target.to(pred.dtype) - target.to(pred.dtype).mean()
    denom = p.norm() * t.norm()
    if pred.numel() < 2 or not bool(denom > 1e-12):
        return pred.sum() * 0.0  # keeps the graph (DDP expects every parameter to get a gradient)
    return 1.0 - (p * t).sum() / denom


def mos_loss(pred: torch.Tensor, target: torch.Tensor, plcc_weight: float = 0.0) -> torch.Tensor:
    """Fine-tuning objective (ours; the paper follows QPT [46] and does not state it): MSE on MOS normalised
    to [0, 1], plus ``plcc_weight`` x :func:`plcc_loss` of the batch (ours, default off). The MSE fits the
    scale; the correlation term puts weight on what the benchmarks measure, the batch's ordering and
    linearity. Measured with the default recipe on clive-dev (``experiments/default_model``; figures in
    docs/default_model.md, "How the ridge head got there"): a weight of 0.1 changes the median SROCC by
    less than the seed noise, so the recipe keeps 0."""
    loss = F.mse_loss(pred, target.to(pred.dtype))
    if plcc_weight:
        loss = loss + plcc_weight * plcc_loss(pred, target)
    return loss
