"""Progress counting of `degrade` / `make-distorted`, the teacher-settings message of `label`, the eval
"training fit" note by the data a model was fitted on, `train exiqa`'s checkpoint / state pair, and the
spelling of `attiqa train exiqa`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import exiqa_files, resized

from attiqa.distortions.graded import write_graded_set
from attiqa.distortions.multi import make_distorted_set
from attiqa.errors import AttiqaError, ConfigError
from attiqa.labeling import label_images
from attiqa.teachers.clip import ClipTeacher
from attiqa.teachers.prompts import load_prompts


def _sources(folder: Path, photos, names=("astronaut", "coffee")) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        p = folder / f"{n}.png"
        resized(photos[n], longer=40).save(p)
        out.append(p)
    return out


def test_degrade_and_make_distorted_count_an_earlier_runs_images_as_kept(tmp_path, photos):
    """What an earlier run made is said once before any work (``on_start(kept)``, session 57: a bar counts
    it from its first frame), each item made now by a call of its own: all made on the first run, all kept
    on the rerun (the calls were two branches each, ``on_item(1)`` and ``on_item(1, kept=True)``)."""
    srcs = _sources(tmp_path / "src", photos)
    for make in (
        lambda cb, st: write_graded_set(
            srcs, tmp_path / "g", ("gaussian_blur",), (1,), on_item=cb, on_start=st
        ),
        lambda cb, st: make_distorted_set(srcs, tmp_path / "m", rounds=1, seed=0, on_item=cb, on_start=st),
    ):
        for kept_now in (False, True):
            calls: list[tuple[int, bool]] = []
            started: list[int] = []
            make(lambda n=1, kept=False, calls=calls: calls.append((n, kept)), started.append)
            assert started == [len(srcs) if kept_now else 0]
            assert calls == ([] if kept_now else [(1, False)] * len(srcs))


def test_label_says_which_clip_setting_changed(tmp_path, photos, tiny_dir):
    """`label` with other prompts names them by their hash ("other prompts"), not by their long texts (the
    message of ``check_same_teacher``, written flat); the same texts from another file are the same labels."""
    folder = tmp_path / "photos"
    images = _sources(folder, photos)
    out = tmp_path / "l.parquet"
    paper = load_prompts()
    paper_file, swapped_file = paper.save(tmp_path / "paper.json"), paper.swapped().save(tmp_path / "sw.json")
    label_images(images, ClipTeacher(str(tiny_dir), prompts=paper_file), out, batch_size=2)
    with pytest.raises(AttiqaError) as err:
        label_images(images, ClipTeacher(str(tiny_dir), prompts=swapped_file, scale=2.0), out, batch_size=2)
    assert str(err.value) == (
        f"{out}: was labelled by the clip teacher with other settings (scale 1.0, now 2.0; other prompts) — "
        "choose another --out, or delete it to label with these"
    )
    copy = tmp_path / "copy.json"  # the same texts from another file label alike: accepted (session 50)
    copy.write_bytes(paper_file.read_bytes())
    label_images(images, ClipTeacher(str(tiny_dir), prompts=copy), out, batch_size=2)


def test_eval_knows_a_models_training_rows_in_a_moved_copy_and_after_export(
    tmp_path, cli, layout, dataset_config
):
    """**Was**: `attiqa eval kadid10k --root COPY -m CKPT` of a model `attiqa train` fine-tuned on that
    dataset said its metrics were the training fit only at the very root it was trained at (the card's
    ``NAME:ROOT``): a copy moved elsewhere or on another machine, or the model after `attiqa export` (its
    card made portable) got held-out-looking figures without a word. Now the card records the rows' hash
    (``rows_sha256``) and `eval` compares it; another dataset: no note."""
    root = layout(tmp_path, "kadid10k")
    assert cli("train", "--config", dataset_config(tmp_path, dataset="kadid10k", root=root)).returncode == 0
    ckpt = tmp_path / "run" / "finetune" / "last.safetensors"
    moved = tmp_path / "elsewhere" / "KADID"
    shutil.copytree(root, moved)
    shutil.rmtree(root)
    exported = tmp_path / "mine.safetensors"
    assert cli("export", ckpt, exported, "--name", "mine").returncode == 0
    assert str(root) not in exported.with_suffix(".json").read_text()  # the card is portable
    runs = [
        ("kadid10k", moved, ckpt),
        ("kadid10k", moved, exported),
        ("agiqa3k", layout(tmp_path, "agiqa3k"), ckpt),
    ]
    for i, (name, data, model) in enumerate(runs):
        out = tmp_path / f"ev{i}"
        res = cli("eval", name, "--root", data, "-m", model, "-o", out, "-w", "0", "-q", "--no-cache")
        assert res.returncode == 0, res.stderr
        warned = json.loads((out / "summary.json").read_text())["warnings"]
        fit = [w for w in warned if "training fit" in w]
        assert fit if name == "kadid10k" else not fit, warned
        assert not fit or "fine-tuned on images of this KADID-10k table" in fit[0]


@pytest.fixture(scope="module")
def exiqa_whole(tmp_path_factory, photos, tiny_dir) -> tuple[Path, list[str]]:
    """A `make-distorted` set, the options of a tiny CLIP `train exiqa` run on it, and that run never
    interrupted (its folder), trained once for both cuts below."""
    from attiqa.exiqa.train import ExiqaTrainConfig, train_exiqa

    folder = tmp_path_factory.mktemp("exiqa_whole")
    data, _ = exiqa_files(folder, photos)
    cfg = ExiqaTrainConfig(
        str(tiny_dir), epochs=3, warmup_epochs=1, batch_size=8, n_prompts=2, val_fraction=0.2
    )
    train_exiqa(data, folder / "whole", cfg)
    opts = ["--clip", tiny_dir, "--epochs", "3", "--warmup-epochs", "1", "--prompts", "2", "-b", "8",
            "--val-fraction", "0.2", "--device", "cpu"]  # fmt: skip
    return data, opts


@pytest.mark.slow
@pytest.mark.parametrize("cut_after", ["exiqa.safetensors", "exiqa.state.safetensors"])
def test_train_exiqa_killed_between_its_two_saves_resumes_to_the_same_prompts(
    tmp_path,
    exiqa_whole,
    cut_after,
    cli,
):
    """**Was**: `attiqa train exiqa DATA -o RUN` killed (SIGKILL) after an epoch's checkpoint was saved but
    before its training state: the rerun took the checkpoint's prompts of epoch 2 with the optimiser and
    epoch count of epoch 1, trained epoch 2 again on them, and ended on other prompts than an uninterrupted
    run, without a word. Now the state (with the prompts) is saved first and is the resume point; a
    checkpoint left an epoch behind is brought level. Killed after either save, the rerun ends bit-identical
    to a run never killed. The kill is a real SIGKILL of a real process; the rerun runs in this one."""
    from helpers import run_attiqa, signal_after

    from attiqa.io.checkpoints import load_checkpoint

    data, opts = exiqa_whole
    whole, run = data.parent / "whole", tmp_path / "run"
    kill = signal_after(tmp_path, "replace", cut_after, 2, "SIGKILL", "attiqa.cli")
    assert run_attiqa("train", "exiqa", data, "-o", run, *opts, **kill).returncode == -9
    again = cli("train", "exiqa", data, "-o", run, *opts)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming {run}: 2 of 3 epochs kept" in [" ".join(x.split()) for x in again.stderr.splitlines()]
    want, want_card = load_checkpoint(whole / "exiqa.safetensors")
    got, got_card = load_checkpoint(run / "exiqa.safetensors")
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    assert got_card["history"] == want_card["history"]


def test_an_earlier_versions_exiqa_state_resumes_only_level_with_its_checkpoint(
    tmp_path, exiqa_set, tiny_dir
):
    """A state file of an earlier version holds no prompts: the checkpoint's are taken when both are of one
    epoch; an epoch apart (those versions saved the checkpoint first) is one line, not a silent mix."""
    from attiqa.exiqa.train import STATE_FILE, ExiqaTrainConfig, train_exiqa
    from attiqa.io.checkpoints import load_training_state, save_training_state

    data, _ = exiqa_set
    run = tmp_path / "run"
    cfg = ExiqaTrainConfig(
        str(tiny_dir), epochs=2, warmup_epochs=1, batch_size=8, n_prompts=2, val_fraction=0.2
    )
    history = train_exiqa(data, run, cfg)["history"]
    opt_state, _ = load_training_state(run / STATE_FILE)
    save_training_state(run / STATE_FILE, opt_state, {"epoch": 2, "history": history})  # as they wrote it
    assert train_exiqa(data, run, cfg)["history"] == history
    save_training_state(run / STATE_FILE, opt_state, {"epoch": 1, "history": history[:1]})
    with pytest.raises(
        ConfigError, match="its weights are not of epoch 1, the epoch of exiqa.state.safetensors"
    ):
        train_exiqa(data, run, cfg)


def test_one_spelling_of_train_exiqa_is_shown_and_the_old_one_still_runs(tmp_path, photos, cli):
    """**Was**: `attiqa models`' exiqa row "needs: a run of `attiqa train-exiqa` (+ train-exiqa-regressor)",
    `attiqa --help` listing `train-exiqa` and `train-exiqa-regressor` beside `train`, the scorer's and the
    regressor's messages saying `attiqa train-exiqa`, the README and the help of `attiqa train` saying
    `attiqa train exiqa`. Now every listing and message says `attiqa train exiqa[-regressor]`; the old
    spelling still runs, out of the help."""
    said = []
    _sources(tmp_path, photos, names=("coffee",))
    for args in (
        ["models"],
        ["--help"],
        ["train", "--help"],
        ["score", tmp_path / "coffee.png", "-m", "exiqa"],
    ):
        res = cli(*args)
        said.append(res.stdout + res.stderr)
    text = " ".join(" ".join(said).split())
    assert "train-exiqa" not in text, text
    assert "a run of `attiqa train exiqa` (+ `attiqa train exiqa-regressor`)" in text
    assert "(from `attiqa train exiqa`)" in text
    for alias in ("train-exiqa", "train-exiqa-regressor"):
        res = cli(alias, "--help")
        assert res.returncode == 0 and f"attiqa {alias} [OPTIONS]" in " ".join(res.stdout.split())
