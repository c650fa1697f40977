"""Torchrun training jobs whose processes read different files at the start (a node without the run's state, a
label table that differs) — every process ends promptly, the line said by the ones that met it. Real torchrun,
2 processes, gloo; each process in its own folder, as if on another machine."""

from __future__ import annotations

import shutil

import pytest
from dist_helpers import per_rank_run
from helpers import run_attiqa, tiny_train_config, write_label_set


def trained_run(tmp_path, cli):
    """``run.yaml`` (a tiny fine-tuning, 2 epochs) and one process's finished first epoch in ``rank0/run``
    (trained by ``cli``, in this process)."""
    cfg = tiny_train_config(tmp_path, epochs=2)
    (tmp_path / "rank0").mkdir()
    (tmp_path / "rank1").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path / "rank0")
        res = cli("train", "-c", cfg, "--out-dir", "run", "--set", "finetune.epochs=1")
    assert res.returncode == 0, res.stderr[-3000:]
    return cfg


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_a_resume_whose_state_file_only_rank_0_sees_is_said_by_rank_1(tmp_path, cli):
    """`torchrun --nproc_per_node 2 -m attiqa.cli train -c run.yaml --out-dir run --resume` where rank 1's
    `run/finetune` holds `last.safetensors` but not its state file (a node whose copy lacks it). **Was**:
    rank 1's "training state missing" was an error every process meets alike, left to rank 0, which never
    met it: rank 0 said "another process of this torchrun job stopped … rerun the same command with --resume"
    (which fails again, alike), no line of the cause. Now rank 1 says it; both end."""
    cfg = trained_run(tmp_path, cli)
    shutil.copytree(tmp_path / "rank0" / "run", tmp_path / "rank1" / "run")
    state = tmp_path / "rank1" / "run" / "finetune" / "last.state.safetensors"
    state.unlink()
    res, ours, errors = per_rank_run(tmp_path, "train", "-c", cfg, "--out-dir", "run", "--resume")
    assert res.returncode != 0, res.stderr[-3000:]
    assert errors == [
        "error: rank 1 of 2: run/finetune/last.state.safetensors: training state missing next to "
        "last.safetensors — cannot resume exactly"
    ], res.stderr[-3000:]
    assert "Traceback" not in ours, ours
    assert (
        '"epoch": 1' in (tmp_path / "rank0" / "run" / "finetune" / "last.json").read_text()
    )  # not trained on


@pytest.mark.slow
def test_ranks_that_resume_from_different_epochs_stop_with_one_line_not_a_hang(tmp_path, cli):
    """The same `--resume`, rank 1's `run` empty (its node never saw the run): rank 0 continues after epoch 1,
    rank 1 starts afresh. **Was**: the two took different numbers of steps and met in mismatched collectives
    (a hang up to the collective timeout, or ranks training apart). Now one line, said once, naming where
    each process would start and the fix; nothing trained."""
    cfg = trained_run(tmp_path, cli)
    res, ours, errors = per_rank_run(tmp_path, "train", "-c", cfg, "--out-dir", "run", "--resume")
    assert res.returncode != 0, res.stderr[-3000:]
    assert errors == [
        "error: finetune: the processes of this job do not continue run/finetune alike (rank 0 after "
        "epoch 1; rank 1 from the start) — every process must read the same out_dir: one folder all of "
        "them share (on several machines a shared filesystem), left alone while the job starts; then rerun"
    ], res.stderr[-3000:]
    assert "Traceback" not in ours, ours
    assert '"epoch": 1' in (tmp_path / "rank0" / "run" / "finetune" / "last.json").read_text()


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_too_few_images_for_the_processes_on_rank_1_alone_is_said_by_rank_1(tmp_path, photos):
    """`torchrun --nproc_per_node 2 -m attiqa.cli train -c run.yaml` whose `labels:` table holds 2 images on
    rank 1's machine, 4 on rank 0's. **Was**: rank 1's refusal ("2 labelled images over 2 processes") was
    left to rank 0, which had 4, went on to wait for rank 1 and was stopped: no line. Now rank 1 says it."""
    items = sorted(photos.items())[:2]
    for r, n in ((0, 2), (1, 1)):
        write_label_set(tmp_path / f"rank{r}" / "labels", dict(items[:n]), shorter=56, factors=(0.6, 1.4))
        (tmp_path / f"rank{r}" / "run.yaml").write_text(
            "labels: labels/labels.parquet\nout_dir: run\n"
            "model: {backbone: tiny, pretrained_backbone: false, head_hidden: 8}\n"
            "pretrain: {epochs: 1, batch_size: 4, crop_size: 48, num_workers: 0, device: cpu}\n"
        )
    res, ours, errors = per_rank_run(tmp_path, "train", "-c", "run.yaml")
    assert res.returncode != 0, res.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith(
        "error: rank 1 of 2: pretrain: 2 labelled images over 2 processes — "
    ), res.stderr[-3000:]
    assert "Traceback" not in ours, ours
    assert not (tmp_path / "rank0" / "run" / "pretrain" / "last.safetensors").exists()


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_a_bad_join_timeout_is_one_line_a_node_not_a_traceback(tmp_path, photo_dir):
    """`ATTIQA_JOIN_TIMEOUT=nan torchrun --nproc_per_node 2 -m attiqa.cli score DIR -o s.csv` (also `inf`,
    `1e20`, `0`, `-5`, `abc`). **Was**: nan / inf / 1e20 a traceback from each process (timedelta's
    ValueError / OverflowError); 0 and -5 taken silently as 1 s (a job whose nodes start slower failed at
    the join); `abc` one line from each process. Now one line from the node (its processes share the
    variable: said by local rank 0), exit 2 on each, nothing written. (Every value: the test below.)"""
    out = tmp_path / "s.csv"
    args = ("score", photo_dir, "-m", "classical", "-w", "0", "-o", out)
    for value in ("nan", "-5"):
        res = run_attiqa(*args, ranks=2, env={"OMP_NUM_THREADS": "1", "ATTIQA_JOIN_TIMEOUT": value})
        ours = res.stderr.split("torch/distributed/elastic")[0]
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert res.returncode != 0 and "Traceback" not in ours, (value, res.stderr[-3000:])
        assert errors == [
            f"error: ATTIQA_JOIN_TIMEOUT={value!r}: not a number of seconds above 0 and at most 31536000 "
            "(a year) — e.g. 600, or unset it for 600, torchrun's own"
        ], (value, res.stderr[-3000:])
        assert "exitcode  : 2" in res.stderr, (value, res.stderr[-3000:])
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "1e20", "0", "-5", "abc", " "])
def test_each_bad_join_timeout_is_refused_by_local_rank_0_and_left_said_by_the_others(monkeypatch, value):
    """The values of the torchrun test above, read as each process reads them: local rank 0 raises the line,
    the others end without one (:class:`Said`); blank is the default; 0.5 s is 1 s, as before."""
    from attiqa.errors import AttiqaError, Said
    from attiqa.sharding import JOIN_TIMEOUT, join_timeout

    monkeypatch.setenv("ATTIQA_JOIN_TIMEOUT", value)
    # as a process of a torchrun job reads them: its LOCAL_RANK is read (attiqa.launch.launched_local_rank)
    for name, launched in {
        "WORLD_SIZE": "2",
        "RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
    }.items():
        monkeypatch.setenv(name, launched)
    if not value.strip():
        assert join_timeout().total_seconds() == JOIN_TIMEOUT
        return
    for local, kind in (("0", AttiqaError), ("1", Said)):
        monkeypatch.setenv("LOCAL_RANK", local)
        with pytest.raises(AttiqaError) as info:
            join_timeout()
        assert type(info.value) is kind and str(info.value).startswith(f"ATTIQA_JOIN_TIMEOUT={value!r}: ")
    monkeypatch.setenv("ATTIQA_JOIN_TIMEOUT", "0.5")
    assert join_timeout().total_seconds() == 1.0


def test_the_start_points_are_named_by_rank_with_the_weights_where_the_epoch_is_the_same():
    """The words of the line above for each way processes can differ: another epoch, a fresh start, or the
    same epoch with other weights (a state file rewritten between two processes' reads)."""
    from attiqa.training.trainer import start_points_words

    a, b = "a" * 64, "b" * 64
    assert start_points_words([(1, 4, a), (0, 0, None)]) == "rank 0 after epoch 1; rank 1 from the start"
    assert start_points_words([(2, 8, a), (2, 8, b), (2, 8, a), (3, 9, b)]) == (
        "ranks 0, 2 after epoch 2 (weights aaaaaaaa); rank 1 after epoch 2 (weights bbbbbbbb); rank 3 after "
        "epoch 3"
    )
