"""Mends of the training side (teacher specs, `--set`, label tables, `--resume`) and its new-user pass over
`torchrun ... attiqa.cli train` (docs/robustness.md). Every fixture is generated here; each test of a changed
behaviour failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import label_table, run_attiqa, tiny_train_config
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.errors import AttiqaError, EveryProcessError

runner = CliRunner()


def _refused(args: list[str]) -> str:
    """The one line a command stops with (the app runner prints it as `error: …`, exit 2)."""
    res = runner.invoke(app, args)
    assert isinstance(res.exception, AttiqaError), res.output
    said = str(res.exception)
    assert "\n" not in said
    return said


def test_one_reading_of_a_teacher_spec():
    """`create_teacher` and `clip_spec` (prompt selection) read a spec through `parse_teacher_spec`."""
    from attiqa.teachers import (
        DEFAULT_CLIP_SPEC,
        UnknownTeacherError,
        clip_spec,
        create_teacher,
        parse_teacher_spec,
    )

    assert parse_teacher_spec(" CLIP ") == ("clip", DEFAULT_CLIP_SPEC)
    assert parse_teacher_spec("Clip: ViT-B-32/laion2b") == ("clip", "ViT-B-32/laion2b")
    assert parse_teacher_spec("classical") == ("classical", "")
    assert clip_spec("clip") == DEFAULT_CLIP_SPEC and clip_spec("hf-hub:org/model") == "hf-hub:org/model"
    for spec, said in (("clasical", "did you mean 'classical'"), ("classical:x", "takes no argument")):
        with pytest.raises(UnknownTeacherError, match=said):
            create_teacher(spec)
        with pytest.raises(UnknownTeacherError, match=said):
            clip_spec(spec)
    assert create_teacher("Classical").columns


def test_a_set_is_named_by_the_keys_it_set_not_by_the_error_text(tmp_path):
    """**Was**: `_from_override` matched the error's text against each `--set`'s key, so a `--set` that
    gave a whole section (`--set 'finetune={…}'`) or a list of sections (`finetune.ridge_extra=[{…}]`) was
    not named: the error read as the file's. Now `apply_overrides` records the keys it set and the error
    carries the key it is about."""
    from attiqa.config import apply_overrides

    cfg = tiny_train_config(tmp_path)
    said = _refused(["train", "-c", str(cfg), "--set", "finetune={csv: x.csv, epochs: abc}"])
    assert said.endswith("finetune.epochs: expected an integer, got 'abc' (from --set finetune={csv: x.csv, "
                         "epochs: abc})")  # fmt: skip
    said = _refused(["train", "-c", str(cfg), "--set", "finetune.ridge_taps=stages",
                     "--set", "finetune.ridge_extra=[{csv: a.csv, shar: 1}]"])  # fmt: skip
    assert "ridge_extra[0]: unknown key 'shar'" in said
    assert said.endswith("(from --set finetune.ridge_extra=[{csv: a.csv, shar: 1}])")
    said = _refused(["train", "-c", str(cfg), "--set", "finetune.polish_epochs=2"])
    assert said.endswith("(from --set finetune.polish_epochs=2)")
    said = _refused(["train", "-c", str(cfg), "--set", "finetune.lr=0.1", "--set", "finetune.lr=-1"])
    assert said.endswith("finetune.lr: must be > 0, got -1.0 (from --set finetune.lr=-1)")
    data = apply_overrides({"finetune": {"epochs": 1}}, ["finetune.lr=0.1", "out_dir=r", "finetune.lr=1"])
    assert data.set_by == {"finetune.lr": "finetune.lr=1", "out_dir": "out_dir=r"}


def test_a_set_under_a_setting_that_is_not_a_section_is_refused(tmp_path):
    """**Was**: `--set finetune.epochs=1` on a config saying `finetune: 5` replaced the 5 with a section
    without a word (and `finetune.epochs.x=1` turned `epochs: 1` into a section)."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'run'}\nfinetune: 5\n")
    said = _refused(["train", "-c", str(cfg), "--set", "finetune.epochs=1"])
    assert said == (
        f"{cfg}: --set finetune.epochs=1: finetune is 5, not a section of settings, so it has no 'epochs' — "
        "write finetune: as a section with its settings indented under it, or set it whole: "
        "--set 'finetune={epochs: 1}'"
    )
    cfg = tiny_train_config(tmp_path)
    said = _refused(["train", "-c", str(cfg), "--set", "finetune.epochs.x=1"])
    assert "finetune.epochs is 1, not a section of settings, so it has no 'x'" in said
    assert not (tmp_path / "run").exists()


def test_the_label_table_is_read_with_one_footer_read(tmp_path):
    """**Was**: `attiqa.labeling`'s table reader read the Parquet footer twice (a schema check, then the
    table): with a large teacher metadata (prompts) every resume read it twice. Measured by the bytes this
    process reads (/proc/self/io)."""
    from attiqa.labeling import META_KEY, done_images

    def rchar() -> int:
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("rchar"))

    path = tmp_path / "labels.parquet"
    meta = {"teacher": {"prompts": "y" * 1_000_000}, "columns": ["sharpness"]}
    table = pa.table({"image": ["a.png", "b.png"], "sharpness": pa.array([0.1, 0.2], pa.float32())})
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), path)
    before = rchar()
    assert done_images(path) == {"a.png", "b.png"}
    assert rchar() - before < 1.5 * path.stat().st_size
    path.write_text("image,mos\n")  # a CSV: the same one line as before
    with pytest.raises(AttiqaError, match="exists and is not a label file .not Parquet"):
        done_images(path)


@pytest.mark.parametrize("kind", ["csv", "no image column", "one row"])
def test_a_labels_file_that_is_not_a_label_table_is_one_line_before_anything_is_written(tmp_path, kind):
    """**Was**: `labels: mos.csv` (a MOS CSV where the label table goes) wrote `out_dir/config.json`, then
    stopped with "mos.csv: not a readable parquet label file (… magic bytes …)", no fix; a Parquet table
    without an `image` column or with one row got as far. Now checked when the config is read."""
    labels = tmp_path / "labels.parquet"
    if kind == "csv":
        labels = tmp_path / "mos.csv"
        labels.write_text("image,mos\na.png,3\n")
    elif kind == "no image column":
        pq.write_table(pa.table({"file": ["a.png", "b.png"], "sharpness": [0.1, 0.9]}), labels)
    else:
        pq.write_table(pa.table({"image": ["a.png"], "sharpness": [0.1]}), labels)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'run'}\nlabels: {labels}\nmodel: {{backbone: tiny}}\n"
                   "pretrain: {epochs: 1}\n")  # fmt: skip
    said = _refused(["train", "-c", str(cfg)])
    assert said.startswith(f"{cfg}: labels: {labels} is not a label table (")
    assert said.endswith("— point it at the Parquet file `attiqa label` wrote (in the config or with --set "
                         "labels=PATH), or add a label: section to make one")  # fmt: skip
    assert not (tmp_path / "run").exists()
    good = label_table(tmp_path / "good.parquet")
    said = _refused(["train", "-c", str(cfg), "--set", f"labels={labels}"])
    assert said.endswith(f"(from --set labels={labels})")
    from attiqa.config import load_config

    assert load_config(cfg, [f"labels={good}"]).labels == str(good)


def test_resume_with_changed_settings_trains_longer_says_so_or_refuses(tmp_path):
    """**Was**: `attiqa train --resume` took any changed setting without a word: a new `split_seed` moved
    training images into the held-out split of the saved run, a new `batch_size` continued it as another
    run, `epochs` below the finished ones wrote a card of the wrong epoch, and a new `weight_decay` was
    silently replaced by the saved optimizer's. Now a resume continues the saved run: more epochs (train
    longer) and the optimizer's rates are taken and said, the other settings of the stage refused by name —
    and the run's config.json kept as it was (**was** rewritten with the refused settings)."""
    from attiqa.io.checkpoints import load_training_state

    cfg = tiny_train_config(tmp_path, epochs=2)
    assert runner.invoke(app, ["train", "-c", str(cfg)]).exit_code == 0
    stage = tmp_path / "run" / "finetune"
    refusals = {
        "finetune.split_seed=1": f"finetune.split_seed: 1 differs from the 0 the run in {stage} was trained "
        "with — --resume continues that run: set it back, or train over it with --no-resume (or choose "
        "another out_dir)",
        "finetune.batch_size=2 finetune.hflip=true": f"finetune.batch_size: 2 differs from the 4 the run in "
        f"{stage} was trained with (and finetune.hflip)",
        "finetune.epochs=1": f"finetune.epochs: 1 is fewer than the 2 epochs the run in {stage} has "
        "finished — set it to 2 or more to continue it, or train over it with --no-resume",
    }
    record = tmp_path / "run" / "config.json"
    recorded = record.read_bytes()
    for sets, said in refusals.items():
        args = [a for s in sets.split() for a in ("--set", s)]
        assert _refused(["train", "-c", str(cfg), "--resume", *args]).startswith(said)
    assert record.read_bytes() == recorded  # was: rewritten with the refused settings (batch_size 2, ...)
    before = (stage / "last.state.safetensors").read_bytes()
    res = runner.invoke(app, ["train", "-c", str(cfg), "--resume", "--set", "finetune.epochs=3", "--set",
                              "finetune.lr=1e-3", "--set", "finetune.weight_decay=0.1", "--set",
                              "finetune.num_workers=1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (
        f"finetune: resuming {stage} after epoch 2 with changed settings: finetune.epochs 2 -> 3, "
        "finetune.lr 0.0001 -> 0.001, finetune.weight_decay 0.01 -> 0.1 (training longer)"
    ) in " ".join(res.output.split())
    assert (stage / "last.state.safetensors").read_bytes() != before
    opt, extra, _ = load_training_state(stage / "last.state.safetensors", with_model=True)
    assert extra["epoch"] == 3 and {g["weight_decay"] for g in opt["param_groups"]} == {0.1}
    assert json.loads(record.read_text())["finetune"]["epochs"] == 3  # the resume that trained: recorded
    assert {g["lr"] for g in opt["param_groups"]} == {1e-3}


def test_resume_from_another_kind_of_start_is_refused(tmp_path):
    """**Was**: `--resume --set pretrain=null` over a run fine-tuned from its pretrained model continued it,
    its card then saying it started from ImageNet weights; the reverse (a checkpoint given to a run begun
    from a fresh network) continued with "saved by an older version". Now both are refused by name."""
    from helpers import tiny_attiqa_checkpoint

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cfg = tiny_train_config(tmp_path)
    stage = tmp_path / "run" / "finetune"
    fix = (
        " — --resume continues that run: give it the start it had (its pretrain: stage or "
        "pretrained_checkpoint), or train over it with --no-resume (or choose another out_dir)"
    )
    assert runner.invoke(app, ["train", "-c", str(cfg)]).exit_code == 0  # from a fresh tiny network
    more = ["--resume", "--set", "finetune.epochs=2"]
    said = _refused(["train", "-c", str(cfg), *more, "--set", f"pretrained_checkpoint={ckpt}"])
    assert said == f"finetune: the run in {stage} was fine-tuned from random:tiny, not {ckpt}{fix}"
    from_ckpt = ["--set", f"pretrained_checkpoint={ckpt}"]
    assert runner.invoke(app, ["train", "-c", str(cfg), "--no-resume", *from_ckpt]).exit_code == 0
    said = _refused(["train", "-c", str(cfg), *more])
    assert said == f"finetune: the run in {stage} was fine-tuned from {ckpt}, not random:tiny{fix}"
    assert runner.invoke(app, ["train", "-c", str(cfg), *more, *from_ckpt]).exit_code == 0  # its own start


def test_a_resume_adding_a_pretrain_stage_is_refused_before_any_stage_runs(tmp_path):
    """**Was**: `--resume` adding `label:` and `pretrain:` to a fine-tune-only run labelled and pretrained
    (minutes to hours), then the fine-tuning refused its start. Now the runner's early checks refuse it:
    nothing labelled, nothing pretrained."""
    from helpers import LABEL_AND_PRETRAIN

    cfg = tiny_train_config(tmp_path)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "-c", str(cfg)]).exit_code == 0  # from a fresh tiny network
    images = tmp_path / "set" / "images"
    label = f"label={{teacher: classical, num_workers: 0, images: [{images}]}}"
    sets = ["--set", LABEL_AND_PRETRAIN[1], "--set", label]  # its pretrain: and label:, its finetune: kept
    res = runner.invoke(app, ["train", "-c", str(cfg), "--resume", *sets])
    # met alike by every process of a torchrun job (the same files read): said once, with no "rank 0 of 2: "
    assert isinstance(res.exception, EveryProcessError), res.output
    said = str(res.exception)
    pretrained = run / "pretrain" / "model.safetensors"
    assert said.startswith(f"finetune: the run in {run / 'finetune'} was fine-tuned from random:tiny, not "
                           f"{pretrained} — --resume continues that run")  # fmt: skip
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "finetune"]  # no labels, no pretrain/


@pytest.mark.parametrize("first", ["fresh", "checkpoint"])
def test_a_polished_run_stopped_with_only_its_cached_heads_saved_checks_its_start(tmp_path, first):
    """**Was**: a cached-then-polished fine-tuning stopped before its first `finetune/last` save (only
    `finetune/heads/last`) was not checked: resumed from a checkpoint it began without, the heads' resume
    said "saved by a run of another network"; begun from one, the refusal read "a pretrained checkpoint".
    Now the heads' card names the start, as the stage's does."""
    from helpers import tiny_attiqa_checkpoint

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cfg = tiny_train_config(tmp_path, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    stage = tmp_path / "run" / "finetune"
    from_ckpt = ["--set", f"pretrained_checkpoint={ckpt}"]
    begun, resumed = (([], from_ckpt), (from_ckpt, []))[first == "checkpoint"]
    assert runner.invoke(app, ["train", "-c", str(cfg), *begun]).exit_code == 0
    for made in stage.iterdir():  # what a stop before the polish's first save leaves: the heads' files
        if made.is_file():
            made.unlink()
    assert (stage / "heads" / "last.state.safetensors").is_file()
    said = _refused(["train", "-c", str(cfg), "--resume", "--set", "finetune.epochs=2", *resumed])
    was, now = (("random:tiny", str(ckpt)), (str(ckpt), "random:tiny"))[first == "checkpoint"]
    assert said.startswith(f"finetune: the run in {stage} was fine-tuned from {was}, not {now} — "), said


def test_a_pretrained_checkpoint_of_another_backbone_is_trained_as_it_is_and_said(tmp_path):
    """**Was**: `pretrained_checkpoint` of another backbone than `model.backbone` was fine-tuned without a
    word (the config's backbone is used only without a checkpoint; `bench --init` the same). Now one line
    says so."""
    from helpers import tiny_attiqa_checkpoint

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cfg = tiny_train_config(tmp_path)
    sets = ["--set", f"pretrained_checkpoint={ckpt}", "--set", "model.backbone=efficientnet_lite0"]
    res = runner.invoke(app, ["train", "-c", str(cfg), *sets])
    assert res.exit_code == 0, res.output
    assert (
        f"finetune: the network of {ckpt} (backbone tiny, its card) is fine-tuned as it is; the config's "
        "backbone efficientnet_lite0 is used only without a pretrained checkpoint"
    ) in " ".join(res.output.split())
    quiet = runner.invoke(
        app, ["train", "-c", str(cfg), "--no-resume", "--set", f"pretrained_checkpoint={ckpt}"]
    )
    assert quiet.exit_code == 0 and "is fine-tuned as it is" not in quiet.output  # the same backbone: no word


def test_the_card_names_the_backbone_trained_and_a_default_backbone_is_not_said(tmp_path):
    """**Was**: with a pretrained checkpoint of another backbone, the card's `config` still named the
    config's `backbone` (efficientnet_lite0, or resnet50 where the config named none), not the network that
    was trained; and the line of the previous test was said of a config naming no backbone ("the config's
    backbone resnet50", a default nobody chose). Now the card's config names the network's backbone, and the
    line is said only of a backbone the config names. Review: the head width too (the card said the config's
    8 beside a network of 16)."""
    from helpers import tiny_attiqa_checkpoint

    from attiqa.io.checkpoints import read_card

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cfg = tiny_train_config(tmp_path)
    last = tmp_path / "run" / "finetune" / "last.safetensors"
    from_ckpt = ["--no-resume", "--set", f"pretrained_checkpoint={ckpt}"]
    named = runner.invoke(
        app, ["train", "-c", str(cfg), *from_ckpt, "--set", "model.backbone=efficientnet_lite0"]
    )
    assert named.exit_code == 0 and "is fine-tuned as it is" in named.output, named.output
    recorded = read_card(last)["config"]
    # the checkpoint's network (head width 16), not the config's unused `model:` (head_hidden 8)
    assert (recorded["backbone"], recorded["head_hidden"], recorded["backbone_weights"]) == ("tiny", 16, None)
    unnamed = runner.invoke(app, ["train", "-c", str(cfg), *from_ckpt, "--set", "model=null"])  # no backbone:
    assert unnamed.exit_code == 0 and "is fine-tuned as it is" not in unnamed.output, unnamed.output
    assert read_card(last)["config"]["backbone"] == "tiny"


def test_a_backbone_the_config_writes_is_said_even_the_default_one(tmp_path):
    """**Was**: a config writing `backbone: resnet50` (the default's name) beside a pretrained checkpoint of
    another backbone was not told apart from one naming none: its backbone, unused, went unsaid. Now a
    written backbone is said whatever its name; the default nobody wrote is still not."""
    from helpers import tiny_attiqa_checkpoint

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cfg = tiny_train_config(tmp_path)
    from_ckpt = ["--no-resume", "--set", f"pretrained_checkpoint={ckpt}"]
    named = runner.invoke(app, ["train", "-c", str(cfg), *from_ckpt, "--set", "model.backbone=resnet50"])
    assert named.exit_code == 0, named.output
    said = " ".join(named.output.split())
    assert (f"the network of {ckpt} (backbone tiny, its card) is fine-tuned as it is; the config's backbone "
            "resnet50 is used only without a pretrained checkpoint") in said, said  # fmt: skip
    unnamed = runner.invoke(app, ["train", "-c", str(cfg), *from_ckpt, "--set", "model={head_hidden: 8}"])
    assert unnamed.exit_code == 0 and "is fine-tuned as it is" not in unnamed.output, unnamed.output


def test_a_stages_written_backbone_beside_a_model_section_naming_none_is_kept(tmp_path):
    """Review: a stage's written `backbone: resnet50` beside a `model:` section that names no backbone was
    overwritten by model:'s unwritten default (equal to it), so the line about the unused backbone was lost;
    and a stage's `efficientnet_lite0` was refused as differing from a model.backbone nobody wrote."""
    from helpers import tiny_attiqa_checkpoint

    from attiqa.config import load_config, written
    from attiqa.errors import ConfigError

    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cfg = tiny_train_config(tmp_path)
    res = runner.invoke(app, ["train", "-c", str(cfg), "--no-resume",
                              "--set", f"pretrained_checkpoint={ckpt}", "--set", "finetune.backbone=resnet50",
                              "--set", "model={pretrained_backbone: false, head_hidden: 8}"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "the config's backbone resnet50 is used only without a pretrained checkpoint" in " ".join(
        res.output.split()
    ), res.output
    own = tmp_path / "own.yaml"
    (tmp_path / "m.csv").write_text("image,mos\n")
    own.write_text(
        f"model: {{head_hidden: 8}}\nfinetune: {{backbone: efficientnet_lite0, csv: {tmp_path}/m.csv}}\n"
    )
    loaded = load_config(own)
    assert loaded.finetune is not None and loaded.finetune.backbone == "efficientnet_lite0"
    assert loaded.finetune.head_hidden == 8 and written(loaded.finetune.backbone)
    # review 4: the same for every key model: shares — a stage's head_hidden or pretrained_backbone beside a
    # model: that writes neither was refused as differing from the default (512, true)
    own.write_text(
        "model: {backbone: tiny}\n"
        f"finetune: {{head_hidden: 8, pretrained_backbone: false, csv: {tmp_path}/m.csv}}\n"
    )
    loaded = load_config(own)
    assert loaded.finetune is not None and loaded.finetune.backbone == "tiny"
    assert loaded.finetune.head_hidden == 8 and loaded.finetune.pretrained_backbone is False
    own.write_text(f"model: {{head_hidden: 16}}\nfinetune: {{head_hidden: 8, csv: {tmp_path}/m.csv}}\n")
    with pytest.raises(ConfigError, match=r"finetune.head_hidden: 8 differs from model.head_hidden \(16\)"):
        load_config(own)  # a value model: writes is still the one place


def test_the_cards_pretrained_backbone_is_the_trained_networks(tmp_path):
    """**Was**: fine-tuned from a pretrained checkpoint, the card's `config.pretrained_backbone` was the
    config's, a setting the run never used (its network came from the checkpoint). Now it is the
    checkpoint's own record (its pretraining's), and null (unknown) where the checkpoint records none (review:
    it was false, a claim nothing read)."""
    from helpers import LABEL_AND_PRETRAIN, tiny_attiqa_checkpoint

    from attiqa.io.checkpoints import read_card

    cfg = tiny_train_config(tmp_path)
    last = tmp_path / "run" / "finetune" / "last.safetensors"
    images = tmp_path / "set" / "images"
    label = f"label={{teacher: classical, num_workers: 0, images: [{images}]}}"
    imagenet = ["--set", "model.pretrained_backbone=true"]  # tiny has no ImageNet weights: random, recorded
    made = runner.invoke(app, ["train", "-c", str(cfg), "--out-dir", str(tmp_path / "pre"), *imagenet,
                               *LABEL_AND_PRETRAIN[:4], "--set", label])  # fmt: skip
    assert made.exit_code == 0, made.output
    pretrained = tmp_path / "pre" / "pretrain" / "model.safetensors"
    assert read_card(pretrained)["config"]["pretrained_backbone"] is True
    res = runner.invoke(app, ["train", "-c", str(cfg), "--set", f"pretrained_checkpoint={pretrained}"])
    assert res.exit_code == 0, res.output
    assert read_card(last)["config"]["pretrained_backbone"] is True  # was the config's false
    ckpt = tiny_attiqa_checkpoint(tmp_path)  # its card records no config
    res = runner.invoke(app, ["train", "-c", str(cfg), "--no-resume", *imagenet,
                              "--set", f"pretrained_checkpoint={ckpt}"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert read_card(last)["config"]["pretrained_backbone"] is None  # was the config's true, then false
    # the card's value only: the stage's saved settings stay a config (the run's true), which reads back
    # (was the card's None put into the bool setting: "finetune.pretrained_backbone: must not be empty")
    from attiqa.config import FinetuneConfig, from_dict
    from attiqa.io.checkpoints import training_state_extra

    saved = training_state_extra(last.with_name("last.state.safetensors"))["config"]
    saved.pop("data")
    assert from_dict(FinetuneConfig, saved, "finetune").pretrained_backbone is True


def test_a_resumed_start_is_checked_once_and_a_library_callers_still_is(tmp_path, monkeypatch):
    """**Was**: `train --resume` checked its fine-tuning's kind of start twice, in the runner's early checks
    and again in `finetune()` (the saved states and cards read again). Now once, in the runner; a library
    caller's `finetune()`, which made no early check, still checks it (and refuses another start)."""
    from helpers import tiny_attiqa_checkpoint

    import attiqa.training.finetune as ft
    from attiqa.config import load_config

    checks: list[Path] = []
    real = ft.other_start

    def counted(stage_dir, *args):  # the real check, counted
        checks.append(stage_dir)
        return real(stage_dir, *args)

    monkeypatch.setattr(ft, "other_start", counted)
    cfg = tiny_train_config(tmp_path)
    assert runner.invoke(app, ["train", "-c", str(cfg)]).exit_code == 0
    assert checks == []  # nothing to resume: no check
    res = runner.invoke(app, ["train", "-c", str(cfg), "--resume", "--set", "finetune.epochs=2"])
    assert res.exit_code == 0, res.output
    assert checks == [tmp_path / "run" / "finetune"]
    checks.clear()
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    fc = load_config(cfg).finetune
    assert fc is not None
    with pytest.raises(EveryProcessError, match="was fine-tuned from random:tiny, not "):
        ft.finetune(fc, ckpt, tmp_path / "run", resume=True, progress=False)
    assert len(checks) == 1


def _state_openings(monkeypatch) -> list[Path]:
    """The training state files opened from now on, in order (the real opening, counted)."""
    import attiqa.io.checkpoints as ck

    reads: list[Path] = []
    real = ck.safe_open

    def counted(path, *args, **kwargs):
        if str(path).endswith(".state.safetensors"):
            reads.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ck, "safe_open", counted)
    return reads


def test_a_resume_reads_each_saved_state_once(tmp_path, monkeypatch):
    """**Was**: `train --resume` read each of its fine-tuning's saved states (safetensors header + JSON) in
    the runner's early check and again in `finetune()` for the weights' hash (session 63: the checks from
    one reading), and the trainer then opened each again to continue from it: two header reads. Now the
    trainer continues from the check's opening (`TrainingStateFile`): each state opened once in the whole
    resume — a checkpoint rewritten since still fine-tuned again, another kind of start still refused."""
    from helpers import tiny_attiqa_checkpoint

    import attiqa.training.finetune as ft
    from attiqa.io.checkpoints import read_card
    from attiqa.models import load_model, save_model

    reads = _state_openings(monkeypatch)
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    cfg = tiny_train_config(tmp_path, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    stage = tmp_path / "run" / "finetune"
    from_ckpt = ["--set", f"pretrained_checkpoint={ckpt}"]
    assert runner.invoke(app, ["train", "-c", str(cfg), *from_ckpt]).exit_code == 0
    assert reads == []  # nothing to resume
    res = runner.invoke(app, ["train", "-c", str(cfg), "--resume", *from_ckpt])
    assert res.exit_code == 0, res.output
    states = [stage / "heads" / "last.state.safetensors", stage / "last.state.safetensors"]
    assert reads == states  # each once in all (was: twice by the checks, then once more by the trainers)
    assert "is not the model the fine-tuning in" not in " ".join(res.output.split())
    # the checkpoint rewritten (other weights): compared with what the check read, fine-tuned again
    model, card = load_model(ckpt)
    for p in model.parameters():
        p.data.add_(0.01)
    save_model(model, ckpt, card=card)
    reads.clear()
    res = runner.invoke(app, ["train", "-c", str(cfg), "--resume", *from_ckpt])
    assert res.exit_code == 0, res.output
    assert reads == states
    said = " ".join(res.output.split())
    assert f"finetune: {ckpt} is not the model the fine-tuning in {stage} started from" in said, said
    assert read_card(stage / "last.safetensors")[ft.INIT_HASH] == ft.weights_hash(load_model(ckpt)[0])
    said = _refused(["train", "-c", str(cfg), "--resume", "--set", "finetune.epochs=2"])  # another start
    assert said.startswith(f"finetune: the run in {stage} was fine-tuned from {ckpt}, not random:tiny"), said


def _pretrain_config(tmp_path, photos, epochs: int, **pretrain: object):
    """A pretraining-only run on 15 labelled photos (odd: uneven across 2 processes), global batch 4."""
    from helpers import write_label_set

    labels = write_label_set(tmp_path / "labels", photos, shorter=56, factors=(0.6, 1.0, 1.4))
    values = {"epochs": epochs, "batch_size": 4, "lr": 1e-3, "crop_size": 48, "num_workers": 0,
              "device": "cpu", **pretrain}  # fmt: skip
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"labels: {labels}\nmodel: {{backbone: tiny, pretrained_backbone: false, head_hidden: 8}}\n"
        "pretrain:\n" + "".join(f"  {k}: {v}\n" for k, v in values.items())
    )
    return cfg


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_train_reports_once_and_takes_the_steps_one_process_takes(tmp_path, photos, cli):
    """`torchrun --nproc_per_node 2 -m attiqa.cli train` (gloo) on 15 photos, global batch 4. **Was**: the
    closing report ("pretrained: …") printed by every process (the process group was gone, so each was rank
    0), and an epoch of 4 steps where one process takes 3: DistributedSampler padded 15 photos to 16 by
    repeating one. Now rank 0 reports, and the remainder is left out as one process leaves it out."""
    from attiqa.io.checkpoints import read_card

    cfg = _pretrain_config(tmp_path, photos, epochs=2)
    env = {"OMP_NUM_THREADS": "1"}
    two = run_attiqa("train", "-c", cfg, "--out-dir", tmp_path / "two", ranks=2, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert (two.stdout + two.stderr).count("pretrained: ") == 1
    one = cli("train", "-c", cfg, "--out-dir", tmp_path / "one")  # one process: this one
    assert one.returncode == 0, one.stderr[-3000:]
    cards = [read_card(tmp_path / d / "pretrain" / "model.safetensors") for d in ("one", "two")]
    assert [c["world_size"] for c in cards] == [1, 2] and [c["per_process_batch"] for c in cards] == [4, 2]
    assert [[h["steps"] for h in c["history"]] for c in cards] == [[3, 3], [3, 3]]
    assert [c["global_step"] for c in cards] == [6, 6]
    assert sorted(p.name for p in (tmp_path / "two" / "pretrain").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "pretrain").iterdir()
    )  # the same files, no temp file left


@pytest.mark.slow
@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_a_process_killed_under_torchrun_is_one_line_and_resumes_under_one_process(tmp_path, photos, cli):
    """SIGKILL to one of 2 torchrun processes mid-training. **Was**: the other process's gloo error as a
    70-line traceback ("RuntimeError: … Connection closed by peer"); now one line saying what is kept and to
    resume. The resume with another number of processes says its batches differ from an uninterrupted run."""
    import os
    import signal
    import subprocess
    import time

    from helpers import attiqa_cmd, attiqa_env, rank_pid

    cfg = _pretrain_config(tmp_path, photos, epochs=400)
    out = tmp_path / "run"
    cmd = attiqa_cmd("train", "-c", cfg, "--out-dir", out, ranks=2)
    proc = subprocess.Popen(cmd, env=attiqa_env({"OMP_NUM_THREADS": "1"}), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    card, deadline = out / "pretrain" / "last.json", time.monotonic() + 120
    while not card.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    rank1 = rank_pid(proc, 1)
    assert rank1 is not None and proc.poll() is None
    os.kill(rank1, signal.SIGKILL)
    said, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    ours = said.split("torch/distributed/elastic")[0]  # torchrun's own report of the failed process follows
    assert "Traceback" not in ours and "RuntimeError" not in ours, said[-3000:]
    errors = [x for x in said.splitlines() if x.startswith("error: ")]
    epoch = json.loads(card.read_text())["epoch"]
    if errors:  # the survivor met the lost peer before torchrun's agent stopped it
        line = errors[0]
        start = "error: pretrain: another process of this torchrun job stopped ("
        assert line.startswith(start), said[-3000:]
        assert line.endswith(") is kept; rerun the same command with --resume to continue")
        assert f"{out / 'pretrain' / 'last.safetensors'} (epoch {epoch})" in line
    else:  # torchrun's agent sent the survivor SIGTERM first (a race, CI saw it): our Ctrl-C/SIGTERM line,
        # printed after the agent's "Sending process … closing signal SIGTERM"
        # (session 47: the line says what is kept)
        kept = [
            x.strip() for x in said.splitlines() if x.strip().startswith("interrupted: pretrain after epoch")
        ]
        assert kept and kept[0].endswith("; rerun the same command with --resume to continue"), said[-3000:]
    more = f"pretrain.epochs={epoch + 1}"
    res = cli("train", "-c", cfg, "--out-dir", out, "--resume", "--set", more)  # one process: this one
    assert res.returncode == 0, res.stderr[-3000:]
    assert (
        f"pretrain: resuming {out / 'pretrain'}, trained with 2 process(es), with 1: the remaining epochs "
        "draw their batches differently from an uninterrupted run's"
    ) in " ".join(res.stderr.split())


def test_a_resumed_pretraining_reads_its_saved_state_once(tmp_path, monkeypatch):
    """**Was**: a resumed pretraining with a label stage opened its saved state to read the rows' order
    (`rows_follow_roots`) and its trainer opened it again to continue. Now the trainer continues from that
    opening: the state opened once."""
    from helpers import LABEL_AND_PRETRAIN

    cfg = tiny_train_config(tmp_path)
    label = f"label={{teacher: classical, num_workers: 0, images: [{tmp_path / 'set' / 'images'}]}}"
    cmd = ["train", "-c", str(cfg), *LABEL_AND_PRETRAIN[:4], "--set", label]
    assert runner.invoke(app, cmd).exit_code == 0
    reads = _state_openings(monkeypatch)
    res = runner.invoke(app, [*cmd, "--resume", "--set", "pretrain.epochs=2"])
    assert res.exit_code == 0, res.output
    assert reads == [tmp_path / "run" / "pretrain" / "last.state.safetensors"]  # was: twice
    assert "pretrain.epochs 1 -> 2 (training longer)" in " ".join(res.output.split())
