"""Feature-cache mode (frozen backbone): pretraining and fine-tuning on cached five-crop features."""

from __future__ import annotations

import copy
import csv
import json
import os

import pytest
import torch
from helpers import ft_cfg, tiny_cfg, write_label_set, write_mos_set
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ConfigError
from attiqa.evaluation.metrics import srocc
from attiqa.io.checkpoints import load_checkpoint
from attiqa.models import AttiqaModel, create_backbone, load_model
from attiqa.models.transforms import FiveCropTest, MirroredFiveCropTest
from attiqa.scorers import load_scorer
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features, image_key
from attiqa.training.finetune import finetune
from attiqa.training.pretrain import pretrain

VIEW = {"kind": "five_crop", "resize_shorter": 72, "crop": 64}


@pytest.fixture(scope="module")
def mos_csv(tmp_path_factory, photos):
    return write_mos_set(tmp_path_factory.mktemp("mos"), photos, split_column=True)


def test_cache_is_per_image_resumable_and_invalidated_by_a_changed_file(tmp_path, photos):
    mos_csv = write_mos_set(tmp_path / "data", dict(list(photos.items())[:2]), split_column=True)
    bb = create_backbone("tiny", pretrained=False).eval()
    tf = FiveCropTest(bb.mean, bb.std, 72, 64)
    ds = MosDataset(mos_csv, None, tf, on_error="skip")
    root = tmp_path / "cache"
    feats, valid = cached_features(bb, ds, VIEW, root, batch_size=4, progress=False)
    assert feats.shape == (len(ds), 5, bb.feature_dim) and bool(valid.all())
    # The cached features are the backbone's, view by view.
    with torch.no_grad():
        ref = bb.forward_raw(ds[3][0])
    torch.testing.assert_close(feats[3], ref)
    (folder,) = root.iterdir()
    chunks = sorted(folder.glob("chunk-*.safetensors"))
    # A second request over a subset in another order (another split's CSV) computes nothing new.
    sub = MosDataset(mos_csv, None, tf, on_error="skip")
    sub.paths = list(reversed(ds.paths[:7]))
    again, _ = cached_features(bb, sub, VIEW, root, batch_size=4, progress=False)
    assert sorted(folder.glob("chunk-*.safetensors")) == chunks
    torch.testing.assert_close(again, feats[:7].flip(0))
    # The key is the file's content: a touched photo (new mtime) and a copy elsewhere hit the cache...
    os.utime(ds.paths[0], ns=(1, 1))
    copy = tmp_path / "elsewhere" / "copy.png"
    copy.parent.mkdir()
    copy.write_bytes(ds.paths[2].read_bytes())
    ds.paths[3] = copy
    touched, _ = cached_features(bb, ds, VIEW, root, batch_size=4, progress=False)
    assert sorted(folder.glob("chunk-*.safetensors")) == chunks
    torch.testing.assert_close(touched[3], feats[2], rtol=0, atol=0)
    # ...a rewritten photo is a new key: only it is recomputed; an unreadable one is reported, not cached.
    img = Image.open(ds.paths[0]).convert("RGB")
    img.putpixel((0, 0), tuple(255 - v for v in img.getpixel((0, 0))))
    img.save(ds.paths[0])
    ds.paths[1].write_bytes(b"not an image")
    feats2, valid2 = cached_features(bb, ds, VIEW, root, batch_size=4, progress=False)
    new = set(folder.glob("chunk-*.safetensors")) - set(chunks)
    assert len(new) == 1 and valid2.tolist() == [True, False] + [True] * (len(ds) - 2)
    with safe_open(str(new.pop()), "pt") as fh:
        keys = json.loads(fh.metadata()["keys"])
    assert keys == [image_key(ds.paths[0])] and keys[0].startswith("sha256:")
    assert not torch.equal(feats2[0], feats[0])


def test_when_two_chunks_hold_one_image_the_first_written_wins(tmp_path, mos_csv):
    """Two extractions of the same photos at once write two chunks whose values may differ in the last bits;
    every later reader must take the same one (the first written), whatever the chunks' random names."""
    bb = create_backbone("tiny", pretrained=False).eval()
    ds = MosDataset(mos_csv, None, FiveCropTest(bb.mean, bb.std, 72, 64), on_error="skip")
    root = tmp_path / "cache"
    first, _ = cached_features(bb, ds, VIEW, root, batch_size=4, progress=False)
    (folder,) = root.iterdir()
    (chunk,) = folder.glob("chunk-*.safetensors")
    with safe_open(str(chunk), "pt") as fh:
        meta = fh.metadata()
    for name in ("chunk-0000.safetensors", "chunk-ffff.safetensors"):  # sort before and after the first
        save_file({"features": (first + 1.0).contiguous()}, str(folder / name), metadata=meta)
        later = chunk.stat().st_mtime_ns + 10**9  # written after it, even on a file system with 1-s times
        os.utime(folder / name, ns=(later, later))
    again, _ = cached_features(bb, ds, VIEW, root, batch_size=4, progress=False)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_standardisation_of_the_multi_level_backbone(photos):
    bb = create_backbone("efficientnet_lite0_ms", pretrained=False).eval()
    raw = torch.randn(64, bb.feature_dim) * torch.linspace(0.1, 100, bb.feature_dim) + 5  # BN eps 1e-5 << var
    assert bb.set_feature_statistics(raw)
    z = bb.normalize(raw)
    torch.testing.assert_close(z.mean(0), torch.zeros(bb.feature_dim), atol=1e-3, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(bb.feature_dim), atol=1e-2, rtol=0)
    assert not create_backbone("tiny", pretrained=False).set_feature_statistics(raw[:, :48])


def test_cached_pretraining_learns_the_rankings_and_resumes_exactly(tmp_path, photos, monkeypatch):
    labels = write_label_set(tmp_path / "labels", photos)
    cfg = tiny_cfg(feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=40, batch_size=16,
                   lr=3e-3, resize_shorter=72)  # fmt: skip
    path = pretrain(cfg, labels, tmp_path / "a", progress=False)
    model, card = load_model(path)
    assert card["feature_cache"] is True and card["model"]["calibrated"] is True
    assert card["history"][-1]["loss"] < card["history"][0]["loss"]
    # The backbone did not move: it is the seeded random init of a fresh tiny backbone.
    torch.manual_seed(cfg.seed)
    fresh = create_backbone("tiny", pretrained=False)
    for k, v in fresh.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[k], v, rtol=0, atol=0, msg=k)
    # The heads rank the training photos like their labels (centre crops, through the real scorer).
    import pyarrow.parquet as pq

    table = pq.read_table(labels).to_pydict()
    scorer = load_scorer(path)
    got = scorer([labels.parent / p for p in table["image"]])
    for a in ("brightness", "contrast"):
        assert srocc(got[a], table[a]) > 0.6, a
    # Kill after epoch 20 (right after its checkpoint: every 4 of the 40 epochs) -> resume to 40.
    from attiqa.training.trainer import Trainer

    real = Trainer.save_checkpoint

    def interrupted(self, epoch, *args, **kwargs):
        real(self, epoch, *args, **kwargs)
        if epoch + 1 == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, labels, tmp_path / "b", progress=False)
    monkeypatch.setattr(Trainer, "save_checkpoint", real)
    resumed = pretrain(cfg, labels, tmp_path / "b", resume=True, progress=False)
    ta, tb = load_checkpoint(path)[0], load_checkpoint(resumed)[0]
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0, msg=k)


def test_cached_finetuning_learns_mos_and_is_an_ordinary_checkpoint(tmp_path, mos_csv):
    cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=60,
                 lr=1e-3, lr_schedule="cosine")  # fmt: skip
    kw = dict(progress=False)
    res = finetune(cfg, None, tmp_path / "run", **kw)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.history[-1]["srocc"] > 0.8  # the val photos' blur levels are ranked right
    model, card = load_model(res.best_checkpoint)
    assert card["feature_cache"] is True and card["dataset"]["n_val"] == 10
    # Only the heads' first layers and the MOS MLP moved; the backbone is the seeded random init.
    torch.manual_seed(cfg.seed)
    fresh = create_backbone("tiny", pretrained=False)
    for k, v in fresh.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[k], v, rtol=0, atol=0, msg=k)
    # Scoring the checkpoint through the ordinary scorer (five crops) reproduces the validation SROCC.
    with open(mos_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    scorer = load_scorer(res.best_checkpoint)
    pred = scorer([mos_csv.parent / "images" / r["image"] for r in rows])["mos"]
    assert srocc(pred, [float(r["mos"]) for r in rows]) == pytest.approx(res.best_metrics["srocc"], abs=1e-6)
    # Linear probing in cache mode trains the MOS MLP only.
    lp = finetune(ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=3,
                         freeze_backbone=True), None, tmp_path / "lp", **kw)  # fmt: skip
    lp_model, _ = load_model(lp.best_checkpoint)
    torch.manual_seed(cfg.seed)  # the heads as _build_model creates them
    init = AttiqaModel(create_backbone("tiny", pretrained=False), ATTRIBUTES, 16)
    for k, v in init.heads.state_dict().items():
        torch.testing.assert_close(lp_model.heads.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert not torch.equal(lp_model.mos_head[0].weight, model.mos_head[0].weight)


def test_cached_hflip_caches_mirrored_crops_and_validates_on_the_five_test_crops(tmp_path, mos_csv):
    """hflip in cache mode: the five crops' mirror images are cached as views 5-9 (training draws from all
    ten), validation averages the five unmirrored crops — what the scorer's five-crop test computes."""
    tf = MirroredFiveCropTest((0.5,) * 3, (0.5,) * 3, 72, 64)
    views = tf(Image.open(next((mos_csv.parent / "images").iterdir())).convert("RGB"))
    assert views.shape == (10, 3, 64, 64)
    torch.testing.assert_close(views[5:], views[:5].flip(-1), rtol=0, atol=0)
    cache = tmp_path / "cache"
    cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(cache), epochs=20, lr=1e-3, hflip=True)
    res = finetune(cfg, None, tmp_path / "run", progress=False)  # fmt: skip
    (folder,) = [d for d in cache.iterdir() if d.is_dir()]
    chunk = next(folder.glob("chunk-*.safetensors"))
    with safe_open(str(chunk), framework="pt") as fh:
        assert fh.get_slice("features").get_shape()[1] == 10
        assert json.loads(fh.metadata()["view"])["mirrored"] is True
    with open(mos_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    pred = load_scorer(res.best_checkpoint)([mos_csv.parent / "images" / r["image"] for r in rows])["mos"]
    assert srocc(pred, [float(r["mos"]) for r in rows]) == pytest.approx(res.best_metrics["srocc"], abs=1e-6)


def test_plcc_weight_changes_cached_finetuning_and_a_negative_weight_is_refused(tmp_path, mos_csv):
    kw = dict(progress=False)
    runs = {}
    for w in (0.0, 0.5):
        cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=20,
                     lr=1e-3, plcc_weight=w)  # fmt: skip
        runs[w] = finetune(cfg, None, tmp_path / f"run{w}", **kw)
        assert runs[w].history[-1]["srocc"] > 0.8
    model, card = load_model(runs[0.5].best_checkpoint)
    assert card["config"]["plcc_weight"] == 0.5
    # Same seed, same batches: only the loss differs, so the weights and the training curve differ.
    assert runs[0.5].history[-1]["train_loss"] != runs[0.0].history[-1]["train_loss"]
    bad = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), plcc_weight=-1.0)
    with pytest.raises(ConfigError, match="plcc_weight"):
        finetune(bad, None, tmp_path / "bad", **kw)


def test_polish_trains_the_backbone_after_the_cached_heads_with_batchnorm_frozen(tmp_path, mos_csv):
    """LP-FT (ours): heads on cached features first (kept in finetune/heads/), then a few end-to-end epochs
    at a small LR; the backbone's weights move, its BatchNorm statistics do not; a second call resumes to
    the same result; the checkpoint scores through the ordinary scorer like any other."""
    kw = dict(progress=False)
    cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=20, lr=1e-3,
                 polish_epochs=2, polish_lr=1e-3)  # fmt: skip
    res = finetune(cfg, None, tmp_path / "run", **kw)
    stage = tmp_path / "run" / "finetune"
    heads, heads_card = load_model(stage / "heads" / "last.safetensors")
    polished, card = load_model(stage / "last.safetensors")
    assert heads_card["feature_cache"] is True and len(heads_card["history"]) == 20
    assert len(res.history) == 2 and card["polish"] == {"epochs": 2, "lr": 1e-3, "frozen_batchnorm": True}
    assert card["config"]["epochs"] == 20 and card["config"]["polish_epochs"] == 2
    assert card["heads_checkpoint"].endswith("heads/last.safetensors")
    moved = still = 0
    hs, ps = heads.state_dict(), polished.state_dict()
    for k, v in hs.items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            torch.testing.assert_close(ps[k], v, rtol=0, atol=0, msg=k)
            still += 1
        elif k.startswith("backbone.") and not torch.equal(ps[k], v):
            moved += 1
    assert moved > 0 and still > 0
    torch.testing.assert_close(ps["mos_range"], hs["mos_range"], rtol=0, atol=0)
    with open(mos_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    images = [mos_csv.parent / "images" / r["image"] for r in rows]
    pred = load_scorer(stage / "last.safetensors")(images)["mos"]
    assert srocc(pred, [float(r["mos"]) for r in rows]) == pytest.approx(res.history[-1]["srocc"], abs=1e-6)
    again = finetune(cfg, None, tmp_path / "run", resume=True, **kw)
    assert again.history == res.history


@pytest.mark.parametrize("bad, match", [
    (dict(polish_epochs=-1), "polish_epochs: must be >= 0"),
    (dict(polish_epochs=1, feature_cache=False), "feature_cache: true"),
    (dict(polish_epochs=1, feature_cache=True, freeze_backbone=True), "freeze_backbone"),
])  # fmt: skip
def test_polish_settings_that_cannot_work_are_refused(tmp_path, mos_csv, bad, match):
    with pytest.raises(ConfigError, match=match):
        finetune(ft_cfg(mos_csv, **bad), None, tmp_path / "run", progress=False)  # fmt: skip


def test_a_kill_at_any_checkpoint_write_resumes_to_the_same_model(tmp_path, mos_csv, monkeypatch):
    """Issue 16: a kill between an epoch's weights and its optimizer state used to leave a pair that
    `--resume` refused ("delete both files"). Kill the run at every checkpoint write in turn (the write
    never lands, as with SIGKILL before the rename); each must resume to the uninterrupted run's model."""
    import attiqa.io.checkpoints as ck

    kw = dict(progress=False)
    cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=4, lr=1e-3,
                 lr_schedule="cosine")  # fmt: skip
    real, writes = ck.save_file, []
    cache = str(tmp_path / "cache")  # its chunks go through the same writer: not checkpoint writes

    def counting(*args, **kwargs):
        writes.extend([] if str(args[1]).startswith(cache) else [1])
        return real(*args, **kwargs)

    monkeypatch.setattr(ck, "save_file", counting)
    ref = finetune(cfg, None, tmp_path / "ref", **kw)
    n_writes = len(writes)
    assert n_writes >= 8  # best (when improved), state and last, per epoch
    drop_time = lambda hist: [{k: v for k, v in h.items() if k != "seconds"} for h in hist]  # noqa: E731
    for k in range(1, n_writes + 1):
        calls = []

        def killed(*args, _k=k, _calls=calls, **kwargs):
            if str(args[1]).startswith(cache):
                return real(*args, **kwargs)
            _calls.append(1)
            if len(_calls) == _k:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(ck, "save_file", killed)
        with pytest.raises(KeyboardInterrupt):
            finetune(cfg, None, tmp_path / f"k{k}", **kw)
        monkeypatch.setattr(ck, "save_file", real)
        res = finetune(cfg, None, tmp_path / f"k{k}", resume=True, **kw)
        assert drop_time(res.history) == drop_time(ref.history), k
        for name in ("last", "best"):
            a = load_checkpoint(tmp_path / "ref" / "finetune" / f"{name}.safetensors")[0]
            b = load_checkpoint(tmp_path / f"k{k}" / "finetune" / f"{name}.safetensors")[0]
            for key in a:
                torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=f"kill at write {k}: {key}")


def test_single_head_finetuning_regresses_mos_on_one_heads_features(tmp_path, mos_csv, photos):
    """Supplement Table 10 analogue (ours): the MOS MLP sees one attribute head's features; the checkpoint
    is an ordinary one-head model that the scorer loads and that reproduces the run's held-out SROCC."""
    from helpers import write_label_set

    labels = write_label_set(tmp_path / "labels", dict(list(photos.items())[:3]), factors=(0.6, 1.2))
    pcfg = tiny_cfg(feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=3, batch_size=8,
                    resize_shorter=72)  # fmt: skip
    init = pretrain(pcfg, labels, tmp_path / "pre", progress=False)
    full, _ = load_model(init)
    cfg = ft_cfg(mos_csv, feature_cache=True, feature_cache_dir=str(tmp_path / "cache"), epochs=20, lr=1e-3,
                 single_head="sharpness")  # fmt: skip
    res = finetune(cfg, init, tmp_path / "run", progress=False)
    model, card = load_model(res.last_checkpoint)
    assert model.head_names == ("sharpness",) and card["single_head"] == "sharpness"
    assert model.mos_head[0].in_features == model.head_hidden
    i = full.head_names.index("sharpness")
    torch.testing.assert_close(model.calib_quantiles[0], full.calib_quantiles[i], rtol=0, atol=0)
    torch.testing.assert_close(model.heads["sharpness"].fc2.weight, full.heads["sharpness"].fc2.weight)
    with open(mos_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    got = load_scorer(res.last_checkpoint)([mos_csv.parent / "images" / r["image"] for r in rows])
    assert set(got) >= {"mos", "sharpness"} and "contrast" not in got
    assert srocc(got["mos"], [float(r["mos"]) for r in rows]) == pytest.approx(
        res.last_metrics["srocc"], abs=1e-6
    )
    with pytest.raises(ConfigError, match="single_head: 'sharpnes' is not one of .*did you mean 'sharpness'"):
        finetune(ft_cfg(mos_csv, single_head="sharpnes"), init, tmp_path / "bad", progress=False)


def test_a_new_batch_source_and_loss_plug_into_the_one_loop(tmp_path, mos_csv):
    """The extension interface other stages use (e.g. ranking an image above its degraded copy): a source
    yielding ((better, worse) feature pairs, targets) and a pairwise loss, through cached_mos_trainer; the
    loop moves the tuple to the device, checkpoints and resumes it like any other run."""
    from attiqa.training.data import read_mos_split
    from attiqa.training.mos import cached_mos_trainer, predict_cached
    from attiqa.training.sources import five_crop_views, shared_cached_features
    from attiqa.training.trainer import Trainer

    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny", pretrained=False), ATTRIBUTES, 16, mos_hidden=16)
    split = read_mos_split(str(mos_csv), str(mos_csv.parent / "images"), 0.2, 0)
    tf, view = five_crop_views(model.backbone, 72, 64)
    feats, _ = shared_cached_features(
        model.backbone, split.dataset(tf), view, tmp_path / "cache", 4, 0, False
    )
    tr = torch.tensor(split.train)
    better = [(i, j) for i in split.train for j in split.train if split.mos[i] > split.mos[j]]

    class PairBatches:  # a batch source: epoch(e) -> (batches, steps), depending only on (seed, e)
        def epoch(self, e):
            g = torch.Generator().manual_seed(e)
            order = torch.randperm(len(better), generator=g)[:64].view(4, 16)
            views = torch.randint(0, 5, (4, 16, 2), generator=g)
            batches = []
            for rows, v in zip(order, views, strict=True):
                a = torch.tensor([better[k][0] for k in rows])
                b = torch.tensor([better[k][1] for k in rows])
                batches.append(((feats[a, v[:, 0]], feats[b, v[:, 1]]), torch.ones(len(rows))))
            return batches, len(batches)

    def pair_loss_trainer(stage_dir):
        torch.manual_seed(1)
        m = copy.deepcopy(model)
        t = cached_mos_trainer(m, ft_cfg(mos_csv, epochs=6, lr=3e-3), feats, tr, torch.zeros(0),
                               source=PairBatches(), stage_dir=stage_dir, progress=False)  # fmt: skip

        def step_loss(net, x, y):  # the loss: each pair's first image above its second by a margin of 0.1
            pa, pb = net(x[0]).mos, net(x[1]).mos  # net: the model on cached features
            return torch.relu(0.1 - y * (pa - pb)).mean()

        t.step_loss = step_loss
        return m, t

    m, t = pair_loss_trainer(tmp_path / "a")
    hist = t.fit()
    assert hist[-1]["loss"] < hist[0]["loss"]
    pred = predict_cached(m, feats, torch.tensor(split.val))
    assert srocc(pred.numpy(), split.mos[split.val].numpy()) > 0.5
    m2, t2 = pair_loss_trainer(tmp_path / "b")  # killed after epoch 3, then resumed
    real = Trainer.run_epoch
    calls = []

    def killed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    Trainer.run_epoch = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            t2.fit()
    finally:
        Trainer.run_epoch = real
    m3, t3 = pair_loss_trainer(tmp_path / "b")
    t3.fit(resume=True)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(m3.state_dict()[k], v, rtol=0, atol=0, msg=k)
