"""The one image loader: modes, orientation, 16-bit data, and clear errors on bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from attiqa.errors import ImageLoadError
from attiqa.io import images as images_mod
from attiqa.io.images import content_key, discover_images, load_image


@pytest.fixture()
def rgb(photos) -> Image.Image:
    return photos["coffee"].resize((200, 133))


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "I", "F", "YCbCr"])
def test_every_mode_becomes_rgb(tmp_path, rgb, mode):
    img = rgb.convert(mode)
    ext = "tiff" if mode in ("CMYK", "I", "F", "YCbCr") else "png"
    path = tmp_path / f"x.{ext}"
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == rgb.size
    if mode in ("L", "LA", "RGBA", "P"):
        small = (20, 13)  # block means: palette dithering averages out
        ref = np.asarray(rgb.convert("L").resize(small, Image.BOX), dtype=float)
        got = np.asarray(out.convert("L").resize(small, Image.BOX), dtype=float)
        assert np.abs(ref - got).mean() < 4  # same picture, up to palette quantisation


def test_transparency_composited_over_white(tmp_path):
    arr = np.zeros((10, 10, 4), np.uint8)
    arr[..., 0] = 255
    arr[:5, ..., 3] = 255  # top half opaque red, bottom transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = np.asarray(load_image(tmp_path / "a.png"))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[9, 9]) == (255, 255, 255)


def test_exif_orientation_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° CW to display
    rgb.save(tmp_path / "o.jpg", exif=exif.tobytes())
    out = load_image(tmp_path / "o.jpg")
    assert out.size == (rgb.height, rgb.width)


def test_16bit_png_and_tiff_scaled_by_full_range(tmp_path, rgb):
    gray8 = np.asarray(rgb.convert("L"))
    gray16 = gray8.astype(np.uint16) * 257
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    out = np.asarray(load_image(tmp_path / "g16.png"))[..., 0]
    assert np.abs(out.astype(int) - gray8).max() <= 1
    rgb16 = np.asarray(rgb).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "c16.tif", rgb16, photometric="rgb")
    out = np.asarray(load_image(tmp_path / "c16.tif"))
    assert np.abs(out.astype(int) - np.asarray(rgb)).max() <= 1


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"this is not an image at all", "not a recognised image format")],
)
def test_bad_bytes_give_one_line_error(tmp_path, content, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageLoadError) as ei:
        load_image(p)
    msg = str(ei.value)
    assert str(p) in msg and reason in msg and "\n" not in msg


def test_truncated_file(tmp_path, rgb):
    full = tmp_path / "full.jpg"
    rgb.save(full, quality=95)
    data = full.read_bytes()
    p = tmp_path / "trunc.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cannot decode"):
        load_image(p)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_a_pipe_or_device_is_named_as_such(tmp_path):
    """**Was**: "empty file (0 bytes)" for a FIFO or /dev/zero named on the command line."""
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    for name in ("pipe.jpg", "zero.png"):
        with pytest.raises(ImageLoadError, match="not a regular file"):
            load_image(tmp_path / name)
    assert discover_images([tmp_path]) == []  # in a folder they are not images: left out, not listed


def test_decompression_bomb_refused_before_decoding(tmp_path, rgb):
    rgb.save(tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match="safety limit"):
        load_image(tmp_path / "big.png", max_pixels=1000)


def test_discover_recursive_sorted(photo_dir, tmp_path):
    (photo_dir / "notes.txt").write_text("x")
    found = discover_images([photo_dir])
    assert len(found) == 5 and found == sorted(found, key=str)
    assert all(p.suffix in (".png", ".jpg") for p in found)
    assert len(discover_images([photo_dir], recursive=False)) == 3
    with pytest.raises(ImageLoadError, match="no such file"):
        discover_images([tmp_path / "missing"])


def test_big_jpeg_decodes_at_reduced_scale_but_never_below_the_hint(tmp_path, photos):
    big = photos["astronaut"].resize((2400, 1800))
    big.save(tmp_path / "big.jpg", quality=90)
    full = load_image(tmp_path / "big.jpg")
    small = load_image(tmp_path / "big.jpg", min_shorter=340)
    assert full.size == (2400, 1800)
    assert 340 <= min(small.size) < 900 and small.size[0] / small.size[1] == 2400 / 1800
    # same picture: compare both at the reduced size
    ref = np.asarray(full.resize(small.size, Image.BOX), dtype=float)
    assert np.abs(ref - np.asarray(small, dtype=float)).mean() < 3
    # PNG (no DCT scaling) is left at full size
    big.save(tmp_path / "big.png")
    assert load_image(tmp_path / "big.png", min_shorter=340).size == (2400, 1800)


def test_content_key_memo_is_bounded_and_follows_changes(tmp_path, monkeypatch):
    """The per-process digest memo forgets the least recently used files, so a long run over many files stays
    small; a forgotten file is hashed again to the same key, a rewritten one gets a new key."""
    monkeypatch.setattr(images_mod, "CONTENT_KEY_MEMO", 3)
    monkeypatch.setattr(images_mod, "_CONTENT_KEYS", type(images_mod._CONTENT_KEYS)())
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (4, 4), (i, 0, 0)).save(p)
        paths.append(p)
    keys = [content_key(p) for p in paths]
    assert len(set(keys)) == 5 and all(k.startswith("sha256:") for k in keys)
    assert len(images_mod._CONTENT_KEYS) == 3
    assert content_key(paths[0]) == keys[0]  # forgotten, hashed again, same bytes
    before = paths[4].stat().st_mtime_ns
    Image.new("RGB", (4, 4), (9, 9, 9)).save(paths[4])
    os.utime(paths[4], ns=(before + 10**9, before + 10**9))  # a later write, whatever the clock's tick
    assert content_key(paths[4]) not in keys


def test_save_image_writes_the_format_its_suffix_names_and_refuses_others(tmp_path, rgb):
    from attiqa.errors import ConfigError
    from attiqa.io.images import save_image

    img, arr = rgb.convert("RGB"), np.asarray(rgb.convert("RGB"))
    formats = ((".png", "PNG"), (".JPG", "JPEG"), (".tif", "TIFF"), (".webp", "WEBP"), (".bmp", "BMP"))
    for suffix, fmt in formats:
        path = save_image(img, tmp_path / f"out{suffix}")
        with Image.open(path) as back:
            assert back.format == fmt and back.size == img.size
        if fmt not in ("JPEG", "WEBP"):  # lossless formats give the pixels back
            assert np.array_equal(np.asarray(load_image(path)), arr)
    jpg = np.asarray(load_image(tmp_path / "out.JPG"), dtype=np.float64)
    assert np.abs(jpg - arr).mean() < 3.3  # quality 95 (2.8 here); PIL's default 75 gives 5.0, 90 gives 3.6
    with pytest.raises(ConfigError, match=r"out\.gif: unknown output format"):
        save_image(img, tmp_path / "out.gif")
    assert not (tmp_path / "out.gif").exists() and not list(tmp_path.glob("*.tmp*"))


def test_discover_follows_linked_folders_once_and_ends_on_a_cycle(tmp_path, rgb):
    """Session 26 (a newcomer's pass): a folder whose images sit in a linked sub-folder (a dataset linked
    in) gave "no images found"; each real folder is searched once, so a link cycle ends."""
    from attiqa.io.images import discover_images

    data = tmp_path / "data"
    data.mkdir()
    rgb.save(data / "a.png")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "linked").symlink_to(data)
    (mine / "again").symlink_to(data)  # the same folder twice: its images once
    (data / "up").symlink_to(tmp_path)  # a cycle
    found = discover_images([mine])
    assert len(found) == 1 and found[0].name == "a.png"
    assert discover_images([mine], recursive=False) == []
