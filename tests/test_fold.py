"""BatchNorm folding for inference (attiqa.models.fold): same scores and tap statistics, never in training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import ft_cfg, write_mos_set
from torch import nn

from attiqa.io.checkpoints import load_checkpoint
from attiqa.models import AttiqaModel, create_backbone, load_model, save_model
from attiqa.models.backbones import BACKBONES, TAP_SETS, tap_points
from attiqa.models.fold import FoldedNorm, fold_batchnorm, is_folded
from attiqa.models.transforms import FiveCropTest
from attiqa.scorers.attiqa_scorer import AttiqaScorer
from attiqa.scorers.zoo import resolve_weights
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import backbone_fingerprint, cached_features
from attiqa.training.finetune import finetune


def _random_bn_statistics(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affines (a fresh layer's mean 0 / var 1 would fold to a no-op)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(1.0 + 0.2 * torch.randn(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))


def _n_bn2d(net: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_registry_backbone_folds_to_the_same_features(name):
    """Every Conv2d -> BatchNorm2d pair of every registry backbone is folded, and the features agree."""
    torch.manual_seed(0)
    bb = create_backbone(name, pretrained=False)
    _random_bn_statistics(bb)
    bb.eval()
    folded = fold_batchnorm(copy.deepcopy(bb))
    assert _n_bn2d(folded) == 0 and is_folded(folded) and not is_folded(bb)
    assert sum(isinstance(m, FoldedNorm) for m in folded.modules()) == _n_bn2d(bb)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref, got = bb(x), folded(x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_tap_statistics_of_a_folded_backbone_are_the_same():
    """The ridge head's depthwise taps (the activations after each depthwise convolution) are read at the
    same modules, with the same widths, and give the same statistics, for every named tap set."""
    torch.manual_seed(0)
    bb = create_backbone("efficientnet_lite0_ms", pretrained=False)
    _random_bn_statistics(bb, seed=2)
    bb.eval()
    folded = fold_batchnorm(copy.deepcopy(bb))
    x = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    for taps in TAP_SETS:
        before, after = tap_points(bb.body.net, taps), tap_points(folded.body.net, taps)
        assert after[1] == before[1]
        assert all(isinstance(t, FoldedNorm) for t in after[0]) or taps == "stages"
        with torch.inference_mode():
            (f0, s0), (f1, s1) = bb.forward_with_taps(x, taps), folded.forward_with_taps(x, taps)
        # float32 rounding of the folded weights: 1e-5 of the largest value (measured: ~2e-6 of it)
        torch.testing.assert_close(f1, f0, rtol=1e-5, atol=1e-5 * float(f0.abs().max()))
        torch.testing.assert_close(s1, s0, rtol=1e-5, atol=1e-5 * float(s0.abs().max()))


def test_only_eval_mode_pairs_are_folded_and_conv_layout_is_kept():
    bb = create_backbone("tiny", pretrained=False)  # channels_last weights
    _random_bn_statistics(bb)
    train_mode = fold_batchnorm(copy.deepcopy(bb).train())
    assert _n_bn2d(train_mode) == _n_bn2d(bb) and not is_folded(train_mode)  # batch statistics: not foldable
    folded = fold_batchnorm(copy.deepcopy(bb).eval())
    convs = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.bias is not None for c in convs)
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)


@pytest.fixture(scope="module")
def default_scorers():
    ckpt = resolve_weights("attiqa-default")
    return AttiqaScorer(ckpt, fold=False), AttiqaScorer(ckpt)


def test_the_bundled_default_model_scores_real_photos_the_same_folded(default_scorers, photos):
    plain, folded = default_scorers
    assert folded.folded and is_folded(folded.model) and _n_bn2d(folded.model) == 0
    assert not is_folded(plain.model) and _n_bn2d(plain.model) > 0
    images = list(photos.values())
    a, b = plain(images), folded(images)
    np.testing.assert_allclose(b["mos"], a["mos"], rtol=0, atol=1e-3)
    for attr in plain.columns[1:]:
        np.testing.assert_allclose(b[attr], a[attr], rtol=0, atol=1e-4, err_msg=attr)
    # the ridge head's tap statistics on the model's own five crops of a real photo
    x = plain.transform(images[0])
    taps = plain.model.ridge.taps
    with torch.inference_mode():
        _, s0 = plain.model.backbone.forward_with_taps(x, taps)
        _, s1 = folded.model.backbone.forward_with_taps(x, taps)
    torch.testing.assert_close(s1, s0, rtol=1e-4, atol=1e-5)


def test_a_folded_network_cannot_train_nor_use_a_feature_cache(default_scorers, tmp_path, photos):
    _, folded = default_scorers
    with pytest.raises(RuntimeError, match="folded"):
        folded.model.train()
    folded.model.eval()  # (the parents' flags were set before the refusal; the fixture is shared)
    bb = create_backbone("tiny", pretrained=False).eval()
    fold_batchnorm(bb)
    with pytest.raises(ValueError, match="folded"):
        backbone_fingerprint(bb)
    csv_path = write_mos_set(tmp_path / "data", dict(list(photos.items())[:1]), split_column=True)
    ds = MosDataset(csv_path, None, FiveCropTest(bb.mean, bb.std, 72, 64), on_error="skip")
    view = {"kind": "five_crop", "resize_shorter": 72, "crop": 64}
    with pytest.raises(ValueError, match="folded"):
        cached_features(bb, ds, view, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))


def test_training_never_folds_and_its_checkpoint_keeps_batchnorm(tmp_path, photos, monkeypatch):
    """A cached fine-tuning run builds, trains and saves the checkpoint's own layers (no FoldedNorm is ever
    made); loading it for training gives them back, and only the scorer folds its own copy."""

    def refuse(*_a, **_k):
        raise AssertionError("a FoldedNorm was made during training")

    csv_path = write_mos_set(tmp_path / "data", photos, split_column=True)
    cfg = ft_cfg(csv_path, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=2)
    with monkeypatch.context() as m:
        m.setattr(FoldedNorm, "__init__", refuse)
        res = finetune(cfg, None, tmp_path / "run", progress=False)
    tensors, _ = load_checkpoint(res.best_checkpoint)
    assert any(k.endswith("running_var") for k in tensors)
    model, _ = load_model(res.best_checkpoint)
    assert not is_folded(model) and _n_bn2d(model) > 0
    scorer = AttiqaScorer(res.best_checkpoint)
    assert is_folded(scorer.model) and not is_folded(model)
    # saving a model from load_model round-trips the checkpoint's keys (no folded biases)
    again = save_model(model, tmp_path / "again.safetensors", card={"name": "t"})
    assert set(load_checkpoint(again)[0]) == set(tensors)
    assert isinstance(model, AttiqaModel)
