"""Session 51's `attiqa train` items (docs/robustness.md): the command line's `--out-dir` over a config's
empty `out_dir:`, and a changed label stage refused on `--resume` before it labels. The network is the tiny
random one; each test failed before its fix."""

from __future__ import annotations

from helpers import tiny_train_config


def test_out_dir_option_overrides_an_empty_out_dir_of_the_config(tmp_path, cli):
    """**Was**: a config saying `out_dir: ""` refused ("out_dir: empty") even with `--out-dir runs/mine`
    given, the config checked before the option replaced it; now the option's value is the run's folder.
    Without the option the config's empty value keeps its one line, and an empty option its own."""
    cfg = tiny_train_config(tmp_path)
    text = cfg.read_text().splitlines()
    cfg.write_text("\n".join(['out_dir: ""', *text[1:]]) + "\n")
    mine = tmp_path / "mine"
    res = cli("train", "--config", cfg, "--out-dir", mine)
    assert res.returncode == 0, res.stderr
    assert (mine / "finetune" / "last.safetensors").is_file()
    res = cli("train", "--config", cfg)
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: {cfg}: out_dir: empty — name the run's folder, e.g. runs/mine"
    res = cli("train", "--config", cfg, "--out-dir", "")
    assert res.stderr.strip() == "error: --out-dir: empty — name the run's folder, e.g. runs/mine"
