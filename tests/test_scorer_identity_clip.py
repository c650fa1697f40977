"""What a CLIP teacher / scorer is: one rule for a label table's resume, `attiqa eval`'s score cache and
`attiqa score -o`'s record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from attiqa.errors import AttiqaError
from attiqa.evaluation.cache import score_cache_key
from attiqa.labeling import label_images
from attiqa.scorers import create_scorer
from attiqa.teachers.prompts import load_prompts


def _photos(folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"p{i}.png"
        Image.new("RGB", (40 + 8 * i, 32), (40 * i, 90, 200 - 30 * i)).save(path)
        out.append(path)
    return out


def _copy_of(clip_dir: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        (folder / name).write_bytes((clip_dir / name).read_bytes())
    return folder


def test_a_label_table_and_score_o_know_a_clip_teacher_by_one_rule(tmp_path, tiny_dir):
    """**Was**: two lists of what names a CLIP model rather than being it — labeling's own and
    ``without_spellings`` (eval's cache key, score -o's record) — and they differed: the same prompt texts
    from a file with other notes (or another name) resumed a label table but were another scorer to `eval`'s
    cache (scored again) and to `score -o` (its file refused). Now labeling uses ``without_spellings``: for
    each teacher below, the label table resumes exactly when the scorer's key is the same."""
    from safetensors.torch import load_file, save_file

    paper = load_prompts()
    prompts = paper.save(tmp_path / "paper.json")
    doc = json.loads(prompts.read_text())
    doc.update(name="mine", notes="the same texts, other words around them")
    noted = tmp_path / "noted.json"
    noted.write_text(json.dumps(doc))
    mine = _copy_of(tiny_dir, tmp_path / "mine")
    replaced = _copy_of(tiny_dir, tmp_path / "replaced")
    state = load_file(str(replaced / "open_clip_model.safetensors"))
    state["visual.proj"] = state["visual.proj"] * 2  # other weights
    save_file(state, str(replaced / "open_clip_model.safetensors"))

    def scorer(spec: Path, prompt_file: Path = prompts):
        return create_scorer(f"attiqa-zeroshot:{spec}", prompts=prompt_file)

    first = scorer(tiny_dir)
    images = _photos(tmp_path / "photos", n=3)
    out = tmp_path / "l.parquet"
    label_images(images[:1], first.teacher, out, num_workers=0)
    cases = {
        "the weights file in the folder": (scorer(tiny_dir / "open_clip_model.safetensors"), True),
        "a copy of the folder": (scorer(mine), True),
        "the same texts in a file with other notes": (scorer(tiny_dir, noted), True),
        "other weights": (scorer(replaced), False),
    }
    for i, (case, (other, same)) in enumerate(cases.items()):
        assert (score_cache_key(other)[0] == score_cache_key(first)[0]) is same, case
        if same:
            done = label_images(images[: 2 + (i % 2)], other.teacher, out, num_workers=0)
            assert done.labelled <= 1, case
        else:
            with pytest.raises(AttiqaError) as err:
                label_images(images, other.teacher, out, num_workers=0)
            assert str(err.value) == (
                f"{out}: was labelled by the clip teacher with other settings (other weights) — choose "
                "another --out, or delete it to label with these"
            ), case


def test_score_o_says_a_copy_under_another_card_is_not_other_weights(tmp_path, cli):
    """**Was**: `attiqa score a.png -o s.csv` (the default model), then `attiqa export attiqa-default
    mine.safetensors --name mine` and `attiqa score a.png b.png -m mine.safetensors -o s.csv`: "holds scores
    of attiqa-default, not of mine.safetensors: the weights changed (SHA-256 … then, … now)" — the file's
    hash changed with its card (and the BatchNorm statistics the shipped file keeps as fp16 are fp32 in the
    copy, the same values). Now the record keeps the tensors' values by their hash too and says the card
    changed; a copy whose weights differ still says the weights changed."""
    from attiqa.io.checkpoints import load_checkpoint, save_checkpoint

    a, b = _photos(tmp_path / "photos")
    out = tmp_path / "s.csv"
    assert cli("score", a, "-o", out).returncode == 0
    mine = tmp_path / "mine.safetensors"
    assert cli("export", "attiqa-default", mine, "--name", "mine").returncode == 0
    res = cli("score", a, b, "-m", mine, "-o", out)
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "not of " in said
    assert f"{mine} (crops five): the card changed, not the weights (the file's SHA-256 " in said
    assert "the weights changed" not in said
    assert len(out.read_text().splitlines()) == 2  # the file as it was

    tensors, card = load_checkpoint(mine)
    first = sorted(k for k in tensors if k.endswith(".weight"))[0]
    tensors[first] = tensors[first] * 1.5  # other weights, the same card
    other = save_checkpoint(tmp_path / "other.safetensors", tensors, card, half=True)
    said = " ".join(cli("score", a, b, "-m", other, "-o", out).stderr.split())
    assert f"{other} (crops five): the weights changed (SHA-256 " in said


def test_a_card_beside_a_checkpoint_without_one_is_part_of_its_identity(tmp_path, cli, monkeypatch):
    """**Was**: a checkpoint whose header holds no card is read with the ``.json`` beside it; after that card
    was edited in place (the test view's ``test_resize_shorter`` 500 -> 400) `attiqa eval` answered from its
    score cache with the old view's scores ("0 scored, 4 from cache"; 28.71 where the new view gives 32.18)
    and `attiqa score -o` resumed the file (both keyed on the weights file's hash, which the edit leaves).
    Now the card beside such a file is hashed into the key and the record: scored again, refused naming
    the card."""
    import numpy as np

    from attiqa.io.checkpoints import load_checkpoint, save_safetensors
    from attiqa.scorers.zoo import resolve_weights

    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "set"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # texture: the view's size changes the scores
        Image.fromarray((rng.random((80, 96, 3)) * 255).astype("uint8")).save(root / f"p{i}.png")
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"p{i}.png,{10 * i + 5}\n" for i in range(4)))
    tensors, card = load_checkpoint(resolve_weights("attiqa-default"))
    ckpt = tmp_path / "m.safetensors"
    save_safetensors({k: v.contiguous() for k, v in tensors.items()}, ckpt, {})  # no card in its header
    side = tmp_path / "m.json"
    side.write_text(json.dumps(card))

    def evaluate(out: str, *more: str) -> list[str]:
        res = cli("eval", "folder", "--root", root, "-m", ckpt, "-o", tmp_path / out, *more)
        assert res.returncode == 0, res.stderr
        return (tmp_path / out / "predictions.csv").read_text().splitlines()

    out = tmp_path / "s.csv"
    assert cli("score", root / "p0.png", "-m", ckpt, "-o", out).returncode == 0
    first = evaluate("e1")
    card["model"]["test_resize_shorter"] = 400
    side.write_text(json.dumps(card))
    again, fresh = evaluate("e2"), evaluate("e3", "--no-cache")
    assert again == fresh and again != first
    said = " ".join(cli("score", root / "p0.png", root / "p1.png", "-m", ckpt, "-o", out).stderr.split())
    assert f"{out}: holds scores of {ckpt} as it was before its card changed (SHA-256 " in said
    assert len(out.read_text().splitlines()) == 2
