"""ExIQA (paper 004 §IV): attribute data, eq. (6)-(8) and (10)-(11) on hand-made cases, the prompt-tuning
loop on a distortion set generated from real photos with a tiny random CLIP, resume, and the exiqa scorer."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attiqa.distortions.kadid import KADID_NAMES
from attiqa.distortions.multi import make_distorted_set
from attiqa.errors import ConfigError
from attiqa.exiqa.model import (
    ExiqaModel,
    Regressor,
    distortion_loss,
    interval_accuracy,
    load_attribute_table,
    strength_rmse,
)
from attiqa.exiqa.regressor import train_regressor
from attiqa.exiqa.train import ExiqaTrainConfig, read_distortion_labels, split_by_source, train_exiqa
from attiqa.scorers import create_scorer
from attiqa.teachers.clip import load_open_clip, parse_clip_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # one torch thread for the whole module


def test_bundled_attribute_table_covers_the_25_kadid_distortions():
    table = load_attribute_table()
    assert set(table.distortions) == set(KADID_NAMES) and table.k == 5
    assert len(set(table.prompts())) == 2 * 25 * 5  # every prompt distinct
    gb = table.attributes[table.distortions.index("kadid_gaussian_blur")]
    assert gb[0] == "a softening of details"  # the paper's example (§IV-B1)
    assert table.prompts()[:2] == [
        "There is a softening of details in the photo.",
        "There is not a softening of details in the photo.",
    ]


def test_bad_attribute_files_fail_in_one_line(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="a.json: not an ExIQA attribute file"):
        load_attribute_table(bad)
    bad.write_text(json.dumps({"distortions": {"kadid_jpeg": ["x", "y"], "kadid_blurr": ["x", "y"]}}))
    with pytest.raises(ConfigError, match="unknown distortion.*kadid_blurr"):
        load_attribute_table(bad)


def test_interval_accuracy_and_rmse_on_hand_made_cases():
    t = torch.tensor([[0.0, 0.2, 0.4, 1.0]])
    assert interval_accuracy(torch.tensor([[0.05, 0.29, 0.31, 0.95]]), t) == 1.0
    # 0.1 is the start of [0.1, 0.3) (not level 0); 0.3 starts level 0.4's interval; 0.89 is in [0.7, 0.9)
    assert interval_accuracy(torch.tensor([[0.1, 0.3, 0.4, 0.89]]), t) == 0.25
    assert strength_rmse(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 0.0]])) == pytest.approx(
        math.sqrt(0.5)
    )
    assert strength_rmse(t, t) == 0.0


def test_distortion_loss_is_soft_binary_cross_entropy():
    p = torch.tensor([[0.9, 0.2, 0.5]])
    y = torch.tensor([[1.0, 0.2, 0.0]])
    want = -(torch.log(torch.tensor(0.9)) + 0.2 * math.log(0.2) + 0.8 * math.log(0.8) + math.log(0.5)) / 3
    assert float(distortion_loss(p, y)) == pytest.approx(float(want), rel=1e-5)
    torch.testing.assert_close(distortion_loss(p, y), F.binary_cross_entropy(p, y))


@pytest.fixture(scope="module")
def tiny_clip(tiny_dir):
    return load_open_clip(parse_clip_spec(str(tiny_dir)))


def test_model_eq6_eq7_shapes_weights_and_gradients(tiny_clip, photos):
    clip, preprocess, tokenizer, _ = tiny_clip
    table = load_attribute_table()
    torch.manual_seed(0)  # the prompts' and w's random draws: unseeded, it failed once in a session-53 run
    model = ExiqaModel(clip, tokenizer, table, n_prompts=4)
    x = torch.stack([preprocess(im) for im in list(photos.values())[:3]])
    attr = model.attribute_probs(x)
    assert attr.shape == (3, 125) and bool(((attr > 0) & (attr < 1)).all())
    with torch.no_grad():
        model.w_logits.normal_()
    w = model.weights()
    assert bool((w >= 0).all()) and torch.allclose(w.sum(-1), torch.ones(25))
    dist = model.distortion_probs(attr)
    d = 7  # hand check of eq. (7) for one distortion
    torch.testing.assert_close(dist[:, d], (attr[:, d * 5 : d * 5 + 5] * w[d]).sum(-1))
    distortion_loss(dist, torch.zeros_like(dist)).backward()
    assert model.prompts.grad is not None and model.prompts.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.clip.parameters())  # CLIP itself stays frozen
    # the prompts change the image embedding (shallow VPT is wired in)
    with torch.no_grad():
        base = model.encode_image(x)
        model.prompts.add_(1.0)
        assert not torch.allclose(base, model.encode_image(x))


@pytest.fixture(scope="module")
def distorted(tmp_path_factory, photos):
    src = tmp_path_factory.mktemp("src")
    for name, im in photos.items():
        im.resize((96, 96 * im.height // im.width)).save(src / f"{name}.png")
    out = tmp_path_factory.mktemp("exiqa_set")
    make_distorted_set(sorted(src.glob("*.png")), out, rounds=4, seed=0, max_k=3)
    return out


def _cfg(tiny_dir, epochs=6):
    return ExiqaTrainConfig(
        clip=str(tiny_dir),
        epochs=epochs,
        warmup_epochs=1,
        lr=0.05,
        batch_size=8,
        n_prompts=4,
        val_fraction=0.2,
    )


def _stop_after(last):
    """An ``on_epoch`` that interrupts the run once epoch ``last`` is kept."""

    def stop(epoch, _row):
        if epoch == last:
            raise KeyboardInterrupt

    return stop


def test_training_lowers_the_loss_and_resumes_after_a_kill(distorted, tiny_dir, tmp_path):
    cfg = _cfg(tiny_dir)
    full = train_exiqa(distorted, tmp_path / "full", cfg)["history"]
    assert len(full) == 6 and full[-1]["train_loss"] < full[0]["train_loss"]
    assert 0 <= full[-1]["val_accuracy"] <= 1 and 0 <= full[-1]["val_rmse"] <= 1

    with pytest.raises(KeyboardInterrupt):
        train_exiqa(distorted, tmp_path / "killed", cfg, on_epoch=_stop_after(2))
    resumed = train_exiqa(distorted, tmp_path / "killed", cfg)["history"]
    assert [r["epoch"] for r in resumed] == list(range(1, 7))
    for a, b in zip(resumed, full, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    with pytest.raises(ConfigError, match="other settings"):
        train_exiqa(distorted, tmp_path / "killed", _cfg(tiny_dir, epochs=3))


def test_held_out_split_is_by_source_photo(distorted, tiny_dir, tmp_path):
    """Every round re-distorts the same photos: no photo may have versions on both sides of the split."""
    paths, targets, sources = read_distortion_labels(distorted, load_attribute_table())
    assert len(paths) == 20 and len(set(sources)) == 5  # 4 rounds x 5 photos
    for seed in range(5):
        tr, va = split_by_source(sources, 0.2, seed)
        assert sorted(tr + va) == list(range(len(paths)))
        held = {sources[i] for i in va}
        assert len(held) == 1 and not held & {sources[i] for i in tr}
        assert len(va) == 4  # all four rounds of the held-out photo
    with pytest.raises(ConfigError, match="2 source photos"):
        split_by_source(["a.png"] * 3, 0.2, 0)
    run = train_exiqa(distorted, tmp_path / "run", _cfg(tiny_dir, epochs=1))
    card = json.loads((tmp_path / "run" / "exiqa.json").read_text())
    assert card["val_split"] == "by source photo" and len(card["val_sources"]) == 1
    assert run["history"][0]["val_rmse"] >= 0


def test_default_prompt_length_is_table_ii_for_kadid():
    assert ExiqaTrainConfig().n_prompts == 100  # paper Table II: KADID-10k / TID2013 shallow prompts


def test_exiqa_scorer_and_score_command(distorted, tiny_dir, tmp_path, cli):
    """`attiqa train exiqa`, `score -m exiqa:RUN` and `train-exiqa-regressor` end to end (the entry point in
    this process; a real process trains exiqa in test_labeling_prompts_exiqa_reruns /
    test_exiqa_label_resume_records)."""
    out = tmp_path / "run"
    res = cli(
        "train", "exiqa", distorted, "--out", out, "--clip", tiny_dir, "--epochs", "2",
        "--warmup-epochs", "0", "--batch-size", "8", "--prompts", "2",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    scorer = create_scorer(f"exiqa:{out}")
    assert scorer.columns == ("score", *load_attribute_table().distortions)
    row = scorer(sorted((distorted / "images").rglob("*.png"))[0])
    assert math.isnan(row["score"]) and all(0 < row[d] < 1 for d in scorer.distortions)
    top = scorer.top_distortions(row)
    assert (
        len(top) == 3
        and top[0][1] >= top[1][1] >= top[2][1] == sorted(row[d] for d in scorer.distortions)[-3]
    )
    res = cli("score", distorted / "images" / "r00", "--model", f"exiqa:{out}")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("top distortions: kadid_") == 5

    # stage 2, eq. (9): a MOS CSV over the generated images (a synthetic target from the generator's
    # labels, 5 - 4 x mean strength of the applied distortions: enough to test the mechanics)
    with open(distorted / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    lines = ["image,mos"]
    for r in rows:
        applied = [float(r[d]) for d in KADID_NAMES if float(r[d]) > 0]
        lines.append(f"{r['image']},{5 - 4 * sum(applied) / len(applied):.4f}")
    (distorted / "mos.csv").write_text("\n".join(lines) + "\n")
    res = train_regressor(out, distorted / "mos.csv", epochs=300)
    first, last = np.mean(res["losses"][:10]), np.mean(res["losses"][-10:])
    assert last < 0.9 * first, res["losses"]
    assert res["finite"] and res["n_train"] == 16
    with_reg = create_scorer(f"exiqa:{out}")
    mos = [float(line.split(",")[1]) for line in lines[1:]]
    assert with_reg.info.score_range == pytest.approx((min(mos), max(mos)), abs=1e-4)
    scored = with_reg(sorted((distorted / "images").rglob("*.png"))[:3])
    assert np.all(np.isfinite(scored["score"])) and scored["score"].std() > 0
    res = cli("train-exiqa-regressor", out, "--mos", distorted / "mos.csv", "--epochs", "5")
    assert res.returncode == 0 and "held-out SROCC" in res.stderr + res.stdout, res.stderr


def test_regressor_is_the_papers_mlp():
    reg = Regressor(125)
    layers = list(reg.net)
    assert [type(m).__name__ for m in layers].count("Linear") == 3  # two hidden layers + output
    assert sum(isinstance(m, torch.nn.SELU) for m in layers) == 2
    assert all(m.p == 0.2 for m in layers if isinstance(m, torch.nn.Dropout))
    assert reg(torch.rand(4, 125)).shape == (4,)


def test_exiqa_scorer_knows_its_clip_weights_by_their_hash(distorted, tiny_dir, tmp_path):
    """CLIP weights replaced in place under an ExIQA run (session 51): eval's cache key and the metadata
    `score -o` records change (were the same: the spec and path alone), as for the other CLIP scorers."""
    import shutil

    from safetensors.torch import load_file, save_file

    from attiqa.evaluation.cache import score_cache_key

    clip = tmp_path / "clip"
    shutil.copytree(tiny_dir, clip)
    run = tmp_path / "run"
    train_exiqa(distorted, run, _cfg(clip, epochs=1))
    before = create_scorer(f"exiqa:{run}")
    key, _ = score_cache_key(before)
    weights = clip / "open_clip_model.safetensors"
    state = load_file(str(weights))
    state["logit_scale"] = state["logit_scale"] + 1.0  # other weights, same path and architecture
    save_file(state, str(weights))
    after = create_scorer(f"exiqa:{run}")
    assert score_cache_key(after)[0] != key  # was: the cache served the old weights' scores
    assert after.metadata()["weights_sha256"] != before.metadata()["weights_sha256"]
    assert (
        create_scorer(f"exiqa:{run}:{clip}").metadata()["weights_sha256"]
        == after.metadata()["weights_sha256"]
    )


def test_a_resume_with_a_nan_setting_continues_its_own_run(distorted, tiny_dir, tmp_path):
    """A settings record read back from its state file was compared with ``!=``: NaN is unequal to itself,
    so a run whose settings hold one refused its own resume (a NaN --val-fraction: no held-out part)."""
    cfg = ExiqaTrainConfig(**{**vars(_cfg(tiny_dir, epochs=2)), "val_fraction": math.nan})
    with pytest.raises(KeyboardInterrupt):
        train_exiqa(distorted, tmp_path / "run", cfg, on_epoch=_stop_after(1))
    resumed = train_exiqa(distorted, tmp_path / "run", cfg)["history"]
    assert [r["epoch"] for r in resumed] == [1, 2]
    with pytest.raises(ConfigError, match="other settings"):  # another value is still refused
        train_exiqa(distorted, tmp_path / "run", ExiqaTrainConfig(**{**vars(cfg), "val_fraction": 0.0}))
