"""The CLIP zero-shot paths (docs/robustness.md): `attiqa label -t clip:…` with local weights that do not
load, prompt files, `select-prompts`, run as a user runs them on a tiny random-weight open_clip folder (no
weights can be downloaded here). Each test failed before its fix."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from helpers import TINY_CFG
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photos(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (40 + 8 * i, 32), (40 * i, 90, 200 - 30 * i)).save(folder / f"p{i}.png")
    return folder


def _error_line(res, said_first: int = 0) -> str:
    """The command's one error line (exit 2), after ``said_first`` lines of its own (e.g. "teacher: …")."""
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == said_first + 1 and lines[-1].startswith("error: "), res.stderr
    return lines[-1]


def test_clip_weights_of_another_architecture_say_which_tensors_differ(tmp_path, tiny_dir, cli):
    """**Was**: `attiqa label photos -t clip:FOLDER` whose open_clip_config.json is not the weights' model:
    "cannot build CLIP model from FOLDER/open_clip_model.safetensors: Error(s) in loading state_dict for
    CLIP:" — open_clip's first line, ending in a colon, no fix; and `-t clip:ViT-B-16-quickgelu/FILE` with
    weights of another architecture: "…: text pos_embed width changed!". Now one line naming the file, a
    tensor that differs (shapes in the file and the model) and the fix."""
    photos = _photos(tmp_path / "photos")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    cfg = json.loads(json.dumps(TINY_CFG))
    cfg["model_cfg"]["embed_dim"] = 48  # the config of another model than the weights'
    (wrong / "open_clip_config.json").write_text(json.dumps(cfg))
    weights = wrong / "open_clip_model.safetensors"
    weights.write_bytes((tiny_dir / "open_clip_model.safetensors").read_bytes())
    line = _error_line(cli("label", photos, "-t", f"clip:{wrong}", "-o", tmp_path / "a.parquet"))
    assert f"error: {weights}: these weights do not fit the model of open_clip_config.json beside it" in line
    assert "text_projection: 64x32 in the file, 64x48 in the model" in line
    assert "put the open_clip_config.json these weights came with beside them" in line

    spec = f"clip:ViT-B-16-quickgelu/{tiny_dir / 'open_clip_model.safetensors'}"
    line = _error_line(cli("label", photos, "-t", spec, "-o", tmp_path / "b.parquet"))
    assert "these weights do not fit the architecture ViT-B-16-quickgelu (" in line
    assert "positional_embedding: 77x64 in the file, 77x512 in the model" in line
    assert "of the model missing, e.g. visual." in line
    assert "name the architecture they were trained as (open_clip.list_models()" in line
    assert not (tmp_path / "a.parquet").exists() and not (tmp_path / "b.parquet").exists()


class _Payload:
    target = ""

    def __reduce__(self):
        return (Path.touch, (Path(_Payload.target),))


def test_damaged_or_pickled_clip_weights_say_what_is_wrong_and_never_advise_unpickling(
    tmp_path, tiny_dir, cli
):
    """**Was**: a `.bin` weights file cut short (an interrupted download): "cannot be read as plain tensors
    with weights_only=True (PytorchStreamReader failed … This is an internal miniz error …) — convert it to
    safetensors" — converting a damaged file cannot work; a cut safetensors file: "not a readable
    safetensors file (…)", no fix; a pickle holding code: torch's UserWarning and its source line above the
    error, whose reason (with terminal escape codes in it) began "… Re-running `torch.load` with
    `weights_only` set to `False` will likely succeed" — advice to run the code. Now one line each:
    damaged → "copy or download it again"; a pickle → what the unpickler refused, the code never run."""
    photos = _photos(tmp_path / "photos")
    state = (tiny_dir / "open_clip_model.safetensors").read_bytes()

    def folder(name: str, weights_name: str, data: bytes) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "open_clip_config.json").write_text(json.dumps(TINY_CFG))
        (d / weights_name).write_bytes(data)
        return d

    cut = folder("cut", "open_clip_model.safetensors", state[: len(state) // 2])
    line = _error_line(cli("label", photos, "-t", f"clip:{cut}", "-o", tmp_path / "l.parquet"))
    assert "open_clip_model.safetensors: not a readable safetensors file (" in line
    assert "cut short (an interrupted download or copy?) or not safetensors: copy or download it again" in (
        line
    )

    whole = tmp_path / "whole.bin"
    from safetensors.torch import load_file

    torch.save(load_file(str(tiny_dir / "open_clip_model.safetensors")), whole)
    data = whole.read_bytes()
    cut_bin = folder("cutbin", "open_clip_pytorch_model.bin", data[: len(data) // 2])
    line = _error_line(cli("label", photos, "-t", f"clip:{cut_bin}", "-o", tmp_path / "l.parquet"))
    assert "open_clip_pytorch_model.bin: damaged or cut short (PytorchStreamReader failed" in line
    assert line.endswith("— copy or download it again") and "convert it" not in line

    _Payload.target = str(tmp_path / "pwned")
    evil = tmp_path / "evil.bin"
    torch.save({"state_dict": _Payload()}, evil)
    evil_dir = folder("evil", "open_clip_pytorch_model.bin", evil.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning torch prints is not part of the one line
        line = _error_line(cli("label", photos, "-t", f"clip:{evil_dir}", "-o", tmp_path / "l.parquet"))
    assert "cannot be read as plain tensors with weights_only=True (it holds Python objects, not only" in line
    assert "Unsupported global: GLOBAL " in line and "\x1b" not in line  # torch's bold: escape codes
    assert "weights_only` set to `False`" not in line and "Re-running" not in line
    assert not (tmp_path / "pwned").exists()


def test_a_prompt_pair_of_one_prompt_is_refused(tmp_path, tiny_dir, cli):
    """**Was**: `attiqa label photos -t clip:FOLDER --prompts mine.json` where mine.json gives sharpness the
    same positive and negative prompt (or the same words in another case: CLIP's tokenizer lowercases) —
    every photo labelled 0.500000 on sharpness without a word, a column pretraining learns nothing from;
    and `select-prompts --candidates` with an adjective in both lists of an attribute offered that pair
    (its SROCC 0) among the candidates. Now one line naming the file and the attribute, before the model
    loads."""
    photos = _photos(tmp_path / "photos")
    from attiqa.teachers.prompts import default_prompts_path

    doc = json.loads(default_prompts_path().read_text())
    for name, negative in (("same", "Splendid image"), ("case", "splendid  Image")):
        doc["attributes"]["sharpness"] = {"positive": "Splendid image", "negative": negative}
        mine = tmp_path / f"{name}.json"
        mine.write_text(json.dumps(doc))
        out = tmp_path / f"{name}.parquet"
        line = _error_line(cli("label", photos, "-t", f"clip:{tiny_dir}", "--prompts", mine, "-o", out))
        assert f"error: {mine}: attributes.sharpness: positive and negative are the same prompt (" in line
        assert "every image would score 0.5 on sharpness: give two opposite prompts" in line
        assert not out.exists()
    assert "one prompt to CLIP, which ignores case" in line

    cands = tmp_path / "cands.json"
    cands.write_text(
        json.dumps(
            {"attributes": {"sharpness": {"positive": ["sharp", "crisp"], "negative": ["blurry", "Sharp"]}}}
        )
    )
    out = tmp_path / "sel"
    res = cli("select-prompts", "-t", f"clip:{tiny_dir}", "-i", photos, "--candidates", cands, "-o", out)
    line = _error_line(res)
    assert f"{cands}: attributes.sharpness: 'sharp' and 'Sharp' (one prompt to CLIP" in line
    assert "in both the positive and the negative list" in line and not out.exists()


def _copy_of(clip_dir: Path, folder: Path) -> tuple[Path, Path]:
    """A copy of an open_clip folder (its weights to replace in place): (folder, weights file)."""
    folder.mkdir()
    (folder / "open_clip_config.json").write_text((clip_dir / "open_clip_config.json").read_text())
    weights = folder / "open_clip_model.safetensors"
    weights.write_bytes((clip_dir / "open_clip_model.safetensors").read_bytes())
    return folder, weights


def _one_photo(folder: Path, photos: dict[str, Image.Image]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    photos["astronaut"].resize((128, 128), Image.BICUBIC).save(folder / "astronaut.png")
    return folder


def test_select_prompts_says_when_the_best_pair_does_not_rise_or_is_tied(tmp_path, photos, tiny_dir, cli):
    """**Was**: `attiqa select-prompts -t clip:FOLDER -i photos --candidates c.json` wrote prompts.json with
    the best pair of each attribute without a word when that pair's SROCC was -1.000 (its labels rank
    photos backwards) and when several pairs shared the best value (the first in the candidates' order is
    taken — 59 of Table 14's sharpness pairs tie at +1.000 on one photo), and said "(1 photos, …)". §3.3
    takes the pair of highest SROCC, and still does; now a line says each, and the count reads "1 photo"."""
    folder = _one_photo(tmp_path / "photos", photos)
    base = ["select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "--work-size", "64"]
    # the tiny random CLIP: "sharp" against "blurry" and "dim" both at +1 on this photo, "harmonious"
    # against "streaked" at -1 (summary.csv says so)
    cands = tmp_path / "c.json"
    chosen = {}
    for name, negatives in (("ab", ["blurry", "dim"]), ("ba", ["dim", "blurry"])):
        cands.write_text(
            json.dumps({"attributes": {"sharpness": {"positive": ["sharp"], "negative": negatives}}})
        )
        res = cli(*base, "--candidates", cands, "-o", tmp_path / name)
        assert res.returncode == 0, res.stderr
        said = " ".join((res.stdout + res.stderr).split())
        first = negatives[0]
        assert (
            "sharpness: 2 pairs tie at the best joint SROCC (+1.000); the first in the candidates' order is "
            f"taken (sharp / {first}) — more photos" in said
        )
        assert "(1 photo, 0 rated images)" in said and "no candidate pair" not in said
        chosen[name] = json.loads((tmp_path / name / "prompts.json").read_text())["attributes"]["sharpness"]
    assert chosen == {
        "ab": {"positive": "Sharp image", "negative": "Blurry image"},
        "ba": {"positive": "Sharp image", "negative": "Dim image"},
    }

    cands.write_text(
        json.dumps({"attributes": {"sharpness": {"positive": ["harmonious"], "negative": ["streaked"]}}})
    )
    res = cli(*base, "--candidates", cands, "-o", tmp_path / "neg")
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert (
        "sharpness: no candidate pair's score rises with sharpness (best joint SROCC -1.000, harmonious / "
        "streaked): its labels would rank photos backwards — select on more or other photos" in said
    )
    assert "tie" not in said


def test_label_knows_a_clip_by_its_weights_not_by_the_path_that_named_it(
    tmp_path, tiny_dir, cli, monkeypatch
):
    """**Was**: `attiqa label photos -t clip:tiny -o l.parquet`, then the same labels continued with
    `-t clip:/abs/tiny/` (or `clip:tiny/open_clip_model.safetensors`, or from another folder): refused as
    "other settings (spec 'tiny', now '/abs/tiny/'; other weights; model …)" though the weights are the same
    file; and a folder whose weights were replaced (a new download under the old name) labelled on into the
    same table without a word — two models' labels in one table. Now the teacher is known by the weights'
    SHA-256, the architecture and the preprocessing: the first goes on, the second is one line."""
    import pyarrow.parquet as pq
    from safetensors.torch import load_file, save_file

    photos = _photos(tmp_path / "photos", n=3)
    first = tmp_path / "first"
    first.mkdir()
    (photos / "p0.png").rename(first / "p0.png")
    out = tmp_path / "l.parquet"
    monkeypatch.chdir(tiny_dir.parent)
    assert cli("label", first, "-t", f"clip:{tiny_dir.name}", "-o", out).returncode == 0
    before = pq.read_table(out).to_pandas()
    res = cli("label", first, photos, "-t", f"clip:{tiny_dir / 'open_clip_model.safetensors'}", "-o", out)
    assert res.returncode == 0, res.stderr
    after = pq.read_table(out).to_pandas().set_index("image")
    assert len(after) == 3
    assert after.loc[before["image"][0]].tolist() == before.drop(columns="image").iloc[0].tolist()

    mine, weights = _copy_of(tiny_dir, tmp_path / "mine")
    out2 = tmp_path / "l2.parquet"
    assert cli("label", first, "-t", f"clip:{mine}", "-o", out2).returncode == 0
    state = load_file(str(weights))
    state["visual.proj"] = state["visual.proj"] * 2  # other weights under the same name
    save_file(state, str(weights))
    line = _error_line(cli("label", first, photos, "-t", f"clip:{mine}", "-o", out2), said_first=1)
    assert f"error: {out2}: was labelled by the clip teacher with other settings (other weights) — " in line
    assert pq.read_table(out2).num_rows == 1


def test_a_label_table_of_an_earlier_version_resumes_with_the_same_clip(tmp_path, tiny_dir, cli):
    """A table written before the teacher recorded its weights' SHA-256 (session 50 and earlier) goes on
    with the same spec, compared as it was then (checked: refused as "other weights; other architecture;
    preprocess None, now {…}" by the first cut of the change above). **Was** too: "labels: l.parquet
    (1 images)" at the end of `attiqa label` of one photo; now "(1 image)"."""
    import pyarrow.parquet as pq

    photos = _photos(tmp_path / "photos", n=2)
    first = tmp_path / "first"
    first.mkdir()
    (photos / "p0.png").rename(first / "p0.png")
    out = tmp_path / "l.parquet"
    res = cli("label", first, "-t", f"clip:{tiny_dir}", "-o", out)
    assert res.returncode == 0
    assert f"labels: {out} (1 image)" in " ".join((res.stdout + res.stderr).split())  # was "(1 images)"
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"attiqa_labels"])
    for key in ("weights_sha256", "architecture_sha256", "preprocess"):
        del meta["teacher"][key]
    pq.write_table(table.replace_schema_metadata({b"attiqa_labels": json.dumps(meta).encode()}), out)
    res = cli("label", first, photos, "-t", f"clip:{tiny_dir}", "-o", out)
    assert res.returncode == 0, res.stderr
    assert pq.read_table(out).num_rows == 2


def test_a_clip_scorer_whose_weights_were_replaced_is_not_its_old_self(tmp_path, tiny_dir, cli, monkeypatch):
    """**Was**: `attiqa score photos -m clipiqa:mine -o s.csv`, the weights in mine/ replaced (a new download
    under the old name), then the same command with more photos: the new photos scored with the new
    weights and appended to the old ones' rows without a word; and `attiqa eval folder … -m clipiqa:mine`
    answered from its score cache with the old weights' scores (the scorer was known by its spec and
    path). Now a CLIP scorer is known by its weights' SHA-256 too: `score` refuses the file in one line,
    `eval` scores again; another spelling of the same weights resumes. **Was** too: `-m
    clipiqa:FOLDER/open_clip_model.safetensors` (the weights file in the folder, a form `clip:` takes) read
    as an ATTIQA checkpoint of that name: "checkpoint not found"."""
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path / "cache"))
    photos = _photos(tmp_path / "photos", n=4)
    (photos / "mos.csv").write_text("image,mos\n" + "".join(f"p{i}.png,{10 * i + 5}\n" for i in range(4)))
    mine, weights = _copy_of(tiny_dir, tmp_path / "mine")
    out = tmp_path / "s.csv"
    assert cli("score", photos / "p0.png", "-m", f"clipiqa:{mine}", "-o", out).returncode == 0
    ev = ["eval", "folder", "--root", photos, "-m", f"clipiqa:{mine}"]
    assert cli(*ev, "-o", tmp_path / "e1").returncode == 0
    # another spelling of the same weights goes on with the file
    res = cli("score", photos / "p0.png", photos / "p1.png", "-m", f"clipiqa:{weights}", "-o", out)
    assert res.returncode == 0, res.stderr
    assert len(out.read_text().splitlines()) == 3

    state = load_file(str(weights))
    state["visual.proj"] = -state["visual.proj"]  # other weights under the same name
    save_file(state, str(weights))
    line = _error_line(cli("score", photos, "-m", f"clipiqa:{mine}", "-o", out))
    # (the record names the last spelling, the weights file: "holds scores of clipiqa:…/mine/open_clip_…")
    assert f"error: {out}: holds scores of clipiqa:{weights}" in line
    assert f"not of clipiqa:{mine}: the weights changed (SHA-256 " in line  # session 52: was "not of …" alone
    assert line.endswith(" now) — choose another --out, or delete it to score again")
    assert len(out.read_text().splitlines()) == 3
    assert cli(*ev, "-o", tmp_path / "e2").returncode == 0
    first, second = ((tmp_path / e / "predictions.csv").read_text() for e in ("e1", "e2"))
    assert first != second  # scored again with the new weights, not read from the cache


def test_prompt_files_that_are_a_folder_yaml_or_an_image_say_what_to_pass(tmp_path, photos, tiny_dir, cli):
    """**Was**: `attiqa label photos -t clip:FOLDER --prompts sel` where sel/ is the --out folder of
    `select-prompts` (its prompts.json inside): "sel: cannot read prompts file ([Errno 21] Is a directory:
    'sel')"; a prompts file written as YAML: "not valid JSON (line 1: Expecting value)"; a photo given by
    mistake: "cannot read prompts file ('utf-8' codec can't decode byte 0x89 …)" — none with the fix (the
    same for `select-prompts --candidates` / `--proxies`). Now each names what to pass."""
    folder = _one_photo(tmp_path / "photos", photos)
    sel = tmp_path / "sel"
    res = cli("select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "--work-size", "64", "-o", sel)
    assert res.returncode == 0, res.stderr
    yaml = tmp_path / "mine.yaml"
    yaml.write_text("attributes:\n  sharpness:\n    positive: Sharp image\n")
    image = folder / "astronaut.png"
    label = ["label", folder, "-t", f"clip:{tiny_dir}", "-o", tmp_path / "l.parquet", "--prompts"]
    said = {what: _error_line(cli(*label, what)) for what in (sel, yaml, image)}
    assert (
        said[sel]
        == f"error: {sel}: a folder, not a prompts file — pass the file in it: {sel / 'prompts.json'}"
    )
    assert said[yaml].startswith(
        f"error: {yaml}: not valid JSON (line 1: Expecting value) — prompts files are JSON"
    )
    assert said[image].startswith(
        f"error: {image}: not a text file (not UTF-8) — prompts files are JSON, like "
    )
    assert said[image].endswith("attiqa_table1.json")
    sp = ["select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "-o", tmp_path / "s2"]
    line = _error_line(cli(*sp, "--candidates", image))
    assert "(not UTF-8) — prompt-candidates files are JSON, like " in line
    assert line.endswith("attiqa_table14_candidates.json")
    assert _error_line(cli(*sp, "--proxies", yaml)).endswith("proxy_distortions.json")
    assert not (tmp_path / "l.parquet").exists() and not (tmp_path / "s2").exists()


@pytest.mark.parametrize("scale", ["0", "-1", "nan", "inf"])
def test_label_refuses_a_clip_scale_that_is_not_a_positive_number(tmp_path, tiny_dir, cli, scale):
    """**Was**: `attiqa label photos -t clip:FOLDER --clip-scale 0` (or -1, nan, inf): the photos found, the
    model loaded, then the teacher's "ValueError: clip scale must be a finite number > 0" as a traceback (a
    config's `clip_scale: 0` was refused when read). Now the option's own error, before anything loads."""
    photos = _photos(tmp_path / "photos", n=1)
    out = tmp_path / "l.parquet"
    res = cli("label", photos, "-t", f"clip:{tiny_dir}", "--clip-scale", scale, "-o", out)
    assert res.returncode == 2
    said = " ".join(res.stderr.split())
    assert (
        "invalid value for '--clip-scale':" in said
        and "is not a scale of cosines — give a number > 0" in said
    )
    assert "Traceback" not in said and not out.exists()


def test_select_prompts_without_a_proxy_task_stops_before_the_model_loads(tmp_path, tiny_dir, cli):
    """**Was**: `attiqa select-prompts -t clip:FOLDER --no-distortion-task -o sel` (no --spaq): the model
    loaded, every Table 14 prompt encoded and `sel/cache/` written, then "nothing to select on: give photos
    for the distortion task and/or SPAQ …" (neither option named), the folder left behind; and
    `--select-by distortion --no-distortion-task --spaq ROOT` ran the SPAQ task to the end before "that task
    did not run". Now one line naming the options, before anything loads or is written."""
    out = tmp_path / "sel"
    line = _error_line(cli("select-prompts", "-t", f"clip:{tiny_dir}", "--no-distortion-task", "-o", out))
    assert line == (
        "error: --no-distortion-task leaves no proxy task to select by — give --spaq ROOT (the "
        "human-perception task, §3.3), or drop --no-distortion-task"
    )
    args = ["--no-distortion-task", "--select-by", "distortion", "--spaq", tmp_path / "nowhere"]
    line = _error_line(cli("select-prompts", "-t", f"clip:{tiny_dir}", *args, "-o", out))
    assert line == "error: --select-by distortion needs the distortion task — drop --no-distortion-task"
    assert not out.exists()


def test_select_prompts_out_that_is_a_file_is_one_line_before_the_model_loads(
    tmp_path, photos, tiny_dir, cli
):
    """**Was**: `attiqa select-prompts -t clip:FOLDER -i photos -o notes.txt` (an existing file): photos read,
    the model loaded and its prompts encoded, then "notes.txt/cache: Not a directory — check the path (a file
    where a folder should be?) …". Now the `--out` check every folder-writing command makes, first."""
    folder = _one_photo(tmp_path / "photos", photos)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    line = _error_line(cli("select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "-o", notes))
    assert line == (
        f"error: {notes}: cannot create the output folder ({notes} is a file, not a folder) — "
        "choose another --out"
    )
    assert notes.read_text() == "mine"
