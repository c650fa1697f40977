"""`attiqa` and `genbench` (docs/robustness.md): what a user's own files did before their fix. Every fixture
is generated here; each test failed before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, features
from typer.testing import CliRunner

import attiqa
from attiqa.cli.app import app
from attiqa.errors import AttiqaError

runner = CliRunner()

# a HEIC file as an iPhone writes it begins with this ISO-BMFF box; this Pillow has no HEIF decoder
HEIC_START = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x00\x08free"


def _photo(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, 64 * 48 * 3).reshape(48, 64, 3)
    return Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))


def test_a_folder_search_finds_jfif_avif_jpeg2000_and_lists_heic(tmp_path):
    """**Was**: a folder search took only .jpg .jpeg .png .bmp .tif .tiff .webp .gif .ppm .pgm .pnm, so a
    browser's `.jfif` / `.jpe` download, an `.avif` or a JPEG 2000 file — each one Pillow reads, and each
    scored when named on the command line — was left out of `attiqa score photos/` without a word, and an
    iPhone's `.heic` photos too (a folder of them: "no images found"). Now every format this Pillow
    reads is searched, and a HEIC / HEIF photo is listed as skipped with the fix (convert it)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(0).save(photos / "a.jpg")
    _photo(1).save(photos / "b.jfif", format="JPEG")
    _photo(2).save(photos / "c.jpe", format="JPEG")
    readable = ["a.jpg", "b.jfif", "c.jpe"]
    if features.check("jpg_2000"):
        _photo(3).save(photos / "d.jp2")
        readable.append("d.jp2")
    if features.check("avif"):
        _photo(4).save(photos / "e.avif")
        readable.append("e.avif")
    (photos / "IMG_0001.HEIC").write_bytes(HEIC_START)
    (photos / "notes.txt").write_text("not searched")
    out = tmp_path / "s.csv"
    res = runner.invoke(app, ["score", str(photos), "-m", "classical", "-o", str(out)])
    assert res.exit_code == 0, res.output
    scored = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert scored == [str(photos / name) for name in readable]
    said = " ".join(res.output.split())
    assert (
        f"{photos / 'IMG_0001.HEIC'}: a HEIC / HEIF image, which this installation cannot decode — "
        "convert it to JPEG or PNG (e.g. heif-convert IMG.heic IMG.jpg), or leave it out" in said
    )
    assert "notes.txt" not in said
    (photos / "a.jpg").unlink()
    for name in readable[1:]:
        (photos / name).unlink()
    res = runner.invoke(app, ["score", str(photos), "-m", "classical"])  # only HEIC: listed, not "no images"
    assert isinstance(res.exception, AttiqaError) and str(res.exception) == "no image could be scored"
    assert "IMG_0001.HEIC: a HEIC / HEIF image" in " ".join(res.output.split())


def test_a_camera_raw_is_said_to_be_a_raw_with_how_to_develop_it(tmp_path):
    """**Was**: a DNG (or any camera raw) among the photos was "not a recognised image format — the file is
    damaged or not really an image: re-export or re-download it", and a folder of raws "no images found …
    pass image files or folders": neither says why, and the first fix is wrong; a NEF named on the command
    line was scored as its TIFF thumbnail (Pillow reads a NEF's first IFD). Now each is named a camera raw
    with how to develop it, before decoding, and a folder of raws says it holds only raws."""
    from isp_env.dng import write_dng

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(0).save(photos / "a.jpg")
    rng = np.random.default_rng(0)
    write_dng(photos / "IMG_1.dng", rng.integers(0, 1024, (32, 48)).astype(np.uint16))
    nef = tmp_path / "DSC_0001.NEF"
    _photo(1).resize((40, 30)).save(nef, format="TIFF")  # a NEF's first IFD: an RGB thumbnail
    fix = "develop it to JPEG, PNG or TIFF first (`isp-tune render RAW -o out.png`, or any raw converter)"
    out = tmp_path / "s.csv"
    res = runner.invoke(
        app, ["score", str(photos), str(photos / "IMG_1.dng"), str(nef), "-m", "classical", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == [str(photos / "a.jpg")]
    said = " ".join(res.output.split())
    for raw, suffix in ((photos / "IMG_1.dng", ".dng"), (nef, ".NEF")):
        assert f"{raw}: a camera raw ({suffix}), not a rendered image — {fix}, or leave it out" in said
    (photos / "mos.csv").write_text("image,mos\na.jpg,1\nIMG_1.dng,2\n")  # eval's check before scoring
    res = runner.invoke(
        app, ["eval", "folder", "--root", str(photos), "-m", "classical", "-o", str(tmp_path / "e")]
    )
    assert isinstance(res.exception, AttiqaError), res.output
    assert f"IMG_1.dng: a camera raw (.dng), not a rendered image — {fix}" in str(res.exception)
    (photos / "a.jpg").unlink()
    for cmd in (
        ["score", str(photos), "-m", "classical"],
        ["degrade", str(photos), "-o", str(tmp_path / "g")],
    ):
        res = runner.invoke(app, cmd)
        assert isinstance(res.exception, AttiqaError), res.output
        assert str(res.exception) == (
            f"no images found in {photos}, only 1 camera raw(s) (e.g. IMG_1.dng) — "
            + fix.replace("develop it", "develop them")
        )


def test_check_attributes_skips_an_unreadable_photo_of_a_folder(tmp_path):
    """**Was**: `attiqa check-attributes photos/` stopped at the first unreadable file of the folder (a
    truncated JPEG: "error: …/cut.jpg: cannot decode image …"), the other photos unchecked — unlike
    `score`, `label` and `select-prompts`, which skip it and list it. Now it is listed with its fix and
    the rest are checked; a folder with no readable photo is one line."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _photo(i).resize((160, 120)).save(photos / f"p{i}.jpg", quality=95)
    data = (photos / "p0.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(data[: len(data) // 2])
    res = runner.invoke(app, ["check-attributes", str(photos)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert f"skipped: {photos / 'cut.jpg'}: cannot decode image" in said
    assert "attribute heads vs graded degradation (2 photos)" in said
    for i in range(2):
        (photos / f"p{i}.jpg").unlink()
    res = runner.invoke(app, ["check-attributes", str(photos)])
    assert isinstance(res.exception, AttiqaError)
    assert str(res.exception) == f"no readable photos in {photos} — pass image files or folders"


def test_a_users_score_csv_with_other_column_names_or_a_mistyped_root(tmp_path):
    """**Was**: `attiqa eval folder` (and `train`'s `finetune.csv`) on a user's own CSV headed
    `filename,score` said "missing column 'image' (found: filename, score) — is this the official score
    file?" — there is no official file of one's own photos, and the fix (the header's names) unsaid; and a
    mistyped `--root` said "ROOT/mos.csv: score CSV not found", as if the folder were there. Now the fix
    names the columns, and a missing root is said as such (as the other adapters say it)."""
    from attiqa.training.data import read_mos_csv

    root = tmp_path / "shots"
    (root / "images").mkdir(parents=True)
    for i in range(3):
        _photo(i).save(root / "images" / f"p{i}.png")
    for header, missing in (("filename,score", "image"), ("image,score", "mos")):
        csv = root / "mos.csv"
        csv.write_text(header + "\n" + "".join(f"images/p{i}.png,{i + 1}\n" for i in range(3)))
        res = runner.invoke(
            app, ["eval", "folder", "--root", str(root), "-m", "classical", "-o", str(tmp_path / "ev")]
        )
        found = ", ".join(header.split(","))
        fix = "name the columns image,mos[,split] in its header (any case)"
        want = f"{csv}: missing column '{missing}' (found: {found}) — {fix}"
        assert isinstance(res.exception, AttiqaError) and str(res.exception).startswith(want)
        if missing == "mos":  # the adapter also names the number column as a target (session 54)
            assert str(res.exception) == f"{want}; or keep it and name it: --target score (a run config: " + (
                "finetune.target: score) — its number columns: score"
            )
        with pytest.raises(AttiqaError) as err:
            read_mos_csv(csv)
        assert str(err.value) == want
    res = runner.invoke(app, ["eval", "folder", "--root", str(tmp_path / "shtos"), "-m", "classical"])
    assert isinstance(res.exception, AttiqaError)
    assert str(res.exception).startswith(f"{tmp_path / 'shtos'}: dataset root not found — folder expects:")


def test_export_takes_a_named_model(tmp_path):
    """**Was**: `attiqa export attiqa-default mine.safetensors` said "attiqa-default: checkpoint not found —
    check the path or use a model name from `attiqa models`" — a model name was what it had been given.
    Now a named model's shipped file is exported (the card records the name, not this machine's install
    path) and scores as the model does; a weight-free scorer or a typo is one line saying which."""
    out = tmp_path / "mine.safetensors"
    res = runner.invoke(app, ["export", "attiqa-default", str(out), "--name", "mine"])
    assert res.exit_code == 0, res.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert (card["name"], card["exported_from"]) == ("mine", "attiqa-default")
    photo = tmp_path / "p.png"
    _photo(0).resize((128, 96)).save(photo)
    ours, shipped = (attiqa.load_scorer(m)(str(photo))["mos"] for m in (str(out), "attiqa-default"))
    assert abs(ours - shipped) < 1e-3  # the shipped file is fp16 already: the same weights
    for name, said in (
        ("attiqa-defualt", "unknown model name 'attiqa-defualt' (did you mean 'attiqa-default'"),
        ("classical", "'classical' is a scorer without a checkpoint of its own (named models with one: "),
    ):
        res = runner.invoke(app, ["export", name, str(tmp_path / "x.safetensors")])
        assert isinstance(res.exception, AttiqaError) and str(res.exception).startswith(said)
    assert not (tmp_path / "x.safetensors").exists()


def test_genbench_score_without_metrics_runs_what_needs_no_argument(tmp_path, monkeypatch):
    """**Was**: `genbench score RUN` (no `--metrics`: "every scorer in `attiqa models`") tried
    `temu-layer` and `exiqa` too, and every run listed them as skipped ("temu-layer needs a layer",
    "exiqa needs a checkpoint") — they cannot run under their bare names; and an offline CLIP scorer was
    skipped with "pass a local path: --model clipiqa:…", an option `genbench score` does not have. Now the
    default leaves out what needs an argument, and the hint is `-m clipiqa:…`, which every command takes."""
    from genbench.cli import app as genbench_app
    from genbench.manifest import write_manifest

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the CLIP scorers fail at once, as on an offline machine
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    for i in range(2):
        _photo(i).save(run / "images" / f"p{i}.png")
    write_manifest(run, [{"pair_id": "0", "image_a": "images/p0.png", "image_b": "images/p1.png"}])
    res = runner.invoke(genbench_app, ["score", str(run), "-w", "0"])
    said = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "classical: 2 scored" in said and "attiqa-default: 2 scored" in said
    assert "temu-layer" not in said and "exiqa" not in said
    assert "skipped clipiqa:" in said and "-m clipiqa:RN50-quickgelu/" in said and "--model" not in said


def test_a_resumed_score_run_draws_its_sheet_from_the_whole_file(tmp_path):
    """**Was**: `attiqa score photos/ -o s.csv --sheet s.png` after an interrupted run drew only the images
    this run scored (28 of clive-dev's first 30 after a stop at 2), and when every image was already in
    s.csv no sheet at all, without a word — while printing an empty table ("0 image(s) scored" and a lone
    `image` header). Now the sheet is the file's images in the input order (the same pixels as an
    uninterrupted run's sheet), and a resume with nothing left prints no empty table."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        _photo(i).resize((128, 96)).save(photos / f"p{i}.png")
    fresh = tmp_path / "fresh.png"
    common = ["-m", "classical", "-w", "0"]
    assert runner.invoke(app, ["score", str(photos), *common, "--sheet", str(fresh), "-q"]).exit_code == 0
    out = tmp_path / "s.csv"
    first = [str(photos / f"p{i}.png") for i in (1, 3)]  # what an interrupted run had written
    assert runner.invoke(app, ["score", *first, *common, "-o", str(out), "-q"]).exit_code == 0
    for sheet in (tmp_path / "resumed.png", tmp_path / "nothing_left.png"):
        res = runner.invoke(app, ["score", str(photos), *common, "-o", str(out), "--sheet", str(sheet)])
        assert res.exit_code == 0, res.output
        assert np.array_equal(np.asarray(Image.open(sheet)), np.asarray(Image.open(fresh)))
    said = " ".join(res.output.split())
    assert "resuming: 5 image(s) already in" in said and "0 to score" in said
    assert "image(s) scored" not in said


def test_a_score_csv_made_on_windows_names_its_images_with_backslashes(tmp_path):
    """**Was**: a score CSV written on Windows (`images\\p0.png`) was every image "not found" under
    `eval folder` (`bench`) and `train`: on Linux a backslash is part of a name. Now such a name reads with
    '/' — unless a file is really named with the backslash (legal on Linux), which is then used."""
    from attiqa.training.data import read_mos_split

    root = tmp_path / "shots"
    (root / "images").mkdir(parents=True)
    for i in range(6):
        _photo(i).save(root / "images" / f"p{i}.png")
    (root / "images" / "odd\\name.png").write_bytes((root / "images" / "p0.png").read_bytes())
    rows = [f"images\\p{i}.png,{i + 1}\r\n" for i in range(6)] + ["images/odd\\name.png,7\r\n"]
    (root / "mos.csv").write_text("image,mos\r\n" + "".join(rows), newline="")
    res = runner.invoke(
        app, ["eval", "folder", "--root", str(root), "-m", "classical", "-o", str(tmp_path / "ev")]
    )
    assert res.exit_code == 0, res.output
    with open(tmp_path / "ev" / "predictions.csv", newline="") as fh:
        images = sorted(line.split(",")[0] for line in fh.read().splitlines()[1:])
    want = sorted(
        [str(root / "images" / f"p{i}.png") for i in range(6)] + [str(root / "images" / "odd\\name.png")]
    )
    assert images == want
    split = read_mos_split(str(root / "mos.csv"), "", 0.3, 0)
    assert sorted(map(str, split.paths)) == want


def test_a_sheet_inside_the_scored_folder_is_not_scored_on_a_rerun(tmp_path):
    """**Was**: `attiqa score photos/ -o photos/s.csv --sheet photos/sheet.png` run again (the documented
    way to resume) scored its own contact sheet as a photo — a row `photos/sheet.png` added to s.csv — and a
    `--sheet` naming a photo of the folder replaced that photo with the sheet. Now an earlier run's sheet
    (known by its PNG text chunk) is left out, and a photo at the `--sheet` path is refused in one line."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _photo(i).save(photos / f"p{i}.png")
    args = ["score", str(photos), "-m", "classical", "-w", "0", "-o", str(photos / "s.csv")]
    for _ in range(2):
        res = runner.invoke(app, [*args, "--sheet", str(photos / "sheet.png"), "-q"])
        assert res.exit_code == 0, res.output
        rows = (photos / "s.csv").read_text().splitlines()[1:]
        assert [r.split(",")[0] for r in rows] == [str(photos / "p0.png"), str(photos / "p1.png")]
    before = (photos / "p1.png").read_bytes()
    res = runner.invoke(app, [*args, "--sheet", str(photos / "p1.png")])
    assert isinstance(res.exception, AttiqaError)
    assert str(res.exception) == (
        f"{photos / 'p1.png'}: is also an input of this command — writing it would destroy it; "
        "choose another --sheet"
    )
    assert (photos / "p1.png").read_bytes() == before
