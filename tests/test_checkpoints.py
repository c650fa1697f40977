"""Checkpoints are safetensors + a JSON card; training state round-trips; no pickle is ever loaded."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from attiqa.errors import ModelLoadError
from attiqa.io.checkpoints import (
    load_checkpoint,
    load_training_state,
    read_card,
    save_checkpoint,
    save_training_state,
)
from attiqa.scorers.zoo import resolve_weights


def test_roundtrip_with_card(tmp_path):
    tensors = {"a.weight": torch.randn(3, 4), "b.count": torch.arange(5)}
    card = {"backbone": "tiny", "metrics": {"srocc": 0.5}}
    path = save_checkpoint(tmp_path / "m.safetensors", tensors, card)
    got, got_card = load_checkpoint(path)
    assert torch.equal(got["a.weight"], tensors["a.weight"]) and torch.equal(
        got["b.count"], tensors["b.count"]
    )
    assert got_card["backbone"] == "tiny" and got_card["format_version"] == 1
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["srocc"] == 0.5
    (tmp_path / "m.json").unlink()  # the header copy is authoritative
    assert read_card(path)["backbone"] == "tiny"


def test_half_precision_loads_as_float32(tmp_path):
    w = torch.randn(8, 8)
    path = save_checkpoint(tmp_path / "h", {"w": w}, {}, half=True)
    assert path.suffix == ".safetensors"
    got, _ = load_checkpoint(path)
    assert got["w"].dtype == torch.float32 and torch.allclose(got["w"], w, atol=1e-2)


def test_half_precision_halves_weights_but_keeps_statistics_fp32(tmp_path):
    # a ridge head's feature spread of 1.7e-8 is 0 in fp16 and it divides by it (attiqa-agiqa3k, session 21)
    tiny, big = torch.tensor([2.0, 1.7e-8]), torch.tensor([1.0, 1e6])
    tensors = {"ridge.scale": tiny, "ridge.center": big.clone(), "big.weight": big,
               "conv.weight": tiny.clone(), "fc.bias": torch.tensor([0.5]),
               "bn.num_batches_tracked": torch.tensor(3)}  # fmt: skip
    path = save_checkpoint(tmp_path / "h", tensors, {}, half=True)
    with safe_open(str(path), framework="pt") as fh:
        dtypes = {k: fh.get_tensor(k).dtype for k in fh.keys()}  # noqa: SIM118 (not iterable)
    assert dtypes == {"ridge.scale": torch.float32, "ridge.center": torch.float32,
                      "big.weight": torch.float32,  # 1e6 overflows fp16
                      "conv.weight": torch.float16, "fc.bias": torch.float16,
                      "bn.num_batches_tracked": torch.int64}  # fmt: skip
    got, _ = load_checkpoint(path)
    assert torch.equal(got["ridge.scale"], tiny) and torch.equal(got["big.weight"], big)


def test_pickle_files_are_refused(tmp_path):
    p = tmp_path / "model.pth"
    p.write_bytes(b"not even read")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_checkpoint(p)
    with pytest.raises(ModelLoadError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_optimizer_state_roundtrip(tmp_path):
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    save_training_state(tmp_path / "state.safetensors", opt.state_dict(), {"epoch": 3})
    sd, extra = load_training_state(tmp_path / "state.safetensors")
    assert extra == {"epoch": 3}
    opt2 = torch.optim.AdamW(torch.nn.Linear(4, 2).parameters(), lr=1e-3)
    opt2.load_state_dict(sd)
    for k in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(opt2.state_dict()["state"][0][k], opt.state_dict()["state"][0][k])


def test_unknown_named_model_suggests(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown model name"):
        resolve_weights("no-such-model")


def test_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    path = save_checkpoint(tmp_path / "p.safetensors", {"w": torch.zeros(2)}, {})
    for p in (path, tmp_path / "p.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
