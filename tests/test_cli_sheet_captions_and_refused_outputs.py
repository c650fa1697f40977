"""Text drawn inside its box (contact sheet cells, the policy sheet, the attack strip, gallery captions), the
votes / ExIQA labels / raw manifest files read in one line per problem, and a refused setting that leaves no
output folder behind — each run on the input a user would give (docs/robustness.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_attiqa

from attiqa.errors import AttiqaError

# ---------------------------------------------------------------------------------------------------------
# the CSV readers of genbench's votes, ExIQA's labels.csv and isp-tune's raw manifest: the one reader


def test_votes_name_the_line_an_editor_shows_and_refuse_a_column_twice(tmp_path):
    """**Was**: `genbench agree --prefs FILE` counted rows, not lines: after a blank line the error named
    the line above the bad one; `choice` twice in the header read the last copy without a word. Now the one
    CSV reader (attiqa.datasets.readers.read_csv): the line as an editor counts it, the column refused."""
    from genbench.agreement import read_votes_csv

    prefs = tmp_path / "prefs.csv"
    prefs.write_text("pair_id,choice\np1,a\n\np2,left\n")
    with pytest.raises(AttiqaError, match=rf"^{prefs}:4: choice must be a or b, got 'left' — fix or"):
        read_votes_csv(prefs)
    prefs.write_text("pair_id,choice,choice\np1,a,b\n")
    with pytest.raises(AttiqaError, match="column 'choice' appears twice in the header"):
        read_votes_csv(prefs)
    prefs.write_text("Pair_ID, Choice ,rater\n p1 , B ,'=ann\n")  # a spreadsheet's header, spaces as before
    assert [(v.pair_id, v.choice, v.rater) for v in read_votes_csv(prefs)] == [("p1", "b", "=ann")]


def _labels_set(root: Path, header: str, row: str) -> Path:
    from attiqa.distortions.kadid import KADID_NAMES

    (root / "images").mkdir(parents=True)
    (root / "labels.csv").write_text(f"{header}{','.join(KADID_NAMES)}\n{row}{','.join(['0'] * 25)}\n")
    return root


def test_exiqa_labels_that_a_spreadsheet_saved_or_a_bad_cell_are_one_line(tmp_path):
    """**Was**: `attiqa train-exiqa` read labels.csv with its own reader: saved by a spreadsheet (a byte-order
    mark before `image`) it ended in KeyError 'image', a strength `x` in a ValueError traceback, a file that
    is not UTF-8 in a UnicodeDecodeError one. Now the one CSV reader: the mark is read, a bad cell is one
    line naming the file, line and column, exit code 2."""
    from attiqa.exiqa.model import load_attribute_table
    from attiqa.exiqa.train import read_distortion_labels

    data = _labels_set(tmp_path / "bom", "\ufeffimage,source,", "images/a.png,a.jpg,")
    paths, targets, sources = read_distortion_labels(data, load_attribute_table())
    assert paths == [data / "images" / "a.png"] and sources == ["a.jpg"] and float(targets.sum()) == 0.0
    data = _labels_set(tmp_path / "bad", "image,source,", "images/a.png,a.jpg,")
    labels = data / "labels.csv"
    labels.write_text(labels.read_text().replace(",0\n", ",x\n"))
    res = run_attiqa("train-exiqa", data, "--out", tmp_path / "run", "--clip", "ViT-B-16/openai")
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"{labels}:2: kadid_" in said and "strength 'x' is not a number in [0, 1]" in said, said
    labels.write_bytes(b"image,source\n\xff\xfe,a\n")
    res = run_attiqa("train-exiqa", data, "--out", tmp_path / "run", "--clip", "ViT-B-16/openai")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"{labels}: not a UTF-8 text file" in " ".join(res.stderr.split())


def test_a_raw_manifest_read_as_the_score_files_are(tmp_path):
    """**Was**: isp-tune's `manifest.csv` reader wanted `file` and `scene_group` exactly: a spreadsheet's
    `File,Scene_Group` gave "no columns file and scene_group" and every raw its own group (repeat shots on
    both sides of the split); `scene_group` twice read the last copy. Now the one CSV reader: any case of
    the names, a column twice refused; a name typed with a trailing space still finds its raw."""
    from isp_env.run_inputs import scene_groups

    root = tmp_path / "raws"
    root.mkdir()
    raws = [root / f"r{i}.dng" for i in range(3)]
    for p in raws:
        p.write_bytes(p.name.encode())
    (root / "manifest.csv").write_text("File,Scene_Group\nr0.dng,g\nr1.dng ,g\n")
    groups = scene_groups(raws, root)
    assert groups[raws[0]] == groups[raws[1]] == "g" and groups[raws[2]] == "r2.dng"
    (root / "manifest.csv").write_text("file,scene_group,scene_group\nr0.dng,g,h\n")
    with pytest.raises(AttiqaError, match="column 'scene_group' appears twice in the header"):
        scene_groups(raws, root)


# ---------------------------------------------------------------------------------------------------------
# text on the sheets: measured in its font (attiqa.drawing), not cut at a number of characters


def test_a_long_image_name_stays_inside_its_contact_sheet_cell(tmp_path):
    """**Was**: `score --sheet` cut a name at 34 characters whatever their width: 34 `W`s of the 12 px font
    run ~150 px past the thumbnail into the next cell. Now fitted to the cell (attiqa.drawing.fit_lines)."""
    import numpy as np
    from PIL import Image

    from attiqa.contact_sheet import contact_sheet

    rng = np.random.default_rng(0)
    photo = tmp_path / ("W" * 80 + ".png")
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(photo)
    rows = [{"image": str(photo), "score": 0.5, "sharpness": 0.5}, {"image": "b.png", "score": 0.4}]
    thumb, pad = 120, 10
    sheet = np.asarray(
        Image.open(contact_sheet(rows, tmp_path / "s.png", ["sharpness"], "score", thumb=thumb))
    )
    name_band = sheet[pad + thumb + 4 : pad + thumb + 20]
    assert name_band[:, pad : pad + thumb].min() < 128  # the name is drawn ...
    gap = name_band[:, pad + thumb + 1 : thumb + 3 * pad]  # ... and not into the gap before the next cell
    assert gap.min() == 255, "the name runs past its cell"


def test_a_long_policy_path_stays_inside_its_half_of_the_policy_sheet(tmp_path, isp_raws):
    """**Was**: `benchmarks/isp_policy_sheet.py --policy PATH` drew "policy PATH" in one line from the middle
    of the sheet: a long path ran off the right edge. Now wrapped to its half (attiqa.drawing)."""
    import shutil
    import subprocess
    import sys

    import numpy as np
    from helpers import REPO, attiqa_env
    from PIL import Image

    from isp_env.policy_files import DEFAULT_POLICY

    folder = tmp_path / ("policies_of_a_long_study_" * 4)
    folder.mkdir()
    for ext in (".safetensors", ".json"):
        shutil.copy(DEFAULT_POLICY.with_suffix(ext), folder / f"policy{ext}")
    sheets = []
    for policy, out in ((folder / "policy.safetensors", "long.png"), ("default", "short.png")):
        cmd = [sys.executable, str(REPO / "benchmarks" / "isp_policy_sheet.py"), str(isp_raws[0])]
        cmd += ["--policy", str(policy), "--out", str(tmp_path / out), "--long-side", "160"]
        res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        sheets.append(np.asarray(Image.open(tmp_path / out).convert("RGB")).astype(int))
    w = sheets[0].shape[1]
    cols = np.flatnonzero(np.abs(sheets[0] - sheets[1]).sum(axis=(0, 2)))  # the same renders: only the text
    assert cols.size and cols.min() >= w // 2 and cols.max() < w - 4, (cols.min(), cols.max(), w)


def test_the_isp_attack_strip_keeps_each_caption_in_its_panel():
    """Session 43: **was** `benchmarks/isp_attack.py` drawing each render's caption ("attack_guarded  MOS
    100.0  clip 100%", 174 px of Pillow's font) in one line from the panel's corner: on a scorer whose view
    is narrower the text ran into the next render. Now fitted to its panel (attiqa.drawing.draw_fitted)."""
    import sys

    import numpy as np
    from helpers import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    from isp_attack import captioned_strip

    w = 96
    imgs = {
        k: np.full((80, w, 3), 40, np.uint8)
        for k in ("neutral", "rawpy", "attack_bare_mos", "attack_guarded")
    }
    captions = {k: f"{k}  MOS 100.0  clip 100%" for k in imgs}
    drawn = np.abs(np.asarray(captioned_strip(imgs, captions)).astype(int) - 40).sum(axis=2)
    for i in range(len(imgs)):
        panel = drawn[:, i * w : (i + 1) * w]
        assert panel[:, : w - 4].any() and np.flatnonzero(panel.any(axis=1)).max() > 12  # drawn, wrapped
        assert not panel[:, w - 4 :].any(), f"panel {i}: the caption runs into the next panel"


def test_gallery_with_a_tiny_thumb_draws_no_caption_over_the_next_column(tmp_path):
    """**Was**: `attiqa gallery photo.png --thumb 24`: columns 28 px apart, so "level 0" (35 px) ran into
    "level 1" and "original" into the next cell's caption. Now a level column is as wide as its widest
    caption (measured in the sheet's font) when that is wider than the thumbnail: the 4 px gutters between
    columns stay blank from top to bottom."""
    import numpy as np
    from PIL import Image

    from attiqa.distortions.gallery import LABEL_W

    rng = np.random.default_rng(0)
    src = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(src)
    for thumb in (24, 160):
        sheet = tmp_path / f"g{thumb}.png"
        res = run_attiqa("gallery", src, "-o", sheet, "--types", "kadid_jpeg,gaussian_blur", "--thumb", thumb)
        assert res.returncode == 0, res.stderr
        a = np.asarray(Image.open(sheet).convert("L"))
        pitch = (a.shape[1] - LABEL_W) / 6
        assert pitch == int(pitch) and (thumb == 24 or pitch == thumb + 4), pitch  # 160: as before
        for lv in range(6):
            right = LABEL_W + (lv + 1) * int(pitch)
            assert (a[:, right - 4 : right] == 255).all(), (
                f"--thumb {thumb}: ink in the gutter after level {lv}"
            )


# ---------------------------------------------------------------------------------------------------------
# output folders: checked before the settings, made only once they pass


def test_a_refused_setting_leaves_no_output_folder_behind(tmp_path, genbench_cli):
    """**Was**: `eval -o NEW -m clasical`, `score -o NEW/s.csv --sheet NEW2/s.png -m clasical`, `bench sngle
    -o NEW`, `gallery broken.png -o NEW/g.png`, `demo -m clasical -o NEW`
    (its photos written first) and `genbench agree --prefs MISSING -o NEW` made NEW (empty)
    before the model name, the protocol, the image or the preferences were refused. Now the folder is
    checked (`output_folder(..., create=False)`) and made only once every check has passed, as isp-tune."""
    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from attiqa.cli.app import app

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    (photos / "mos.csv").write_text("image,mos\n" + "".join(f"p{i}.png,{1 + i}\n" for i in range(4)))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    new = tmp_path / "new"
    for args in (
        ["eval", "folder", "--root", photos, "-m", "clasical", "-o", new / "eval"],
        [
            "score",
            photos / "p0.png",
            "-m",
            "clasical",
            "-o",
            new / "s" / "s.csv",
            "--sheet",
            new / "t" / "s.png",
        ],
        ["bench", "sngle", "-d", f"folder={photos}", "-o", new / "bench"],
        ["gallery", tmp_path / "broken.png", "-o", new / "g" / "g.png"],
        ["demo", "-m", "clasical", "-o", new / "demo"],
        [
            "distort",
            tmp_path / "broken.png",
            "--type",
            "kadid_jpeg",
            "--level",
            "3",
            "-o",
            new / "d" / "x.png",
        ],
    ):
        r = CliRunner().invoke(app, [str(a) for a in args])
        assert isinstance(r.exception, AttiqaError), (args[0], r.output, r.exception)
        assert not new.exists(), f"{args[0]}: {sorted(new.rglob('*'))} left behind"
    run = tmp_path / "run"
    (tmp_path / "agiqa").mkdir()
    for i in range(4):
        (photos / f"p{i}.png").rename(tmp_path / "agiqa" / f"p{i}.png")
    (tmp_path / "agiqa" / "data.csv").write_text(
        "name,prompt,mos_quality,mos_align\n" + "".join(f"p{i}.png,a cat,{1 + i},2\n" for i in range(4))
    )
    assert genbench_cli("import-agiqa3k", tmp_path / "agiqa", "-o", run).returncode == 0
    res = genbench_cli(
        "agree", run, "--prefs", tmp_path / "missing.csv", "-m", "classical", "-o", new / "agree"
    )
    assert res.returncode == 2 and "missing.csv: no such file" in res.stderr, res.stderr
    assert not new.exists()


def test_label_train_and_the_distortion_sets_leave_no_folder_after_a_refused_setting(tmp_path):
    """Session 43: **was** `label -t clasical -o NEW/l.parquet` (also a missing image, a CLIP model or
    prompts file that is not there), `train -c run.yaml` whose label stage names a CLIP model that is not
    there (NEW made with its config.json), `make-distorted -o NEW --distortions foo` and `degrade` the same:
    NEW made before the setting was refused. Now checked with `create=False` and made once the images, the
    teacher (loaded) and the distortion names pass, as `eval` / `score` do."""
    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from attiqa.cli.app import app

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    new = tmp_path / "new"
    config = tmp_path / "run.yaml"
    config.write_text(
        f"out_dir: {new / 'run'}\nlabel:\n  images: [{photos}]\n  teacher: clip:NoSuchModel/x\n"
    )
    for args in (
        ["label", photos, "-t", "clasical", "-o", new / "l" / "l.parquet"],
        ["label", tmp_path / "missing.png", "-o", new / "m" / "l.parquet"],
        ["label", photos, "-t", "clip:NoSuchModel/x", "-o", new / "c" / "l.parquet"],
        [
            "label",
            photos,
            "-t",
            "clip:ViT-B-32/openai",
            "--prompts",
            tmp_path / "no.json",
            "-o",
            new / "p.parquet",
        ],
        ["train", "-c", config],
        ["make-distorted", photos, "-o", new / "md", "--distortions", "foo"],
        ["degrade", photos, "-o", new / "dg", "--distortions", "foo"],
    ):
        r = CliRunner().invoke(app, [str(a) for a in args])
        assert isinstance(r.exception, AttiqaError), (args[0], r.output, r.exception)
        assert not new.exists(), f"{args[0]}: {sorted(new.rglob('*'))} left behind"
    r = CliRunner().invoke(app, ["label", str(photos), "-o", str(new / "ok" / "l.parquet")])
    assert r.exit_code == 0 and (new / "ok" / "l.parquet").is_file(), r.output  # made once the checks pass
