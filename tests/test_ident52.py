"""What a CLIP teacher / scorer is: one rule for a label table's resume, `attiqa eval`'s score cache and
`attiqa score -o`'s record (session 52)."""

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
