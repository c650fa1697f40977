"""Logistic fit, scatter plot, score cache and ``evaluate`` on real photos degraded at known levels."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from helpers import degraded_agiqa3k_root
from PIL import Image

from attiqa.datasets import get_dataset
from attiqa.distortions import apply_distortion
from attiqa.errors import AttiqaError
from attiqa.evaluation.cache import ScoreCache, score_cache_key
from attiqa.evaluation.evaluate import evaluate
from attiqa.evaluation.logistic import fit_logistic, fitted_metrics, logistic4, plcc_after_fit
from attiqa.evaluation.metrics import correlations, plcc, rmse
from attiqa.evaluation.plots import scatter_plot
from attiqa.io.images import content_key
from attiqa.scorers import load_scorer

SCORES = SHARED_DATA / "scores"

# ------------------------------------------------------------------------------------------------------
# Logistic fit


def test_logistic_fit_recovers_the_generating_curve():
    rng = np.random.default_rng(0)
    truth = (4.5, 1.2, 30.0, 6.0)
    x = rng.uniform(0, 60, 400)
    fit = fit_logistic(x, logistic4(x, *truth))
    assert fit.method == "logistic"
    assert np.allclose(fit.params, truth, rtol=1e-3)
    assert np.allclose(fit(x), logistic4(x, *truth), atol=1e-6)


def test_logistic_fit_is_scale_free_and_handles_decreasing_relations():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 300)
    y = logistic4(x, 90, 10, 0.6, 0.08) + rng.normal(0, 3, 300)
    base = plcc_after_fit(x, y)
    assert base > plcc(x, y)  # the curve saturates: a line fits worse
    assert plcc_after_fit(x * 1e6 + 5e8, y) == pytest.approx(base, abs=1e-6)
    down = fit_logistic(-x, y)
    assert down.method == "logistic" and plcc_after_fit(-x, y) == pytest.approx(-base, abs=1e-6)  # signed
    assert down(np.array([-1.0]))[0] > down(np.array([0.0]))[0]  # decreasing in x
    m = fitted_metrics(x, y)
    assert m["rmse_fit"] == pytest.approx(rmse(m["fit"](x), y)) and m["rmse_fit"] < np.std(y)


def test_logistic_fit_degenerate_inputs_and_fallback():
    assert fit_logistic([1, 1, 1, 1, 1, 1], [1, 2, 3, 4, 5, 6]).method == "none"
    assert np.isnan(plcc_after_fit([1, 1, 1, 1, 1, 1], [1, 2, 3, 4, 5, 6]))
    assert fit_logistic([1, 2, 3], [1, 3, 2]).method == "linear"  # too few points for 4 parameters
    x = np.array([1, 2, 3, 4, 5, 6, np.nan, 8.0])
    y = np.array([1, 2, 3, 4, 5, 6, 7, np.inf])
    assert fit_logistic(x, y).n == 6  # non-finite pairs dropped
    rng = np.random.default_rng(2)
    xs, ys = rng.normal(size=50), rng.normal(size=50)
    failed = fit_logistic(xs, ys, maxfev=1)  # the optimiser cannot converge in one evaluation
    assert failed.method == "linear" and "linear" in failed.message
    assert plcc(failed(xs), ys) == pytest.approx(abs(plcc(xs, ys)))


def test_plcc_after_the_fit_keeps_the_sign_of_the_relationship():
    """Session 40: a decreasing relation (a lower-is-better score against MOS) gave a positive PLCC after
    the fit (the fitted values correlate positively with MOS whatever the direction); the plain PLCC was
    negative. Now both fits (the logistic and the line it may fall back to) keep the sign."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 200)
    y = logistic4(x, 10, 90, 0.5, 0.1) + rng.normal(0, 3, 200)  # falls with x
    assert fit_logistic(x, y).method == "logistic" and fit_logistic(x, y).direction == -1
    assert plcc(x, y) < 0 and plcc_after_fit(x, y) < plcc(x, y)  # was +0.97
    assert fitted_metrics(x, y)["plcc_fit"] == pytest.approx(plcc_after_fit(x, y))
    line = -2 * x + rng.normal(0, 0.5, 200)
    assert fit_logistic(x, line).method == "linear"
    assert plcc_after_fit(x, line) == pytest.approx(plcc(x, line))  # negative, as the plain PLCC


def test_the_logistic_is_kept_only_when_it_beats_a_line_by_aicc():
    """Session 40: the logistic was kept whenever its squared error was below the line's, which its two
    extra parameters almost always give (noise fitted); now by AICc, and from 7 points on."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 40)
    y = logistic4(x, 90, 10, 0.5, 0.6) + rng.normal(0, 3, 40)  # a wide curve: nearly straight on [0, 1]
    fit = fit_logistic(x, y)
    assert fit.method == "linear" and "AICc" in fit.message  # was "logistic"
    assert plcc_after_fit(x, y) == pytest.approx(plcc(x, y))
    x6 = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert fit_logistic(x6, logistic4(x6, 5, 1, 0.5, 0.1)).method == "linear"  # 6 points: was logistic
    x7 = np.linspace(0, 1, 7)
    assert fit_logistic(x7, logistic4(x7, 5, 1, 0.5, 0.1)).method == "logistic"
    saturating = logistic4(x, 90, 10, 0.6, 0.08) + rng.normal(0, 3, 40)
    assert fit_logistic(x, saturating).method == "logistic"


def test_scatter_plot_writes_a_png_atomically(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(size=100)
    out = scatter_plot(x, 3 * x + rng.normal(0, 0.1, 100), tmp_path / "p" / "s.png", title="t")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert [p.name for p in out.parent.iterdir()] == ["s.png"]


@pytest.mark.parametrize(("scale", "title"), [(1.0, "t"), (-1000.0, "a long model name " * 6)])
def test_scatter_plot_draws_nothing_past_its_edges(tmp_path, scale, title):
    """The layout holds what eval writes: a title wrapped to two lines, 5-character negative tick labels,
    eval's axis labels — nothing cut at the image's edges (its outermost pixels stay white). Session 61 tried
    fixed margins instead of tight_layout (~30 % of the plot's time): they cut the tick labels here."""
    rng = np.random.default_rng(5)
    x = rng.uniform(size=60) * scale
    out = scatter_plot(x, 3 * x + rng.normal(0, 0.1, 60), tmp_path / "s.png", title=title,
                       xlabel="prediction (mos)", ylabel="mos_quality (higher is better)",
                       metrics={"srocc": 0.9, "plcc": 0.91, "plcc_fit": 0.92})  # fmt: skip
    with Image.open(out) as im:
        px = np.asarray(im.convert("L"))
    assert px.min() < 100  # something is drawn ...
    for edge in (px[:2], px[-2:], px[:, :2], px[:, -2:]):
        assert edge.min() == 255  # ... and none of it reaches an edge


# ------------------------------------------------------------------------------------------------------
# Cache


def test_cache_is_keyed_by_scorer_identity_and_image_content(tmp_path):
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(img)
    key = content_key(img)
    copy = tmp_path / "elsewhere" / "b.png"
    copy.parent.mkdir()
    copy.write_bytes(img.read_bytes())
    with ScoreCache(tmp_path / "c.sqlite") as c:
        c.store("k1", [(key, [0.5, float("nan")])])
        got = c.lookup("k1", {str(img): key})[str(img)]
        assert got[0] == 0.5 and np.isnan(got[1])
        assert c.lookup("k2", {str(img): key}) == {}  # another model
        assert c.lookup("k1", {str(copy): content_key(copy)})[str(copy)][0] == 0.5  # same bytes elsewhere
        Image.new("RGB", (9, 8), (1, 2, 3)).save(img)
        assert c.lookup("k1", {str(img): content_key(img)}) == {}  # file changed
    k_a, ident = score_cache_key(load_scorer("classical"))
    assert ident["metadata"]["name"] == "classical"
    assert k_a == score_cache_key(load_scorer("classical"))[0]
    assert k_a != score_cache_key(load_scorer("classical"), {"crops": "center"})[0]


# ------------------------------------------------------------------------------------------------------
# evaluate()


def test_evaluate_agiqa3k_two_targets_without_rescoring(tmp_path, photos):
    rows = degraded_agiqa3k_root(tmp_path / "AGIQA-3K", photos)
    ds = get_dataset("agiqa3k", tmp_path / "AGIQA-3K")
    scorer = load_scorer("classical")
    cache = tmp_path / "cache.sqlite"
    q = evaluate(ds, scorer, tmp_path / "q", cache=cache, num_workers=0, progress=False)
    assert (q.n, q.n_scored, q.n_cached, q.target) == (24, 24, 0, "mos_quality")
    a = evaluate(ds, scorer, tmp_path / "a", target="mos_align", cache=cache, num_workers=0, progress=False)
    assert (a.n, a.n_scored, a.n_cached, a.target) == (24, 0, 24, "mos_align")
    assert [r["prediction"] for r in a.rows] == [r["prediction"] for r in q.rows]
    assert [r["mos"] for r in a.rows] == [float(r["mos_align"]) for r in rows]

    # outputs: per-image CSV, JSON summary, scatter PNG — and metrics that match the CSV
    with open(tmp_path / "q" / "predictions.csv", newline="") as fh:
        pred_rows = list(csv.DictReader(fh))
    assert list(pred_rows[0]) == ["image", "mos", "raw", "split", "prediction", *scorer.columns]
    assert [Path(r["image"]).name for r in pred_rows] == [r["name"] for r in rows]
    pred = [float(r["prediction"]) for r in pred_rows]
    mos = [float(r["mos"]) for r in pred_rows]
    summary = json.loads((tmp_path / "q" / "summary.json").read_text())
    ref = correlations(pred, mos)
    for k in ("srocc", "plcc", "krcc"):
        assert summary[k] == pytest.approx(ref[k], abs=1e-5)
    assert summary["plcc_fit"] == pytest.approx(plcc_after_fit(pred, mos), abs=1e-5)
    assert summary["n"] == 24 and summary["dataset"] == "agiqa3k" and summary["target"] == "mos_quality"
    assert summary["model"]["name"] == "classical" and summary["logistic_fit"]["method"] in (
        "logistic",
        "linear",
    )
    with Image.open(tmp_path / "q" / "scatter.png") as im:
        assert im.format == "PNG"
    assert not [p for p in (tmp_path / "q").iterdir() if p.name.startswith(".")]  # no temp files left

    # a touched image (same bytes) comes from the cache; a changed one is rescored, the others are cached
    first, second = ds.items[0].image, ds.items[1].image
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    with Image.open(second) as im:
        im.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second, format=im.format)
    again = evaluate(ds, scorer, tmp_path / "q", cache=cache, num_workers=0, progress=False)
    assert (again.n_scored, again.n_cached) == (1, 23)
    # other scorer settings are another cache entry
    other = evaluate(
        ds, scorer, tmp_path / "o", cache=cache, num_workers=0, progress=False, scorer_overrides={"v": 2}
    )
    assert other.n_scored == 24


def test_missing_images_fail_before_scoring_and_bad_files_do_not_stop_it(tmp_path, photos):
    rows = degraded_agiqa3k_root(tmp_path / "R", photos, n=12)
    ds = get_dataset("agiqa3k", tmp_path / "R")
    scorer = load_scorer("classical")
    (tmp_path / "R" / rows[3]["name"]).unlink()
    (tmp_path / "R" / rows[5]["name"]).write_bytes(b"")
    cache = tmp_path / "c.sqlite"
    with pytest.raises(AttiqaError) as exc:
        evaluate(ds, scorer, tmp_path / "out", cache=cache, num_workers=0, progress=False)
    msg = str(exc.value)
    assert "2 of 12 images are missing or unreadable" in msg and rows[3]["name"] in msg and "empty" in msg
    assert "data.csv" in msg  # the expected layout
    assert not (tmp_path / "out").exists()
    assert ScoreCache(cache).count() == 0  # nothing was scored

    skipped = evaluate(
        ds, scorer, tmp_path / "out", cache=cache, num_workers=0, progress=False, missing="skip"
    )
    assert skipped.n == 10 and len(skipped.skipped_missing) == 2

    # a file with a valid header but truncated data is only found when decoded: reported, not fatal
    shutil.copy(tmp_path / "R" / rows[0]["name"], tmp_path / "R" / rows[3]["name"])
    Image.new("RGB", (8, 8)).save(tmp_path / "R" / rows[5]["name"], format="JPEG")
    full = (tmp_path / "R" / rows[7]["name"]).read_bytes()
    (tmp_path / "R" / rows[7]["name"]).write_bytes(full[: len(full) * 4 // 5])  # header intact
    res = evaluate(ds, scorer, tmp_path / "out2", cache=False, num_workers=1, progress=False)
    assert res.n == 11 and [Path(e.path).name for e in res.failed] == [rows[7]["name"]]
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert summary["failed"][0]["image"].endswith(rows[7]["name"]) and summary["warnings"]


def test_evaluate_a_trained_checkpoint_cache_follows_the_file_content(tmp_path, photos):
    """An ATTIQA checkpoint (tiny backbone, fine-tuned 1 epoch): its 'mos' column is kept apart from the
    dataset's, and a copy of the checkpoint elsewhere reuses the cache (identity = SHA-256)."""
    from attiqa.config import FinetuneConfig
    from attiqa.training.finetune import finetune

    folder = tmp_path / "set"
    folder.mkdir()
    lines = ["image,mos,split"]
    for i, (name, img) in enumerate(photos.items()):
        small = img.resize((64, round(64 * img.height / img.width)), Image.BICUBIC)
        for lv in range(4):
            apply_distortion(small, "gaussian_blur", lv).save(folder / f"{name}{lv}.png")
            lines.append(f"{name}{lv}.png,{4.5 - lv},{'test' if i == 0 else 'train'}")
    (folder / "mos.csv").write_text("\n".join(lines) + "\n")
    cfg = FinetuneConfig(
        csv=str(folder / "mos.csv"), backbone="tiny", pretrained_backbone=False, head_hidden=16,
        mos_hidden=16, epochs=1, batch_size=8, resize_shorter=48, crop_size=40, num_workers=0, device="cpu",
    )  # fmt: skip
    ckpt = finetune(cfg, None, tmp_path / "run", progress=False).best_checkpoint
    ds = get_dataset("folder", folder)
    cache = tmp_path / "c.sqlite"
    res = evaluate(
        ds, load_scorer(ckpt), tmp_path / "e1", cache=cache, split="test", num_workers=0, progress=False
    )
    assert res.n == 4 and res.split == "test" and all(r["split"] == "test" for r in res.rows)
    assert all(r["prediction"] == r["model_mos"] for r in res.rows)
    assert [r["mos"] for r in res.rows] == [4.5, 3.5, 2.5, 1.5]
    with open(tmp_path / "e1" / "predictions.csv", newline="") as fh:
        assert next(csv.reader(fh))[:6] == ["image", "mos", "raw", "split", "prediction", "model_mos"]
    moved = tmp_path / "elsewhere" / "copy.safetensors"
    moved.parent.mkdir()
    shutil.copy(ckpt, moved)
    shutil.copy(ckpt.with_suffix(".json"), moved.with_suffix(".json"))
    again = evaluate(
        ds, load_scorer(moved), tmp_path / "e2", cache=cache, split="test", num_workers=0, progress=False
    )
    assert (again.n_cached, again.n_scored) == (4, 0)
    center = evaluate(
        ds, load_scorer(moved, crops="center"), tmp_path / "e3", cache=cache, split="test", num_workers=0,
        progress=False,
    )  # fmt: skip
    assert center.n_scored == 4  # another transform is another model identity


def test_the_score_cache_file_has_one_owner(tmp_path, monkeypatch):
    """Session 36 review: ``default_cache_path`` and ``cache_location`` were two names for one answer (the
    first used only by the second). ``cache_location`` alone says where the cache is, and no other code
    builds the file's path; `eval` writes where it says."""
    import re

    from helpers import REPO, run_attiqa

    from attiqa.evaluation.cache import cache_location

    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "c"))
    assert cache_location(True) == tmp_path / "c" / "eval_scores.sqlite"
    assert cache_location(False) is None and cache_location(str(tmp_path / "x.db")) == tmp_path / "x.db"
    builders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sorted((REPO / "attiqa").rglob("*.py"))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"[/(]\s*[\"']eval_scores\.sqlite[\"']", line)  # code that joins the name to a folder
    ]
    assert len(builders) == 1 and builders[0].startswith("attiqa/evaluation/cache.py:"), builders
    img = tmp_path / "ds"
    img.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 30), (60 * i, 80, 120)).save(img / f"{i}.png")
    (img / "mos.csv").write_text("image,mos\n" + "".join(f"{i}.png,{i}\n" for i in range(4)))
    cmd = ["eval", "folder", "--root", img, "-m", "classical", "-w", "0", "-q", "-o", tmp_path / "o"]
    res = run_attiqa(*cmd, env={"ATTIQA_CACHE": str(tmp_path / "c")})
    assert res.returncode == 0 and cache_location(True).is_file(), res.stderr
