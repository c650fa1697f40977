"""Our EfficientNet-Lite (attiqa.models.efficientnet_lite) against timm's ``efficientnet_lite{0,1,2}``: the
same module names, shapes and ImageNet weights, the same features, tap statistics and gradients bit for bit
(eval and train mode, folded and not, real photos); the shipped models score the same; and loading and
scoring the default model imports neither timm nor torchvision. timm is imported only here (skipped without
it)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, resized, skimage_rgb
from PIL import Image
from torch import nn

from attiqa.models.backbones import (
    MultiLevelStats,
    create_backbone,
    get_spec,
    lite_package_weights,
    map_lite_keys,
)
from attiqa.models.efficientnet_lite import BatchNormAct2d, EfficientNetLite, imagenet_state_shapes
from attiqa.models.fold import fold_batchnorm
from attiqa.models.transforms import CenterCropTest

VARIANTS = (0, 1, 2)
PHOTOS = ("chelsea", "coffee", "astronaut")


@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")


def _timm_lite(timm, variant: int, classes: int = 0) -> nn.Module:
    return timm.create_model(f"efficientnet_lite{variant}", pretrained=False, num_classes=classes)


def _randomise_batchnorm(net: nn.Module, seed: int) -> None:
    """Non-trivial BN statistics and affines (fresh ones make every normalisation nearly the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))


def _random_pair(timm, variant: int, seed: int = 0) -> tuple[nn.Module, EfficientNetLite]:
    """timm's net with random weights and BN statistics, and ours carrying the same tensors."""
    torch.manual_seed(seed)
    ref = _timm_lite(timm, variant)
    _randomise_batchnorm(ref, seed)
    ours = EfficientNetLite(variant)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def _imagenet_pair(timm, variant: int) -> tuple[nn.Module, nn.Module]:
    """timm's net loaded as before (the package mapped onto timm's full key list), and ours as the registry
    loads it now; every tensor must be the same."""
    arch = f"efficientnet_lite{variant}"
    full = _timm_lite(timm, variant, 1000).state_dict()
    mapped = map_lite_keys(lite_package_weights(arch), full, arch)
    ref = _timm_lite(timm, variant)
    ref.load_state_dict({k: v for k, v in mapped.items() if not k.startswith("classifier.")}, strict=True)
    ours = create_backbone(arch).body
    a, b = ref.state_dict(), ours.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return ref, ours


def _photo_batch(variant: int) -> torch.Tensor:
    spec = get_spec(f"efficientnet_lite{variant}")
    size = spec.input_size
    t = CenterCropTest(spec.mean, spec.std, resize_shorter=size, crop_size=size)
    return torch.stack([t(skimage_rgb(n)) for n in PHOTOS]).contiguous(memory_format=torch.channels_last)


def _outputs(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Pooled features, then the stage and depthwise tap statistics (MultiLevelStats reads any net with
    timm's names) of one eval-mode batch."""
    with torch.inference_mode():
        return [net(x), *MultiLevelStats(net).raw_sets(x, ("stages", "depthwise", "depthwise_late"))]


def _assert_bitwise(got: list[torch.Tensor], ref: list[torch.Tensor]) -> None:
    assert len(got) == len(ref)
    for i, (a, b) in enumerate(zip(got, ref, strict=True)):
        assert a.shape == b.shape and torch.equal(a, b), (i, float((a - b).abs().max()))


@pytest.mark.parametrize("variant", VARIANTS)
def test_module_tree_matches_timm(timm, variant):
    """Keys, shapes, convolution geometry, normalisation settings, activations and skips as timm's."""
    ref, ours = _timm_lite(timm, variant), EfficientNetLite(variant)
    a, b = ref.state_dict(), ours.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)
    assert ours.num_features == ref.num_features == 1280
    assert [len(s) for s in ours.blocks] == [len(s) for s in ref.blocks]
    mods = dict(ours.named_modules())
    n_conv = n_act = 0
    for name, m in ref.named_modules():
        if isinstance(m, nn.Conv2d):
            o = mods[name]
            assert isinstance(o, nn.Conv2d)
            geometry = ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
            assert all(getattr(o, g) == getattr(m, g) for g in geometry), name
            n_conv += 1
        elif isinstance(m, nn.BatchNorm2d):
            o = mods[name]
            assert isinstance(o, nn.BatchNorm2d) and (o.eps, o.momentum) == (m.eps, m.momentum), name
            relu6 = isinstance(getattr(m, "act", None), nn.ReLU6)
            assert isinstance(o, BatchNormAct2d) == relu6 and not isinstance(
                getattr(m, "drop", None), nn.Dropout
            )
            n_act += relu6
        elif hasattr(m, "has_skip"):
            assert mods[name].has_skip == m.has_skip and isinstance(m.drop_path, nn.Identity), name
    assert n_conv == sum(isinstance(m, nn.Conv2d) for m in ours.modules())
    assert n_act == sum(isinstance(m, BatchNormAct2d) for m in ours.modules())
    # the package's key order: our state dict + the ImageNet classifier, as timm's full net's
    full = _timm_lite(timm, variant, 1000).state_dict()
    shapes = imagenet_state_shapes(ours)
    assert list(shapes) == list(full) and all(shapes[k].shape == full[k].shape for k in full)


@pytest.mark.parametrize("variant", VARIANTS)
def test_imagenet_weights_give_timms_features_and_taps_bit_for_bit_on_real_photos(timm, variant):
    """The package's weights load into ours exactly as they did into timm's; on real photos at the native
    size (and an odd-sized input: padding at the borders) the pooled features and every tap statistic are
    the same bits, with the BatchNorms as they are and folded into the convolutions."""
    ref, ours = _imagenet_pair(timm, variant)
    ref, ours = ref.eval().to(memory_format=torch.channels_last), ours.eval()
    x = _photo_batch(variant)
    odd = x[:2, :, 3:204, 5:162].contiguous(memory_format=torch.channels_last)
    for inp in (x, odd):
        _assert_bitwise(_outputs(ours, inp), _outputs(ref, inp))
    ref_f, ours_f = fold_batchnorm(copy.deepcopy(ref)), fold_batchnorm(copy.deepcopy(ours))
    for inp in (x, odd):
        _assert_bitwise(_outputs(ours_f, inp), _outputs(ref_f, inp))


@pytest.mark.parametrize("variant", (0, 2))
def test_random_weights_give_timms_features_and_taps_bit_for_bit(timm, variant):
    ref, ours = _random_pair(timm, variant, seed=variant)
    ref, ours = (
        ref.eval().to(memory_format=torch.channels_last),
        ours.eval().to(memory_format=torch.channels_last),
    )
    x = _photo_batch(variant)
    _assert_bitwise(_outputs(ours, x), _outputs(ref, x))
    _assert_bitwise(_outputs(fold_batchnorm(ours), x), _outputs(fold_batchnorm(ref), x))


@pytest.mark.parametrize("variant", (0, 1))
def test_train_mode_forward_backward_matches_timm_bit_for_bit(timm, variant):
    """Training runs the same net with BatchNorm in train mode: the same features and tap statistics, the
    same gradients for every parameter and the same updated running statistics."""
    ref, ours = _random_pair(timm, variant, seed=3)
    x = _photo_batch(variant)[:, :, :96, :96].contiguous(memory_format=torch.channels_last)
    results = []
    for net in (ref, ours):
        net = net.train().to(memory_format=torch.channels_last)
        outs = [net(x), *MultiLevelStats(net).raw_sets(x, ("stages", "depthwise"))]
        g = torch.Generator().manual_seed(7)
        loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)
        loss.backward()
        grads = {k: p.grad for k, p in net.named_parameters()}
        assert all(v is not None for v in grads.values())
        results.append(([o.detach() for o in outs], grads, net.state_dict()))
    (o_ref, g_ref, s_ref), (o_ours, g_ours, s_ours) = results
    _assert_bitwise(o_ours, o_ref)
    assert list(g_ref) == list(g_ours)
    for k in g_ref:
        assert torch.equal(g_ours[k], g_ref[k]), k
    for k in s_ref:
        assert torch.equal(s_ours[k], s_ref[k]), k  # running mean/var and num_batches_tracked moved alike


def _real_photos(n: int = 3) -> list[str | Image.Image]:
    """The first ``n`` photos of clive-dev and AGIQA-3k under ../shared/data, or scikit-image's (the other
    comparisons' photos) on a clone without it, so the comparison runs everywhere."""
    found: list[str | Image.Image] = []
    for folder in (SHARED_DATA / "clive-dev" / "images", SHARED_DATA / "agiqa3k-dev" / "AGIQA-3K"):
        found += [
            str(p) for p in sorted(folder.glob("*"))[:n] if p.suffix.lower() in (".jpg", ".png", ".bmp")
        ]
    return found or [skimage_rgb(name) for name in PHOTOS]


@pytest.mark.parametrize("model", ["attiqa-default", "attiqa-agiqa3k"])
def test_shipped_models_score_real_photos_as_with_timms_network(timm, model):
    """The shipped checkpoint scored (folded, as ``attiqa score`` does) with our network and with timm's
    carrying the same weights: the same MOS and attributes on real photos (clive-dev and AGIQA-3k ones when
    ../shared/data is present, scikit-image's otherwise)."""
    from attiqa.scorers.attiqa_scorer import AttiqaScorer
    from attiqa.scorers.zoo import resolve_weights

    ckpt = resolve_weights(model)
    ours = AttiqaScorer(ckpt)
    ref = AttiqaScorer(ckpt, fold=False)
    body = ref.model.backbone.body
    assert isinstance(body, MultiLevelStats) and isinstance(body.net, EfficientNetLite)
    net = timm.create_model(get_spec(ref.model.backbone.name).arch, pretrained=False, num_classes=0)
    net.load_state_dict(body.net.state_dict(), strict=True)
    body.net = net.eval().to(memory_format=torch.channels_last)
    fold_batchnorm(ref.model)
    images = [*_real_photos(), resized(skimage_rgb("coffee"), shorter=300)]
    a, b = ref(images), ours(images)
    for col in ours.columns:
        np.testing.assert_array_equal(b[col], a[col], err_msg=col)


def test_default_model_loads_and_scores_without_timm_or_torchvision(tmp_path):
    """``load_scorer`` + scoring one photo, in a fresh interpreter: neither timm nor torchvision is imported
    (importing them costs ~5 s and ~190 MiB at every start)."""
    photo = tmp_path / "cat.jpg"
    resized(skimage_rgb("chelsea"), shorter=128).save(photo)
    code = (
        "import json, sys\n"
        "import attiqa\n"
        f"out = {{m: float(attiqa.load_scorer(m)([{str(photo)!r}])['mos'][0])"
        " for m in ('attiqa-default', 'attiqa-agiqa3k')}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('timm', 'torchvision'))\n"
        "print(json.dumps({'mos': out, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["heavy"] == []
    assert all(np.isfinite(v) for v in res["mos"].values()), res


def test_recomputed_blocks_train_the_same_bit_for_bit_without_keeping_their_activations():
    """``checkpoint_blocks`` (``pretrain.checkpoint_activations``, on in ``attiqa demo --train``): a training
    step gives the same features, gradients and running statistics bit for bit (each block's batch-norm
    statistics move once, not again in the recomputation), and the backward pass keeps only the blocks'
    inputs, not the activations inside them (a step on 32 crops of 224 kept 2,420 MiB of them)."""
    x = _photo_batch(0)[:, :, :96, :96].contiguous(memory_format=torch.channels_last)
    torch.manual_seed(5)
    plain = EfficientNetLite(0).train().to(memory_format=torch.channels_last)
    recomputing = copy.deepcopy(plain)
    recomputing.checkpoint_blocks = True
    results = []
    for net in (plain, recomputing):
        kept: list[torch.Tensor] = []

        def keep(t: torch.Tensor, kept: list[torch.Tensor] = kept) -> torch.Tensor:
            kept.append(t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            out = net(x)
        out.mul(torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = {k: p.grad for k, p in net.named_parameters()}
        widths = {t.shape[1] for t in kept if t.dim() == 4}
        results.append((out.detach(), grads, net.state_dict(), len(kept), widths))
    (o_p, g_p, s_p, n_p, w_p), (o_r, g_r, s_r, n_r, w_r) = results
    assert torch.equal(o_r, o_p)
    for k in g_p:
        assert g_p[k] is not None and torch.equal(g_r[k], g_p[k]), k
    for k in s_p:
        assert torch.equal(s_r[k], s_p[k]), k  # num_batches_tracked 1, not 2
    assert 144 in w_p and 144 not in w_r  # stage 2's expanded activations (24 x 6) are no longer kept
    assert n_r < n_p / 4
    # eval mode and no-grad passes (scoring, calibration) run the blocks as before
    recomputing.eval()
    with torch.no_grad():
        assert torch.equal(recomputing(x), plain.eval()(x))


def test_checkpoint_activations_is_one_line_for_a_backbone_that_cannot_recompute_its_blocks():
    """The tapped variants read activations through hooks a recomputation would call twice; ResNet-50 has no
    recomputing path: refused when the config is checked, naming the key and the backbones it serves."""
    from attiqa.config import PretrainConfig, SettingError
    from attiqa.demo import demo_pretrain_config

    for name in ("efficientnet_lite0_ms", "resnet50"):
        with pytest.raises(SettingError, match=rf"pretrain.checkpoint_activations: only .* \(not {name}\)"):
            PretrainConfig(backbone=name, checkpoint_activations=True).check()
    assert demo_pretrain_config().check().checkpoint_activations  # the demo's own setting passes
