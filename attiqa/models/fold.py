"""BatchNorm folding for inference (ours): each eval-mode ``Conv2d`` -> ``BatchNorm2d`` pair becomes one
convolution with the normalisation folded into its weights and bias.

Why: in eval mode a BatchNorm2d is a per-channel affine map, ``y = (x - mean) / sqrt(var + eps) * gamma +
beta``, and the convolution before it is linear, so the pair is one convolution with weights scaled by
``s = gamma / sqrt(var + eps)`` per output channel and bias ``(b - mean) * s + beta``. On CPU the
normalisation is a full read and write of every activation map: profiled on the shipped model it took a
quarter to a third of the scoring time (docs/default_model.md, "Implementation speed notes").

Inference only. A folded network has no BatchNorm statistics left to train or to update, and its
state dict differs from the checkpoint's. So folding happens only where a model is loaded to score
(:class:`attiqa.scorers.attiqa_scorer.AttiqaScorer`, which the ISP reward uses too), never in training;
a folded module refuses ``train()`` and :func:`attiqa.training.feature_cache.backbone_fingerprint`
refuses a folded backbone, so it can neither train nor fill or read a feature cache.

What stays: the module after the convolution becomes a :class:`FoldedNorm` that keeps the layer's
``num_features`` and its activation (and dropout, where a layer has one: our and timm's ``BatchNormAct2d``
apply them after the normalisation), so tap points (``attiqa.models.backbones.tap_points``: the depthwise
activations the ridge head reads) are the same module in the same place, and their outputs agree to float
rounding.

Pairs are children of one parent module, the convolution immediately followed by the normalisation in
registration order (our EfficientNet-Lite blocks, as timm's; torchvision's ResNet; the tiny test CNN;
tests/test_fold.py checks every registry backbone numerically).
"""

from __future__ import annotations

import torch
from torch import nn


class FoldedNorm(nn.Module):
    """What is left of a ``BatchNorm2d`` (+ dropout + activation) once folded into the convolution before
    it: the dropout and activation, or nothing. Keeps ``num_features`` (tap sets look the layer up by it)."""

    def __init__(
        self, num_features: int, drop: nn.Module | None = None, act: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.drop = drop if drop is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()
        super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x))

    def train(self, mode: bool = True) -> FoldedNorm:
        if mode:
            raise RuntimeError(
                "this network's BatchNorm layers are folded into its convolutions (inference only): "
                "train a model from attiqa.models.load_model, not a scorer's"
            )
        return super().train(False)


def is_folded(module: nn.Module) -> bool:
    """Whether any BatchNorm of ``module`` was folded by :func:`fold_batchnorm`."""
    return any(isinstance(m, FoldedNorm) for m in module.modules())


def _foldable(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> bool:
    return (
        not bn.training
        and bn.running_mean is not None
        and bn.running_var is not None
        and conv.out_channels == bn.num_features
    )


@torch.no_grad()
def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> FoldedNorm:
    """Fold ``bn`` into ``conv`` in place (float64 arithmetic, on the CPU); returns what replaces ``bn``."""
    assert bn.running_mean is not None and bn.running_var is not None
    w = conv.weight
    mean, var = bn.running_mean.detach().cpu().double(), bn.running_var.detach().cpu().double()
    gamma = bn.weight.detach().cpu().double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().cpu().double() if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / (var + bn.eps).sqrt()
    bias = conv.bias.detach().cpu().double() if conv.bias is not None else torch.zeros_like(mean)
    w.copy_((w.detach().cpu().double() * scale.view(-1, *([1] * (w.dim() - 1)))).to(w.dtype))  # keeps strides
    new_bias = ((bias - mean) * scale + beta).to(device=w.device, dtype=w.dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias, requires_grad=w.requires_grad)
    else:
        conv.bias.copy_(new_bias)
    drop, act = getattr(bn, "drop", None), getattr(bn, "act", None)  # a BatchNormAct2d's (ours: no drop)
    return FoldedNorm(
        bn.num_features,
        drop if isinstance(drop, nn.Module) else None,
        act if isinstance(act, nn.Module) else None,
    )


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every eval-mode ``Conv2d`` -> ``BatchNorm2d`` pair of ``module`` in place; returns ``module``.

    Only pairs whose normalisation is in eval mode with running statistics are folded (a layer in
    training mode normalises with batch statistics, which no weights can hold). Call it on a model
    loaded for scoring, after ``.eval()``; never on one that will be trained or saved."""
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and _foldable(conv, bn):
                setattr(parent, bn_name, _fold_pair(conv, bn))
    return module
