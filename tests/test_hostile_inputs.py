"""Inputs a hostile but fair user would try (issue 16): path tricks, odd names, killed runs, huge or
degenerate images. Every fixture is generated here; each test failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import attiqa_env, unprivileged_cmd
from PIL import Image
from typer.testing import CliRunner

import attiqa
from attiqa.errors import AttiqaError

runner = CliRunner()


def _png(path: Path, size=(48, 32), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------------------------------------------------
# genbench: paths from a rankings file / manifest never leave the run's image folders


@pytest.fixture()
def secret(tmp_path) -> Path:
    """A file outside every image folder that an attacker would like to read."""
    p = tmp_path / "outside" / "s.png"  # an image extension too: the extension check alone is not enough
    _png(p, seed=9)
    return p


def _ir_items(secret: Path) -> list[dict]:
    return [
        {"id": "ok", "prompt": "a dog", "generations": ["g/1.png", "g/2.png"], "ranking": [1, 2]},
        {"id": "dotdot", "prompt": "x", "generations": ["g/1.png", "../outside/s.png"], "ranking": [1, 2]},
        {"id": "absolute", "prompt": "x", "generations": [str(secret), "g/2.png"], "ranking": [2, 1]},
        {"id": "hostname", "prompt": "x", "generations": ["/etc/hostname", "g/1.png"], "ranking": [1, 2]},
        {"id": "link", "prompt": "x", "generations": ["g/link.png", "g/2.png"], "ranking": [1, 2]},
    ]


def test_imagereward_import_refuses_paths_outside_the_image_folder(tmp_path, secret):
    from genbench.cli import app
    from genbench.manifest import load_pairs

    images = tmp_path / "images"
    _png(images / "g/1.png", seed=1)
    _png(images / "g/2.png", seed=2)
    (images / "g/link.png").symlink_to(secret)  # a link out of the folder is outside it too
    (tmp_path / "rank.json").write_text(json.dumps(_ir_items(secret)))
    run = tmp_path / "run"
    res = runner.invoke(
        app, ["import-imagereward", str(tmp_path / "rank.json"), "--images", str(images), "--out", str(run)]
    )
    assert res.exit_code == 0, res.output
    assert "1 pair from 1 prompt" in res.output and "4 malformed items skipped" in res.output
    for name in ("dotdot", "absolute", "hostname", "link"):
        assert f"{name}: generation" in res.output and "outside the image folder" in res.output
    pairs = load_pairs(run)
    assert [p.pair_id for p in pairs] == ["ok:0-1"]
    assert "secret" not in (run / "manifest.jsonl").read_text()


def _write_raw_manifest(run: Path, records: list[dict]) -> None:
    """What a crafted or hand-edited manifest looks like (write_manifest itself refuses these)."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("bad", ["/etc/hostname", "../outside/s.png", "SECRET"])
def test_a_tampered_manifest_is_refused_by_every_command(tmp_path, secret, bad):
    from genbench.cli import app
    from genbench.manifest import load_pairs, write_manifest
    from genbench.vote.server import create_app

    run = tmp_path / "run"
    _png(run / "images/a.png")
    bad = str(secret) if bad == "SECRET" else bad
    records = [{"pair_id": "p0", "image_a": "images/a.png", "image_b": bad}]
    _write_raw_manifest(run, records)
    with pytest.raises(AttiqaError, match="outside the run's image folder"):
        load_pairs(run)
    with pytest.raises(AttiqaError, match="outside the run's image folder"):
        create_app(run)
    with pytest.raises(AttiqaError, match="outside the run's image folder"):
        write_manifest(run, records)
    res = runner.invoke(app, ["score", str(run), "-m", "classical", "--workers", "0"])
    assert res.exit_code != 0 and "outside the run's image folder" in str(res.exception or res.output)


def test_vote_server_rechecks_every_image_it_serves(tmp_path, secret):
    from genbench.manifest import write_manifest
    from genbench.vote.server import create_app

    run = tmp_path / "run"
    a, b = _png(run / "images/a.png", seed=1), _png(run / "images/b.png", seed=2)
    write_manifest(run, [{"pair_id": "p0", "image_a": "images/a.png", "image_b": "images/b.png"}])
    client = create_app(run).test_client()
    assert client.get("/image/p0/a").status_code == 200
    b.unlink()
    b.symlink_to(secret)  # swapped for a link after the server started
    resp = client.get("/image/p0/b")
    assert resp.status_code == 404 and resp.data != secret.read_bytes()
    a.unlink()
    a.symlink_to("/etc/hostname")
    assert client.get("/image/p0/a").status_code == 404


def test_imported_images_outside_the_run_folder_are_still_served(tmp_path):
    """The recorded image root keeps ordinary imports working (images beside the rankings file)."""
    from genbench.imagereward import import_imagereward
    from genbench.vote.server import create_app

    images = tmp_path / "ir"
    _png(images / "x/1.png", seed=1)
    _png(images / "x/2.png", seed=2)
    items = [{"id": "i", "prompt": "p", "generations": ["x/1.png", "x/2.png"], "ranking": [2, 1]}]
    (images / "test.json").write_text(json.dumps(items))
    import_imagereward(images / "test.json", None, tmp_path / "run")
    client = create_app(tmp_path / "run").test_client()
    resp = client.get("/image/i:0-1/a")
    assert resp.status_code == 200 and resp.data == (images / "x/1.png").read_bytes()


@pytest.mark.parametrize(
    "host, ok",
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("LOCALHOST.", True),
        ("[::1]:8000", True),
        ("192.168.1.20:8000", True),
        ("attacker.example:8000", False),  # DNS rebinding: the attacker's name now resolves to 127.0.0.1
        ("localhost.attacker.example", False),
        ("study.lab.example:8000", True),  # allowed with --allow-host
        ("", False),
    ],
)
def test_vote_server_refuses_unknown_host_names(tmp_path, host, ok):
    from genbench.manifest import write_manifest
    from genbench.vote.server import create_app

    run = tmp_path / "run"
    _png(run / "images/a.png", seed=1)
    _png(run / "images/b.png", seed=2)
    write_manifest(run, [{"pair_id": "p0", "image_a": "images/a.png", "image_b": "images/b.png"}])
    client = create_app(run, allow_hosts=["study.lab.example"]).test_client()
    for path in ("/api/study", "/image/p0/a", "/api/next?rater=eve"):
        resp = client.get(path, headers={"Host": host})
        assert (resp.status_code == 200) == ok, (path, resp.status_code)
        if not ok:
            assert resp.status_code == 403 and b"--allow-host" in resp.data
    resp = client.post(
        "/api/vote", json={"rater": "eve", "pair_id": "p0", "choice": "left"}, headers={"Host": host}
    )
    assert (resp.status_code == 201) == ok


# ---------------------------------------------------------------------------------------------------------
# attiqa degrade: one output name per source, unique and stable across reruns


def test_degrade_gives_every_source_its_own_stable_names(tmp_path):
    from attiqa.distortions import write_graded_set

    src = tmp_path / "src"
    files = [
        _png(src / "A/x.jpg", seed=1),
        _png(src / "B/x.jpg", seed=2),
        _png(src / "B/x_1.jpg", seed=3),  # the old disambiguation of B/x.jpg
        _png(src / "C/X.png", seed=4),  # the same name on a case-insensitive disk
        _png(src / "x__gaussian_blur_1.png", seed=5),  # looks like a degradation of x
    ]
    out = tmp_path / "out"
    res = write_graded_set(files, out, ["gaussian_blur"], [1])
    assert (len(res.written), len(res.existing), res.failed) == (10, 0, [])
    assert len({p.name.casefold() for p in res.written}) == 10  # nothing overwritten
    mapping = json.loads((out / "sources.json").read_text())["names"]
    assert {n: Path(s).relative_to(src).as_posix() for n, s in mapping.items()} == {
        "x": "A/x.jpg",  # the first keeps its stem, as before
        "x_2": "B/x.jpg",  # x_1 is B/x_1.jpg's own name
        "x_1": "B/x_1.jpg",
        "X_3": "C/X.png",
        "x_gaussian_blur_1": "x__gaussian_blur_1.png",  # "__" separates name and distortion
    }
    # every output is its own source's picture (the source's original is written unchanged as PNG)
    originals = {p for p in res.written if "__" not in p.stem}
    pixels = {np.asarray(Image.open(p)).tobytes() for p in originals}
    assert pixels == {np.asarray(Image.open(f)).tobytes() for f in files}

    # a rerun with more sources (sorted differently) keeps every earlier name and redoes nothing
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    files2 = [_png(src / "0/x.jpg", seed=6), *files]
    res = write_graded_set(files2, out, ["gaussian_blur"], [1])
    assert (len(res.written), len(res.existing)) == (2, 10)
    assert all((out / n).read_bytes() == b for n, b in before.items())
    mapping = json.loads((out / "sources.json").read_text())["names"]
    assert mapping["x_4"] == str(files2[0]) and sorted(mapping.values()) == sorted(str(f) for f in files2)


def test_degrade_names_are_safe_for_any_file_system(tmp_path):
    from attiqa.distortions.graded import safe_stem

    assert safe_stem("a__b___c_") == "a_b_c_"
    assert safe_stem("ordinary name (1)") == "ordinary name (1)"  # names made before the rule are kept
    assert safe_stem(os.fsdecode(b"caf\xe9s")) == "caf_s"
    assert safe_stem("a\nb\\c") == "a_b_c"
    assert safe_stem(".hidden") == "hidden" and safe_stem(".") == "image"
    assert len(safe_stem("é" * 300).encode()) <= 100


# ---------------------------------------------------------------------------------------------------------
# file names that are not UTF-8 (any bytes are legal on Linux) round-trip through every table we write


@pytest.fixture()
def odd_names(tmp_path) -> list[Path]:
    folder = tmp_path / "odd"
    folder.mkdir()
    try:
        paths = [
            _png(folder / os.fsdecode(n), seed=k) for k, n in enumerate([b"caf\xe9.png", b"\xff\xfe.jpg"])
        ]
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    return [*paths, _png(folder / "plain.png", seed=7)]


def test_label_stores_names_that_are_not_utf8_and_reads_them_back(odd_names, tmp_path):
    import pyarrow.parquet as pq

    from attiqa.io.images import discover_images
    from attiqa.labeling import label_images
    from attiqa.teachers import create_teacher
    from attiqa.training.data import PseudoLabelDataset

    teacher = create_teacher("classical")
    paths = discover_images([odd_names[0].parent])
    out = tmp_path / "labels.parquet"
    res = label_images(paths, teacher, out, batch_size=2, num_workers=0)  # crashed here, on every rerun
    assert (res.labelled, res.failed) == (3, [])
    from attiqa.labeling import label_paths

    table = pq.read_table(out)
    texts = table.column("image").to_pylist()
    assert all(t.encode("utf-8") for t in texts) and "file:" not in "".join(t for t in texts if "plain" in t)
    assert sorted(map(os.fsencode, label_paths(table))) == sorted(os.fsencode(p) for p in odd_names)
    again = label_images(paths, teacher, out, batch_size=2, num_workers=0)  # the rerun finds them done
    assert (again.labelled, again.skipped_done) == (0, 3)
    ds = PseudoLabelDataset(out, transform=lambda img: img)  # training finds every image
    assert sorted(map(os.fsencode, ds.paths)) == sorted(os.fsencode(p) for p in odd_names)


def test_make_distorted_with_names_that_are_not_utf8(odd_names, tmp_path):
    import csv

    from attiqa.distortions.multi import make_distorted_set

    out = tmp_path / "md"
    res = make_distorted_set(odd_names, out, rounds=2, distortions=["kadid_gaussian_blur", "kadid_jpeg"])
    assert (res.written, res.failed) == (6, [])
    from attiqa.io.names import text_path

    text = (out / "labels.csv").read_bytes().decode("utf-8")  # valid UTF-8
    rows = list(csv.DictReader(text.splitlines()))
    assert all((out / r["image"]).is_file() for r in rows)
    assert {os.fsencode(text_path(r["source"]).resolve()) for r in rows} == {
        os.fsencode(p.resolve()) for p in odd_names
    }
    again = make_distorted_set(odd_names, out, rounds=2, distortions=["kadid_gaussian_blur", "kadid_jpeg"])
    assert (again.written, again.existing) == (0, 6)


def test_genbench_manifest_with_names_that_are_not_utf8(odd_names, tmp_path):
    from genbench.manifest import load_pairs, write_manifest

    run = odd_names[0].parent
    write_manifest(run, [{"pair_id": "p", "image_a": str(odd_names[0]), "image_b": odd_names[1].name}])
    pair = load_pairs(run)[0]
    assert os.fsencode(pair.image_a) == os.fsencode(odd_names[0])
    assert os.fsencode(pair.image_b) == os.fsencode(odd_names[1].name)
    (run / "manifest.csv").read_bytes().decode("utf-8")


# ---------------------------------------------------------------------------------------------------------
# temp files of killed writers are removed when a job starts again; a live writer's never are


def _killed_writer(target: Path) -> None:
    """A real process killed (SIGKILL) inside atomic_path, as a kill -9 mid-write leaves it."""
    code = (
        "import os, signal, sys\n"
        "from attiqa.io.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(attiqa.__file__).resolve().parents[1]  # the code under test, in the child too
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", code, str(target)], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def test_remove_orphan_temps_deletes_only_orphans_of_our_pattern(tmp_path):
    from attiqa.io.atomic import atomic_path, remove_orphan_temps

    _killed_writer(tmp_path / "dead.png")
    assert len(_temps(tmp_path)) == 1
    old_style = tmp_path / ".old.png.k3j9x_2a.tmp"  # from before the owner was in the name
    old_style.write_bytes(b"x")
    fresh_old_style = tmp_path / ".fresh.png.q0w9e8r7.tmp"
    fresh_old_style.write_bytes(b"x")
    os.utime(old_style, (1e9, 1e9))
    foreign = [tmp_path / ".notes.tmp", tmp_path / "data.tmp", tmp_path / ".x.y.tmp"]  # not ours
    for f in foreign:
        f.write_bytes(b"keep")
        os.utime(f, (1e9, 1e9))
    with atomic_path(tmp_path / "live.png") as live:  # this process is writing it right now
        live.write_bytes(b"in flight")
        assert remove_orphan_temps(tmp_path) == 2
        assert live.exists() and fresh_old_style.exists() and all(f.exists() for f in foreign)
        assert not old_style.exists() and not any(".dead.png." in n for n in _temps(tmp_path))
    assert (tmp_path / "live.png").read_bytes() == b"in flight"


def test_a_long_file_name_can_be_written_atomically(tmp_path):
    from attiqa.io.atomic import write_text_atomic

    name = "é" * 120 + ".csv"  # 244 bytes: legal, but its temp's name used to exceed 255
    write_text_atomic(tmp_path / name, "x")
    assert (tmp_path / name).read_text() == "x" and _temps(tmp_path) == []


def test_every_resumable_writer_clears_its_killed_temps(tmp_path):
    from attiqa.distortions import write_graded_set
    from attiqa.distortions.multi import make_distorted_set
    from attiqa.labeling import label_images, parts_dir
    from attiqa.teachers import create_teacher

    src = [_png(tmp_path / "src/a.png", seed=1), _png(tmp_path / "src/b.png", seed=2)]
    # degrade
    deg = tmp_path / "deg"
    write_graded_set(src[:1], deg, ["gaussian_blur"], [1])
    _killed_writer(deg / "b__gaussian_blur_1.png")
    write_graded_set(src, deg, ["gaussian_blur"], [1])
    assert _temps(deg) == []
    # make-distorted: the images of a round and labels.csv
    md = tmp_path / "md"
    make_distorted_set(src[:1], md, rounds=1, distortions=["kadid_jpeg"])
    _killed_writer(md / "images" / "r00" / "00001_b.png")
    _killed_writer(md / "labels.csv")
    make_distorted_set(src[:1], md, rounds=1, distortions=["kadid_jpeg"])
    assert _temps(md) == [] and _temps(md / "images" / "r00") == []
    # label: a part file and the merged table; another job's orphan beside --out is not ours to judge
    out = tmp_path / "lab" / "labels.parquet"
    parts_dir(out).mkdir(parents=True)
    _killed_writer(parts_dir(out) / "rank000-1-000000.parquet")
    _killed_writer(out)
    _killed_writer(out.parent / "scores.csv")
    label_images(src, create_teacher("classical"), out, num_workers=0)
    assert [n for n in _temps(out.parent) if "labels" in n] == [] and len(_temps(out.parent)) == 1
    assert not parts_dir(out).exists()


# ---------------------------------------------------------------------------------------------------------
# image limits: the documented 200 MP, and a bound on the work after resizing


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` but holds no pixel data (costs nothing to make)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_the_pixel_limit_is_the_documented_200_megapixels(tmp_path):
    from attiqa.io.images import load_image

    with pytest.raises(AttiqaError) as ei:  # 100 MP: within the limit, so it fails only for lack of data
        load_image(_png_header(tmp_path / "100mp.png", 10_000, 10_000))
    assert "safety limit" not in str(ei.value) and "bomb" not in str(ei.value)
    assert "cannot decode" in str(ei.value)
    with pytest.raises(AttiqaError, match="exceeds the 200 MP safety limit"):
        load_image(_png_header(tmp_path / "201mp.png", 20_100, 10_000))
    with pytest.raises(AttiqaError, match="exceeds the 200 MP safety limit"):
        load_image(_png_header(tmp_path / "huge.png", 100_000, 100_000))  # beyond PIL's own 2x guard too


def test_a_tiff_too_big_for_pil_is_refused_by_the_fallback_as_well(tmp_path):
    import tifffile

    from attiqa.io.images import load_image

    arr = np.zeros((64, 64, 3), np.float32)  # float RGB: PIL cannot open it, tifffile reads it
    tifffile.imwrite(tmp_path / "c16.tif", arr, photometric="rgb")
    assert load_image(tmp_path / "c16.tif").size == (64, 64)
    with pytest.raises(AttiqaError, match="safety limit"):
        load_image(tmp_path / "c16.tif", max_pixels=1000)


def test_an_extreme_strip_is_refused_before_it_is_upscaled(tmp_path):
    from attiqa.io.batching import iter_image_batches
    from attiqa.io.images import load_image
    from attiqa.teachers import create_teacher

    strip = tmp_path / "strip.png"
    Image.new("RGB", (50_000, 8), (90, 120, 60)).save(strip)  # 340 px shorter side: 722 MP, 7 GB
    with pytest.raises(AttiqaError, match=r"too elongated \(6250:1\).*722 MP"):
        load_image(strip, min_shorter=340)
    assert load_image(strip).size == (50_000, 8)  # without a resize there is no blow-up: loaded as is
    wide = _png(tmp_path / "panorama.png", size=(2_000, 8))  # 250:1 is still fine (29 MP at 340 px)
    teacher = create_teacher("classical")
    batches = list(iter_image_batches([strip, wide], teacher.transform, 2, 0, min_shorter=340))
    assert [len(b.indices) for b in batches] == [1] and "too elongated" in str(batches[0].errors[0])


# ---------------------------------------------------------------------------------------------------------
# unreadable inputs: one rule (skip + report; fail only when nothing could be done), the right advice


def _unprivileged(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``args`` so that file permissions apply (root reads everything: :func:`unprivileged_cmd`)."""
    cmd, env = unprivileged_cmd(args), attiqa_env({"COLUMNS": "200"})  # the code under test, in the child too
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture()
def locked(tmp_path):
    d = tmp_path / "photos"
    _png(d / "good.png", seed=1)
    _png(d / "locked.png", seed=2)
    _png(d / "sub" / "hidden_by_folder.png", seed=3)
    (d / "gone.png").symlink_to(tmp_path / "deleted.png")  # a broken link
    os.chmod(d / "locked.png", 0)
    os.chmod(d / "sub", 0)
    yield d
    os.chmod(d / "sub", 0o755)
    os.chmod(d / "locked.png", 0o644)


def test_unreadable_files_and_folders_are_reported_with_the_right_fix(locked):

    code = (
        "import sys\n"
        "from attiqa.io.images import discover_images, load_image\n"
        "from attiqa.errors import ImageLoadError\n"
        "for p in discover_images(sys.argv[1:]):\n"
        "    try:\n"
        "        load_image(p); print('ok', p)\n"
        "    except ImageLoadError as e:\n"
        "        print('skip', e)\n"
    )
    proc = _unprivileged([sys.executable, "-c", code, "photos"], locked.parent)
    lines = sorted(proc.stdout.splitlines())
    assert proc.returncode == 0, proc.stderr
    assert lines[0] == "ok photos/good.png"
    by_name = {ln.split()[1].rstrip(":"): ln for ln in lines[1:]}
    assert "broken link" in by_name["photos/gone.png"]
    assert "permission denied — give yourself read permission" in by_name["photos/locked.png"]
    assert "folder cannot be searched (permission denied)" in by_name["photos/sub"]
    assert not any("re-download" in ln for ln in lines)  # nothing here is a damaged download


@pytest.mark.parametrize("inputs", [["photos"], ["photos/good.png", "photos/locked.png", "photos/sub/x.png"]])
def test_score_skips_what_it_cannot_read_wherever_it_was_named(locked, inputs):

    cmd = [sys.executable, "-c", "from attiqa.cli import main; main()", "score", *inputs]
    proc = _unprivileged([*cmd, "--model", "classical", "--workers", "0"], locked.parent)
    assert proc.returncode == 0, proc.stderr
    assert "good.png" in proc.stdout and "Traceback" not in proc.stderr
    assert "locked.png: permission denied" in proc.stderr
    assert ("photos/sub" in proc.stderr) and "not readable" not in proc.stderr
    # nothing readable at all: the command fails, naming the reason
    proc = _unprivileged([*cmd[:4], "photos/locked.png", "--model", "classical"], locked.parent)
    assert proc.returncode != 0 and "permission denied" in proc.stderr


def test_label_and_degrade_fail_in_one_line_when_nothing_could_be_read(locked):

    main = [sys.executable, "-c", "from attiqa.cli import main; main()"]
    proc = _unprivileged([*main, "label", "photos/locked.png", "photos/sub", "--workers", "0"], locked.parent)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "no image could be labelled (2 unreadable)" in proc.stderr
    proc = _unprivileged([*main, "degrade", "photos/locked.png", "--out", "deg"], locked.parent)
    assert proc.returncode == 2 and "no source image could be read" in proc.stderr
    proc = _unprivileged([*main, "degrade", "photos", "--out", "deg", "--levels", "1"], locked.parent)
    assert proc.returncode == 0 and "skipped: photos/locked.png: permission denied" in proc.stderr


def test_a_moved_collection_resumes_under_the_same_names(tmp_path):
    from attiqa.distortions import write_graded_set

    files = [_png(tmp_path / "old/A/x.jpg", seed=1), _png(tmp_path / "old/B/x.jpg", seed=2)]
    out = tmp_path / "out"
    assert len(write_graded_set(files, out, ["gaussian_blur"], [1]).written) == 4
    (tmp_path / "old").rename(tmp_path / "new")
    moved = [tmp_path / "new/A/x.jpg", tmp_path / "new/B/x.jpg"]
    res = write_graded_set(moved, out, ["gaussian_blur"], [1])
    assert (len(res.written), len(res.existing)) == (0, 4) and len(list(out.glob("*.png"))) == 4


# ---------------------------------------------------------------------------------------------------------
# the same classes in isp_env: a checkpoint swap killed at the wrong moment, output names that collide


def test_isp_checkpoint_survives_a_kill_between_the_two_renames(tmp_path):
    pytest.importorskip("stable_baselines3")
    from isp_env.policy_files import find_state

    state = tmp_path / "state"
    # save_state: write state.tmp (state.json last), rename state -> state.old, remove state.old, rename
    # state.tmp -> state. A kill after the removal of the old copy left only state.tmp, which was ignored.
    (tmp_path / "state.tmp").mkdir()
    (tmp_path / "state.tmp" / "state.json").write_text('{"num_timesteps": 64}')
    assert find_state(state) == tmp_path / "state.tmp"
    (tmp_path / "state.old").mkdir()
    (tmp_path / "state.old" / "state.json").write_text('{"num_timesteps": 32}')
    assert find_state(state) == tmp_path / "state.tmp"  # the newer of the two
    (tmp_path / "state.tmp" / "state.json").unlink()  # an unfinished temp folder is never used
    assert find_state(state) == tmp_path / "state.old"


def test_isp_output_names_of_two_raws_of_one_shot_differ(tmp_path):
    from isp_env.run import image_key

    raws = tmp_path / "raws"
    for name in ("IMG_1.CR2", "IMG_1.dng", "IMG_2.dng", "IMG_2.jpg"):
        (raws / "a").mkdir(parents=True, exist_ok=True)
        (raws / "a" / name).write_bytes(b"x")
    keys = {n: image_key(raws / "a" / n, raws) for n in ("IMG_1.CR2", "IMG_1.dng", "IMG_2.dng")}
    assert keys == {"IMG_1.CR2": "a__IMG_1.CR2", "IMG_1.dng": "a__IMG_1.dng", "IMG_2.dng": "a__IMG_2"}
    odd = raws / os.fsdecode(b"caf\xe9.dng")
    try:
        odd.write_bytes(b"x")
    except (OSError, UnicodeEncodeError):
        return
    assert image_key(odd, raws).encode("utf-8") == b"caf_"  # reports are UTF-8


def test_genbench_keeps_two_checkpoints_with_one_file_name_apart(tmp_path):
    from genbench.manifest import load_pairs, write_manifest
    from genbench.metric_scoring import score_run
    from genbench.run_scores import load_metric_scores, metric_slug

    run = tmp_path / "run"
    _png(run / "images/a.png", size=(96, 64), seed=1)
    _png(run / "images/b.png", size=(96, 64), seed=2)
    write_manifest(run, [{"pair_id": "p0", "image_a": "images/a.png", "image_b": "images/b.png"}])
    pairs = load_pairs(run)
    shipped = Path(attiqa.__file__).parent / "data" / "models" / "attiqa-default"
    ckpts = []
    for d in ("koniq", "clive"):  # e.g. runs/koniq/finetune/best.safetensors and runs/clive/...
        (tmp_path / d).mkdir()
        for ext in (".safetensors", ".json"):
            shutil.copy(shipped.with_suffix(ext), tmp_path / d / f"best{ext}")
        ckpts.append(str(tmp_path / d / "best.safetensors"))
    first = score_run(run, pairs, ckpts[0], num_workers=0)
    second = score_run(run, pairs, ckpts[1], num_workers=0)
    assert first.metric == "best" and second.metric.startswith("best-") and not second.error
    assert (second.scored, second.kept) == (2, 0)  # scored, not the first checkpoint's rows "kept"
    assert [metric_slug(c, run) for c in ckpts] == [first.metric, second.metric]  # stable
    assert {m.name for m in load_metric_scores(run, ckpts)} == {first.metric, second.metric}


def test_preferences_that_are_not_utf8_are_one_line(tmp_path):
    from genbench.agreement import read_votes_csv

    (tmp_path / "prefs.csv").write_bytes(b"pair_id,choice\n\xff\xfe,a\n")
    with pytest.raises(AttiqaError, match="not a UTF-8 text file — save it as UTF-8"):
        read_votes_csv(tmp_path / "prefs.csv")
