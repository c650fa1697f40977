"""`attiqa.load_scorer`: one callable on paths, PIL images and tensors; checkpoint, name or folder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import attiqa
from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ModelLoadError
from attiqa.models import AttiqaModel, create_backbone, save_model


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny"), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    return save_model(model, tmp_path / "run" / "finetune" / "best.safetensors", card={"name": "t"})


def test_paths_pil_and_tensors_agree(checkpoint, photo_dir, photos):
    scorer = attiqa.load_scorer(checkpoint)
    assert scorer.columns == ("mos", *ATTRIBUTES)
    paths = sorted(photo_dir.rglob("*.png"))
    from attiqa.io.images import load_image

    by_path = scorer(paths)
    by_pil = scorer([load_image(p) for p in paths])
    by_tensor = scorer(torch.stack([scorer.transform(load_image(p)) for p in paths]))
    for c in scorer.columns:
        np.testing.assert_allclose(by_path[c], by_pil[c], rtol=1e-5)
        np.testing.assert_allclose(by_path[c], by_tensor[c], rtol=1e-5)
    one = scorer(paths[0])
    assert set(one) == set(scorer.columns) and math.isclose(
        one["mos"], float(by_path["mos"][0]), rel_tol=1e-5
    )
    assert all(0.0 <= one[a] <= 1.0 for a in ATTRIBUTES)


def test_a_long_list_is_scored_a_few_images_at_a_time(checkpoint, photos, monkeypatch):
    """A list longer than CALL_BATCH is split into forward passes of at most CALL_BATCH images (memory
    stays bounded) and gives the same scores as one image at a time."""
    from attiqa import interface as base

    monkeypatch.setattr(base, "CALL_BATCH", 2)
    scorer = attiqa.load_scorer(checkpoint)
    sizes = []
    real = scorer.score_tensors
    monkeypatch.setattr(scorer, "score_tensors", lambda b: (sizes.append(len(b)), real(b))[1])
    images = list(photos.values())[:5]
    together = scorer(images)["mos"]
    assert sizes == [2, 2, 1]
    alone = [scorer(im)["mos"] for im in images]
    np.testing.assert_allclose(together, alone, rtol=1e-5)


def test_five_crops_are_averaged(checkpoint, photos):
    five = attiqa.load_scorer(checkpoint, crops="five")
    center = attiqa.load_scorer(checkpoint, crops="center")
    img = photos["chelsea"]
    assert five.transform(img).shape[0] == 5 and center.transform(img).dim() == 3
    crops = five.transform(img)
    per_crop = [center.score_tensors(c.unsqueeze(0))[0] for c in crops]
    np.testing.assert_allclose(
        five.score_tensors(crops.unsqueeze(0))[0].numpy(),
        torch.stack(per_crop).mean(0).numpy(),
        rtol=1e-4,
        atol=1e-6,
    )


def test_run_folder_and_names(checkpoint):
    run_dir = checkpoint.parent.parent
    assert attiqa.load_scorer(run_dir).checkpoint == checkpoint
    assert attiqa.create_scorer("classical").info.kind == "classical"
    names = {i.name for i in attiqa.list_scorers()}
    assert "classical" in names
    with pytest.raises(ModelLoadError, match="did you mean 'classical'"):
        attiqa.load_scorer("clasical")


def test_export_half_precision_copy_scores_the_same(checkpoint, photos, tmp_path):
    from helpers import run_attiqa

    dst = tmp_path / "small.safetensors"
    res = run_attiqa("export", checkpoint, dst, "--name", "mini")
    assert res.returncode == 0 and "sha256" in res.stderr, res.stderr
    assert dst.stat().st_size < checkpoint.stat().st_size * 0.6
    a, b = attiqa.load_scorer(checkpoint), attiqa.load_scorer(dst)
    assert b.info.name == "mini"
    sa, sb = a(photos["coffee"]), b(photos["coffee"])
    for c in a.columns:
        assert abs(sa[c] - sb[c]) < 0.05 * (1 if c != "mos" else 100)


def test_scorer_identity_hashes_a_checkpoint_once_and_a_changed_file_again(tmp_path, monkeypatch):
    """isp-tune asks for its reward model's identity up to four times a run: the file is hashed once per
    process, and again when it changes (size or modification time). Counted as readings of the checkpoint
    (session 54: the file's hash is one of ``checkpoint_hashes``' one reading)."""
    import os

    import attiqa.io.checkpoints as checkpoints
    import attiqa.scorers as scorers
    from attiqa.io.hashes import sha256_of

    read_once = checkpoints._read_once

    torch.manual_seed(0)
    run = tmp_path / "run"
    model = AttiqaModel(create_backbone("tiny"), head_hidden=8)
    ckpt = save_model(model, run / "finetune" / "best.safetensors", card={"name": "m"})
    hashed: list[str] = []
    monkeypatch.setattr(checkpoints, "_read_once", lambda p: hashed.append(str(p)) or read_once(p))
    first = scorers.scorer_identity(ckpt)
    assert first == {"name": str(ckpt), "sha256": sha256_of(ckpt)}
    assert scorers.scorer_identity(str(ckpt)) == first
    assert scorers.scorer_identity(run)["sha256"] == first["sha256"]
    assert len(hashed) == 1  # by path, as a string, by its run folder: one hash
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 1  # same size; a new modification time
    st = ckpt.stat()
    ckpt.write_bytes(bytes(data))
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = scorers.scorer_identity(ckpt)
    assert second["sha256"] == sha256_of(ckpt) != first["sha256"] and len(hashed) == 2
    save_model(model, ckpt, card={"name": "m, saved again"})  # another size (a checkpoint, as it reads one)
    assert scorers.scorer_identity(ckpt)["sha256"] == sha256_of(ckpt) and len(hashed) == 3
