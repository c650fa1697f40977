"""The ridge head's gated guard (ours, issue 20; ``finetune.ridge_guard``): MOS = r - lambda * max(0, g).
Shut where the edit detector g is negative, a penalty where it is positive, nothing at all when off; kept
through save/load; fitted by ``attiqa train`` from a ``ridge_pairs`` table's originals and edits."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ft_cfg, write_mos_set
from PIL import Image, ImageFilter

from attiqa.errors import ConfigError, ModelLoadError
from attiqa.models import AttiqaModel, create_backbone, load_model, save_model
from attiqa.models.ridge_head import RidgeHead
from attiqa.scorers import load_scorer
from attiqa.training.finetune import finetune
from attiqa.training.ridge import fit_guard, fit_ridge, ridge_head_from_fit

SHIPPED = Path(__file__).resolve().parents[1] / "attiqa" / "data" / "models" / "attiqa-default.safetensors"


def _fits(dim: int = 6, n: int = 40, seed: int = 0):
    """A real MOS ridge and a real detector on random non-negative 'statistics' (edits = a shifted copy)."""
    gen = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, dim, generator=gen)
    edited = clean + (0.6 + 0.4 * torch.rand(n, dim, generator=gen)) * torch.tensor([1.0] + [0.0] * (dim - 1))
    y = clean @ torch.linspace(1, -1, dim) / dim + 0.5
    fit = fit_ridge(clean, y)
    return fit, fit_guard(fit, clean, edited), clean, edited


def test_the_gate_is_shut_where_the_detector_is_negative_and_subtracts_lambda_g_where_positive():
    fit, guard, clean, edited = _fits()
    plain = ridge_head_from_fit(fit, "depthwise", 1.0, 1.0)
    lam = 0.5
    guarded = ridge_head_from_fit(fit, "depthwise", 1.0, 1.0, guard, lam)
    x = torch.cat([clean, edited])
    with torch.no_grad():
        r, m = plain(x), guarded(x)
        g = guarded.detector((x - fit.center) / fit.scale)
    shut, open_ = g <= 0, g > 0
    assert shut.sum() >= 10 and open_.sum() >= 10  # both sides are exercised
    assert torch.equal(m[shut], r[shut])  # bit for bit: unedited-looking inputs keep the plain MOS
    torch.testing.assert_close(m[open_], r[open_] - lam * g[open_], atol=1e-6, rtol=0)
    # The detector is a ridge fitted -1 / +1: it tells the two groups apart (here almost perfectly).
    assert float((g[: len(clean)] < 0).double().mean()) > 0.9
    assert float((g[len(clean) :] > 0).double().mean()) > 0.9


def test_the_detector_is_fit_ridge_on_the_mos_ridges_standardised_statistics():
    """fit_guard = :func:`fit_ridge` (leave-one-out alpha) of -1 / +1 on r's z, centred, not scaled again."""
    fit, guard, clean, edited = _fits(seed=1)
    z = (torch.cat([clean, edited]) - fit.center) / fit.scale
    direct = fit_ridge(z, torch.cat([-torch.ones(len(clean)), torch.ones(len(edited))]), standardize=False)
    torch.testing.assert_close(z @ guard.coef + guard.bias, direct.predict(z), atol=1e-5, rtol=0)
    assert guard.alpha == direct.alpha


def test_a_statistic_nearly_constant_everywhere_gets_no_large_weight():
    """A dead channel: constant on the MOS photos, varying by 1e-9 on the pair images. Re-standardised on the
    detector's own rows it got a weight ~1e9 (a crop moving it by 1e-4 then scored -7 million through the
    real scorer); on r's statistics it must not move g."""
    fit0, _, clean, edited = _fits(seed=2)
    gen = torch.Generator().manual_seed(3)
    dead = torch.full((len(clean), 1), 3.46e-4)
    clean = torch.cat([clean, dead], 1)
    edited = torch.cat([edited, dead + 1e-9 * torch.randn(len(edited), 1, generator=gen)], 1)
    y = torch.linspace(0, 1, len(clean))
    fit = fit_ridge(clean, y)
    guard = fit_guard(fit, clean, edited)
    probe = (edited - fit.center) / fit.scale
    moved = probe.clone()
    moved[:, -1] += 1e-4 / float(fit.scale[-1])  # the statistic moved by 1e-4 on a new crop
    assert float((moved @ guard.coef - probe @ guard.coef).abs().max()) < 1e-3


def test_a_nearly_dead_statistic_the_ridge_keeps_gets_no_detector_weight():
    """Stop 26: two of Lite0's depthwise statistics have a spread of 1e-5 (median column 0.15), kept by r's
    fit, but float noise that moved by its whole spread between the cached training path and the scorer. A
    detector that leaned on one scored 11.8 MOS points apart on the two paths; columns spread < 1e-3 of the
    median get none of its weight, even where they separate the pair table's rows perfectly."""
    _, _, clean, edited = _fits(seed=4)
    gen = torch.Generator().manual_seed(5)
    noise = lambda n: 2e-4 + 1e-5 * torch.rand(n, 1, generator=gen)  # noqa: E731
    clean = torch.cat([clean, noise(len(clean))], 1)
    edited = torch.cat([edited, noise(len(edited)) + 3e-5], 1)  # separates the two groups by itself
    y = torch.linspace(0, 1, len(clean))
    fit = fit_ridge(clean, y)
    assert float(fit.scale[-1]) < 1e-4  # r keeps the column (its own floor is relative to the value)
    guard = fit_guard(fit, clean, edited)
    assert float(guard.coef[-1]) == 0.0
    assert float(guard.coef[0].abs()) > 0.1  # the real edit direction is still used
    probe = (edited - fit.center) / fit.scale
    moved = probe.clone()
    moved[:, -1] += 18.6  # what the scorer's path did to such a column's z
    torch.testing.assert_close(moved @ guard.coef, probe @ guard.coef, atol=1e-6, rtol=0)


def test_lambda_zero_or_no_detector_is_the_plain_head_bit_for_bit():
    fit, guard, clean, edited = _fits()
    plain = ridge_head_from_fit(fit, "depthwise", 0.5, 0.7)
    for head in (ridge_head_from_fit(fit, "depthwise", 0.5, 0.7, guard, 0.0),
                 ridge_head_from_fit(fit, "depthwise", 0.5, 0.7, None, 0.5)):  # fmt: skip
        assert head.card() == plain.card() and "guard" not in head.card()
        assert list(head.state_dict()) == list(plain.state_dict())  # no guard buffers in the checkpoint
        with torch.no_grad():
            assert torch.equal(head(torch.cat([clean, edited])), plain(torch.cat([clean, edited])))
    with pytest.raises(ValueError, match="finite number >= 0"):
        RidgeHead("depthwise", 4, guard=-0.1)
    with pytest.raises(ValueError, match="finite number >= 0"):
        RidgeHead("depthwise", 4, guard=math.nan)


def test_a_checkpoint_without_a_guard_scores_as_before():
    """The shipped model (no guard): its card and tensors have no guard entries, and its ridge MOS is the
    linear formula of before, bit for bit."""
    model, card = load_model(SHIPPED)
    head = model.ridge
    assert head is not None and head.guard == 0.0 and "guard" not in card["model"]["ridge"]
    assert not any("guard" in k for k in model.state_dict())
    stats = torch.rand(4, head.dim) * 2
    scale = head.scale.float()
    z = (head.transform(stats) - head.center.float()) / torch.where(scale > 0, scale, torch.inf)
    with torch.no_grad():
        assert torch.equal(head(stats), z @ head.coef.float() + head.intercept.float())


def _guarded_model() -> tuple[AttiqaModel, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("efficientnet_lite0_ms"), head_hidden=8, mos_hidden=8).eval()
    model.set_mos_range(0.0, 100.0)
    with torch.no_grad():
        imgs = torch.rand(24, 3, 64, 64) * 2 - 1
        _, stats = model.backbone.forward_with_taps(imgs, "depthwise")
    x = stats.float().sign() * stats.float().abs().sqrt()
    fit = fit_ridge(x[:12], torch.linspace(0, 1, 12))
    guard = fit_guard(fit, x[:12], x[12:])  # "edits": other random images, so the gate opens on some inputs
    model.attach_ridge(ridge_head_from_fit(fit, "depthwise", 0.5, 0.6, guard, 0.4))
    return model, imgs, stats


def test_a_guarded_model_round_trips_through_save_and_load_in_fp32_and_fp16(tmp_path):
    model, imgs, stats = _guarded_model()
    head = model.ridge
    assert head is not None
    with torch.no_grad():
        both = model(imgs).mos
        z = (head.transform(stats) - head.center) / head.scale
        assert (head.detector(z) > 0).any()  # the guard acts on these inputs
    for half in (False, True):
        path = save_model(model, tmp_path / f"m{half}.safetensors", {"stage": "test"}, half=half)
        back, card = load_model(path)
        assert card["model"]["ridge"]["guard"] == 0.4 and back.ridge is not None and back.ridge.guard == 0.4
        with torch.no_grad():
            # fp16 backbone weights move the statistics a little; g reads them as r does (0.01 of 0-100)
            torch.testing.assert_close(back(imgs).mos, both, atol=1e-2 if half else 1e-6, rtol=0)


@pytest.mark.parametrize("guard, why", [(-1.0, "finite number >= 0"), ("big", "finite number >= 0"),
                                        (True, "finite number >= 0")])  # fmt: skip
def test_a_malformed_guard_in_a_card_is_refused_in_one_line(tmp_path, guard, why):
    model, _, _ = _guarded_model()
    path = save_model(model, tmp_path / "m.safetensors", {"stage": "test"})
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    card = json.loads(path.with_suffix(".json").read_text())
    card["model"]["ridge"]["guard"] = guard
    save_file(tensors, str(path), metadata={"attiqa_card": json.dumps(card)})
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=why) as err:
        load_model(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_guard_card_without_its_detector_tensor_is_refused_in_one_line(tmp_path):
    model, _, _ = _guarded_model()
    path = save_model(model, tmp_path / "m.safetensors", {"stage": "test"})
    from safetensors.torch import load_file, save_file

    tensors = {k: v for k, v in load_file(str(path)).items() if k != "ridge.guard_coef"}
    card = json.loads(path.with_suffix(".json").read_text())
    save_file(tensors, str(path), metadata={"attiqa_card": json.dumps(card)})
    with pytest.raises(ModelLoadError, match="ridge.guard_coef is missing") as err:
        load_model(path)
    assert "\n" not in str(err.value)


BOTH = dict(ridge_pairs="p.csv", ridge_taps="depthwise")


@pytest.mark.parametrize("kw, match", [
    (dict(ridge_guard=0.5, ridge_taps="depthwise"), "finetune.ridge_guard: .*set finetune.ridge_pairs"),
    (dict(ridge_guard=0.5, ridge_pairs="p.csv"), "finetune.ridge_guard: .*set finetune.ridge_taps"),
    (dict(ridge_guard=-0.5, **BOTH), "finetune.ridge_guard: .*>= 0"),
    (dict(ridge_guard=math.inf, **BOTH), "finetune.ridge_guard: .*finite"),
    (dict(ridge_guard=math.nan, **BOTH), "finetune.ridge_guard: .*finite"),
])  # fmt: skip
def test_ridge_guard_settings_that_cannot_work_are_refused_in_one_line(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match) as err:
        ft_cfg(tmp_path / "mos.csv", **kw).check()
    assert "\n" not in str(err.value)
    ft_cfg(tmp_path / "mos.csv", ridge_guard=0.5, **BOTH).check()
    ft_cfg(tmp_path / "mos.csv").check()  # the default: off


def test_ridge_guard_is_read_from_a_yaml_config_and_checked_before_any_work(tmp_path):
    from attiqa.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("finetune:\n  csv: mos.csv\n  ridge_taps: depthwise\n  ridge_guard: 0.5\n")
    with pytest.raises(ConfigError, match="ridge_guard: .*set finetune.ridge_pairs") as err:
        load_config(cfg)
    assert "\n" not in str(err.value)


def _oversaturate(img: Image.Image) -> Image.Image:
    from PIL import ImageEnhance

    return ImageEnhance.Contrast(ImageEnhance.Color(img).enhance(2.5)).enhance(1.8).filter(
        ImageFilter.UnsharpMask(radius=2, percent=300, threshold=0))  # fmt: skip


@pytest.mark.slow
def test_finetuning_with_a_guard_lowers_its_edited_images_below_the_plain_head(tmp_path, photos):
    """``attiqa train``'s finetune with ridge_pairs (weight 0: r is the plain ridge) and ridge_guard 0.5:
    the same r, so every difference is the guard's; it must lower the edits of its own pair table (and
    widen their gap to the originals) more than the plain head does, through the real scorer."""
    mos_csv = write_mos_set(tmp_path / "mos", photos, split_column=True)
    img_dir = mos_csv.parent / "images"
    with open(mos_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if r["image"].endswith("_blur0.jpg") and r["split"] == "train"]
    pairs = tmp_path / "pairs.csv"
    originals, edits = [], []
    with open(pairs, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["better", "worse"])
        for r in rows:
            out = r["image"].replace("_blur0", "_over")
            _oversaturate(Image.open(img_dir / r["image"]).convert("RGB")).save(img_dir / out, quality=95)
            w.writerow([img_dir / r["image"], img_dir / out])
            originals.append(img_dir / r["image"])
            edits.append(img_dir / out)

    def run(name: str, guard: float) -> Path:
        cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=1,
                     ridge_taps="depthwise", ridge_weight=1.0, ridge_pairs=str(pairs), ridge_pair_weight=0.0,
                     ridge_guard=guard).check()  # fmt: skip
        cfg = replace(cfg, backbone="efficientnet_lite0_ms", pretrained_backbone=True)
        finetune(cfg, None, tmp_path / name, progress=False)
        return tmp_path / name / "finetune" / "last.safetensors"

    scores = {}
    for name, guard in (("plain", 0.0), ("guard", 0.5)):
        ckpt = run(name, guard)
        scores[name] = np.asarray(load_scorer(ckpt)(originals + edits)["mos"])
    n = len(originals)
    gap = {k: v[:n] - v[n:] for k, v in scores.items()}
    assert (scores["guard"][n:] < scores["plain"][n:]).all()  # every edit is penalised
    assert (gap["guard"] > gap["plain"]).all() and (gap["guard"] > 0).all()
    assert (scores["guard"] <= scores["plain"] + 1e-4).all()  # a penalty never raises a score
    model, card = load_model(ckpt)
    assert model.ridge is not None and model.ridge.guard == 0.5
    info = card["ridge"]["guard"]
    assert info["lambda"] == 0.5 and info["edited"] == n and info["clean"] >= n
    assert info["open_edits"] == 1.0 and "pairs" not in card["ridge"]  # weight 0: no pairs in r's fit
