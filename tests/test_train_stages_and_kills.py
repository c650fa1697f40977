"""`attiqa train` items (docs/robustness.md): the command line's `--out-dir` over a config's empty `out_dir:`,
a changed label stage refused on `--resume` before it labels, empty paths among a stage's inputs and outputs,
dataset settings beside a CSV, `train exiqa`'s warmup on a short run, and a run killed in each stage in turn.
The network is the tiny random one; each test of a fix failed before it."""

from __future__ import annotations

import pytest
import torch
from helpers import LABEL_AND_PRETRAIN, renamed_copies, tiny_train_config


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


def test_resume_with_images_added_to_the_label_stage_is_refused_before_labelling(tmp_path, cli):
    """**Was**: `attiqa train -c run.yaml --resume` after images were added to `label.images` since
    pretraining started: the label stage labelled the new ones into the run's table (with CLIP: minutes to
    hours), then pretraining refused the changed table. Now one line before the teacher loads, the table and
    config.json untouched. An unreadable file listed from the start (skipped, not in the table) is no
    change: the same config still resumes."""
    cfg = tiny_train_config(tmp_path)
    images, bad, junk = tmp_path / "set" / "images", tmp_path / "bad.png", renamed_copies(tmp_path)
    bad.write_text("not an image")
    common = LABEL_AND_PRETRAIN

    def train(*listed, epochs: int = 1, resume: bool = False):
        more = ["--resume", "--set", f"pretrain.epochs={epochs}"] if resume else []
        listed_set = f"label.images=[{', '.join(map(str, listed))}]"
        return cli("train", "--config", cfg, *common, "--set", listed_set, *more)

    assert train(images, bad).returncode == 0
    run = tmp_path / "run"
    table, config = run / "labels.parquet", run / "config.json"
    before = table.read_bytes(), config.read_bytes()
    res = train(images, bad, junk, epochs=2, resume=True)
    assert res.returncode == 2, res.stdout + res.stderr  # 5: junk's 4 and bad.png, listed, never labelled
    assert [x for x in res.stderr.splitlines() if x.strip()] == [
        f"error: label.images: other images than the run in {run / 'pretrain'} was pretrained on "
        f"(labels.parquet lacks 5 of them, e.g. {junk / 'j0.png'}) — --resume continues that run: set "
        "label.images back, or train over it with --no-resume (or choose another out_dir)"
    ]
    assert "labelling" not in res.stdout + res.stderr and "teacher:" not in res.stdout
    assert (table.read_bytes(), config.read_bytes()) == before
    res = train(images, bad, epochs=2, resume=True)  # bad.png: skipped again, the table as it was
    assert res.returncode == 0, res.stderr
    assert '"epoch": 2' in (run / "pretrain" / "last.json").read_text()


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("label={images: '', teacher: classical}", "label.images: an empty entry"),
        ("label={images: [IMAGES, ''], teacher: classical}", "label.images: an empty entry"),
        ("degrade={sources: '', levels: [1]}", "degrade.sources: an empty entry"),
        ("degrade={sources: [IMAGES], out: ''}", "degrade.out: empty — name a folder"),
        ("label={images: [IMAGES], out: ' '}", "label.out: empty — name a file"),
    ],
)
def test_an_empty_path_among_the_stage_inputs_or_outputs_is_one_line(
    tmp_path, cli, monkeypatch, setting, said
):
    """**Was**, run from a folder holding photos: `label.images: ''` (or an empty entry in the list) labelled
    and pretrained on the working folder's photos, `degrade.sources: ''` degraded them, `degrade.out: ''`
    wrote the graded images among the run folder's own files (and the label stage then labelled the whole
    run folder); `label.out: ''` said "RUN: label files are Parquet, not a name without suffix", not which
    setting. Now one line naming the key before any work, as an empty `out_dir:` is."""
    cfg = tiny_train_config(tmp_path)
    images = tmp_path / "set" / "images"
    work = tmp_path / "work"
    work.mkdir()
    for p in sorted(images.iterdir())[:3]:
        (work / p.name).hardlink_to(p)
    monkeypatch.chdir(work)
    stages = [
        *LABEL_AND_PRETRAIN[:4],
        "--set",
        setting.replace("IMAGES", str(images)),
    ]  # pretrain, no finetune
    res = cli("train", "--config", cfg, *stages)
    assert res.returncode == 2, res.stdout + res.stderr
    line = res.stderr.strip()
    assert said in line and len(line.splitlines()) == 1 and str(cfg) in line, line
    assert not (tmp_path / "run").exists() and sorted(p.name for p in work.iterdir()) == sorted(
        p.name for p in sorted(images.iterdir())[:3]
    )


def test_train_exiqa_warms_up_for_a_fifth_of_a_short_run_and_refuses_a_longer_warmup(
    tmp_path, cli, exiqa_set, tiny_dir
):
    """**Was**: `attiqa train exiqa DATA -o RUN --epochs 5` (any run shorter than the paper's 100) kept the
    default 20 warmup epochs: the learning rate rose the whole run, to a quarter of its peak, and never
    decayed, without a word (`--warmup-epochs 20 --epochs 5` likewise). Now the default is a fifth of the
    epochs (the paper's 20 of 100) and a warmup longer than the run is one line before CLIP loads."""
    import json

    data, _ = exiqa_set
    opts = ["--clip", tiny_dir, "--prompts", "2", "-b", "8", "--val-fraction", "0.2", "--device", "cpu"]
    run = tmp_path / "run"
    res = cli("train", "exiqa", data, "-o", run, "--epochs", "5", *opts)
    assert res.returncode == 0, res.stderr
    card = json.loads((run / "exiqa.json").read_text())
    assert card["config"]["warmup_epochs"] == 1 and len(card["history"]) == 5
    other = tmp_path / "other"
    res = cli("train", "exiqa", data, "-o", other, "--epochs", "5", "--warmup-epochs", "6", *opts)
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "error: --warmup-epochs 6 is more than --epochs 5: the learning rate would never reach its peak nor "
        "decay — give fewer warmup epochs (the paper: 20 of 100; default: a fifth)"
    )
    assert not other.exists()


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("finetune.root=IMAGES", "finetune.root: is the folder finetune.dataset is unpacked in — for the "
         "images of finetune.csv set finetune.image_root"),
        ("finetune.group_by=reference", "finetune.group_by: groups the images of finetune.dataset"),
    ],
)  # fmt: skip
def test_a_dataset_setting_beside_a_csv_is_one_line_not_ignored(tmp_path, cli, setting, said):
    """**Was**: `finetune: {csv: csvs/mos.csv, root: images/}` (the CSV apart from its images; `root` is the
    setting of `finetune.dataset`) ignored `root` and ended in "mos.csv: 8 of 8 images not found (…) —
    check the paths/root", the root the user had set; `group_by: reference` beside a CSV was ignored (the
    split random) without a word. Now one line naming the key and the setting meant, as `target` is."""
    cfg = tiny_train_config(tmp_path)
    images = tmp_path / "set" / "images"
    res = cli("train", "--config", cfg, "--set", setting.replace("IMAGES", str(images)))
    assert res.returncode == 2
    line = res.stderr.strip()
    assert said in line and len(line.splitlines()) == 1, line
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_killed_in_each_stage_in_turn_resumes_to_the_uninterrupted_runs_weights(tmp_path):
    """`attiqa train -c run.yaml` (label -> pretrain 2 epochs -> finetune 2 epochs) SIGKILLed in its label
    stage, then `--resume` killed after pretraining's first epoch, then `--resume` killed after fine-tuning's
    first epoch, then `--resume` to the end: the same pretrained and fine-tuned weights, bit for bit, and
    the same history as the run never killed (ok when tried in session 51, also with a degrade stage and
    cached fine-tuning features; held here: 5 real processes of the tiny network, ~50 s)."""
    import shutil

    from helpers import run_attiqa, signal_after
    from safetensors.torch import load_file

    from attiqa.io.checkpoints import read_card

    cfg = tiny_train_config(tmp_path, epochs=2)
    images = tmp_path / "set" / "images"
    stages = ["--set", f"label={{images: [{images}], teacher: classical, num_workers: 0, batch_size: 2}}",
              "--set", LABEL_AND_PRETRAIN[1].replace("epochs: 1", "epochs: 2")]  # fmt: skip
    run = tmp_path / "run"
    files = ("pretrain/model.safetensors", "finetune/last.safetensors")
    env = {"OMP_NUM_THREADS": "1"}
    assert run_attiqa("train", "-c", cfg, *stages, env=env).returncode == 0
    want = [load_file(str(run / f)) for f in files]
    history = read_card(run / files[1])["history"]
    shutil.rmtree(run)  # the same folder again: the label table's rows are in the order of their paths
    cuts = [
        (".parquet", 2, []),
        ("last.state.safetensors", 1, ["--resume"]),
        ("last.state.safetensors", 2, ["--resume"]),
    ]
    for suffix, after, resume in cuts:
        kill = signal_after(tmp_path, "replace", suffix, after, "SIGKILL", "attiqa.cli")
        assert run_attiqa("train", "-c", cfg, *stages, *resume, **kill).returncode == -9
    assert (run / "finetune" / "last.state.safetensors").is_file()  # the last cut: in fine-tuning
    res = run_attiqa("train", "-c", cfg, *stages, "--resume", env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    for f, w in zip(files, want, strict=True):
        got = load_file(str(run / f))
        assert got.keys() == w.keys() and all(torch.equal(got[k], w[k]) for k in w), f
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in read_card(run / files[1])["history"]] == [
        {k: v for k, v in h.items() if k != "seconds"} for h in history
    ]
