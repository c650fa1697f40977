"""`attiqa train` / `attiqa label` (docs/robustness.md): a moved dataset resumed, the fix a changed label
stage's refusal names, prompts beside the classical teacher on `attiqa label`, `--out-dir ''`, a LIVE model's
fit note on its other target, and a label table of the same prompts from another file. The network is the tiny
random one; each test failed before its fix."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import LABEL_AND_PRETRAIN, renamed_copies, tiny_train_config


def _said(res) -> str:
    return " ".join((res.stdout + res.stderr).split())


def _move_and_resume(cli, cfg, old, new, key: str, value, epochs: int):
    """Move the folder ``old`` to ``new``, then resume the run with ``finetune.KEY=VALUE`` for more epochs."""
    shutil.copytree(old, new)
    shutil.rmtree(old)
    return cli("train", "--config", cfg, "--resume", "--set", f"finetune.{key}={value}",
               "--set", f"finetune.epochs={epochs}")  # fmt: skip


def test_a_moved_named_dataset_resumes_when_its_rows_are_the_same(tmp_path, cli, layout, dataset_config):
    """**Was**: the KADID-10k folder a run fine-tuned on moved elsewhere, the same run resumed with
    `finetune.root` at the new place: "finetune.root: 'NEW' differs from the 'OLD' the run … was trained with"
    though every row (image names, scores) is the same. Now it resumes and says "the dataset moved"; a
    moved copy with other rows is still refused."""
    root = layout(tmp_path, "kadid10k")
    cfg = dataset_config(tmp_path, dataset="kadid10k", root=root)
    assert cli("train", "--config", cfg).returncode == 0
    moved = tmp_path / "elsewhere" / "KADID"
    res = _move_and_resume(cli, cfg, root, moved, "root", moved, 2)
    assert res.returncode == 0, res.stderr
    said = _said(res)  # the two adjacent lines spell a change one way (was "→" for the move, "->" after)
    assert f"finetune: the dataset moved: {root} -> {moved}, same rows" in said, said
    assert "changed settings: finetune.epochs 1 -> 2" in said and "→" not in said, said
    card = (tmp_path / "run" / "finetune" / "last.json").read_text()
    assert '"epoch": 2' in card and f"kadid10k:{moved}" in card
    # the moved copy with one score changed: other rows, refused as before
    dmos = moved / "dmos.csv"
    lines = dmos.read_text().splitlines()
    head, first = lines[0].split(","), lines[1].split(",")
    col = next(i for i, h in enumerate(head) if h.strip().lower() == "dmos")
    first[col] = str(float(first[col]) + 0.5)
    dmos.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    again = tmp_path / "again"
    res = _move_and_resume(cli, cfg, moved, again, "root", again, 3)
    assert res.returncode != 0
    assert f"finetune.root: '{again}' differs from the '{moved}'" in res.stderr, res.stderr


def test_a_moved_mos_csv_folder_resumes_when_its_rows_are_the_same(tmp_path, cli):
    """The same for `finetune.csv`: the folder of the CSV and its images moved, the run resumed from there."""
    cfg = tiny_train_config(tmp_path)
    assert cli("train", "--config", cfg).returncode == 0
    old, new = tmp_path / "set", tmp_path / "moved" / "set"
    res = _move_and_resume(cli, cfg, old, new, "csv", new / "mos.csv", 2)
    assert res.returncode == 0, res.stderr
    assert f"the dataset moved: {old / 'mos.csv'} -> {new / 'mos.csv'}, same rows" in _said(res), _said(res)


def test_a_changed_label_stage_names_label_images_as_the_fix(tmp_path, cli):
    """**Was**: `label.images` narrowed after pretraining, then `--resume`: "labels.parquet: changed since the
    run … — restore the file", though the run writes that file itself; now the fix named is the config's:
    set label.images back. A user's own `labels:` file keeps "restore the file". (Session 51: said before
    the label stage, which had already dropped the rows from the run's table.)"""
    cfg = tiny_train_config(tmp_path)
    junk = renamed_copies(tmp_path)
    images = tmp_path / "set" / "images"
    common = LABEL_AND_PRETRAIN
    assert cli("train", "--config", cfg, *common, "--set", f"label.images=[{images}, {junk}]").returncode == 0
    res = cli("train", "--config", cfg, *common, "--set", f"label.images=[{images}]", "--resume",
              "--set", "pretrain.epochs=2")  # fmt: skip
    assert res.returncode != 0
    labels, where = tmp_path / "run" / "labels.parquet", tmp_path / "run" / "pretrain"
    assert [x for x in res.stderr.splitlines() if x.startswith("error:")] == [  # before the label stage (51)
        f"error: label.images: other images than the run in {where} was pretrained on (it holds 4 not "
        f"listed, e.g. {junk / 'j0.png'}) — --resume continues that run: set label.images back, or train "
        "over it with --no-resume (or choose another out_dir)"
    ]
    import pyarrow.parquet as pq

    assert pq.read_metadata(labels).num_rows == 12  # kept whole (was rewritten without junk's 4 rows)


@pytest.mark.parametrize("option", [["--prompts", "PROMPTS"], ["--clip-scale", "2"]])
def test_label_refuses_a_clip_option_beside_the_classical_teacher(tmp_path, cli, option):
    """**Was**: `attiqa label photos --teacher classical --prompts mine.json` (or `--clip-scale 2`) labelled
    every photo without a word, the option ignored (a run config's `label:` section was refused since the
    first pass); now the config's check (`LabelConfig.check_clip_settings`), said as the command's options."""
    cfg = tiny_train_config(tmp_path)  # its photos
    prompts = tmp_path / "mine.json"
    prompts.write_text("{}")
    out = tmp_path / "l.parquet"
    args = [str(prompts) if a == "PROMPTS" else a for a in option]
    res = cli("label", tmp_path / "set" / "images", "--teacher", "classical", "-o", out, *args)
    assert cfg.exists() and res.returncode == 2, res.stderr
    assert res.stderr.strip() == (
        f"error: {option[0]}: only the clip teacher reads it (--teacher classical) — drop it, or set "
        "--teacher clip:MODEL/PRETRAINED (the paper's: clip:ViT-B-16/openai)"
    )
    assert not out.exists()


@pytest.mark.parametrize("given", ["", " "])
def test_an_empty_out_dir_option_is_refused_as_the_configs(tmp_path, cli, monkeypatch, given):
    """**Was**: `attiqa train -c run.yaml --out-dir ''` read as `.` (a Path of ''), past the config's check of
    an empty out_dir: the run trained into the working folder (its config.json, finetune/ beside whatever was
    there). Now the same line as the config's, naming the option, and nothing written."""
    cfg = tiny_train_config(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    res = cli("train", "--config", cfg, "--out-dir", given)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == "error: --out-dir: empty — name the run's folder, e.g. runs/mine"
    assert not list(work.iterdir()) and not (tmp_path / "run").exists()


def test_label_accepts_the_same_prompts_from_another_file(tmp_path, tiny_dir):
    """**Was**: `attiqa label photos -t clip:FOLDER --prompts copy.json -o l.parquet` on a table labelled with
    `--prompts mine.json` refused as "other settings (other prompts_file)" though copy.json holds the same
    texts (another name, other comments) — the labels would be identical. Now accepted, the labels unchanged;
    other texts are still refused ("other prompts")."""
    import pyarrow.parquet as pq

    from attiqa.errors import AttiqaError
    from attiqa.labeling import label_images
    from attiqa.teachers.clip import ClipTeacher
    from attiqa.teachers.prompts import load_prompts

    images = sorted((tiny_train_config(tmp_path).parent / "set" / "images").glob("*.png"))
    mine = load_prompts().save(tmp_path / "mine.json")
    doc = json.loads(mine.read_text())
    doc["notes"] = "a colleague's copy"
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(doc))
    out = tmp_path / "l.parquet"
    label_images(images[:4], ClipTeacher(str(tiny_dir), prompts=mine), out, batch_size=2)
    first = pq.read_table(out).to_pylist()
    label_images(images, ClipTeacher(str(tiny_dir), prompts=copy), out, batch_size=2)
    table = pq.read_table(out).to_pylist()
    assert len(table) == len(images) and table[:4] == first
    swapped = load_prompts().swapped().save(tmp_path / "swapped.json")
    with pytest.raises(AttiqaError, match=r"other settings \(other prompts\)"):
        label_images(images, ClipTeacher(str(tiny_dir), prompts=swapped), out, batch_size=2)


def test_eval_of_a_live_model_on_its_other_target_is_its_training_fit(tmp_path, cli, layout, dataset_config):
    """**Was**: a model `attiqa train` fine-tuned on LIVE (`finetune.dataset: live`, target dmos) evaluated
    with `attiqa eval live --target dmos_realigned` got no training-fit note: LIVE reads a score file per
    target, and the rows' hash held the target's scores — yet the images are the ones it trained on. Now
    the hash of a dataset with a score file per target is of its images; another dataset: no note."""
    import scipy.io as sio

    root = layout(tmp_path, "live")
    mat = sio.loadmat(root / "dmos.mat")
    sio.savemat(root / "dmos_realigned.mat", {"dmos_new": mat["dmos"] * 0.9 + 1, "orgs": mat["orgs"]})
    assert cli("train", "--config", dataset_config(tmp_path, dataset="live", root=root)).returncode == 0
    ckpt = tmp_path / "run" / "finetune" / "last.safetensors"
    for target, data, noted in [("dmos_realigned", root, True), (None, layout(tmp_path, "kadid10k"), False)]:
        out = tmp_path / f"ev-{target}"
        name = "live" if target else "kadid10k"
        extra = ["--target", target] if target else []
        res = cli("eval", name, "--root", data, "-m", ckpt, "-o", out, "-w", "0", "-q", "--no-cache", *extra)
        assert res.returncode == 0, res.stderr
        warned = json.loads((out / "summary.json").read_text())["warnings"]
        assert any("training fit" in w for w in warned) == noted, warned
