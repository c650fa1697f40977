"""Ranking pairs in the ridge fit (ours, issue 20): the squared-hinge fit is the optimum of its objective,
and a fine-tuning run with ``ridge_pairs`` learns from them that "sharper" is not always better."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import ft_cfg, write_mos_set
from PIL import Image, ImageFilter

from attiqa.errors import AttiqaError, ConfigError
from attiqa.models import load_model
from attiqa.scorers import load_scorer
from attiqa.training.finetune import finetune
from attiqa.training.ridge import fit_ridge, fit_ridge_pairs, read_pairs_csv


def _objective_gradient(fit, x, y, better, worse, weight, margin) -> np.ndarray:
    """Gradient of |Z w + b - y|^2 + s^2 sum max(0, m - d w)^2 + alpha |w|^2 at the fit (float64)."""
    c, sc = fit.center.double().numpy(), fit.scale.double().numpy()
    z = (x.double().numpy() - c) / sc
    d = (better.double().numpy() - worse.double().numpy()) / sc
    w = fit.coef.double().numpy()
    s2 = weight * len(x) / len(better)
    r = z @ w + fit.intercept - y.double().numpy()
    hinge = np.maximum(0.0, margin - d @ w)
    return 2 * z.T @ r - 2 * s2 * d.T @ hinge + 2 * fit.alpha * w


def test_the_pair_fit_is_the_optimum_of_its_squared_hinge_objective():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 12, generator=gen, dtype=torch.float64)
    y = x[:, 0] + 0.5 * x[:, 1] + 0.1 * torch.randn(40, generator=gen, dtype=torch.float64)
    better = torch.randn(30, 12, generator=gen, dtype=torch.float64)
    worse = better.clone()
    worse[:, 1] += 1.0  # "more of feature 1" is worse in every pair, though the MOS rows reward it
    plain = fit_ridge(x, y)
    fit = fit_ridge_pairs(x, y, better, worse, weight=1.0, margin=0.2)
    assert fit.alpha == plain.alpha and fit.intercept == pytest.approx(float(y.mean()))
    grad = _objective_gradient(fit, x, y, better, worse, 1.0, 0.2)
    assert np.abs(grad).max() < 1e-3 * (1 + np.abs(fit.coef.numpy()).max())
    gap = lambda f: (f.predict(better) - f.predict(worse)).double()  # noqa: E731
    assert (gap(plain) < 0).all() and (gap(fit) > gap(plain)).all()
    strong = fit_ridge_pairs(x, y, better, worse, weight=100.0, margin=0.2)  # the pairs outweigh the MOS rows
    assert (gap(strong) > 0).all()
    # No pairs, or weight 0: exactly the plain ridge.
    same = fit_ridge_pairs(x, y, better[:0], worse[:0], weight=1.0, margin=0.2)
    torch.testing.assert_close(same.coef, plain.coef)
    torch.testing.assert_close(fit_ridge_pairs(x, y, better, worse, 0.0, 0.2).coef, plain.coef)


def test_a_pair_table_needs_better_and_worse_columns(tmp_path):
    bad = tmp_path / "pairs.csv"
    bad.write_text("image,mos\na.png,1\n")
    with pytest.raises(AttiqaError, match="needs columns better,worse") as err:
        read_pairs_csv(bad)
    assert "\n" not in str(err.value)
    good = tmp_path / "good.csv"
    good.write_text("better,worse\na.png,b.png\na.png,c.png\n")
    paths, pairs = read_pairs_csv(good)
    assert paths == [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    assert pairs.tolist() == [[0, 1], [0, 2]]


def test_a_missing_pair_table_is_refused_at_config_load(tmp_path):
    from attiqa.config import TrainConfig, check_inputs

    mos = tmp_path / "mos.csv"
    mos.write_text("image,mos\na.png,1\n")
    cfg = TrainConfig(finetune=ft_cfg(mos, ridge_pairs=str(tmp_path / "nope.csv")), pretrained_checkpoint="")
    with pytest.raises(ConfigError, match="finetune.ridge_pairs: .*nope.csv not found"):
        check_inputs(cfg, "cfg")


def _oversharpen(img: Image.Image) -> Image.Image:
    return img.filter(ImageFilter.UnsharpMask(radius=2, percent=400, threshold=0))


@pytest.mark.slow
def test_finetuning_with_ranking_pairs_ranks_held_out_oversharpened_photos_below_their_originals(
    tmp_path, photos
):
    """MOS rows say only "sharper is better" (blur levels); pairs made from the TRAINING photos say an
    over-sharpened copy is worse than its original. The fitted head must carry that to the held-out photos."""
    mos_csv = write_mos_set(tmp_path / "mos", photos, split_column=True)
    img_dir = mos_csv.parent / "images"
    with open(mos_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if r["image"].endswith("_blur0.jpg")]
    sharp = {}
    for r in rows:
        out = r["image"].replace("_blur0", "_oversharp")
        _oversharpen(Image.open(img_dir / r["image"]).convert("RGB")).save(img_dir / out, quality=95)
        sharp[r["image"]] = out
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["better", "worse"])
        train = [r["image"] for r in rows if r["split"] == "train"]
        w.writerows([img_dir / t, img_dir / sharp[t]] for t in train)

    def run(name: str, **kw):
        cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=1,
                     ridge_taps="depthwise", ridge_weight=1.0, **kw)  # fmt: skip
        cfg = replace(cfg, backbone="efficientnet_lite0_ms", pretrained_backbone=True)
        finetune(cfg, None, tmp_path / name, progress=False)
        return tmp_path / name / "finetune" / "last.safetensors"

    held = [r["image"] for r in rows if r["split"] == "test"]
    gaps = {}
    for name, kw in (("plain", {}), ("pairs", dict(ridge_pairs=str(pairs), ridge_pair_margin=0.3))):
        ckpt = run(name, **kw)
        mos = load_scorer(ckpt)([img_dir / h for h in held] + [img_dir / sharp[h] for h in held])["mos"]
        gaps[name] = np.asarray(mos[: len(held)]) - np.asarray(mos[len(held) :])
    assert (gaps["plain"] < 0).all()  # the defect: over-sharpening is paid for
    assert (gaps["pairs"] > 0).all()  # fixed on contents no pair came from
    _, card = load_model(ckpt)
    info = card["ridge"]["pairs"]
    assert info["csv"] == "pairs.csv" and info["n"] == 8 and info["ranked_train"] == 1.0
    assert info["weight"] == 0.3 and info["margin"] == 0.3 and info["skipped"] == 0


def test_the_late_depthwise_tap_set_is_the_depthwise_one_without_the_first_three_blocks(photos):
    """``depthwise_late`` (the cheaper ridge input): the same statistics, minus the three highest-resolution
    blocks' columns (each tap gives its means, then its standard deviations; the final features close)."""
    from attiqa.models import create_backbone
    from attiqa.models.backbones import tap_points
    from attiqa.models.transforms import CenterCropTest

    bb = create_backbone("efficientnet_lite0_ms").eval()
    x = CenterCropTest(bb.mean, bb.std, 160, 128)(next(iter(photos.values()))).unsqueeze(0)
    with torch.no_grad():
        full = bb.tap_view("depthwise").forward_raw(x)[0]
        late = bb.tap_view("depthwise_late").forward_raw(x)[0]
    skip = 2 * sum(tap_points(bb.body.net, "depthwise")[1][:3])
    assert late.shape[0] == full.shape[0] - skip
    torch.testing.assert_close(late, full[skip:])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("better,worse,better\na.png,b.png,c.png\n", "column 'better' appears twice in the header"),
        ("better,worse\na.png,b.png\na.png,b.png,c.png\n", "pairs.csv:3: 3 cells under a header of 2"),
        ("better,Better,worse\na.png,b.png,c.png\n", "columns 'better' and 'Better' differ only in case"),
    ],
)
def test_a_pair_table_is_read_by_the_one_csv_reader(tmp_path, text, message):
    """**Was** (session 41): its own ``csv.DictReader`` — ``Better,Worse`` refused as "needs columns
    better,worse", a column named twice read from its last copy, a row with an unquoted comma in a name
    (three cells) read as a pair without a word. Now :func:`attiqa.datasets.readers.read_csv`'s lines."""
    (tmp_path / "upper.csv").write_text("Better,WORSE\na.png,b.png\n")
    assert read_pairs_csv(tmp_path / "upper.csv")[1].tolist() == [[0, 1]]
    bad = tmp_path / "pairs.csv"
    bad.write_text(text)
    with pytest.raises(AttiqaError, match=message) as err:
        read_pairs_csv(bad)
    assert "\n" not in str(err.value)
