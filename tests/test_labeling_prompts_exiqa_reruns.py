"""The less-travelled `attiqa` commands (docs/robustness.md): `label`, `select-prompts`, `make-distorted`,
`degrade`, `train-exiqa`, `train-exiqa-regressor`, run as a user runs them on real photos (scikit-image's) and
small generated fixtures. Each test failed before its fix."""

from __future__ import annotations

import pyarrow.parquet as pq
from conftest import photo_folder
from PIL import Image

from attiqa.labeling import label_images, parts_dir
from attiqa.teachers import create_teacher


def test_label_refuses_a_stopped_runs_parts_of_another_teacher(tmp_path, photos, tiny_dir, cli):
    """**Was**: `attiqa label photos -o l.parquet` (classical) killed before its merge, then the same with
    `-t clip:FOLDER`: the classical part files merged with the CLIP labels into one table recorded as CLIP's,
    without a word (only a merged table's teacher was compared). Also a changed `--clip-scale` was refused as
    "labelled by another teacher (clip)", the teacher the user had named. Now both are one line saying what
    differs."""
    folder = photo_folder(tmp_path / "photos", photos)
    out = tmp_path / "l.parquet"
    images = sorted(folder.iterdir())
    # the parts a run leaves when killed before its merge (one part per batch of 2)
    label_images(images[:2], create_teacher("classical", device="cpu"), out, batch_size=2, merge=False)
    assert not out.exists() and any(parts_dir(out).iterdir())
    res = cli("label", folder, "-t", f"clip:{tiny_dir}", "-o", out, "--device", "cpu")
    assert res.returncode == 2, res.stdout + res.stderr
    said = " ".join(res.stderr.split())
    assert f"{out} (a stopped run's l.parquet.parts/): was labelled by another teacher (classical)" in said
    assert "Traceback" not in said and not out.exists()
    # the same teacher finishes the table
    assert cli("label", folder, "-o", out).returncode == 0
    assert pq.read_table(out).num_rows == len(images)
    clip_out = tmp_path / "c.parquet"
    assert cli("label", folder, "-t", f"clip:{tiny_dir}", "-o", clip_out, "--device", "cpu").returncode == 0
    res = cli(
        "label", folder, "-t", f"clip:{tiny_dir}", "-o", clip_out, "--clip-scale", "2", "--device", "cpu"
    )
    assert res.returncode == 2
    assert "was labelled by the clip teacher with other settings (scale 1.0, now 2.0)" in " ".join(
        res.stderr.split()
    )


def test_make_distorted_names_the_setting_that_differs_from_its_folders(tmp_path, photos, cli):
    """**Was**: `attiqa make-distorted photos -o md --rounds 1`, then `--rounds 2` (or another `--max-side`,
    or fewer photos) into the same folder: "md/meta.json: made with other settings — sources, rounds, seed,
    distortions or size differ: …" — the user left to guess which. Now the line names it."""
    folder = photo_folder(tmp_path / "photos", photos, n=2, side=48)
    md = tmp_path / "md"
    base = ["make-distorted", folder, "-o", md, "--distortions", "gaussian_blur,contrast"]
    assert cli(*base, "--rounds", "1", "--max-side", "32").returncode == 0
    res = cli(*base, "--rounds", "2", "--max-side", "32")
    assert res.returncode == 2
    said = " ".join(res.stderr.split())
    assert (
        f"{md / 'meta.json'}: made with other settings (rounds 1, now 2) — use another --out folder" in said
    )
    res = cli("make-distorted", folder / "astronaut.png", *base[2:], "--rounds", "1", "--max-side", "40")
    assert "(max_side 32, now 40; other sources)" in " ".join(res.stderr.split())


def test_degrade_refuses_a_folder_of_another_max_side_or_format(tmp_path, photos, cli):
    """**Was**: `attiqa degrade photos -o deg --max-side 256`, then `--max-side 128`: "0 written, N already
    there" — the 256-px images kept as the 128-px set without a word (a run stopped half-way, then rerun with
    the other size, mixed both); `--fmt jpg` wrote a JPEG copy beside every PNG (pretraining on the folder
    then sees each image twice). Now refused, naming the setting; other distortions or levels still add."""
    folder = photo_folder(tmp_path / "photos", photos, n=2, side=96)
    deg = tmp_path / "deg"
    base = ["degrade", folder, "-o", deg, "--distortions", "gaussian_blur", "--levels", "1"]
    assert cli(*base, "--max-side", "64").returncode == 0
    before = {p.name: p.read_bytes() for p in deg.iterdir()}
    for more, words in (
        (["--max-side", "32"], "(max_side 64, now 32)"),
        (["--fmt", "jpg"], "(fmt 'png', now 'jpg')"),
    ):
        res = cli(*base, "--max-side", "64", *more)
        assert res.returncode == 2, res.stdout
        said = " ".join(res.stderr.split())
        assert f"{deg / 'settings.json'}: made with other settings {words} — " in said
        assert {p.name: p.read_bytes() for p in deg.iterdir()} == before
    res = cli(*base[:-1], "2", "--max-side", "64")
    assert res.returncode == 0 and "2 written, 2 already there" in res.stderr


def test_select_prompts_max_images_counts_readable_photos(tmp_path, photos, tiny_dir, cli):
    """**Was**: `attiqa select-prompts -i photos --max-images 3` with a damaged file among the first three
    found used 2 photos ("skipped …", then "2 photos") though more readable ones were there: the cap was
    taken before the files were read. Now it is the first N readable photos."""
    folder = photo_folder(tmp_path / "photos", photos, n=4, side=64)
    (folder / "a_cut.png").write_bytes((folder / "astronaut.png").read_bytes()[:300])
    out = tmp_path / "sel"
    res = cli("select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "--max-images", "3", "-o", out,
              "--work-size", "32", "--device", "cpu")  # fmt: skip
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert "a_cut.png" in said and "(3 photos, 0 rated images)" in said


def test_train_exiqa_interrupted_says_what_it_kept_and_resumes_counted_on_its_own_labels(
    tmp_path, exiqa_set, tiny_dir, cli
):
    """**Was**, for `attiqa train-exiqa DATA -o RUN` (tiny CLIP) stopped by Ctrl-C after its 2nd epoch:
    a bare "interrupted"; the rerun's bar "exiqa epochs: 1/4 (… img/s)" at its 3rd epoch (the kept epochs
    not counted, epochs called images); and a rerun on another `labels.csv` resumed on it silently (only
    the options were compared, as "holds a run with other settings", which one unsaid). Now each is said
    (or refused) in one line. The Ctrl-C is a real signal to a real process; the rerun and the refusal run
    in this process (the entry point's own exit codes and lines)."""
    from helpers import run_attiqa, signal_after

    data, mos = exiqa_set
    run = tmp_path / "run"
    cmd = ["train-exiqa", data, "-o", run, "--clip", tiny_dir, "--epochs", "4", "--warmup-epochs", "1",
           "--prompts", "2", "-b", "8", "--val-fraction", "0.2", "--device", "cpu"]  # fmt: skip
    ctrl_c = signal_after(tmp_path, "replace", "exiqa.state.safetensors", 2, "SIGINT", "attiqa.cli")
    cut = run_attiqa(*cmd, **ctrl_c)
    assert cut.returncode == 130, cut.stderr[-2000:]
    said = [" ".join(x.split()) for x in cut.stderr.splitlines() if x.startswith("interrupted")]
    assert said == [f"interrupted after epoch 2 of 4 kept in {run}; rerun the same command to continue"]
    again = cli(*cmd)
    assert again.returncode == 0, again.stderr[-2000:]
    lines = [" ".join(x.split()) for x in again.stderr.splitlines()]
    assert f"resuming {run}: 2 of 4 epochs kept" in lines
    assert any(
        x.startswith("exiqa epochs: 3/4 (") and "epoch/s, 2 kept from an earlier run" in x for x in lines
    )
    # the same run folder on another labels.csv (one label changed)
    other = tmp_path / "other"
    other.mkdir()
    (other / "images").symlink_to(data / "images")
    text = (data / "labels.csv").read_text().splitlines()
    (other / "labels.csv").write_text(
        "\n".join([text[0], text[1].replace(",0.2", ",0.4", 1), *text[2:]]) + "\n"
    )
    res = cli(*cmd[:1], other, *cmd[2:])
    assert res.returncode == 2
    assert f"error: {run}: holds a run with other settings (other labels) — " in " ".join(res.stderr.split())


def test_the_exiqa_regressor_waits_for_the_run_to_finish(tmp_path, exiqa_set, tiny_dir, cli):
    """**Was**: `attiqa train-exiqa-regressor RUN --mos M` on a run stopped at epoch 1 of 3 fitted the
    regressor to the half-trained prompts without a word — and once the run was finished, `attiqa score -m
    exiqa:RUN` used that regressor on the finished prompts. Now refused until the run has finished."""
    from helpers import exiqa_stopped_after_one_epoch

    from attiqa.exiqa.train import train_exiqa

    data, mos = exiqa_set
    run = tmp_path / "run"
    cfg = exiqa_stopped_after_one_epoch(data, run, tiny_dir)
    reg = cli("train-exiqa-regressor", run, "--mos", mos, "--epochs", "2", "--device", "cpu")
    assert reg.returncode == 2 and not (run / "regressor.safetensors").exists()
    assert (
        f"error: {run / 'exiqa.safetensors'}: its training stopped after epoch 1 of 3 — finish it first "
        "(rerun the same `attiqa train exiqa` command: it resumes), then fit the regressor"
        in " ".join(reg.stderr.split())
    )
    train_exiqa(data, run, cfg)
    reg = cli("train-exiqa-regressor", run, "--mos", mos, "--epochs", "2", "--device", "cpu")
    assert reg.returncode == 0, reg.stderr[-2000:]


def test_a_resumed_label_run_counts_kept_images_apart_from_the_rate(tmp_path, photos, cli):
    """**Was**: `attiqa label photos -o l.parquet` rerun after more photos were added (or after a stop)
    said "labelling (classical): 4/6 (3147.3 img/s)": the images labelled by the earlier run counted as
    labelled at once, in the rate. Now they are in the count, not the rate, as `score` and `genbench
    score` show a resume."""
    folder = photo_folder(tmp_path / "photos", photos, n=3, side=64)
    out = tmp_path / "l.parquet"
    assert cli("label", folder, "-o", out).returncode == 0
    photo_folder(folder, {f"more{k}": img for k, img in enumerate(photos.values())}, n=2, side=64)
    res = cli("label", folder, "-o", out)
    assert res.returncode == 0, res.stderr
    lines = [" ".join(x.split()) for x in (res.stdout + res.stderr).splitlines() if x.startswith("labelling")]
    assert lines[0] == "labelling (classical): 3/5 (none done now, 3 kept from an earlier run)", lines
    assert lines[-1].startswith("labelling (classical): 5/5 (") and lines[-1].endswith(
        "img/s, 3 kept from an earlier run)"
    )
    assert pq.read_table(out).num_rows == 5


def test_export_of_a_model_card_names_the_checkpoint_beside_it(tmp_path, cli):
    """**Was**: `attiqa export mine.json copy.safetensors` (the card beside `mine.safetensors`, which a user
    picks as "the model") said "mine.json: not a readable safetensors checkpoint (… header too large) — pass
    a .safetensors file … whole (a copy may be truncated)", as if the file were damaged; `score -m
    mine.json` said which file to pass. Now both say it (one rule: `attiqa.scorers.zoo.checkpoint_in`)."""
    mine = tmp_path / "mine.safetensors"
    assert cli("export", "attiqa-default", mine, "--name", "mine").returncode == 0
    card = mine.with_suffix(".json")
    res = cli("export", card, tmp_path / "copy.safetensors")
    assert res.returncode == 2
    assert (
        " ".join(res.stderr.split()) == f"error: {card}: a model card — pass the checkpoint beside it, {mine}"
    )
    assert not (tmp_path / "copy.safetensors").exists()


PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
assert done.returncode == 0, done.stderr[-2000:]
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB, the command's peak
"""


def test_select_prompts_holds_a_folder_of_big_photos_at_the_work_size(tmp_path, photos, tiny_dir):
    """**Was**: `attiqa select-prompts -i photos/` read every photo and held it at full size until the task
    resized it to `--work-size` (256 px): 20 Kodak photos of 12 MP peaked at 2.0 GB, 1.2 GB with one of them
    (a phone's camera roll of a few hundred would not fit). Now each is resized as it is read: 1.1 GB for
    the 20, the same prompts.json."""
    import subprocess
    import sys

    from helpers import attiqa_cmd, attiqa_env

    folder = tmp_path / "big"
    folder.mkdir()
    for name, img in photos.items():
        img.resize((4000, 3000), Image.BICUBIC).save(folder / f"{name}.jpg", quality=90)
    peaks = []
    for n in (1, len(photos)):
        cmd = attiqa_cmd("select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "--max-images", n,
                         "-o", tmp_path / f"sel{n}", "--work-size", "32", "--device", "cpu")  # fmt: skip
        out = subprocess.run([sys.executable, "-c", PEAK_RSS, *cmd], env=attiqa_env(), capture_output=True,
                             text=True, check=True)  # fmt: skip
        peaks.append(int(out.stdout.split()[-1]))
    # each more photo held at 4000 x 3000 is 36 MB: 144 MB for the 4 more
    assert peaks[1] - peaks[0] < 90_000, peaks  # measured: -16 to +45 MB; 188 MB before


def test_the_exiqa_regressor_checks_its_run_folder_is_writable_before_fitting(tmp_path, exiqa_set, tiny_dir):
    """**Was**: `attiqa train-exiqa-regressor RUN --mos M` with RUN read-only (a run copied from a shared
    disk) read every MOS image and fitted the regressor, then said "RUN: not writable (permission denied) —
    write somewhere else" — the command has no option for somewhere else (it writes beside the checkpoint).
    Now checked before the features are read, saying to make RUN writable. (Run without root's override.)"""
    import os

    from helpers import run_attiqa

    from attiqa.exiqa.train import ExiqaTrainConfig, train_exiqa

    data, mos = exiqa_set
    run = tmp_path / "run"
    train_exiqa(
        data, run, ExiqaTrainConfig(str(tiny_dir), epochs=1, warmup_epochs=0, batch_size=8, n_prompts=2)
    )
    os.chmod(run, 0o555)
    try:
        res = run_attiqa("train-exiqa-regressor", run, "--mos", mos, "--epochs", "2", "--device", "cpu",
                         unprivileged=True)  # fmt: skip
    finally:
        os.chmod(run, 0o755)
    assert res.returncode == 2, res.stderr[-2000:]
    assert [" ".join(x.split()) for x in res.stderr.splitlines() if x.startswith("error")] == [
        f"error: {run}: not writable (permission denied) — make it writable (chmod u+w {run}): "
        "regressor.safetensors is written beside the run's checkpoint"
    ]
    assert not (run / "regressor.safetensors").exists()


def test_distortions_piped_keeps_each_name_whole_within_80_columns():
    """**Was**: `attiqa distortions | less` (or `> list.txt`) a rich table squeezed into 80 columns: every
    name folded over lines ("gaussian_" / "blur", "kadid_non_ec" / "centricity_" / …), the very text to
    type after `--type`, and each row 10 lines tall. Now piped, each distortion's name is whole at the start
    of its line, its levels and source wrapped under it, no line over 80 columns."""
    from typer.testing import CliRunner

    from attiqa.cli.app import app
    from attiqa.distortions import DISTORTIONS

    r = CliRunner().invoke(app, ["distortions"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    names = [x.split()[0] for x in lines[1:] if x and not x.startswith(" ")]
    assert names == list(DISTORTIONS)
    assert "gaussian_blur  sharpness (-)" in lines and all(len(x) <= 80 for x in lines)
    assert "    levels 1..5: sigma (pixels) = 0.5, 1, 2, 3, 5" in lines
    kadid = CliRunner().invoke(app, ["distortions", "--kadid"]).output.splitlines()
    assert sum(not x.startswith(" ") for x in kadid[1:]) == 25


def test_a_resumed_select_prompts_counts_cached_photos_apart_from_the_rate(tmp_path, photos, tiny_dir, cli):
    """**Was**: `attiqa select-prompts … -o sel` stopped and run again (or run again to change `--select-by`)
    said "task 1: distortion series: 2/20 (6830.4 img/s)": the photos whose embeddings were cached counted
    as encoded, in the rate. Now in the count, not the rate."""
    folder = photo_folder(tmp_path / "photos", photos, n=3, side=64)
    args = ["select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "-o", tmp_path / "sel",
            "--work-size", "32", "--device", "cpu"]  # fmt: skip
    assert cli(*args).returncode == 0
    res = cli(*args, "--select-by", "distortion")
    assert res.returncode == 0, res.stderr
    bar = [" ".join(x.split()) for x in (res.stdout + res.stderr).splitlines() if x.startswith("task 1")]
    assert bar and bar[-1] == "task 1: distortion series: 3/3 (none done now, 3 kept from an earlier run)", (
        bar
    )


def test_export_makes_a_named_datasets_root_in_the_card_portable(tmp_path, cli):
    """**Was**: a model fine-tuned on a named dataset (`attiqa train` with ``finetune.dataset``, a kept
    `bench` run) records its source as ``NAME:ROOT``, ROOT this machine's absolute folder; `attiqa export`,
    which makes a card's absolute paths portable, saw no path in it and shipped ``kadid10k:/home/…``."""
    from attiqa.io.checkpoints import load_checkpoint, portable_path, save_checkpoint

    mine = tmp_path / "mine.safetensors"
    assert cli("export", "attiqa-default", mine, "--name", "mine").returncode == 0
    tensors, card = load_checkpoint(mine)
    root = tmp_path / "data" / "KADID-10k"
    card["dataset"] = {"csv": f"kadid10k:{root}", "image_root": str(root), "split": "seed 0 (group by ref)"}
    save_checkpoint(mine, tensors, card)
    out = tmp_path / "shared.safetensors"
    assert cli("export", mine, out).returncode == 0
    shipped = load_checkpoint(out)[1]["dataset"]
    assert shipped["csv"] == "kadid10k:data/KADID-10k" and shipped["image_root"] == "data/KADID-10k", shipped
    assert str(tmp_path) not in out.with_suffix(".json").read_text()
    # other strings with a colon are not paths of this machine
    for kept in ("https://example.org/a/b", "hf-hub:timm/x", "C:/x", "seed 0 (group by ref)"):
        assert portable_path(kept) == kept
