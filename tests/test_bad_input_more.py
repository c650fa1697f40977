"""A second black-box pass over bad input (session 40, docs/robustness.md): a key set twice in a config, a
device the machine lacks, a folder or a link loop where a file belongs, an option-like file name, an output
path without extension. Each is one line naming the thing and the fix; each test failed before its fix."""

from __future__ import annotations

from typer.testing import CliRunner

from attiqa.errors import ConfigError

runner = CliRunner()


def test_a_key_set_twice_in_a_config_is_refused_naming_the_line(tmp_path):
    from attiqa.cli.app import app

    cfg = tmp_path / "dup.yaml"
    cfg.write_text("out_dir: runs/x\nfinetune:\n  csv: mos.csv\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception) == f"{cfg}: line 6: key 'lr' is set twice in one section — keep one of them"
    cfg.write_text("finetune: {csv: mos.csv}\nout_dir: a\nout_dir: b\n")  # at the top of the file too
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(result.exception, ConfigError) and "line 3: key 'out_dir' is set twice" in str(
        result.exception
    )
