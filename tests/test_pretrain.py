"""Pretraining: learning on real photos, outputs and card, exact resume (also after a SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers import tiny_cfg, write_label_set

from attiqa.attributes import ATTRIBUTES
from attiqa.io.checkpoints import load_checkpoint, load_training_state
from attiqa.models import AttiqaModel, create_backbone, load_model
from attiqa.models.transforms import CenterCropTest
from attiqa.training.data import PseudoLabelDataset
from attiqa.training.losses import margin_ranking_loss
from attiqa.training.pretrain import pretrain

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")


@pytest.fixture(scope="module")
def label_file(tmp_path_factory, photos) -> Path:
    return write_label_set(tmp_path_factory.mktemp("labels"), photos)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, label_file) -> Path:
    """An uninterrupted 6-epoch run, the yardstick of the resume tests."""
    out = tmp_path_factory.mktemp("ref")
    return pretrain(tiny_cfg(), label_file, out, progress=False)


def test_ranking_loss_goes_down_on_a_fixed_batch_of_real_photos(label_file):
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=32)
    ds = PseudoLabelDataset(label_file, CenterCropTest(model.backbone.mean, model.backbone.std, None, 64))
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = ds.targets
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = margin_ranking_loss(model(x).attributes, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.35 * losses[0], losses[::8]
    # The heads now rank the photos like the labels (Spearman per attribute, eval mode).
    model.eval()
    with torch.no_grad():
        pred = model(x).attributes
    rank = lambda t: t.argsort(0).argsort(0).float()  # noqa: E731
    rho = torch.stack(
        [torch.corrcoef(torch.stack([rank(pred)[:, k], rank(y)[:, k]]))[0, 1] for k in range(5)]
    )
    assert rho.mean() > 0.6, rho


def test_pretrain_writes_a_calibrated_model_with_a_card(reference_run, label_file):
    final = reference_run
    stage = final.parent
    assert final.name == "model.safetensors" and stage.name == "pretrain"
    for f in ("model.json", "last.safetensors", "last.json", "last.state.safetensors"):
        assert (stage / f).exists(), f
    model, card = load_model(final)
    assert card["stage"] == "pretrain" and card["epoch"] == 6 and len(card["history"]) == 6
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3, 4, 5, 6]
    assert card["labels"]["rows"] == 20 and card["labels"]["head_names"] == list(ATTRIBUTES)
    assert card["labels"]["metadata"]["teacher"] == {"kind": "test-statistics"}
    assert card["config"]["backbone"] == "tiny" and card["model"]["pretrain_crop"] == 64
    assert bool(model.calibrated) and model.mos_head is None
    # Calibrated scores of the training photos spread over [0, 1] (they are their own reference set).
    ds = PseudoLabelDataset(label_file, CenterCropTest(model.backbone.mean, model.backbone.std, None, 64))
    with torch.no_grad():
        s = model.attribute_scores(model(torch.stack([ds[i][0] for i in range(len(ds))])).attributes)
    assert s.min() >= 0 and s.max() <= 1 and s.min(0).values.max() < 0.1 and s.max(0).values.min() > 0.9
    losses = [h["loss"] for h in card["history"]]
    assert min(losses[-2:]) < losses[0]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[0]


def assert_same_weights(a: Path, b: Path) -> None:
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0, msg=k)


def test_resume_continues_exactly(tmp_path, label_file, reference_run):
    out = tmp_path / "run"
    pretrain(tiny_cfg(epochs=3), label_file, out, progress=False)
    _, extra = load_training_state(out / "pretrain" / "last.state.safetensors")
    assert extra["epoch"] == 3 and extra["global_step"] == 3 * 2
    final = pretrain(tiny_cfg(epochs=6), label_file, out, resume=True, progress=True)
    assert_same_weights(final, reference_run)
    h_res, h_ref = load_model(final)[1]["history"], load_model(reference_run)[1]["history"]
    assert [h["epoch"] for h in h_res] == [1, 2, 3, 4, 5, 6]
    assert [h["loss"] for h in h_res] == [h["loss"] for h in h_ref]


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_repeats_nothing(tmp_path, label_file, reference_run):
    out = tmp_path / "killed"
    cfg = json.dumps(asdict(tiny_cfg()))
    code = (
        "import json, sys; from attiqa.config import PretrainConfig; "
        "from attiqa.training.pretrain import pretrain; "
        "pretrain(PretrainConfig(**json.loads(sys.argv[1])), sys.argv[2], sys.argv[3], progress=False)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # same thread count as this process: same float sums
    proc = subprocess.Popen([sys.executable, "-c", code, cfg, str(label_file), str(out)], env=env, cwd=REPO)
    state = out / "pretrain" / "last.state.safetensors"
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if state.exists():
            killed_at = load_training_state(state)[1]["epoch"]
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert killed_at is not None and killed_at < 6, "the run should have been killed mid-way"
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "pretrain" / "model.safetensors").exists()
    final = pretrain(tiny_cfg(), label_file, out, resume=True, progress=False)
    assert_same_weights(final, reference_run)
    hist = load_model(final)[1]["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4, 5, 6]  # nothing lost, nothing duplicated


def test_l2_ablation_and_missing_images(tmp_path, label_file):
    final = pretrain(tiny_cfg(epochs=1, loss="l2"), label_file, tmp_path / "l2", progress=False)
    assert load_model(final)[1]["config"]["loss"] == "l2"
    table = pq.read_table(label_file)
    bad = table.set_column(
        0, "image", pa.array(["nope/a.png", "nope/b.png"] + table.column("image").to_pylist()[2:])
    )
    pq.write_table(bad, label_file.parent / "bad.parquet")
    from attiqa.errors import AttiqaError

    with pytest.raises(AttiqaError, match="2 of 20 images not found"):
        pretrain(tiny_cfg(epochs=1), label_file.parent / "bad.parquet", tmp_path / "bad", progress=False)


def test_pretrain_reads_a_label_file_written_by_attiqa_label(tmp_path, photo_dir, monkeypatch):
    """End to end with the real labeller (classical teacher): relative image paths, teacher metadata."""
    from attiqa.io.images import discover_images
    from attiqa.labeling import label_images
    from attiqa.teachers import create_teacher

    monkeypatch.chdir(tmp_path)  # `attiqa label photos/` stores paths as given, relative to the cwd
    rel = Path(photo_dir.name)
    out = tmp_path / "run" / "labels.parquet"
    label_images(discover_images([rel]), create_teacher("classical"), out, num_workers=0)
    final = pretrain(tiny_cfg(epochs=1, batch_size=4), out, tmp_path / "run", progress=False)
    model, card = load_model(final)
    assert card["labels"]["rows"] == 5 and model.head_names == ATTRIBUTES
    assert card["labels"]["metadata"], "the teacher's metadata should travel into the model card"
