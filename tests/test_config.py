"""Run configs: typed, validated, unknown keys rejected with the valid names listed."""

from __future__ import annotations

import pytest
from helpers import label_table

from attiqa.config import PretrainConfig, TrainConfig, from_dict, load_config
from attiqa.errors import ConfigError


def test_defaults_follow_the_paper():
    p = PretrainConfig()
    assert (p.margin, p.lr, p.batch_size, p.crop_size, p.epochs) == (0.1, 1e-4, 256, 224, 100)


def test_load_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config's relative paths start in the working folder
    (tmp_path / "mos.csv").write_text("image,mos\n")
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


def test_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("image,mos\n")
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    f = tmp_path / "c.yaml"
    f.write_text("pretrain:\n  backbone: tiny\nfinetune:\n  csv: a.csv\n")
    cfg = load_config(f, ["finetune.split_seed=3", "pretrain=null", "label.images=[x, y]", "out_dir=r"])
    assert cfg.finetune.split_seed == 3 and cfg.pretrain is None and cfg.label.images == ["x", "y"]
    assert cfg.out_dir == "r"
    with pytest.raises(ConfigError, match="unknown key 'split_sed'"):
        load_config(f, ["finetune.split_sed=3"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(f, ["finetune.split_seed"])


# ----------------------------------------------------------------------------------------------------------
# Values are checked at load, for every stage (issue 16)


def _write(tmp_path, text: str):
    (tmp_path / "mos.csv").write_text("image,mos\n")
    label_table(tmp_path / "labels.parquet")
    f = tmp_path / "run.yaml"
    f.write_text(text)
    return f


GOOD = "labels: labels.parquet\npretrain:\n  backbone: tiny\nfinetune:\n  csv: mos.csv\n"


def test_scientific_notation_without_a_dot_is_a_number(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_write(tmp_path, GOOD + "  lr: 1e-4\n  head_lr: 2E-3\n"))
    assert cfg.finetune.lr == 1e-4 and cfg.finetune.head_lr == 2e-3
    with pytest.raises(ConfigError, match="finetune.lr: expected a number, got 'fast'"):
        load_config(_write(tmp_path, GOOD + "  lr: fast\n"))


@pytest.mark.parametrize("override, match", [
    ("pretrain.epochs=-3", r"pretrain.epochs: must be >= 1, got -3"),
    ("finetune.epochs=0", r"finetune.epochs: must be >= 1, got 0"),
    ("finetune.batch_size=0", r"finetune.batch_size: must be >= 1, got 0"),
    ("pretrain.batch_size=1", r"pretrain.batch_size: must be >= 2 \(a ranking batch needs pairs\)"),
    ("finetune.val_fraction=1.5", r"finetune.val_fraction: must be in \(0, 1\), got 1.5"),
    ("finetune.lr=-1e-4", r"finetune.lr: must be > 0"),
    ("finetune.lr=.nan", r"finetune.lr: must be a finite number, got nan"),  # NaN passed every bound
    ("finetune.ridge_power=.inf", r"finetune.ridge_power: must be a finite number, got inf"),
    ("pretrain.loss=rankng", r"pretrain.loss: 'rankng' is not one of ranking, l2 \(did you mean 'ranking'"),
    ("finetune.lr_schedule=cosin", r"lr_schedule: 'cosin' is not one of constant, cosine \(did you mean"),
    ("pretrain.backbone=efficientnet_lite0_m", r"backbone: 'efficientnet_lite0_m' is not one of .*did"),
    ("finetune.ridge_taps=depthwse", r"ridge_taps: 'depthwse' is not one of stages, depthwise, .*did you"),
    ("finetune.csv=missing.csv", r"finetune.csv: missing.csv not found .*with --set finetune.csv=PATH\)"),
    ("finetune.polish_epochs=2", r"finetune.polish_epochs: polishes a feature-cache run"),
    ("label.teacher=classical", r"label.images|labels"),
    ("label.teacher=clasical", r"label.teacher: 'clasical' is not classical, clip.*did you mean 'classical'"),
    ("degrade.levels=[0, 6]", r"degrade.levels: must be in \[1, 5\], got 0"),
    ("degrade.distortions=[gaussian_blurr]", r"distortions: 'gaussian_blurr' is not one of .*did you mean"),
])  # fmt: skip
def test_every_stage_value_is_checked_at_load_in_one_line(tmp_path, monkeypatch, override, match):
    """Before: negative epochs trained nothing and exited 0, batch_size 0 became 2, and the choice fields
    were checked only when their stage started (after the earlier stages had run)."""
    monkeypatch.chdir(tmp_path)
    f = _write(tmp_path, GOOD)
    if override == "label.teacher=classical":  # a label stage whose images are missing
        override = "label.images=[nowhere/]"
        f = _write(tmp_path, GOOD.replace("labels: labels.parquet\n", ""))  # the stage makes the labels
        match = r"label.images: nowhere/ not found .*--set label.images=\[FOLDER\]\)"
    with pytest.raises(ConfigError, match=match) as exc:
        load_config(f, [override])
    assert "\n" not in str(exc.value) and str(f) in str(exc.value)


def test_configs_built_in_code_get_the_same_checks():
    from attiqa.config import FinetuneConfig, check_values

    with pytest.raises(ConfigError, match="finetune.val_fraction: must be in"):
        FinetuneConfig(val_fraction=0.0).check()
    with pytest.raises(ConfigError, match="pretrain.epochs: must be >= 1"):
        check_values(PretrainConfig(epochs=0), "pretrain")


def test_a_shared_model_section_sets_the_network_of_both_stages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = "model:\n  backbone: tiny\n  head_hidden: 16\nlabels: labels.parquet\npretrain:\n  epochs: 2\n" \
           "finetune:\n  csv: mos.csv\n"  # fmt: skip
    cfg = load_config(_write(tmp_path, text))
    assert (cfg.pretrain.backbone, cfg.pretrain.head_hidden) == ("tiny", 16)
    assert (cfg.finetune.backbone, cfg.finetune.head_hidden) == ("tiny", 16)
    with pytest.raises(ConfigError, match=r"finetune.head_hidden: 32 differs from model.head_hidden \(16\)"):
        load_config(_write(tmp_path, text + "  head_hidden: 32\n"))
    # Older configs (the network in each stage) still load.
    old = load_config(_write(tmp_path, GOOD.replace("csv: mos.csv", "csv: mos.csv\n  backbone: tiny")))
    assert old.model is None and old.finetune.backbone == "tiny"


def test_a_stage_is_checked_with_the_network_of_the_model_section(tmp_path, monkeypatch):
    """``pretrain.checkpoint_activations`` is for EfficientNet-Lite backbones: with the network set in
    ``model:`` (configs/cpu_small.yaml's layout) the stage was checked before ``model:`` reached it, with the
    default resnet50, so `attiqa train` refused the key for every config of that layout."""
    monkeypatch.chdir(tmp_path)
    text = "model:\n  backbone: efficientnet_lite0\nlabels: labels.parquet\npretrain:\n  epochs: 2\n"
    cfg = load_config(_write(tmp_path, text), ["pretrain.checkpoint_activations=true"])
    assert (cfg.pretrain.backbone, cfg.pretrain.checkpoint_activations) == ("efficientnet_lite0", True)
    with pytest.raises(ConfigError, match=r"pretrain.checkpoint_activations: only .* \(not resnet50\)"):
        load_config(_write(tmp_path, text.replace("efficientnet_lite0", "resnet50")),
                    ["pretrain.checkpoint_activations=true"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"model.backbone: 'resnet5' is not one of"):
        load_config(_write(tmp_path, text.replace("efficientnet_lite0", "resnet5")))


def test_every_config_in_the_repo_passes_the_value_checks():
    from pathlib import Path

    from attiqa.config import read_yaml

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.rglob("*.yaml"))
    assert files
    for f in files:
        from_dict(TrainConfig, read_yaml(f), f.name)  # values only: their data folders are not here


def test_recomputed_blocks_with_a_feature_cache_are_refused(tmp_path, monkeypatch):
    """A feature-cache pretraining keeps the backbone frozen (its five crops' features computed once), so
    ``checkpoint_activations`` there recomputed nothing and was accepted silently."""
    monkeypatch.chdir(tmp_path)
    text = "model:\n  backbone: efficientnet_lite0\nlabels: labels.parquet\npretrain:\n  epochs: 2\n"
    keys = ["pretrain.checkpoint_activations=true", "pretrain.feature_cache=true"]
    with pytest.raises(ConfigError, match=r"checkpoint_activations: a feature_cache run .* set one of them"):
        load_config(_write(tmp_path, text), keys)
    assert load_config(_write(tmp_path, text), keys[:1]).pretrain.checkpoint_activations


def test_configs_round_trip_through_yaml_and_json_with_unwritten_defaults():
    """**Was**: ``yaml.safe_dump(to_dict(cfg))`` of any config holding the backbone nobody wrote (an
    :class:`~attiqa.config.Unwritten` ``resnet50``) failed ("cannot represent an object"). Now ``to_dict`` is
    plain data: every default config and every shipped one reads back equal from YAML and from JSON."""
    import dataclasses
    import json
    from pathlib import Path

    import yaml

    from attiqa.config import read_sections, to_dict

    every = {f.name: {} for f in dataclasses.fields(TrainConfig) if f.name in
             ("model", "degrade", "label", "pretrain", "finetune")}  # fmt: skip
    configs = [TrainConfig(), from_dict(TrainConfig, every, "")]
    shipped = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
    assert shipped
    for path in shipped:
        data = read_sections(path)
        if "out_dir" in data or any(k in data for k in every):  # a run config (not a bench-only one)
            configs.append(from_dict(TrainConfig, data, ""))
    for cfg in configs:
        for section in (cfg, *(getattr(cfg, k) for k in every if getattr(cfg, k) is not None)):
            plain = to_dict(section)
            assert from_dict(type(section), yaml.safe_load(yaml.safe_dump(plain)), "") == section
            assert from_dict(type(section), json.loads(json.dumps(plain)), "") == section


def _alias_bomb(levels: int = 8) -> str:
    """A YAML list of 9 ** ``levels`` strings in under a kilobyte: each anchor is nine aliases of the one
    before ("billion laughs")."""
    rows = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    rows += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"[{', '.join(rows)}]"


def test_a_yaml_alias_bomb_in_a_setting_is_one_short_line(tmp_path, monkeypatch):
    """A 1 KB config whose label.out holds 43 million strings by aliases was "expected a string, got
    [[…]]" of 351 MB after 40 s and 2.4 GB (one level more: a MemoryError traceback); the value is now
    shown cut short. Likewise a --set under such a setting."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    f = tmp_path / "bomb.yaml"
    f.write_text(f"label:\n  images: [photos]\n  out: {_alias_bomb()}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(f)
    said = str(caught.value)
    assert said.startswith(f"{f}: label.out: expected a string, got [[") and len(said) < 400, said[:500]
    f.write_text(f"label:\n  images: [photos]\nfinetune: {_alias_bomb()}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(f, ["finetune.epochs=1"])
    said = str(caught.value)
    assert "--set finetune.epochs=1: finetune is [[" in said and len(said) < 600, said[:700]
