"""Fine-tuning: learns a MOS that is a known function of a real degradation; best checkpoint; probing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import ft_cfg, mos_of, write_mos_set
from PIL import Image

from attiqa.config import PretrainConfig
from attiqa.errors import ConfigError
from attiqa.io.checkpoints import load_checkpoint
from attiqa.models import load_model
from attiqa.splits import split_indices
from attiqa.training.data import MosDataset
from attiqa.training.finetune import finetune
from attiqa.training.mos import FinetuneResult
from attiqa.training.pretrain import pretrain
from attiqa.training.trainer import lr_factor


@pytest.fixture(scope="module")
def mos_csv(tmp_path_factory, photos) -> Path:
    return write_mos_set(tmp_path_factory.mktemp("mos"), photos, split_column=True)


@pytest.mark.slow
def test_finetune_learns_mos_from_degradations_and_keeps_the_best(tmp_path, mos_csv):
    res = finetune(ft_cfg(mos_csv, head_hidden=32), None, tmp_path, progress=False)
    assert isinstance(res, FinetuneResult)
    assert len(res.history) == 8 and [h["epoch"] for h in res.history] == list(range(1, 9))
    for key in ("srocc", "plcc", "krcc", "rmse", "n"):
        assert key in res.best_metrics
    assert res.best_metrics["n"] == 10  # 2 held-out contents x 5 levels
    best_srocc = max(h["srocc"] for h in res.history)
    assert res.best_metrics["srocc"] == best_srocc
    assert best_srocc > 0.8, [round(h["srocc"], 3) for h in res.history]
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]

    model, card = load_model(res.best_checkpoint)
    best_epoch = card["best_epoch"]
    assert res.best_checkpoint == tmp_path / "finetune" / "best.safetensors"
    assert card["stage"] == "finetune" and card["metrics"]["srocc"] == best_srocc
    assert res.history[best_epoch - 1]["srocc"] == best_srocc
    assert card["mos_range"] == pytest.approx([mos_of(4), mos_of(0)])
    assert card["dataset"]["csv"] == str(mos_csv) and card["dataset"]["split"] == "column"
    assert card["model"]["test_resize_shorter"] == 72 and card["model"]["test_crop"] == 64
    assert card["init"] == "random:tiny"
    assert (tmp_path / "finetune" / "last.safetensors").exists()
    assert (tmp_path / "finetune" / "last.state.safetensors").exists()

    # The saved best model reproduces its validation metric with the scorer-side protocol (5 crops, §4.2).
    from attiqa.evaluation import srocc
    from attiqa.models.transforms import FiveCropTest

    ds = MosDataset(
        mos_csv,
        mos_csv.parent / "images",
        FiveCropTest(model.backbone.mean, model.backbone.std, 72, 64),
        split="test",
    )
    with torch.no_grad():
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        pred = model.mos_to_dataset_scale(model(x.flatten(0, 1)).mos.view(len(ds), 5).mean(1))
    assert srocc(pred.numpy(), ds.mos.numpy()) == pytest.approx(best_srocc, abs=1e-6)
    assert float(pred.min()) > mos_of(4) - 2 and float(pred.max()) < mos_of(0) + 2  # dataset scale


def test_linear_probe_trains_only_the_regression_mlp(tmp_path, mos_csv, photos):
    from helpers import write_label_set

    labels = write_label_set(tmp_path / "labels", dict(list(photos.items())[:3]), factors=(0.6, 1.2))
    pcfg = PretrainConfig(
        backbone="tiny", pretrained_backbone=False, head_hidden=16, epochs=1, batch_size=6, crop_size=48,
        num_workers=0, device="cpu",
    )  # fmt: skip
    init = pretrain(pcfg, labels, tmp_path / "run", progress=False)
    cfg = ft_cfg(mos_csv, epochs=2, freeze_backbone=True, head_lr=1e-2)
    res = finetune(cfg, init, tmp_path / "run", progress=False)
    before, after = load_checkpoint(init)[0], load_checkpoint(res.best_checkpoint)[0]
    for k, v in before.items():  # backbone, heads and BN statistics untouched
        if k == "mos_range":  # set from the MOS CSV
            continue
        torch.testing.assert_close(after[k], v, rtol=0, atol=0, msg=k)
    assert any(k.startswith("mos_head.") for k in after)
    card = load_model(res.best_checkpoint)[1]
    assert card["linear_probe"] is True and card["init"] == str(init) and card["init_stage"] == "pretrain"
    assert card["model"]["calibrated"] is True  # pretraining calibration travels with the model
    assert "attribute_note" not in card


def test_random_split_without_split_column_and_resume(tmp_path, photos):
    csv_path = write_mos_set(tmp_path / "data", dict(list(photos.items())[:2]), split_column=False)
    cfg = ft_cfg(csv_path, epochs=1, batch_size=4)
    kw = dict(progress=False)
    finetune(cfg, None, tmp_path / "a", **kw)
    res = finetune(ft_cfg(csv_path, epochs=2, batch_size=4), None, tmp_path / "a", resume=True, **kw)
    ref = finetune(ft_cfg(csv_path, epochs=2, batch_size=4), None, tmp_path / "b", **kw)
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert json.dumps(res.history, sort_keys=True).count("srocc") == 2
    drop_time = lambda hist: [{k: v for k, v in h.items() if k != "seconds"} for h in hist]  # noqa: E731
    assert drop_time(res.history) == drop_time(ref.history) and res.best_metrics == ref.best_metrics
    ta = load_checkpoint(tmp_path / "a" / "finetune" / "last.safetensors")[0]
    tb = load_checkpoint(tmp_path / "b" / "finetune" / "last.safetensors")[0]
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0, msg=k)
    card = load_model(res.best_checkpoint)[1]
    assert card["dataset"]["n_train"] == 16 and card["dataset"]["n_val"] == 4  # §4.1: 80/20 of 20
    assert card["dataset"]["split"].startswith("random")


def test_cosine_schedule_with_flips_resumes_bit_exactly(tmp_path, photos, monkeypatch):
    """Interrupt a 2-epoch cosine run after epoch 1 (fault injected into the 2nd epoch), resume it, and
    compare with an uninterrupted run: the schedule is a function of the global step only."""
    from attiqa.training.trainer import Trainer

    csv_path = write_mos_set(tmp_path / "data", dict(list(photos.items())[:2]), split_column=False)
    kw = dict(progress=False)
    cfg = ft_cfg(csv_path, epochs=2, batch_size=4, lr_schedule="cosine", hflip=True)
    real_epoch, calls = Trainer.run_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for a kill between epochs
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(Trainer, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finetune(cfg, None, tmp_path / "a", **kw)
    monkeypatch.setattr(Trainer, "run_epoch", real_epoch)
    res = finetune(cfg, None, tmp_path / "a", resume=True, **kw)
    ref = finetune(cfg, None, tmp_path / "b", **kw)
    ta = load_checkpoint(tmp_path / "a" / "finetune" / "last.safetensors")[0]
    tb = load_checkpoint(tmp_path / "b" / "finetune" / "last.safetensors")[0]
    assert [h["train_loss"] for h in res.history] == [h["train_loss"] for h in ref.history]
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0, msg=k)


def test_a_polish_resumed_with_other_workers_replays_an_uninterrupted_run(tmp_path, photos, monkeypatch):
    """**Was**: a random crop (and flip) was drawn from the RNG of the process that decoded the image — the
    main one with ``num_workers: 0``, else the loader worker its batch went to — so a polish killed and
    resumed with another ``num_workers`` (a setting a resume may change; its default is one per spare core)
    trained its remaining epochs on other crops than the uninterrupted run. Now each item's draws are
    seeded from (seed, epoch, item): the same weights bit for bit."""
    from attiqa.models.transforms import FinetuneTrain
    from attiqa.training.sources import ImageBatches
    from attiqa.training.trainer import Trainer

    csv_path = write_mos_set(tmp_path / "data", photos, split_column=False)
    crops = MosDataset(csv_path, None, FinetuneTrain((0.5,) * 3, (0.5,) * 3, 72, 64, hflip=True))
    polish = dict(epochs=1, batch_size=2, feature_cache=True, polish_epochs=2, polish_lr=1e-3, hflip=True,
                  feature_cache_dir=str(tmp_path / "cache"))  # fmt: skip
    for workers in (0, 2):  # one epoch's batches: the same crops whoever decodes them
        source = ImageBatches(crops, 2, 0, workers)
        batches = [x for x, _ in source.epoch(1)[0]]
        if workers == 0:
            first = batches
    assert all(torch.equal(a, b) for a, b in zip(first, batches, strict=True))
    real_epoch = Trainer.run_epoch

    def killed(self, epoch, *args, **kwargs):  # stands in for a kill in the polish's second epoch
        if self.label == "finetune" and epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, epoch, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        finetune(ft_cfg(csv_path, **polish), None, tmp_path / "a", progress=False)
    monkeypatch.setattr(Trainer, "run_epoch", real_epoch)
    finetune(ft_cfg(csv_path, **polish, num_workers=2), None, tmp_path / "a", resume=True, progress=False)
    finetune(ft_cfg(csv_path, **polish), None, tmp_path / "b", progress=False)
    ta = load_checkpoint(tmp_path / "a" / "finetune" / "last.safetensors")[0]
    tb = load_checkpoint(tmp_path / "b" / "finetune" / "last.safetensors")[0]
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0, msg=k)


def test_lr_factor_and_unknown_schedule(tmp_path, photos):
    assert [lr_factor("cosine", s, 10) for s in (0, 5, 10, 12)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert lr_factor("constant", 7, 10) == 1.0
    csv_path = write_mos_set(tmp_path / "data", dict(list(photos.items())[:2]), split_column=False)
    with pytest.raises(ConfigError, match="lr_schedule.*cosine"):
        finetune(ft_cfg(csv_path, lr_schedule="cosin"), None, tmp_path / "x", progress=False)


def test_split_indices_is_a_deterministic_partition():
    tr, va = split_indices(50, 0.2, seed=1)
    assert len(va) == 10 and sorted(tr + va) == list(range(50))
    assert (tr, va) == split_indices(50, 0.2, seed=1) and va != split_indices(50, 0.2, seed=2)[1]


# --------------------------------------------------------------------------------------------------------
# Pieces the fine-tuning loop relies on: metrics, transforms, the bad-file policy


def test_metrics_match_scipy_and_survive_degenerate_inputs():
    import warnings

    import numpy as np
    from scipy import stats

    from attiqa.evaluation import correlations, krcc, plcc, rmse, srocc

    rng = np.random.default_rng(0)
    t = rng.random(40)
    p = t + 0.3 * rng.random(40)
    m = correlations(p, t)
    assert m["srocc"] == pytest.approx(stats.spearmanr(p, t)[0])
    assert m["plcc"] == pytest.approx(stats.pearsonr(p, t)[0])
    assert m["krcc"] == pytest.approx(stats.kendalltau(p, t)[0])
    assert m["rmse"] == pytest.approx(float(np.sqrt(np.mean((p - t) ** 2)))) and m["n"] == 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConstantInputWarning leaks out
        assert np.isnan(srocc(np.ones(5), t[:5])) and np.isnan(plcc(t[:5], np.ones(5)))
        assert np.isnan(krcc([1.0], [2.0])) and np.isnan(rmse([], []))
    p[3] = np.nan  # a failed image: dropped, not fatal
    assert correlations(p, t)["n"] == 39 and np.isfinite(correlations(p, t)["srocc"])
    with pytest.raises(ValueError):
        srocc([1, 2, 3], [1, 2])


def test_test_time_transforms_follow_the_paper(photos):
    import pickle

    import numpy as np

    from attiqa.models.transforms import CenterCropTest, FinetuneTrain, FiveCropTest, PretrainTrain

    img = photos["chelsea"]  # 451 x 300
    five = FiveCropTest((0.5,) * 3, (0.5,) * 3)(img)
    assert five.shape == (5, 3, 320, 320)
    centre = CenterCropTest((0.5,) * 3, (0.5,) * 3)(img)
    torch.testing.assert_close(five[4], centre)
    resized = np.asarray(img.resize((round(451 * 340 / 300), 340), Image.BICUBIC), dtype=np.float32) / 255
    tl = torch.from_numpy(resized[:320, :320]).permute(2, 0, 1) * 2 - 1
    torch.testing.assert_close(five[0], tl, atol=1e-6, rtol=0)  # top-left corner
    br = torch.from_numpy(resized[-320:, -320:]).permute(2, 0, 1) * 2 - 1
    torch.testing.assert_close(five[3], br, atol=1e-6, rtol=0)  # bottom-right corner
    torch.manual_seed(0)
    a = FinetuneTrain((0.5,) * 3, (0.5,) * 3)(img)
    torch.manual_seed(0)
    assert a.shape == (3, 320, 320) and torch.equal(a, FinetuneTrain((0.5,) * 3, (0.5,) * 3)(img))
    small = img.resize((40, 30))  # smaller than the crop: upscaled first
    assert PretrainTrain((0.5,) * 3, (0.5,) * 3, crop_size=64, hflip=True)(small).shape == (3, 64, 64)
    for t in (FiveCropTest((0.5,) * 3, (0.5,) * 3), PretrainTrain((0.5,) * 3, (0.5,) * 3)):
        assert type(pickle.loads(pickle.dumps(t))) is type(t)  # DataLoader workers receive them


def test_undecodable_image_is_substituted_in_training_and_skipped_in_evaluation(tmp_path, photos, capsys):
    from attiqa.errors import AttiqaError
    from attiqa.models.transforms import CenterCropTest
    from attiqa.training.data import collate_skip_none, unreadable_report

    csv_path = write_mos_set(tmp_path, dict(list(photos.items())[:1]), split_column=False)
    first = csv_path.parent / "images" / "astronaut_l_blur0.jpg"
    first.write_bytes(b"\xff\xd8\xff\xe0 truncated")  # exists, cannot be decoded
    tf = CenterCropTest((0.5,) * 3, (0.5,) * 3, 72, 64)
    with unreadable_report("finetune") as report:  # one line per file, not a warning per load
        train = MosDataset(csv_path, csv_path.parent / "images", tf)
        x, mos, idx = train[0]
        assert idx == 1 and x.shape == (3, 64, 64) and float(mos) == pytest.approx(mos_of(1))
        ev = MosDataset(csv_path, csv_path.parent / "images", tf, on_error="skip")
        batch = collate_skip_none([ev[i] for i in range(3)])
        assert batch[0].shape == (2, 3, 64, 64) and batch[2].tolist() == [1, 2]
        assert train.failed.tolist()[:2] == [1, 0] and ev.failed.tolist()[:2] == [1, 0]
    assert report.reported == [first]
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"skipped {first}: cannot decode image") and len(err) == 2
    assert err[1] == "finetune: 1 unreadable image skipped (listed above)"
    # A stage that ends by Ctrl-C (SIGTERM is the CLI's subclass of it) or an error still lists and counts
    # the files it met, before the interruption or the error goes up.
    for ending in (KeyboardInterrupt, AttiqaError):
        with pytest.raises(ending), unreadable_report("finetune") as report:
            MosDataset(csv_path, csv_path.parent / "images", tf)[0]  # met during setup, not in an epoch
            raise ending()
        assert report.reported == [first]
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith(f"skipped {first}: ") and err[1:] == [
            "finetune: 1 unreadable image skipped (listed above)"
        ]
    first.unlink()
    with pytest.raises(AttiqaError, match="1 of 10 images not found"):
        MosDataset(csv_path, csv_path.parent / "images", tf)
    with pytest.raises(AttiqaError, match="no 'split' column"):
        MosDataset(csv_path, None, tf, split="train")
