"""Run configs: typed, validated, unknown keys rejected with the valid names listed."""

from __future__ import annotations

import pytest

from attiqa.config import PretrainConfig, TrainConfig, from_dict, load_config
from attiqa.errors import ConfigError


def test_defaults_follow_the_paper():
    p = PretrainConfig()
    assert (p.margin, p.lr, p.batch_size, p.crop_size, p.epochs) == (0.1, 1e-4, 256, 224, 100)


def test_load_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("out_dir: runs/x\npretrain:\n  backbone: tiny\n  epochs: 2\nfinetune:\n  csv: mos.csv\n")
    cfg = load_config(f)
    assert isinstance(cfg, TrainConfig) and cfg.pretrain.backbone == "tiny" and cfg.pretrain.epochs == 2
    assert cfg.label is None and cfg.finetune.csv == "mos.csv" and cfg.finetune.crop_size == 320


@pytest.mark.parametrize(
    "data, match",
    [
        (
            {"pretrain": {"epoch": 3}},
            r"unknown key 'epoch' \(did you mean 'epochs'\?\); valid keys: backbone",
        ),
        ({"pretrian": {}}, r"unknown key 'pretrian'"),
        ({"pretrain": {"epochs": "many"}}, r"config.pretrain.epochs: expected an integer"),
        ({"pretrain": {"hflip": "yes"}}, r"expected true/false"),
        ({"label": {"images": 5}}, r"expected a list"),
    ],
)
def test_invalid_configs_are_explained(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(TrainConfig, data)


def test_bad_yaml_names_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("pretrain: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")


def test_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("pretrain:\n  backbone: tiny\nfinetune:\n  csv: a.csv\n")
    cfg = load_config(f, ["finetune.split_seed=3", "pretrain=null", "label.images=[x, y]", "out_dir=r"])
    assert cfg.finetune.split_seed == 3 and cfg.pretrain is None and cfg.label.images == ["x", "y"]
    assert cfg.out_dir == "r"
    with pytest.raises(ConfigError, match="unknown key 'split_sed'"):
        load_config(f, ["finetune.split_sed=3"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(f, ["finetune.split_seed"])
