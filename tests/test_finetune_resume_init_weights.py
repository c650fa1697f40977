"""`attiqa train --resume` of a finished label -> pretrain -> finetune run after pretraining trained on.
**Was**: fine-tuning resumed its finished state — the model fine-tuned from the earlier pretrained weights —
and reported it as the result, with no word (its resume check compared settings and data, not the weights it
started from). Now fine-tuning records the init weights' hash and starts again from changed ones, saying so; a
state of an older version (no hash) is continued, said once. The network is the tiny random one."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_train_config

from attiqa.io.checkpoints import load_checkpoint, load_training_state, read_card, save_training_state
from attiqa.models import load_model
from attiqa.training.mos import INIT_HASH
from attiqa.training.trainer import state_path_for, weights_hash

AGAIN = "is not the model the fine-tuning in"
UNCHECKED = "did not record the weights it started from"


def _said(res) -> str:
    return " ".join((res.stdout + res.stderr).split())


def _run(tmp_path: Path, cli, **finetune: object):
    """A finished tiny label -> pretrain -> finetune run; returns (command prefix, run folder)."""
    cfg = tiny_train_config(tmp_path, **finetune)
    images = tmp_path / "set" / "images"
    cmd = ["train", "--config", cfg,
           "--set", "pretrain={epochs: 1, batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0, "
                    "device: cpu}",
           "--set", f"label={{teacher: classical, num_workers: 0, images: [{images}]}}"]  # fmt: skip
    res = cli(*cmd)
    assert res.returncode == 0, res.stderr
    return cmd, tmp_path / "run"


def _weights(path: Path) -> dict:
    return load_checkpoint(path)[0]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


@pytest.mark.parametrize(
    "finetune",
    [{}, {"feature_cache": "true"}, {"feature_cache": "true", "polish_epochs": 1, "polish_lr": 1e-4}],
    ids=["end-to-end", "cached", "cached-then-polished"],
)
def test_a_resume_after_longer_pretraining_fine_tunes_again_from_the_new_weights(tmp_path, cli, finetune):
    cmd, run = _run(tmp_path, cli, **finetune)
    assert (run / "finetune" / "heads" / "last.state.safetensors").exists() == ("polish_epochs" in finetune)
    last, pretrained = run / "finetune" / "last.safetensors", run / "pretrain" / "model.safetensors"
    before = _weights(last)
    # the same command again: nothing changed, so nothing is fine-tuned again (the finished pretraining
    # rewrites its model with the same weights)
    res = cli(*cmd, "--resume")
    assert res.returncode == 0, res.stderr
    assert AGAIN not in _said(res) and UNCHECKED not in _said(res), _said(res)
    assert _same(_weights(last), before)

    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr
    said = _said(res)
    assert (f"finetune: {pretrained} {AGAIN} {run / 'finetune'} started from (its weights changed since) — "
            "fine-tuning again from it, over that run's files") in said, said  # fmt: skip
    assert said.count(AGAIN) == 1, said  # once, also for the cached heads and their polish
    assert read_card(pretrained)["epoch"] == 2
    now = _weights(last)
    assert not _same(now, before)  # was: the fine-tune of the 1-epoch pretraining, kept
    assert read_card(last)[INIT_HASH] == weights_hash(load_model(pretrained)[0])
    # the model a fresh fine-tuning from the new pretrained weights gives, bit for bit
    fresh = cli("train", "--config", tmp_path / "run.yaml", "--set", f"pretrained_checkpoint={pretrained}",
                "--out-dir", tmp_path / "fresh")  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert _same(now, _weights(tmp_path / "fresh" / "finetune" / "last.safetensors"))


def test_a_state_of_an_older_version_is_resumed_as_before_said_once(tmp_path, cli):
    """A fine-tuning state saved before the hash was recorded: continued as before (its finished model kept),
    with one line saying the weights it started from cannot be checked and how to fine-tune again."""
    cmd, run = _run(tmp_path, cli)
    state = state_path_for(run / "finetune" / "last.safetensors")
    opt, extra, weights = load_training_state(state, with_model=True)
    del extra[INIT_HASH]
    save_training_state(state, opt, extra, model_state=weights)
    before = _weights(run / "finetune" / "last.safetensors")
    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr
    said = _said(res)
    assert said.count(UNCHECKED) == 1 and AGAIN not in said, said
    ft = run / "finetune"
    assert (f"finetune: the fine-tuning in {ft} was saved by an older version, which {UNCHECKED} — resumed "
            f"without checking them against {run / 'pretrain' / 'model.safetensors'} (to fine-tune from it "
            f"again, delete {ft} and resume)") in said, said  # fmt: skip
    assert _same(_weights(run / "finetune" / "last.safetensors"), before)


def test_a_polish_stopped_before_its_first_save_keeps_heads_fine_tuned_from_new_weights(tmp_path, cli):
    """A resume after pretraining trained on fine-tunes again: the cached heads, then the polish. Stopped
    before the polish's first save, the stage's files are still the run's before (the old weights' hash),
    the heads' the new ones'. **Was**: the next resume fine-tuned the heads again too; now they are
    continued (finished: not trained) and the polish alone trained again, from the new weights."""
    import shutil

    cmd, run = _run(tmp_path, cli, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    stage, old = run / "finetune", tmp_path / "old"
    old.mkdir()
    files = [p for p in stage.iterdir() if p.is_file()]
    for p in files:  # the stage's files of the run before (the polish's; heads/ apart)
        shutil.copy2(p, old / p.name)
    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")  # fine-tunes again from the new weights
    assert res.returncode == 0, res.stderr
    for p in files:  # the polish stopped before its first save: the stage's files are the old run's
        shutil.copy2(old / p.name, p)
    heads = stage / "heads" / "last.state.safetensors"
    heads_saved = heads.stat().st_mtime_ns
    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr
    said = _said(res)
    assert (f"{AGAIN} {stage} started from (its weights changed since) — its cached heads (fine-tuned from "
            "it) continued, the polish trained again, over that run's files") in said, said  # fmt: skip
    assert heads.stat().st_mtime_ns == heads_saved  # was: the heads fine-tuned again
    pretrained = load_model(run / "pretrain" / "model.safetensors")[0]
    card = read_card(stage / "last.safetensors")
    assert card[INIT_HASH] == weights_hash(pretrained) and card["stage"] == "finetune", card


@pytest.mark.parametrize(
    ("hashes", "kept"),
    [
        ({"heads": None, "": "old"}, ()),  # heads of an older version: was continued under new weights
        ({"": "old"}, ()),  # heads' state missing or unreadable: was continued, then "state missing"
        ({"heads": "old"}, ()),
        ({"heads": "new", "": "old"}, ("heads",)),  # the heads fine-tuned from the new weights
        ({"heads": "new"}, ("heads", "")),  # nothing differs: as before
        ({"heads": None, "": None}, ("heads", "")),  # an older version's run: continued, said
    ],
)
def test_a_part_continues_beside_a_changed_one_only_if_it_recorded_these_weights(tmp_path, hashes, kept):
    """Review: beside a part whose saved state started from other weights, an earlier part with no hash or
    no readable state counted as "the same" and was continued (before, the whole stage trained again)."""
    from attiqa.training.finetune import SavedStarts, same_start

    stage = tmp_path / "finetune"
    continued = same_start(stage, {"init": "ckpt", INIT_HASH: "new"}, SavedStarts(stage, hashes))
    assert (continued.heads, continued.stage) == ("heads" in kept, "" in kept)  # read by name (was a tuple)


def test_a_polish_whose_heads_state_was_removed_trains_both_again_after_longer_pretraining(tmp_path, cli):
    """Review: `--resume --set pretrain.epochs=2` of a polished run whose finetune/heads state was removed
    exited 2 ("training state missing … cannot resume exactly"): the missing heads counted as fine-tuned
    from the new weights. Now the heads and the polish train again, as before session 63."""
    cmd, run = _run(tmp_path, cli, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    heads = state_path_for(run / "finetune" / "heads" / "last.safetensors")
    heads.unlink()
    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, _said(res)
    assert "fine-tuning again from it, over that run's files" in _said(res), _said(res)
    assert heads.exists()
    assert read_card(run / "finetune" / "last.safetensors")[INIT_HASH] == weights_hash(
        load_model(run / "pretrain" / "model.safetensors")[0]
    )


def test_finetune_told_session_62s_start_checked_true_is_a_type_error_at_the_call(tmp_path):
    """Review: `finetune(start_checked=True)` (session 62's form) failed deep inside, an AttributeError;
    ``False`` (its default) is taken as None."""
    from attiqa.config import FinetuneConfig
    from attiqa.errors import AttiqaError
    from attiqa.training.finetune import finetune

    # session 62's default spelled out (review 4): False is not checked, as None — the run's own checks speak
    told = {
        True: (TypeError, r"start_checked=\.\.\.\): expected what check_resumed_start"),
        False: (AttiqaError, "MOS CSV not found"),
    }
    for checked, (error, words) in told.items():
        with pytest.raises(error, match=words):
            finetune(
                FinetuneConfig(csv=str(tmp_path / "m.csv")),
                None,
                tmp_path / "run",
                resume=True,
                start_checked=checked,
            )


@pytest.mark.parametrize("stop_in", ["heads", "polish"])
def test_ctrl_c_after_new_weights_says_what_the_next_resume_trains_again(tmp_path, cli, monkeypatch, stop_in):
    """`--resume --set pretrain.epochs=2` of a finished polished run fine-tunes again from the new weights;
    Ctrl-C in that fine-tuning (its cached heads, or the polish before its first save) then said "finetune
    after epoch 1, finetune/heads after epoch 1, pretrain after epoch 2 kept in RUN; rerun the same command
    with --resume to continue" — but that resume does not continue the fine-tuning saved from the earlier
    weights: it trains it again. Now the line says so (the heads fine-tuned from the new ones are kept)."""
    from attiqa.training.trainer import Trainer

    cmd, run = _run(tmp_path, cli, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    real_epoch = Trainer.run_epoch
    label = "finetune (cached features)" if stop_in == "heads" else "finetune"

    def ctrl_c(self, *args, **kwargs):
        if self.label == label:
            raise KeyboardInterrupt
        return real_epoch(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run_epoch", ctrl_c)
    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")
    said = _said(res)
    assert res.returncode == 130, said
    heads = "" if stop_in == "heads" else "finetune/heads after epoch 1, "
    kept = f"{heads}pretrain after epoch 2"
    again = "finetune, finetune/heads" if stop_in == "heads" else "finetune"
    init = run / "pretrain" / "model.safetensors"
    assert (
        f"interrupted: {kept} kept in {run}; rerun the same command with --resume to continue — it "
        f"fine-tunes {again} again (saved from earlier weights of {init}), over their files"
    ) in said, said


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's mappings (Linux)")
def test_a_resume_keeps_no_state_it_continued_from_open_once_it_saves_over_it(tmp_path, cli, monkeypatch):
    """**Was**: a saved state opened once (`TrainingStateFile`, a memory map of the file) stayed open for the
    whole stage — the fine-tuning's in the runner's check and in each part's trainer, pretraining's in
    `pretrain()` — also after its trainer had read it and saved a new state over it: the replaced file's
    disk space (weights and optimizer moments) held for the run, and on Windows the save's replace of an
    open file refused. And (since before session 64) the tensors read from a state were views of its map,
    which the optimizer's moments kept (pretraining's replaced state held for the run). Now a trainer closes
    the opening once its resume has read it (or did not want it), and the tensors read are copies: no
    replaced state is still mapped when a save has written over it."""
    import attiqa.training.trainer as trainer_mod

    cmd, _ = _run(tmp_path, cli, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    real_save, pinned = trainer_mod.save_training_state, []

    def save(*args, **kwargs):
        real_save(*args, **kwargs)
        maps = Path("/proc/self/maps").read_text().splitlines()
        pinned.extend(m for m in maps if ".state.safetensors" in m and m.endswith("(deleted)"))

    monkeypatch.setattr(trainer_mod, "save_training_state", save)
    # the polish continued one more epoch; then pretraining continued and the fine-tuning trained again
    for longer in ("finetune.polish_epochs=2", "pretrain.epochs=2"):
        res = cli(*cmd, "--resume", "--set", longer)
        assert res.returncode == 0, res.stderr
    assert not pinned, pinned


def test_ctrl_c_while_pretraining_trains_on_says_the_fine_tuning_trains_again(tmp_path, cli, monkeypatch):
    """`--resume --set pretrain.epochs=2` of a finished polished run, Ctrl-C in pretraining's second epoch:
    **was** "interrupted: finetune after epoch 1, finetune/heads after epoch 1, pretrain after epoch 1 kept in
    RUN; rerun the same command with --resume to continue" — but that resume finishes the pretraining, whose
    new weights the fine-tuning saved from the earlier ones is not continued under: it trains again (the
    pretrained model not yet rewritten, the words compared its hash with the old one). Now said as after
    the pretraining."""
    from attiqa.training.trainer import Trainer

    cmd, run = _run(tmp_path, cli, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    real_epoch = Trainer.run_epoch

    def ctrl_c(self, epoch, *args, **kwargs):
        if self.label == "pretrain" and epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, epoch, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run_epoch", ctrl_c)
    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")
    said = _said(res)
    assert res.returncode == 130, said
    init = run / "pretrain" / "model.safetensors"
    assert (
        f"interrupted: pretrain after epoch 1 kept in {run}; rerun the same command with --resume to "
        "continue — it fine-tunes finetune, finetune/heads again (saved from earlier weights of "
        f"{init}), over their files"
    ) in said, said


@pytest.mark.parametrize("point", ["calibrate_model", "_write_last"])
def test_ctrl_c_after_pretrainings_last_epoch_before_its_model_is_rewritten_says_the_fine_tuning_trains_again(
    tmp_path, cli, monkeypatch, point
):
    """`--resume --set pretrain.epochs=2` of a finished polished run, a real SIGINT once pretraining's last
    epoch is saved (its state — ``_write_last``: before its ``last.json`` — or its record too: calibrating)
    but before its model is rewritten: **was** "finetune after epoch 1, finetune/heads after epoch 1, …
    kept" — the words read "pretraining done" from ``last.json`` and compared the not yet rewritten model's
    hash, but the resume rewrites it from the trained weights and fine-tunes both parts again. Now the
    state on disk decides: a pretraining state newer than its model says the fine-tuning trains again."""
    import os
    import signal

    import attiqa.training.pretrain as pretrain_module
    from attiqa.training.trainer import Trainer

    cmd, run = _run(tmp_path, cli, feature_cache="true", polish_epochs=1, polish_lr=1e-4)
    owner = pretrain_module if point == "calibrate_model" else Trainer
    real = getattr(owner, point)

    def stop_here(*args, **kwargs):
        if point == "_write_last" and (args[0].label != "pretrain" or args[1] != 1):
            return real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # a user's Ctrl-C at this instant, delivered for real
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, point, stop_here)
    res = cli(*cmd, "--resume", "--set", "pretrain.epochs=2")
    said = _said(res)
    assert res.returncode == 130, said
    assert "finetune after epoch" not in said, said  # the resume does not continue it
    assert (
        f"it fine-tunes finetune, finetune/heads again (saved from earlier weights of "
        f"{run / 'pretrain' / 'model.safetensors'}), over their files"
    ) in said, said


def test_ctrl_c_in_a_longer_fine_tuning_after_a_cached_pretraining_says_it_continues(
    tmp_path, cli, monkeypatch
):
    """A finished run whose pretraining trained on cached features (`pretrain.feature_cache: true`: its
    model card records its epochs, not its step), `--resume --set finetune.epochs=2`, a real SIGINT as the
    fine-tuning's second epoch is saved: the words must list the fine-tuning as kept, for the resume to
    continue (it does: its start is the same model). Was, for the instant of b706f748's fix (no test):
    "… — it fine-tunes finetune again (saved from earlier weights of …)", the card's missing step read as
    a model older than the pretraining's state."""
    import os
    import signal

    from attiqa.training.trainer import Trainer

    cmd, run = _run(tmp_path, cli)
    cmd = [*cmd, "--set", "pretrain.feature_cache=true"]
    assert cli(*cmd, "--no-resume").returncode == 0
    assert "global_step" not in read_card(run / "pretrain" / "model.safetensors")  # the cached loop's card
    real = Trainer._write_last

    def stop_here(self, epoch, card):
        if self.name == "finetune" and epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)  # a user's Ctrl-C at this instant, delivered for real
        return real(self, epoch, card)

    monkeypatch.setattr(Trainer, "_write_last", stop_here)
    res = cli(*cmd, "--resume", "--set", "finetune.epochs=2")
    said = _said(res)
    assert res.returncode == 130, said
    assert "again" not in said and "finetune after epoch" in said, said
