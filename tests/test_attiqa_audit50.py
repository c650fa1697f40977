"""Session 50: the attiqa-side items session 49 noticed and left alone (docs/robustness.md where a user sees
them): progress counting of `degrade` / `make-distorted`, the teacher-settings message of `label`, the eval
"training fit" note by the data a model was fitted on, `train exiqa`'s checkpoint / state pair, and the
spelling of `attiqa train exiqa`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import resized
from test_train_audit49 import dataset_config, layout

from attiqa.distortions.graded import write_graded_set
from attiqa.distortions.multi import make_distorted_set
from attiqa.errors import AttiqaError
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
    """One call per source says whether an earlier run had made it (``kept``): made now on the first run, kept
    on the rerun (the calls were two branches each, ``on_item(1)`` and ``on_item(1, kept=True)``)."""
    srcs = _sources(tmp_path / "src", photos)
    for make in (
        lambda cb: write_graded_set(srcs, tmp_path / "g", ("gaussian_blur",), (1,), on_item=cb),
        lambda cb: make_distorted_set(srcs, tmp_path / "m", rounds=1, seed=0, on_item=cb),
    ):
        for kept_now in (False, True):
            calls: list[tuple[int, bool]] = []
            make(lambda n=1, kept=False, calls=calls: calls.append((n, kept)))
            assert calls == [(1, kept_now)] * len(srcs)


def test_label_says_which_clip_setting_changed(tmp_path, photos, tiny_dir):
    """`label` with other prompts names them by their hash ("other prompts"), not by their long texts; the
    same texts from another file name the file (the message of ``check_same_teacher``, written flat)."""
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
    copy = tmp_path / "copy.json"
    copy.write_bytes(paper_file.read_bytes())
    with pytest.raises(AttiqaError, match=r"other settings \(other prompts_file\)"):
        label_images(images, ClipTeacher(str(tiny_dir), prompts=copy), out, batch_size=2)


def test_eval_knows_a_models_training_rows_in_a_moved_copy_and_after_export(tmp_path, cli):
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
