"""The ATTIQA scorer runs a batch's crops through the network a few at a time on CPU (memory), with the scores
of the whole batch at once to float rounding; the chunk size is checked where it is set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import run_attiqa

from attiqa.errors import AttiqaError
from attiqa.models import AttiqaModel, create_backbone, save_model
from attiqa.scorers.attiqa_scorer import CPU_CHUNK, AttiqaScorer, default_chunk
from attiqa.scorers.zoo import resolve_weights


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny", pretrained=False), head_hidden=16, mos_hidden=8)
    model.set_mos_range(0.0, 100.0)
    return save_model(model, tmp_path / "tiny.safetensors", card={"name": "tiny"})


def _passes(scorer: AttiqaScorer, batch: torch.Tensor) -> tuple[np.ndarray, list[int]]:
    """The scores of ``batch`` and the number of crops of each forward pass of the network."""
    sizes: list[int] = []
    hook = scorer.model.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    try:
        return scorer.score_tensors(batch).numpy(), sizes
    finally:
        hook.remove()


def test_chunks_of_any_size_give_the_whole_batch_scores(checkpoint, photos):
    whole = AttiqaScorer(checkpoint, chunk=0)
    batch = torch.stack([whole.transform(img) for img in photos.values()])  # 5 photos x 5 crops
    want, sizes = _passes(whole, batch)
    assert sizes == [25]
    passes = {1: [1] * 25, 7: [7, 7, 7, 4], 10: [10, 10, 5], 20: [20, 5], 25: [25], 99: [25]}
    for chunk, expect in passes.items():
        got, sizes = _passes(AttiqaScorer(checkpoint, chunk=chunk), batch)
        assert sizes == expect
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # float rounding: kernels per size


def test_the_shipped_model_scores_real_photos_the_same_in_chunks(photos):
    """The shipped model (ridge head on tap statistics, whose blocks follow the batch's size): the CPU
    default against the whole batch, within 1e-3 MOS (scale 0-100) and 1e-5 in the attributes."""
    ckpt = resolve_weights("attiqa-default")
    chunked, whole = AttiqaScorer(ckpt), AttiqaScorer(ckpt, chunk=0)
    assert chunked.chunk == CPU_CHUNK
    batch = torch.stack([whole.transform(img) for img in photos.values()])
    got, sizes = _passes(chunked, batch)
    want, _ = _passes(whole, batch)
    assert max(sizes) == CPU_CHUNK and sum(sizes) == 25
    np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=0, atol=1e-3)
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], rtol=0, atol=1e-5)


def test_chunk_default_per_device_and_its_environment_setting(monkeypatch):
    monkeypatch.delenv("ATTIQA_CHUNK", raising=False)
    assert default_chunk(torch.device("cpu")) == CPU_CHUNK
    assert default_chunk(torch.device("cuda")) == 0  # a GPU keeps its large batches
    monkeypatch.setenv("ATTIQA_CHUNK", "0")
    assert default_chunk(torch.device("cpu")) == 0
    monkeypatch.setenv("ATTIQA_CHUNK", " 25 ")
    assert default_chunk(torch.device("cuda")) == 25
    for bad in ("-1", "2.5", "many"):
        monkeypatch.setenv("ATTIQA_CHUNK", bad)
        with pytest.raises(AttiqaError, match="ATTIQA_CHUNK"):
            default_chunk(torch.device("cpu"))


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_a_bad_chunk_is_refused(checkpoint, bad):
    with pytest.raises(ValueError, match="chunk must be a whole number"):
        AttiqaScorer(checkpoint, chunk=bad)


def test_a_bad_environment_chunk_is_one_line_from_the_cli(checkpoint, photo_dir):
    res = run_attiqa("score", photo_dir, "-m", checkpoint, "-q", env={"ATTIQA_CHUNK": "lots"})
    assert res.returncode != 0 and "ATTIQA_CHUNK='lots'" in res.stderr
    assert "Traceback" not in res.stderr
