"""A new user's black-box pass over the commands (docs/robustness.md): what a rerun, a typo or a stray file
did before its fix — silently discarded finished epochs, kept another model's scores, split unreadable raws
into training, overwrote the checkpoint being exported, or ended in a traceback. Every fixture is generated
here; each test failed before its fix."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from attiqa.errors import AttiqaError, ConfigError

runner = CliRunner()
BUNDLED = Path(__file__).resolve().parents[1] / "attiqa" / "data" / "models"


def _photos(folder: Path, n: int = 3, size=(96, 72)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        base = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3)
        arr = np.clip(base + rng.normal(0, 10 + 20 * i, base.shape), 0, 255).astype(np.uint8)
        p = folder / f"p{i}.png"
        Image.fromarray(arr).save(p)
        out.append(p)
    return out


# ---------------------------------------------------------------------------------------------------------
# attiqa train: the same command after a kill must not train over the finished epochs


def _tiny_run_config(tmp_path: Path, photos) -> Path:
    from helpers import write_mos_set

    csv_path = write_mos_set(tmp_path / "mos", dict(list(photos.items())[:2]), split_column=True, shorter=64)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"out_dir: {tmp_path / 'run'}\n"
        "model:\n  backbone: tiny\n  pretrained_backbone: false\n  head_hidden: 16\n"
        f"finetune:\n  csv: {csv_path}\n  image_root: {csv_path.parent / 'images'}\n  mos_hidden: 16\n"
        "  epochs: 1\n  batch_size: 8\n  resize_shorter: 72\n  crop_size: 64\n  num_workers: 0\n"
        "  device: cpu\n"
    )
    return cfg


def test_train_rerun_asks_before_training_over_an_earlier_run(tmp_path, photos):
    from attiqa.cli.app import app

    cfg = _tiny_run_config(tmp_path, photos)
    first = runner.invoke(app, ["train", "--config", str(cfg)])
    assert first.exit_code == 0, first.output
    last = tmp_path / "run" / "finetune" / "last.safetensors"
    before = last.read_bytes()

    again = runner.invoke(app, ["train", "--config", str(cfg)])  # the same command: refused, nothing touched
    assert isinstance(again.exception, AttiqaError), again.output
    msg = str(again.exception)
    assert (
        "holds checkpoints of an earlier run (finetune)" in msg and "--resume" in msg and "--no-resume" in msg
    )
    assert last.read_bytes() == before

    # resuming with a config whose network differs: one line, not a state_dict traceback
    other = runner.invoke(app, ["train", "--config", str(cfg), "--resume", "--set", "model.head_hidden=8"])
    assert isinstance(other.exception, AttiqaError), other.output
    assert "saved by a run of another network" in str(other.exception)

    assert runner.invoke(app, ["train", "--config", str(cfg), "--resume"]).exit_code == 0
    assert runner.invoke(app, ["train", "--config", str(cfg), "--no-resume"]).exit_code == 0


def test_a_config_that_is_not_utf8_or_has_no_stage_is_one_line_naming_it(tmp_path):
    from attiqa.config import load_config

    binary = tmp_path / "photo.yaml"
    binary.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a config")
    with pytest.raises(ConfigError, match=r"photo.yaml: not a UTF-8 text file"):
        load_config(binary)
    empty = tmp_path / "empty.yaml"
    empty.write_text("out_dir: runs/x\n")
    with pytest.raises(ConfigError, match=r"empty.yaml: no stage to run"):
        load_config(empty)
    bad = tmp_path / "bad.yaml"
    bad.write_text("finetune:\n  csv: x.csv\n  batch_size: -1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(bad)
    assert str(exc.value) == f"{bad}: finetune.batch_size: must be >= 1, got -1"  # the file named once
    assert (exc.value.where, exc.value.text) == (str(bad), "finetune.batch_size: must be >= 1, got -1")
    assert str(pickle.loads(pickle.dumps(exc.value))) == str(exc.value)  # kept apart across processes
    bad.write_text("finetune:\n  csv: x.csv\nfintune: {}\n")  # a key at the top: the file, then the key
    with pytest.raises(ConfigError) as exc:
        load_config(bad)
    assert str(exc.value).startswith(f"{bad}: unknown key 'fintune' (did you mean 'finetune'?); valid keys:")


def test_a_crop_larger_than_the_resize_is_refused_at_load(tmp_path, photos):
    """The views do not pad: a crop above the resized shorter edge blew every image up again (silently
    blurred training); now one line naming the file and both keys, before any stage runs."""
    from helpers import label_table

    from attiqa.cli.app import app
    from attiqa.config import load_config

    cfg = _tiny_run_config(tmp_path, photos)
    r = runner.invoke(app, ["train", "--config", str(cfg), "--set", "finetune.crop_size=96"])
    assert isinstance(r.exception, ConfigError), r.output
    assert str(r.exception) == (
        f"{cfg}: finetune.crop_size: 96 is larger than resize_shorter 72 (every image would be "
        "shrunk to 72 px and blown up again) — set resize_shorter >= crop_size (the paper's fine-tuning: "
        "340 / 320) (from --set finetune.crop_size=96)"
    )
    assert not (tmp_path / "run").exists()
    labels = label_table(tmp_path / "labels.parquet")
    with pytest.raises(ConfigError, match=r"pretrain.crop_size: 224 is larger than resize_shorter 128"):
        load_config(cfg, ["pretrain.resize_shorter=128", f"labels={labels}"])
    assert load_config(cfg, ["pretrain.crop_size=64", f"labels={labels}"]).pretrain is not None  # no resize
    assert load_config(cfg, ["finetune.crop_size=72"]).finetune.crop_size == 72  # equal: no blow-up


def test_a_training_mos_csv_that_is_not_utf8_is_one_line(tmp_path):
    from attiqa.training.data import read_mos_csv

    csv_path = tmp_path / "mos.csv"  # a spreadsheet's Latin-1 export: a traceback in `attiqa train` before
    csv_path.write_bytes("image,mos\ncaf\xe9.jpg,3.5\n".encode("latin-1"))
    with pytest.raises(AttiqaError, match=r"mos.csv: not a UTF-8 text file — save it as UTF-8"):
        read_mos_csv(csv_path)


def test_unreadable_training_images_are_one_line_each_and_counted(tmp_path, photos):
    """Before: a Python warning with torch's source line under it, once per image, worker and epoch. A real
    process: in pytest's a warning goes to pytest's recorder and a forked worker's to its own stderr copy."""
    from helpers import run_attiqa

    cfg = _tiny_run_config(tmp_path, photos)
    images = tmp_path / "mos" / "images"
    bad = sorted(images.glob("*_l_blur0.jpg"))  # the first content (training split) and a validation one
    bad = [bad[0], sorted(images.glob("*_r_blur2.jpg"))[-1]]
    for p in bad:
        p.write_bytes(p.read_bytes()[:200])  # a truncated JPEG
    text = cfg.read_text().replace("num_workers: 0", "num_workers: 2").replace("epochs: 1", "epochs: 2")
    cfg.write_text(text)
    res = run_attiqa("train", "--config", cfg)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    skipped = [ln for ln in lines if ln.startswith("skipped ")]
    assert len(skipped) == 2, res.stderr  # one line per file, whatever the workers and epochs
    for p in bad:
        assert sum(ln.startswith(f"skipped {p}: ") for ln in skipped) == 1, res.stderr
    assert "finetune: 2 unreadable images skipped (listed above)" in lines, res.stderr
    assert "Warning" not in res.stderr and "warnings.warn" not in res.stderr, res.stderr


# ---------------------------------------------------------------------------------------------------------
# attiqa score: resuming --out with another model


def test_score_refuses_to_resume_a_file_of_another_model(tmp_path):
    from attiqa.cli.app import app

    imgs = _photos(tmp_path / "in", n=2)
    out = tmp_path / "s.csv"
    base = ["score", str(imgs[0]), "-o", str(out), "-q", "--workers", "0"]
    assert runner.invoke(app, base).exit_code == 0  # the default model
    rows = out.read_text()
    # another model with the same columns: before, "0 image(s) scored" and the old model's rows kept
    r = runner.invoke(
        app, ["score", *map(str, imgs), "-o", str(out), "-m", "attiqa-agiqa3k", "-q", "--workers", "0"]
    )
    assert isinstance(r.exception, AttiqaError), r.output
    assert f"{out}: holds scores of attiqa-default" in str(r.exception) and "attiqa-agiqa3k" in str(
        r.exception
    )
    r = runner.invoke(app, [*base, "--crops", "center"])  # other crops: other numbers
    assert isinstance(r.exception, AttiqaError) and "crops five" in str(r.exception)
    assert out.read_text() == rows
    # the same model resumes; a new file for the other model is fine
    assert (
        runner.invoke(app, ["score", *map(str, imgs), "-o", str(out), "-q", "--workers", "0"]).exit_code == 0
    )
    assert len(out.read_text().splitlines()) == 3
    other = tmp_path / "s.json"
    assert (
        runner.invoke(app, ["score", str(imgs[0]), "-o", str(other), "-m", "attiqa-agiqa3k", "-q"]).exit_code
        == 0
    )
    r = runner.invoke(app, ["score", str(imgs[0]), "-o", str(other), "-q"])
    assert isinstance(r.exception, AttiqaError) and "holds scores of attiqa-agiqa3k" in str(r.exception)


def test_score_and_eval_outputs_name_the_path_and_the_fix(tmp_path):
    from attiqa.cli.app import app

    imgs = _photos(tmp_path / "in", n=2)
    folder = tmp_path / "results"
    folder.mkdir()
    # before: "unsupported output type" for a folder or a name without extension
    scores = tmp_path / "scores"
    for out, what, eg in (
        (folder, "is a folder", folder / "scores.csv"),
        (
            scores,
            "has no file extension",
            f"{scores}.csv (or {scores / 'scores.csv'} to write into a folder scores)",
        ),
    ):
        r = runner.invoke(app, ["score", str(imgs[0]), "-m", "classical", "-o", str(out)])
        assert isinstance(r.exception, AttiqaError), r.output
        assert (
            str(r.exception) == f"{out}: {what} — give a file name ending in .csv, .tsv or .json, e.g. {eg}"
        )
    r = runner.invoke(app, ["score", str(imgs[0]), "-m", "classical", "-o", str(tmp_path / "s.txt")])
    assert isinstance(r.exception, AttiqaError) and f"e.g. {tmp_path / 's.csv'}" in str(r.exception)
    assert not (tmp_path / "scores").exists() and not list(folder.iterdir())
    # the suggested name works
    r = runner.invoke(app, ["score", str(imgs[0]), "-m", "classical", "-o", str(folder / "scores.csv")])
    assert r.exit_code == 0 and (folder / "scores.csv").is_file()

    # eval's --out is a folder: a file name there made a folder `preds.csv/`; now refused before the work
    (tmp_path / "in" / "mos.csv").write_text(
        "image,mos\n" + "".join(f"{p.name},{i}\n" for i, p in enumerate(imgs))
    )
    preds = tmp_path / "preds.csv"
    r = runner.invoke(
        app, ["eval", "folder", "--root", str(tmp_path / "in"), "-m", "classical", "-o", str(preds)]
    )
    assert isinstance(r.exception, AttiqaError), r.output
    assert f"{preds}: --out is the folder the files are written into, not a file" in str(r.exception)
    assert f"e.g. {tmp_path / 'preds'}" in str(r.exception) and not preds.exists()


def test_score_to_a_stream_is_refused_with_the_fix(tmp_path, monkeypatch):
    """`-o -` (stdout, as many tools take it) was told to write `-.csv` or into a folder `-`; a FIFO named
    `s.csv` would have been replaced by a regular file by the atomic write."""
    from attiqa.cli.app import app

    img = _photos(tmp_path / "in", n=1)[0]
    fifo = tmp_path / "s.csv"
    os.mkfifo(fifo)
    monkeypatch.chdir(tmp_path)
    for out in ("-", str(fifo)):
        r = runner.invoke(app, ["score", str(img), "-m", "classical", "-o", out])
        assert isinstance(r.exception, AttiqaError), r.output
        assert str(r.exception) == (
            f"{out}: not a file name — the scores go to a file, written row by row so a rerun resumes it, "
            "not to a stream: give e.g. scores.csv"
        )
    assert not fifo.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["in", "s.csv"]


def test_a_sheet_or_gallery_path_is_checked_before_the_work(tmp_path):
    from attiqa.cli.app import app
    from attiqa.io.images import save_image

    img = _photos(tmp_path / "in", n=1)[0]
    folder = tmp_path / "sheets"
    folder.mkdir()
    out = tmp_path / "s.csv"
    # before: every image scored, then an error naming a temp file (a folder) or a PNG written as `x.txt`
    r = runner.invoke(app, ["score", str(img), "-m", "classical", "-o", str(out), "--sheet", str(folder)])
    assert isinstance(r.exception, AttiqaError) and f"{folder}: is a folder" in str(r.exception)
    r = runner.invoke(
        app, ["score", str(img), "-m", "classical", "-o", str(out), "--sheet", str(tmp_path / "x.txt")]
    )
    assert isinstance(r.exception, AttiqaError) and "--sheet is written as a PNG" in str(r.exception)
    assert not out.exists() and not (tmp_path / "x.txt").exists()
    r = runner.invoke(app, ["label", str(img), "-o", str(folder)])  # was pyarrow's "Cannot open for reading"
    assert isinstance(r.exception, AttiqaError) and f"{folder}: is a folder" in str(r.exception)
    r = runner.invoke(app, ["gallery", str(img), "-o", str(folder), "--types", "contrast", "--thumb", "16"])
    assert isinstance(r.exception, AttiqaError) and f"{folder}: is a folder" in str(r.exception)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(AttiqaError, match="dir.png: is a folder"):  # any atomic write: one line, no temp left
        save_image(Image.open(img), tmp_path / "dir.png")
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------------------------------------------------
# attiqa export onto its own source, or onto a folder


def test_export_refuses_to_overwrite_its_source_or_write_beside_a_folder(tmp_path):
    from attiqa.cli.app import app

    src = tmp_path / "m.safetensors"
    shutil.copy(BUNDLED / "attiqa-default.safetensors", src)
    shutil.copy(BUNDLED / "attiqa-default.json", tmp_path / "m.json")
    before = src.read_bytes()
    for dst in (src, tmp_path / "m"):  # the suffix is added when missing: `m` is the same file
        r = runner.invoke(app, ["export", str(src), str(dst)])
        assert isinstance(r.exception, AttiqaError) and "is the checkpoint being exported" in str(r.exception)
    assert src.read_bytes() == before
    folder = tmp_path / "models"
    folder.mkdir()
    r = runner.invoke(app, ["export", str(src), str(folder)])
    assert isinstance(r.exception, AttiqaError) and f"{folder}: is a folder" in str(r.exception)
    assert not (tmp_path / "models.safetensors").exists()  # before: written beside the folder


def test_export_refuses_another_suffix_and_adds_a_missing_one(tmp_path):
    from attiqa.cli.app import app

    src = BUNDLED / "attiqa-default.safetensors"
    for dst in (tmp_path / "m.txt", tmp_path / "m.json"):  # before: written as m.safetensors + m.json
        r = runner.invoke(app, ["export", str(src), str(dst)])
        assert isinstance(r.exception, AttiqaError), r.output
        assert str(r.exception) == (
            f"{dst}: a checkpoint is written as .safetensors (its card as .json beside it) — give a name "
            f"ending in .safetensors, e.g. {tmp_path / 'm.safetensors'}"
        )
    assert not list(tmp_path.iterdir())
    r = runner.invoke(app, ["export", str(src), str(tmp_path / "m")])  # no suffix: the documented append
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    assert (
        runner.invoke(
            app, ["score", str(_photos(tmp_path / "in", n=1)[0]), "-m", str(tmp_path / "m.safetensors")]
        ).exit_code
        == 0
    )


# ---------------------------------------------------------------------------------------------------------
# score files of `attiqa eval folder` and `attiqa bench`


def test_eval_names_the_bad_mos_cell_reads_semicolons_and_offers_skip_missing(tmp_path):
    from attiqa.cli.app import app
    from attiqa.datasets.folder import FolderDataset

    imgs = _photos(tmp_path / "d", n=3)
    names = [p.name for p in imgs]
    (tmp_path / "d" / "bad.csv").write_text(f'image,mos\n{names[0]},1\n{names[1]},2\n{names[2]},"3,5"\n')
    with pytest.raises(AttiqaError, match=r"bad.csv:4: mos '3,5' is not a number"):
        FolderDataset(tmp_path / "d", csv="bad.csv")
    (tmp_path / "d" / "head.csv").write_text("image,mos\n")
    with pytest.raises(AttiqaError, match=r"head.csv: no rows under the header"):
        FolderDataset(tmp_path / "d", csv="head.csv")
    (tmp_path / "d" / "semi.csv").write_text(
        "image;mos\n" + "".join(f"{n};{i}\n" for i, n in enumerate(names))
    )
    assert [it.mos for it in FolderDataset(tmp_path / "d", csv="semi.csv").items] == [0.0, 1.0, 2.0]

    (tmp_path / "d" / "gone.csv").write_text(
        "image,mos\n" + "".join(f"{n},{i}\n" for i, n in enumerate(names)) + "x.png,4\n"
    )
    r = runner.invoke(
        app, ["eval", "folder", "--root", str(tmp_path / "d"), "--csv", "gone.csv", "-m", "classical"]
    )
    assert isinstance(r.exception, AttiqaError) and "x.png: not found" in str(r.exception)
    last = str(r.exception).splitlines()[-1]  # the way out ends the list, once, on a line of its own
    assert last == "put the files in place or fix the score file — or pass --skip-missing to leave these " \
        "images out of the metrics" and str(r.exception).count("--skip-missing") == 1  # fmt: skip


def test_eval_refuses_an_out_folder_whose_outputs_are_its_inputs(tmp_path):
    """**Was**: `--csv d/predictions.csv -o d` wrote the predictions over the scores being evaluated (and an
    image named scatter.png in `-o` was replaced by the plot); now one line before the model loads."""
    from attiqa.cli.app import app

    imgs = _photos(tmp_path / "d", n=3)
    scores = "image,mos\n" + "".join(f"{p.name},{i}\n" for i, p in enumerate(imgs))
    (tmp_path / "d" / "predictions.csv").write_text(scores)
    args = ["eval", "folder", "--root", str(tmp_path / "d"), "-m", "classical", "--no-cache"]
    d = tmp_path / "d"
    r = runner.invoke(app, [*args, "--csv", str(d / "predictions.csv"), "-o", str(d)])
    assert isinstance(r.exception, AttiqaError), r.output
    # session 54: an --out among the dataset's own files is refused first, before the model and any header
    own = f"{d}: is the dataset's own folder (its images or score file are there) — the outputs"
    assert str(r.exception).startswith(own), str(r.exception)
    assert (tmp_path / "d" / "predictions.csv").read_text() == scores
    photo = imgs[0].read_bytes()
    imgs[0].rename(tmp_path / "d" / "scatter.png")
    (tmp_path / "d" / "mos.csv").write_text(scores.replace(imgs[0].name, "scatter.png"))
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "d")])
    assert isinstance(r.exception, AttiqaError) and str(r.exception).startswith(own), r.output
    assert (tmp_path / "d" / "scatter.png").read_bytes() == photo  # the image named scatter.png kept
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "out")])  # the way out
    assert r.exit_code == 0 and (tmp_path / "out" / "predictions.csv").is_file(), r.output


def test_bench_refuses_a_target_no_dataset_has(tmp_path):
    from attiqa.cli.app import app

    imgs = _photos(tmp_path / "d", n=3)
    (tmp_path / "d" / "mos.csv").write_text(
        "image,mos\n" + "".join(f"{p.name},{i}\n" for i, p in enumerate(imgs))
    )
    r = runner.invoke(
        app,
        ["bench", "single", "-d", f"folder={tmp_path / 'd'}", "-t", "mos_qualty", "-o", str(tmp_path / "b")],
    )
    assert isinstance(r.exception, AttiqaError), r.output  # before: benched `mos` as if no -t was given
    assert "--target 'mos_qualty': no dataset given has it; their targets: mos" in str(r.exception)
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------------------
# isp-tune: files LibRaw can't open are left out before the split


def test_isp_tune_leaves_unreadable_raws_out_of_the_split(tmp_path, isp_raws):
    from helpers import quick_isp_tune

    from isp_env.cli import app

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    (raw_dir / "empty.dng").write_bytes(b"")
    (raw_dir / "notes.nef").write_text("not a raw")
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    plan = json.loads((out / "run.json").read_text())
    used = {Path(p).name for p in plan["train"] + plan["test"]}
    assert used == {p.name for p in isp_raws}  # before: the two bad files took places in the split
    skipped = json.loads((out / "summary.json").read_text())["skipped"]
    assert {Path(p).name for p in skipped} == {"empty.dng", "notes.nef"}
    assert "LibRaw can't read it" in skipped[str(raw_dir / "notes.nef")]
    assert "empty file (0 bytes)" in skipped[str(raw_dir / "empty.dng")]  # (session 51: said as such)


# ---------------------------------------------------------------------------------------------------------
# --help: every option says what it does


def test_every_option_of_every_command_has_help():
    import typer

    from attiqa.cli.app import app as attiqa_app
    from genbench.cli import app as genbench_app
    from isp_env.cli import app as isp_app

    missing = []

    def walk(cmd, path: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")
        if not (cmd.help or "").strip():
            missing.append(path)
        for p in cmd.params:
            if p.param_type_name == "option" and "--help" not in p.opts and not (p.help or "").strip():
                missing.append(f"{path} {'/'.join(p.opts)}")

    for name, app in (("attiqa", attiqa_app), ("genbench", genbench_app), ("isp-tune", isp_app)):
        walk(typer.main.get_command(app), name)
    assert not missing, missing


def test_crops_typo_is_one_line_with_the_right_spelling(tmp_path):
    """`--crops centre` (the help text itself says "4 corners + centre") ended in a ValueError traceback
    (exit 1) from the scorer; now one line naming the two modes and the close one, in score and eval."""
    from attiqa.cli.app import app

    imgs = _photos(tmp_path / "in", n=1)
    r = runner.invoke(app, ["score", str(imgs[0]), "--crops", "centre", "-q", "--workers", "0"])
    assert isinstance(r.exception, ConfigError), r.exception
    assert "did you mean 'center'" in str(r.exception) and "five" in str(r.exception)
    (tmp_path / "in" / "mos.csv").write_text("image,mos\np0.png,1\n")
    r = runner.invoke(app, ["eval", "folder", "--root", str(tmp_path / "in"), "--crops", "fiv", "-q"])
    assert isinstance(r.exception, ConfigError) and "did you mean 'five'" in str(r.exception)


def test_crops_given_to_a_scorer_without_crops_is_refused_in_one_line(tmp_path):
    """**Was**: `score -m classical --crops center` (and `check-attributes`) scored without a word, the crops
    taken by no one; `eval` refused it. Now all three refuse it alike, before anything is scored."""
    from attiqa.cli.app import app

    imgs = _photos(tmp_path / "in", n=1)
    (tmp_path / "in" / "mos.csv").write_text("image,mos\np0.png,1\n")
    said = ("--crops applies to ATTIQA checkpoints only, not to scorer 'classical' (it takes no crop "
            "mode) — drop --crops")  # fmt: skip
    out = tmp_path / "s.csv"
    for args in (
        ["score", str(imgs[0]), "-m", "classical", "--crops", "center", "-q", "-o", str(out)],
        ["check-attributes", str(imgs[0]), "-m", "classical", "--crops", "five"],
        ["eval", "folder", "--root", str(tmp_path / "in"), "-m", "classical", "--crops", "center", "-q"],
    ):
        r = runner.invoke(app, args)
        assert isinstance(r.exception, AttiqaError) and str(r.exception) == said, (args, r.output)
    assert not out.exists()
    r = runner.invoke(app, ["score", str(imgs[0]), "-m", "classical", "-q", "-o", str(out)])  # none: fine
    assert r.exit_code == 0 and out.is_file(), r.output


def test_eval_of_a_named_dataset_on_a_folder_with_mos_csv_points_at_the_folder_adapter(tmp_path):
    """`attiqa eval clive --root clive-dev` (images/ + mos.csv, as the shared clive-dev is laid out) said only
    that Data/AllImages_release.mat was missing and showed CLIVE's official layout; the folder adapter that
    reads it as is went unmentioned. Now the first line says so, with the command."""
    from attiqa.cli.app import app

    root = tmp_path / "clive-dev"
    _photos(root / "images", n=2)
    (root / "mos.csv").write_text("image,mos\np0.png,40\np1.png,60\n")
    r = runner.invoke(app, ["eval", "clive", "--root", str(root), "-m", "classical", "-q"])
    assert isinstance(r.exception, AttiqaError), r.exception
    first = str(r.exception).splitlines()[0]
    assert "AllImages_release.mat" in first and f"`attiqa eval folder --root {root}`" in first, first
    r = runner.invoke(
        app, ["eval", "folder", "--root", str(root), "-m", "classical", "-q", "-o", str(tmp_path / "e")]
    )
    assert r.exit_code == 0, r.output


def test_distort_and_gallery_on_a_folder_point_at_degrade(tmp_path):
    """`attiqa distort photos/ -t kadid_jpeg -l 3 -o o.png` said "photos: is a folder, not an image file —
    pass image files or use a folder input": these commands take no folder. Now one line that says they take
    one image and gives the folder command with the same type and level (`degrade`)."""
    from attiqa.cli.app import app

    folder = tmp_path / "photos"
    _photos(folder, n=2)
    r = runner.invoke(
        app, ["distort", str(folder), "-t", "kadid_jpeg", "-l", "3", "-o", str(tmp_path / "o.png")]
    )
    assert isinstance(r.exception, AttiqaError), r.exception
    said = str(r.exception)
    assert "takes one image" in said and "--distortions kadid_jpeg --levels 3" in said, said
    assert "use a folder input" not in said and not (tmp_path / "o.png").exists()
    r = runner.invoke(app, ["gallery", str(folder), "-o", str(tmp_path / "g.png")])
    assert isinstance(r.exception, AttiqaError) and "takes one image" in str(r.exception), r.exception


def test_a_root_one_folder_too_deep_names_the_folder_with_the_score_file(tmp_path):
    """`attiqa eval agiqa3k --root agiqa3k-dev/AGIQA-3K` (the README's examples write `--root AGIQA-3K/`, the
    shared copy keeps data.csv one level up, beside that image folder) said only "score file not found …
    (looked for data.csv)"; now the line names the folder above that holds it."""
    from attiqa.cli.app import app

    root = tmp_path / "agiqa3k-dev"
    _photos(root / "AGIQA-3K", n=2)
    (root / "data.csv").write_text(
        "name,prompt,mos_quality,mos_align\np0.png,a cat,1.0,2.0\np1.png,a cat,3,4\n"
    )
    r = runner.invoke(app, ["eval", "agiqa3k", "--root", str(root / "AGIQA-3K"), "-m", "classical", "-q"])
    assert isinstance(r.exception, AttiqaError), r.exception
    first = str(r.exception).splitlines()[0]
    assert f"{root / 'data.csv'} is one folder up: pass {root} as the root" in first, first


def test_a_sheet_headline_of_a_0_to_1_score_tells_close_scores_apart(tmp_path):
    """`attiqa score shots/ -m classical --sheet s.png` headed four clive-dev photos scored 0.544, 0.526,
    0.53x and 0.6x "SCORE 0.5", "SCORE 0.5", "SCORE 0.5", "SCORE 0.6": one decimal, as for a 0-100 MOS.
    A headline under 10 now has two decimals (the bars' own), so 0.54 and 0.53 differ on the sheet."""
    from attiqa.contact_sheet import contact_sheet

    photo = _photos(tmp_path, n=1)[0]
    bars = {"sharpness": 0.5}
    rows = [{"image": str(photo), "score": 0.54, **bars}, {"image": str(photo), "score": 0.53, **bars}]
    thumb, pad = 120, 10
    sheet = np.asarray(Image.open(contact_sheet(rows, tmp_path / "s.png", list(bars), "score", thumb=thumb)))
    top = pad + thumb + 4 + 16  # the headline's line, below the thumbnail and the file name
    heads = [sheet[top : top + 24, x0 : x0 + thumb] for x0 in (pad, thumb + 3 * pad)]
    assert heads[0].min() < 128 and not np.array_equal(heads[0], heads[1]), "0.54 and 0.53 drawn alike"
    rows = [{"image": str(photo), "mos": 61.23, **bars}, {"image": str(photo), "mos": 61.24, **bars}]
    sheet = np.asarray(Image.open(contact_sheet(rows, tmp_path / "m.png", list(bars), "mos", thumb=thumb)))
    heads = [sheet[top : top + 24, x0 : x0 + thumb] for x0 in (pad, thumb + 3 * pad)]
    assert np.array_equal(heads[0], heads[1])  # a 0-100 MOS keeps one decimal: 61.2 both
