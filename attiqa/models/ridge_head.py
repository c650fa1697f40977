"""A second, linear MOS path on wide tap statistics, fitted in closed form (ours, not in the ATTIQA paper).

Why: the MOS MLP of §3.5 reads the attribute heads' hidden features (5 x 128 values from the stage
statistics). The backbone holds more: the mean and standard deviation of every block's depthwise
activations (19,200 values for EfficientNet-Lite0, :class:`~attiqa.models.backbones.DepthwiseStats`).
An MLP overfits them from a few hundred photos; ridge regression does not. On the 10 splits of clive-dev
(`docs/default_model.md`) a ridge on the square root of these statistics reaches a median SROCC of
0.853 by itself, and the mean of its prediction and the MLP's is better than either.

``power``: features are raised to this power (signed) before standardisation. The statistics are
non-negative and heavy-tailed (standard deviations of activations); the square root (0.5) is the usual
"power normalisation" of pooled features and gained +0.010 median SROCC over the raw statistics.

The head holds only buffers (nothing here is trained by gradient descent) and is fitted by
:func:`attiqa.training.ridge.fit_ridge`; ``forward`` maps raw tap statistics (N, F) to MOS on the
model's normalised [0, 1] training scale.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def signed_power(x: torch.Tensor, power: float) -> torch.Tensor:
    x = x.float()
    return x.sign() * x.abs().pow(power) if power != 1.0 else x


class RidgeHead(nn.Module):
    """``((|s|^power * sign(s) - center) / scale) @ coef + intercept`` on raw tap statistics ``s``."""

    center: torch.Tensor
    scale: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor

    def __init__(self, taps: str, dim: int, power: float = 0.5, weight: float = 0.5, alpha: float = 0.0):
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"ridge weight must be in [0, 1], got {weight}")
        self.taps = str(taps)
        self.power = float(power)
        self.weight = float(weight)  # share of this head in the model's MOS; the MLP has 1 - weight
        self.alpha = float(alpha)  # the regularisation the fit chose (card information only)
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("coef", torch.zeros(dim))
        self.register_buffer("intercept", torch.zeros(()))

    @property
    def dim(self) -> int:
        return int(self.coef.numel())

    def transform(self, stats: torch.Tensor) -> torch.Tensor:
        """The signed power of the raw statistics (what the fit standardises)."""
        return signed_power(stats, self.power)

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        # A feature whose training spread underflowed to 0 in an fp16 copy (std ~1e-8: a constant channel)
        # contributes nothing rather than inf: the fit itself never stores a zero scale.
        scale = self.scale.float()
        z = (self.transform(stats) - self.center.float()) / torch.where(scale > 0, scale, torch.inf)
        return z @ self.coef.float() + self.intercept.float()

    def card(self) -> dict[str, Any]:
        return {"taps": self.taps, "dim": self.dim, "power": self.power, "weight": self.weight,
                "alpha": self.alpha}  # fmt: skip
