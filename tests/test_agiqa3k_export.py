"""The ridge head survives an fp16 export: constant channels get no weight (issue 15).

Found when attiqa-agiqa3k moved to EfficientNet-Lite1: four of its depthwise statistics are constant channels
whose values (0.65-1.29) vary over the training images only by float32 rounding (spread 4e-9-8e-9). The fit
standardised that noise and weighted it; the fp16 backbone moved those values by ~1e-3 (~1e5 spreads), and
every MOS by +24. The fit now treats a spread below 1e-6 of the value as constant."""

from __future__ import annotations

import torch

from attiqa.training.ridge import fit_ridge


def test_a_constant_channel_with_float32_noise_gets_no_weight():
    g = torch.Generator().manual_seed(0)
    n = 200
    signal = torch.randn(n, 6, generator=g)
    y = signal @ torch.tensor([1.0, -0.5, 0.3, 0.0, 0.2, 0.1]) + 0.1 * torch.randn(n, generator=g)
    # a constant channel's statistic as float32 arithmetic leaves it: 0.8538 +- a few ulps
    const = (torch.full((n, 1), 0.8538) + 1e-7 * torch.randint(-1, 2, (n, 1), generator=g)).float()
    x = torch.cat([signal, const], 1).float()
    fit = fit_ridge(x, y)
    base = fit.predict(x)
    shifted = x.clone()
    shifted[:, -1] += 2.4e-4  # what rounding 0.8538 to fp16 does to it
    assert float((fit.predict(shifted) - base).abs().max()) < 1e-4
    # the signal columns are still used: the fit explains most of the variance
    assert float(((base - y) ** 2).mean() / y.var()) < 0.05
    # a real feature with a small absolute spread (1e-5 at a value of 3e-4, as one Lite1 statistic) is kept
    small = 3e-4 + 1e-5 * signal[:, :1]
    fit2 = fit_ridge(torch.cat([small, signal[:, 1:]], 1).float(), y)
    assert float(fit2.scale[0]) < 1e-4 and abs(float(fit2.coef[0])) > 0.1
