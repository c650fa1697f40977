"""The training side — `attiqa label`, `train`, `bench`, `distort`, `select-prompts` (docs/robustness.md):
what a user's own files did before their fix. Every fixture is generated here; each test failed before its
fix."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.errors import AttiqaError

runner = CliRunner()


def _refused(args: list[str]) -> str:
    """The one line a command stops with (the app runner prints it as `error: …`, exit 2)."""
    res = runner.invoke(app, args)
    assert isinstance(res.exception, AttiqaError), res.output
    return " ".join(str(res.exception).split())


def _photos(folder, n: int = 3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        base = np.linspace(0, 255, 48 * 40 * 3).reshape(40, 48, 3)
        img = np.clip(base + rng.normal(0, 10 + 5 * i, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_label_out_that_is_not_a_label_file_is_refused_before_the_teacher_loads(tmp_path):
    """**Was**: `attiqa label photos -o mos.csv` (an existing score CSV, or a photo) ended in pyarrow's
    "Parquet magic bytes not found" traceback, and `-o labels.csv` (new) wrote Parquet bytes under a
    `.csv` name. Now one line each, before any labelling, and the file is left as it was."""
    photos = _photos(tmp_path / "photos")
    score_csv = tmp_path / "mos.csv"
    score_csv.write_text("image,mos\nphotos/p0.png,3.5\n")
    said = _refused(["label", str(photos), "-o", str(score_csv)])
    assert f"{score_csv}: exists and is not a label file" in said and "choose another --out" in said
    assert score_csv.read_text() == "image,mos\nphotos/p0.png,3.5\n"

    new_csv = tmp_path / "labels.csv"
    assert f"name it {tmp_path / 'labels.parquet'}" in _refused(["label", str(photos), "-o", str(new_csv)])
    assert not new_csv.exists()

    # the same through a run config's label.out
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'run'}\nlabel:\n  images: [{photos}]\n  out: {score_csv}\n")
    assert f"{score_csv}: exists and is not a label file" in _refused(["train", "-c", str(cfg)])
    assert not (tmp_path / "run").exists()

    good = tmp_path / "labels.parquet"
    res = runner.invoke(app, ["label", str(photos), "-o", str(good)])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["label", str(photos), "-o", str(good)]).exit_code == 0  # resumes


def test_a_config_that_is_not_yaml_sections_and_a_bad_set_override_are_one_line_naming_them(tmp_path):
    """**Was**: `attiqa train -c run.toml --set finetune.epochs=1` (a TOML config: YAML reads it as one
    string; also a YAML list) ended in an `AttributeError: 'str' object has no attribute 'get'` traceback,
    without `--set` "expected a mapping of settings, got str"; and a bad `--set` value or key was reported
    as the config file's ("run.yaml: pretrain.epochs: expected an integer, got 'abc'", a file that says
    `epochs: 2`). Now the TOML file is named as such with the fix, and the `--set` is named."""
    toml = tmp_path / "run.toml"
    toml.write_text('out_dir = "run"\n[finetune]\ncsv = "mos.csv"\nepochs = 1\n')
    for extra in ([], ["--set", "finetune.epochs=1"]):
        said = _refused(["train", "-c", str(toml), *extra])
        assert said.startswith(f"{toml}: not a run config: its top level is a str")
        assert "configs are YAML (JSON reads too)" in said
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    said = _refused(["train", "-c", str(listed), "--set", "finetune.epochs=1"])
    assert said.startswith(f"{listed}: not a run config: its top level is a list")

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'run'}\npretrain:\n  epochs: 2\n")
    said = _refused(["train", "-c", str(cfg), "--set", "pretrain.epochs=abc"])
    assert said == f"{cfg}: pretrain.epochs: expected an integer, got 'abc' (from --set pretrain.epochs=abc)"
    said = _refused(["train", "-c", str(cfg), "--set", "pretrain.epoch=3"])
    assert said.startswith(f"{cfg}: pretrain: unknown key 'epoch' (did you mean 'epochs'?)")
    assert said.endswith("(from --set pretrain.epoch=3)")
    said = _refused(["train", "-c", str(cfg), "--set", "pretrian=null"])
    assert said.endswith("(from --set pretrian=null)")
    cfg.write_text(f"out_dir: {tmp_path / 'run'}\npretrain:\n  epoch: 2\n")  # the file's own typo
    said = _refused(["train", "-c", str(cfg), "--set", "pretrain.lr=0.001"])
    assert said.startswith(f"{cfg}: pretrain: unknown key 'epoch'") and "--set" not in said


def test_degrade_refuses_a_max_side_below_16_as_make_distorted_does(tmp_path):
    """**Was**: `attiqa degrade photos -o out --max-side -5` wrote every graded image as a 1x1 pixel PNG
    ("44 written" for 4 photos) and `--max-side 0` silently meant no limit; `make-distorted --max-side`
    and a config's `degrade.max_side` refuse values below 16. Now `degrade` does too, before any work."""
    photos = _photos(tmp_path / "photos", n=1)
    for bad in ("-5", "0", "3"):
        out = tmp_path / f"out{bad}"
        res = runner.invoke(app, ["degrade", str(photos), "-o", str(out), "--max-side", bad])
        assert res.exit_code == 2, res.output
        assert "--max-side" in res.output and not out.exists()
    res = runner.invoke(app, ["degrade", str(photos), "-o", str(tmp_path / "ok"), "--max-side", "16"])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "ok" / "p0__contrast_1.png").size == (16, 13)


def test_bench_with_a_toml_base_config_names_it(tmp_path):
    """`attiqa bench -c ft.toml` (and `train -c`) with a TOML table that YAML cannot parse: **was** "not valid
    YAML (expected '<document start>', …)", not saying what the file is; now with the same fix."""
    toml = tmp_path / "ft.toml"
    toml.write_text("[finetune]\nepochs = 1\n")
    (tmp_path / "d").mkdir()
    said = _refused(
        ["bench", "single", "-d", f"folder={tmp_path / 'd'}", "-c", str(toml), "-o", str(tmp_path / "b")]
    )
    assert said.startswith(f"{toml}: not valid YAML") and "configs are YAML (JSON reads too)" in said


def test_select_prompts_names_a_teacher_that_is_not_clip(tmp_path):
    """**Was**: `attiqa select-prompts --teacher clip` (`attiqa label`'s spelling of the paper's teacher)
    and `--teacher classical` (the default teacher of `label`) were read as open_clip model names:
    "unknown open_clip model 'clip' and no such path; see open_clip.list_models() …". Now `clip` is the
    paper's CLIP as in `label`, and a teacher without prompts is one line saying what to pass."""
    out = tmp_path / "sel"
    said = _refused(["select-prompts", "--teacher", "classical", "--out", str(out)])
    assert said == (
        "teacher 'classical' uses no prompts — prompt selection chooses a CLIP teacher's prompts: pass clip, "
        "clip:MODEL/PRETRAINED or clip:PATH"
    )
    said = _refused(["select-prompts", "--teacher", "clpi", "--out", str(out)])
    assert said.startswith("unknown teacher 'clpi' (did you mean 'clip'?); prompt selection chooses")
    assert not out.exists()
    from attiqa.teachers import DEFAULT_CLIP_SPEC, clip_spec

    assert clip_spec("clip") == DEFAULT_CLIP_SPEC
    assert clip_spec("clip:ViT-B-16/openai") == "ViT-B-16/openai" == clip_spec("ViT-B-16/openai")


def test_train_exiqa_refuses_a_learning_rate_that_is_not_positive(tmp_path, tiny_dir):
    """**Was**: `attiqa train exiqa DATA -o RUN --lr -1` (or `nan`) loaded CLIP and the set, then ended in
    torch's `ValueError: Invalid learning rate: -1.0` traceback; `--lr 0` trained two epochs that changed
    nothing and saved them. A config's `lr` is refused the same way when it is read. Now the option is
    refused before anything loads (also `train exiqa-regressor --lr`)."""
    photos = _photos(tmp_path / "photos", n=2)
    data = tmp_path / "md"
    res = runner.invoke(app, ["make-distorted", str(photos), "--out", str(data), "--rounds", "1"])
    assert res.exit_code == 0, res.output
    for lr in ("-1", "nan", "0"):
        run = tmp_path / f"run{lr}"
        args = ["train", "exiqa", str(data), "-o", str(run), "--clip", str(tiny_dir), "--epochs", "1"]
        res = runner.invoke(app, [*args, "--warmup-epochs", "0", "--prompts", "2", "--lr", lr])
        assert res.exit_code == 2, (res.output, res.exception)
        assert "--lr" in res.output and "not a learning rate" in res.output and not run.exists()
    res = runner.invoke(app, ["train", "exiqa-regressor", str(tmp_path), "--mos", "m.csv", "--lr", "-0.1"])
    assert res.exit_code == 2 and "not a learning rate" in res.output


def test_a_worker_count_that_would_fork_the_machine_out_of_memory_is_refused(tmp_path):
    """**Was**: `attiqa label photos -w 100000` (and a config's `num_workers: 100000`, `score -w`, …) asked
    torch for 100000 decode processes: after torch's warning it forked about 50 a second, memory growing
    ~0.7 GB a second, until the machine ran out. Now at most 64 (`attiqa.io.cores.MAX_WORKERS`), refused
    before any work. (A path that is not there: before the fix this test must not fork.)"""
    from attiqa.config import load_config
    from attiqa.errors import ConfigError

    for cmd in (["label", str(tmp_path / "none")], ["score", str(tmp_path / "none"), "-m", "classical"]):
        res = runner.invoke(app, [*cmd, "-w", "100000"])
        assert res.exit_code == 2 and "--workers" in res.output, (res.output, res.exception)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'run'}\npretrain:\n  epochs: 1\n")
    for stage in ("pretrain", "finetune", "label"):
        try:
            load_config(cfg, [f"{stage}.num_workers=100000", f"labels={cfg}", "finetune.csv=" + str(cfg)])
        except ConfigError as exc:
            assert f"{stage}.num_workers: must be in [0, 64]" in str(exc)
        else:
            raise AssertionError(f"{stage}.num_workers=100000 accepted")
    from helpers import label_table

    labels = label_table(tmp_path / "labels.parquet")  # `labels:` is checked to be a label table at load
    assert load_config(cfg, ["pretrain.num_workers=64", f"labels={labels}"]).pretrain.num_workers == 64


def test_a_finetune_csv_naming_missing_images_is_refused_before_labelling(tmp_path):
    """**Was** (session 46's bench audit): `attiqa train -c run.yaml` whose `finetune.csv` names images that
    are not there labelled every photo and pretrained for all its epochs before saying so. Now the
    fine-tuning table is read with the config's other inputs: one line, and no run folder."""
    photos = _photos(tmp_path / "photos")
    table = tmp_path / "mos.csv"
    table.write_text("image,mos\n" + "".join(f"gone{i}.jpg,{i}\n" for i in range(6)))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"out_dir: {tmp_path / 'run'}\nlabel:\n  images: [{photos}]\n  teacher: classical\n"
        f"pretrain:\n  epochs: 1\nfinetune:\n  csv: {table}\n"
    )
    said = _refused(["train", "-c", str(cfg)])
    assert f"{table}: 6 of 6 images not found" in said
    assert not (tmp_path / "run").exists()
