"""A second, linear MOS path on wide tap statistics, fitted in closed form (ours, not in the ATTIQA paper).

Why: the MOS MLP of §3.5 reads the attribute heads' hidden features (5 x 128 values from the stage
statistics). The backbone holds more: the mean and standard deviation of every block's depthwise
activations (19,200 values for EfficientNet-Lite0, :class:`~attiqa.models.backbones.DepthwiseStats`).
An MLP overfits them from a few hundred photos; ridge regression does not. On clive-dev a ridge on the
square root of these statistics beats the MLP, and a weighted mean of the two lifts the worst split
(figures: docs/default_model.md, "How the ridge head got there").

``power``: features are raised to this power (signed) before standardisation. The statistics are
non-negative and heavy-tailed (standard deviations of activations); the square root (0.5) is the usual
"power normalisation" of pooled features, and beat the raw statistics there.

Guard (ours, issue 20; off unless ``guard`` > 0): ``MOS = r(x) - guard * max(0, g(x))``, r the ridge above,
g a second linear map on the same standardised statistics (an "edit detector": negative on unedited
photos, positive on over-processed or degraded edits; :func:`attiqa.training.ridge.fit_guard`). Where g < 0
the MOS is r's, so it costs nothing on photos like the training ones. Applied per crop, like r (the scorer
averages the crops' MOS). Without it the head, its buffers and its card are exactly those of before.

The head holds only buffers (nothing here is trained by gradient descent) and is fitted by
:func:`attiqa.training.ridge.fit_ridge`; ``forward`` maps raw tap statistics (N, F) to MOS on the
model's normalised [0, 1] training scale.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def signed_power(x: torch.Tensor, power: float) -> torch.Tensor:
    x = x.float()
    return x.sign() * x.abs().pow(power) if power != 1.0 else x


def valid_guard(value: Any) -> bool:
    """Whether ``value`` can be a head's guard lambda: a finite number >= 0 (not a bool). One rule for the
    head and for a checkpoint card (:func:`attiqa.models.attiqa_model.validate_model_card`)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 <= value < math.inf


def valid_weight(value: Any) -> bool:
    """Whether ``value`` can be a head's weight (its share of the model's MOS): a number in 0..1 (not a bool,
    not NaN). One rule for the head and for a checkpoint card, as :func:`valid_guard`."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 <= value <= 1.0


class RidgeHead(nn.Module):
    """``((|s|^power * sign(s) - center) / scale) @ coef + intercept`` on raw tap statistics ``s``."""

    center: torch.Tensor
    scale: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor
    guard_coef: torch.Tensor  # only with guard > 0
    guard_bias: torch.Tensor

    def __init__(self, taps: str, dim: int, power: float = 0.5, weight: float = 0.5, alpha: float = 0.0,
                 guard: float = 0.0):  # fmt: skip
        super().__init__()
        if not valid_weight(weight):
            raise ValueError(f"ridge weight must be in [0, 1], got {weight}")
        if not valid_guard(guard):
            raise ValueError(f"ridge guard must be a finite number >= 0, got {guard!r}")
        self.taps = str(taps)
        self.power = float(power)
        self.weight = float(weight)  # share of this head in the model's MOS; the MLP has 1 - weight
        self.alpha = float(alpha)  # the regularisation the fit chose (card information only)
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("coef", torch.zeros(dim))
        self.register_buffer("intercept", torch.zeros(()))
        self.guard = float(guard)  # the guard's lambda on the unit MOS scale; 0 = no guard (and no buffers)
        if self.guard > 0:
            self.register_buffer("guard_coef", torch.zeros(dim))  # the detector on the standardised stats
            self.register_buffer("guard_bias", torch.zeros(()))

    @property
    def dim(self) -> int:
        return int(self.coef.numel())

    def transform(self, stats: torch.Tensor) -> torch.Tensor:
        """The signed power of the raw statistics (what the fit standardises)."""
        return signed_power(stats, self.power)

    def standardise(self, stats: torch.Tensor) -> torch.Tensor:
        """z: the raw statistics on the fit's scale (what ``coef`` and the guard's detector apply to)."""
        # A feature whose training spread underflowed to 0 in an fp16 copy (std ~1e-8: a constant channel)
        # contributes nothing rather than inf: the fit itself never stores a zero scale.
        scale = self.scale.float()
        return (self.transform(stats) - self.center.float()) / torch.where(scale > 0, scale, torch.inf)

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        z = self.standardise(stats)
        mos = z @ self.coef.float() + self.intercept.float()
        if self.guard > 0:
            mos = mos - self.guard * self.detector(z).clamp(min=0)
        return mos

    def detector(self, z: torch.Tensor) -> torch.Tensor:
        """The guard's edit score g on standardised statistics ``z`` (> 0: looks edited)."""
        return z @ self.guard_coef.float() + self.guard_bias.float()

    def card(self) -> dict[str, Any]:
        card = {"taps": self.taps, "dim": self.dim, "power": self.power, "weight": self.weight,
                "alpha": self.alpha}  # fmt: skip
        return {**card, "guard": self.guard} if self.guard > 0 else card
