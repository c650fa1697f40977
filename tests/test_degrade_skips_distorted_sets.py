"""`attiqa degrade` (and make-distorted, a train's degrade stage) over a folder holding an earlier
make-distorted set: its images are not taken for photos, by the set's own record."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image


def photos(folder, n=3):
    folder.mkdir()
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"p{i}.png")
    return folder


def names(out):
    return sorted(json.loads((out / "sources.json").read_text())["names"])


def test_a_make_distorted_set_below_the_photos_is_left_out_and_said(cli, tmp_path):
    """**Was**: `make-distorted photos -o photos/md` then `degrade photos -o x`: the 3 md images taken as
    photos (6 sources, 12 written for 3 photos; `is_graded_set` knew degrade's sources.json only). Now
    they are left out, said in one line naming the set; the set named itself is read."""
    src = photos(tmp_path / "photos")
    assert cli("make-distorted", src, "-o", src / "md", "--rounds", "1").returncode == 0
    res = cli("degrade", src, "-o", tmp_path / "x", "--distortions", "gaussian_blur", "--levels", "1")
    assert res.returncode == 0, res.stderr
    assert names(tmp_path / "x") == ["p0", "p1", "p2"]
    said = " ".join((res.stdout + res.stderr).split())
    assert "left out 3 image(s) of the distorted set" in said and "make-distorted's output" in said
    res = cli("degrade", src / "md", "-o", tmp_path / "y", "--distortions", "gaussian_blur", "--levels", "1")
    assert res.returncode == 0 and len(names(tmp_path / "y")) == 3, res.stderr


def test_a_folder_named_md_without_the_record_is_photos(cli, tmp_path):
    """By the record, not the folder's name: a user's own ``md/images/r00`` of photos (no meta.json, or a
    meta.json of their own) is read as photos."""
    src = tmp_path / "photos"
    (src / "md" / "images").mkdir(parents=True)
    photos(src / "md" / "images" / "r00", 2)
    (src / "md" / "meta.json").write_text('{"camera": "mine"}')
    res = cli("degrade", src, "-o", tmp_path / "x", "--distortions", "gaussian_blur", "--levels", "1")
    assert res.returncode == 0, res.stderr
    assert names(tmp_path / "x") == ["p0", "p1"]


def test_a_set_whose_recipe_text_differs_is_still_left_out(cli, tmp_path):
    """By the settings make-distorted records (its meta.json's keys), not its recipe's wording: **was** a set
    whose recorded recipe text is not this version's (written before a rewording, or after one) taken for
    photos again."""
    src = photos(tmp_path / "photos")
    assert cli("make-distorted", src, "-o", src / "md", "--rounds", "1").returncode == 0
    meta = json.loads((src / "md" / "meta.json").read_text())
    (src / "md" / "meta.json").write_text(
        json.dumps({**meta, "recipe": "ExIQA §V-A, as an older version put it"})
    )
    res = cli("degrade", src, "-o", tmp_path / "x", "--distortions", "gaussian_blur", "--levels", "1")
    assert res.returncode == 0, res.stderr
    assert names(tmp_path / "x") == ["p0", "p1", "p2"]
    assert "left out 3 image(s) of the distorted set" in " ".join((res.stdout + res.stderr).split())


def test_a_graded_set_holding_a_folder_of_photos_is_still_left_out(cli, tmp_path):
    """**Was**: `degrade photos -o photos/g`, a folder `photos/g/extra` of photos added, then `degrade photos
    -o x`: `photos/g` met first above `extra`'s image (found before the set's own) was taken as no set, so
    its 6 graded images were degraded again as photos (read once, kept by folder whatever it was asked).
    Now the set is left out, `extra`'s photo read, whatever order the images are found in."""
    src = photos(tmp_path / "photos")
    assert (
        cli("degrade", src, "-o", src / "g", "--distortions", "gaussian_blur", "--levels", "1").returncode
        == 0
    )
    (src / "g" / "extra").mkdir()
    Image.new("RGB", (48, 40), (90, 20, 30)).save(src / "g" / "extra" / "e.png")
    res = cli("degrade", src, "-o", tmp_path / "x", "--distortions", "gaussian_blur", "--levels", "1")
    assert res.returncode == 0, res.stderr
    assert names(tmp_path / "x") == ["e", "p0", "p1", "p2"]
    assert "left out 6 image(s) of the graded set" in " ".join((res.stdout + res.stderr).split())
