"""A hostile user's pass over the distortion commands (`degrade`, `make-distorted`, `distort`, `gallery`;
docs/robustness.md): an output folder inside the source folder, an output that is the input, an empty name
list, repeated names and levels — each as a user runs it, in a real process."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import resized
from helpers import run_attiqa
from PIL import Image


@pytest.fixture()
def photo_dir(tmp_path, photos) -> Path:
    d = tmp_path / "my photos"  # a space in the folder, a non-ASCII file name
    d.mkdir()
    for n in ("astronaut", "coffee"):
        resized(photos[n], longer=48).save(d / f"{n} é.png")
    return d


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _one_line(res, *words: str) -> None:
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and all(w in lines[0] for w in words), res.stderr


def test_an_output_folder_inside_the_sources_is_not_read_back_by_a_rerun(photo_dir, cli):
    """**Was**: `degrade photos -o photos/degraded` run again degraded its own outputs (8 new files, more
    each rerun); `make-distorted photos -o photos/md` run again was refused as "made with other settings"."""
    other = Path(shutil.copytree(photo_dir, photo_dir.parent / "other photos"))  # for make-distorted
    up = cli("degrade", other, "-o", other.parent, "--levels", "1", "--distortions", "contrast")
    assert up.returncode == 0 and "4 written" in up.stderr, up.stderr  # sources under --out, not outputs
    degraded = photo_dir / "degraded"
    args = ["degrade", photo_dir, "-o", degraded, "--levels", "1", "--distortions", "gaussian_blur"]
    first = cli(*args)
    assert first.returncode == 0 and "4 written, 0 already there" in first.stderr, first.stderr
    files = _files(degraded)
    again = cli(*args)
    assert again.returncode == 0 and "0 written, 4 already there" in again.stderr, again.stderr
    assert _files(degraded) == files
    md = other / "md"
    args = ["make-distorted", other, "-o", md, "--rounds", "1", "--distortions", "contrast,gaussian_blur"]
    first = cli(*args)
    assert first.returncode == 0 and "2 written, 0 already there" in first.stderr, first.stderr
    labels = (md / "labels.csv").read_text()
    again = cli(*args)  # now photos/md holds images too
    assert again.returncode == 0 and "0 written, 2 already there" in again.stderr, again.stderr
    assert (md / "labels.csv").read_text() == labels
    before = _files(photo_dir)
    res = cli("degrade", photo_dir, "-o", photo_dir)
    _one_line(res, "--out is also a source folder", "choose another --out")
    assert _files(photo_dir) == before


def test_distort_and_gallery_never_write_over_their_input(photo_dir, cli):
    """**Was**: `distort x.png -o x.png` and `gallery x.png -o x.png` replaced the photo."""
    photo = photo_dir / "coffee é.png"
    data = photo.read_bytes()
    same = photo_dir / "." / photo.name  # another spelling of the same file
    for res in (
        cli("distort", photo, "-t", "contrast", "-l", "2", "-o", same),
        cli("gallery", photo, "-o", photo, "--types", "contrast"),
    ):
        _one_line(res, "is also an input", "choose another --out")
    assert photo.read_bytes() == data


def test_no_distortion_name_is_one_line_and_repeats_count_once(photo_dir, tmp_path, cli):
    """**Was**: `--distortions ,` a numpy "low >= high" traceback (`make-distorted`), a copy of each photo
    and nothing else (`degrade`), an empty sheet (`gallery --types ,`); `--levels 1,1 --distortions
    contrast,contrast` "5 written" for 2 files."""
    out = tmp_path / "out"
    _one_line(cli("make-distorted", photo_dir, "-o", out, "--distortions", ","), "no distortion name")
    _one_line(cli("degrade", photo_dir, "-o", out, "--distortions", " , "), "no distortion name")
    _one_line(cli("gallery", photo_dir / "coffee é.png", "-o", out / "g.png", "--types", ","), "--types")
    assert not out.exists()
    res = cli("degrade", photo_dir / "coffee é.png", "-o", out, "--levels", "1,1",
              "--distortions", "contrast,contrast")  # fmt: skip
    assert res.returncode == 0 and "2 written, 0 already there" in res.stderr, res.stderr
    assert _files(out) == {
        "coffee é.png",
        "coffee é__contrast_1.png",
        "sources.json",
        "source_files.jsonl",
        "settings.json",
        "versions.json",
    }


def test_degrade_on_an_empty_folder_says_so_before_making_the_output(tmp_path, cli):
    """**Was**: "0 written …" and "no source image could be read" (none was there to read), after the
    output folder had been made; now `make-distorted`'s and `score`'s line."""
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line(cli("degrade", empty, "-o", tmp_path / "out"), "no images found in", str(empty))
    assert not (tmp_path / "out").exists()


def test_a_distortion_written_as_webp_is_its_pixels(photo_dir, tmp_path, cli):
    """**Was**: `.webp` written with PIL's default, lossy compression (PSNR 35.6 dB on astronaut, below the
    JPEG at quality 95 the code keeps to judge a distortion, not compression); now lossless, as `.png`."""
    photo = photo_dir / "coffee é.png"
    for ext in ("png", "webp"):
        res = cli("distort", photo, "-t", "contrast", "-l", "2", "-o", tmp_path / f"d.{ext}")
        assert res.returncode == 0, res.stderr
    png, webp = (np.asarray(Image.open(tmp_path / f"d.{e}").convert("RGB")) for e in ("png", "webp"))
    assert np.array_equal(png, webp)


def test_distort_into_a_folder_and_degrade_fmt_name_the_fix(photo_dir, tmp_path, cli):
    """**Was** (session 35): `distort -o FOLDER` said "unknown output format"; `degrade --fmt gif` listed
    only png and jpg while webp, bmp, tif (and jpeg) are written too. The list comes from the table that
    defines the formats (attiqa.io.formats), in the messages and in --help."""
    from attiqa.io.formats import SAVE_FORMATS

    photo = photo_dir / "astronaut é.png"
    (tmp_path / "out").mkdir()
    res = cli("distort", photo, "--type", "gaussian_blur", "--level", "2", "-o", tmp_path / "out")
    _one_line(res, f"{tmp_path / 'out'}: is a folder — give --out a file name, e.g.",
              str(tmp_path / "out" / "astronaut é_gaussian_blur_2.png"))  # fmt: skip
    res = cli("degrade", photo, "-o", tmp_path / "deg", "--fmt", "gif")
    _one_line(res, "--fmt 'gif': not an output format — use png (lossless), jpg/jpeg (quality 95)")
    said = res.stderr
    assert all(s[1:] in said for s in SAVE_FORMATS) and not (tmp_path / "deg").exists()
    for fmt in ("webp", ".bmp"):  # every format the message lists is written (a leading dot too)
        res = cli("degrade", photo, "-o", tmp_path / fmt.strip("."), "--fmt", fmt, "--levels", "1",
                         "--distortions", "gaussian_blur")  # fmt: skip
        assert res.returncode == 0, res.stderr
        names = sorted(p.name for p in (tmp_path / fmt.strip(".")).iterdir() if ".json" not in p.suffix)
        assert names == [f"astronaut é.{fmt.strip('.')}", f"astronaut é__gaussian_blur_1.{fmt.strip('.')}"]
        assert Image.open(tmp_path / fmt.strip(".") / names[0]).format == SAVE_FORMATS["." + fmt.strip(".")]
    helped = " ".join(run_attiqa("degrade", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "Output format: png (lossless), jpg/jpeg (quality 95), webp (lossless), bmp, tif/tiff" in helped


def test_degrade_takes_odd_photos_whole(tmp_path, cli):
    """A photo 1 px high or wide, a 16-bit PNG, a CMYK JPEG and an animated GIF through `attiqa degrade` with
    the strip-wise types (the default set, the FFT blurs, jitter) at their strongest: each a result of the
    source's size, the 16-bit one scaled to 8 bits (not clipped white), never a traceback; the same bytes
    twice (a 1x1 or 1x2 photo's jitter read memory outside the image: other bytes on every run)."""
    src = tmp_path / "odd"
    src.mkdir()
    Image.fromarray(np.full((1, 50, 3), 120, np.uint8)).save(src / "row.png")
    Image.fromarray(np.full((40, 1, 3), 120, np.uint8)).save(src / "column.png")
    Image.fromarray(np.full((1, 1, 3), 90, np.uint8)).save(src / "dot.png")
    Image.fromarray(np.array([[[10, 200, 90], [250, 30, 140]]], np.uint8)).save(src / "pair.png")
    Image.fromarray((np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16)).save(src / "deep.png")
    Image.new("CMYK", (40, 30), (10, 50, 100, 0)).save(src / "cmyk.jpg")
    frames = [Image.new("RGB", (30, 20), (60 * i, 90, 30)) for i in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    kinds = "gaussian_blur,contrast,iso_noise,saturation_up,lens_blur,kadid_motion_blur,kadid_jitter"
    res = cli("degrade", src, "-o", tmp_path / "deg", "--levels", "5", "--distortions", kinds)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    sizes = {"row": (50, 1), "column": (1, 40), "deep": (64, 48), "cmyk": (40, 30), "anim": (30, 20)}
    sizes |= {"dot": (1, 1), "pair": (2, 1)}
    for stem, size in sizes.items():
        for kind in kinds.split(","):
            with Image.open(tmp_path / "deg" / f"{stem}__{kind}_5.png") as im:
                assert im.size == size and im.mode == "RGB", (stem, kind)
    deep = np.asarray(Image.open(tmp_path / "deg" / "deep.png"))
    assert deep.max() == round(61420 / 257)  # 16-bit scaled to 8 (the largest value, 47 * 64 + 63 times 20)
    again = cli("degrade", src, "-o", tmp_path / "again", "--levels", "5", "--distortions", kinds)
    assert again.returncode == 0, again.stderr
    first, second = ({p.name: p.read_bytes() for p in (tmp_path / d).glob("*.png")} for d in ("deg", "again"))
    assert first.keys() == second.keys()
    assert [n for n in first if first[n] != second[n]] == []


def test_a_graded_set_inside_the_sources_is_left_out_of_another_output(photo_dir, cli):
    """**Was**: after `degrade photos -o photos/degraded` (the folder `degrade`'s own refusal suggests),
    `degrade photos -o other` took the graded set's images for photos: 12 written for 2 photos, among them
    a copy of each original again (`coffee é_1.png`) and images degraded twice (`…_contrast_1__contrast_1`);
    `make-distorted photos` drew them too. Now left out, in one line naming the set."""
    degraded = photo_dir / "degraded"
    first = cli("degrade", photo_dir, "-o", degraded, "--levels", "1", "--distortions", "contrast")
    assert first.returncode == 0 and "4 written" in first.stderr, first.stderr
    other = photo_dir.parent / "other"
    res = cli("degrade", photo_dir, "-o", other, "--levels", "1", "--distortions", "contrast")
    assert res.returncode == 0 and "4 written, 0 already there" in res.stderr, res.stderr
    assert "left out 4 image(s) of the graded set" in res.stderr and "degraded" in res.stderr, res.stderr
    assert not [f for f in _files(other) if "_1" in f.replace("_1.png", "")], _files(other)
    md = photo_dir.parent / "md"
    res = cli("make-distorted", photo_dir, "-o", md, "--rounds", "1", "--distortions", "gaussian_blur")
    assert res.returncode == 0 and "2 written" in res.stderr, res.stderr
    # the graded set named itself is read: its images are what was asked for
    twice = photo_dir.parent / "twice"
    res = cli("degrade", degraded, "-o", twice, "--levels", "1", "--distortions", "contrast")
    assert res.returncode == 0 and "8 written" in res.stderr and "left out" not in res.stderr, res.stderr
