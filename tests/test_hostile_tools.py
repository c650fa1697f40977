"""A hostile user's pass over `attiqa bench` / `train`, `isp-tune` and `genbench` (docs/robustness.md):
byte-identical images split across train and test, control characters in printed names, and the rest below.
Every fixture is generated here; each test failed before its fix."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from helpers import AGIQA3K_HEADER, attiqa_cmd, attiqa_env, run_attiqa, run_genbench, tiny_train_config
from PIL import Image
from typer.testing import CliRunner

from attiqa.errors import ConfigError
from attiqa.io.tables import ENCODING, ERRORS, read_cell

runner = CliRunner()


def _noise_images(folder: Path, n: int, size=(48, 40)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        p = folder / f"img{i:02d}.png"
        Image.fromarray(arr).save(p)
        out.append(p)
    return out


# ---------------------------------------------------------------------------------------------------------
# attiqa bench: a scraped set's byte-identical copies under other names must not straddle a split


def _set_with_copies(root: Path) -> Path:
    """10 distinct images + 2 byte-identical copies under other names (and other prompts), a prompt column."""
    images = _noise_images(root / "images", 10)
    shutil.copyfile(images[0], root / "images" / "copy_of_0.png")
    shutil.copyfile(images[3], root / "images" / "copy_of_3.png")
    rows = [(p.name, f"prompt {i // 2}", 1.0 + i * 0.3) for i, p in enumerate(images)]
    rows += [("copy_of_0.png", "another prompt", 1.1), ("copy_of_3.png", "a third prompt", 2.0)]
    with open(root / "mos.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "prompt", "mos"])
        w.writerows(rows)
    return root / "mos.csv"


def test_byte_identical_images_stay_on_one_side_of_every_bench_split(tmp_path):
    from attiqa.bench_splits import group_keys, random_splits, split_groups
    from attiqa.datasets import get_dataset

    ds = get_dataset("folder", _set_with_copies(tmp_path / "d"))
    names = [Path(it.image).name for it in ds.items]
    pairs = [(names.index("img00.png"), names.index("copy_of_0.png")), (names.index("img03.png"),
             names.index("copy_of_3.png"))]  # fmt: skip
    for group_by in (None, "prompt"):
        before = group_keys(ds, group_by)  # what the splits used before: copies on both sides for some seeds
        old = random_splits(len(ds), 20, 0, groups=before)
        assert any(set(pair) & set(sp.train) and set(pair) & set(sp.test) for sp in old for pair in pairs)
        groups, n_copies = split_groups(ds, group_by)
        assert n_copies == 2 and groups is not None
        for sp in random_splits(len(ds), 20, 0, groups=groups):
            for a, b in pairs:
                assert (a in sp.test) == (b in sp.test), (group_by, sp.name)
            if group_by == "prompt":  # every prompt group still on one side
                assert not {before[i] for i in sp.train} & {before[i] for i in sp.test}
    # a set without copies splits exactly as before
    (tmp_path / "d" / "images" / "copy_of_0.png").unlink()
    (tmp_path / "d" / "images" / "copy_of_3.png").unlink()
    _noise_images(tmp_path / "d" / "images", 12)  # the two names now hold other content: no copies
    for src, dst in ((10, "copy_of_0.png"), (11, "copy_of_3.png")):
        (tmp_path / "d" / "images" / f"img{src:02d}.png").rename(tmp_path / "d" / "images" / dst)
    ds = get_dataset("folder", tmp_path / "d" / "mos.csv")
    assert split_groups(ds, None) == (None, 0)
    assert split_groups(ds, "prompt") == (group_keys(ds, "prompt"), 0)


def test_bench_with_byte_identical_copies_says_so_and_keeps_them_together(tmp_path):
    from attiqa.cli.app import app

    mos = _set_with_copies(tmp_path / "d")
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "backbone: tiny\npretrained_backbone: false\nhead_hidden: 8\nmos_hidden: 8\nepochs: 1\n"
        "batch_size: 6\nresize_shorter: 40\ncrop_size: 32\nnum_workers: 0\ndevice: cpu\n"
    )
    out = tmp_path / "b"
    args = ["bench", "single", "-d", f"mine:folder={mos}", "-c", str(cfg), "-n", "3", "--group-by", "none"]
    r = runner.invoke(app, [*args, "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "2 image(s) repeat another one" in r.output
    for split in sorted((out / "single" / "mine").iterdir()):
        side = {Path(x["image"]).name: x["split"] for x in csv.DictReader((split / "split.csv").open())}
        assert side["img00.png"] == side["copy_of_0.png"] and side["img03.png"] == side["copy_of_3.png"]
    doc = json.loads((out / "single.json").read_text())
    assert doc["datasets"][0]["identical_copies"] == 2
    assert {x["split_kind"] for x in doc["runs"]} == {"random"}  # still image-wise


def test_bench_finds_copies_once_per_dataset_and_resumes_with_the_same_splits(tmp_path, monkeypatch):
    """**Was**: the copy search (hashing every file that shares a size) and the dataset's groups were worked
    out again for every split draw and fraction. Now once per dataset; the splits are those drawn from the
    merged groups as before, so a rerun resumes every finished run."""
    from attiqa import (
        bench_splits,  # the splits' home (session 56: planned before torch by `bench`)
        protocols,
    )
    from attiqa.bench_setup import bench_dataset
    from attiqa.datasets import get_dataset

    ds = get_dataset("folder", _set_with_copies(tmp_path / "d"))
    merged, n_copies = bench_splits.split_groups(ds, None)
    assert n_copies == 2
    fractions = (0.5, 0.75)
    expected = [
        sp for fr in fractions for sp in bench_splits.fraction_splits(len(ds), fr, 2, 0, groups=merged)
    ]
    hashed: list[str] = []
    grouped: list[str] = []

    content_key, group_keys = bench_splits.content_key, bench_splits.group_keys  # the real ones, counted
    monkeypatch.setattr(bench_splits, "content_key", lambda p: hashed.append(str(p)) or content_key(p))
    monkeypatch.setattr(bench_splits, "group_keys", lambda d, *a: grouped.append(d.name) or group_keys(d, *a))
    cfg = {"backbone": "tiny", "pretrained_backbone": False, "head_hidden": 8, "mos_hidden": 8, "epochs": 1,
           "batch_size": 6, "resize_shorter": 40, "crop_size": 32, "num_workers": 0,
           "device": "cpu"}  # fmt: skip
    bench = [bench_dataset(ds, "mine")]
    kw = {"repeats": 2, "fractions": fractions, "group_by": None}
    first = protocols.run_protocol("data-efficient", bench, cfg, tmp_path / "b", **kw)
    assert grouped == ["folder"]  # was 4: the check, the copy merge, once per fraction
    assert len(hashed) == len(set(hashed)) >= 4  # each file hashed once, the two pairs among them
    names = [Path(it.image).name for it in ds.items]
    for sp, rec in zip(expected, first.runs, strict=True):
        assert rec["split"] == sp.name and rec["split_kind"] == "fraction"
        rows = csv.DictReader((tmp_path / "b" / "data-efficient" / "mine" / sp.name / "split.csv").open())
        assert {Path(x["image"]).name for x in rows if x["split"] == "test"} == {names[i] for i in sp.test}
    done = sorted((tmp_path / "b" / "data-efficient" / "mine").glob("*/run.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    again = protocols.run_protocol("data-efficient", bench, cfg, tmp_path / "b", **kw)
    assert again.runs == first.runs and [p.stat().st_mtime_ns for p in done] == stamps  # resumed, none rerun


# ---------------------------------------------------------------------------------------------------------
# attiqa score: names with control characters in the printed table


def test_control_characters_in_names_are_escaped_in_the_table_not_in_the_csv(tmp_path):
    """**Was**: a name with a newline printed over two rows of the piped table, an ESC sequence in a name
    reached the terminal as it is, a byte that is not UTF-8 came out raw."""
    folder = tmp_path / "imgs"
    _noise_images(folder, 1)
    src = folder / "img00.png"
    names = ["a\nb.png", "tab\there\x1b[31mred.png", os.fsdecode(b"caf\xe9.png"), "rtl\u202egnp.exe.png"]
    for name in names:
        shutil.copyfile(src, folder / name)
    out = tmp_path / "s.csv"
    for env in ({}, {"FORCE_COLOR": "1", "COLUMNS": "200"}):  # piped: plain lines; forced: rich's table
        cmd = attiqa_cmd("score", folder, "-m", "classical", "--workers", "0", "-o", out)
        res = subprocess.run(cmd, capture_output=True, timeout=300, env=attiqa_env(env))  # bytes
        assert res.returncode == 0, res.stderr
        table = res.stdout.decode("utf-8", "surrogateescape")
        for shown in ("a\\nb.png", "tab\\there\\x1b[31mred.png", "caf\\xe9.png", "rtl\\u202egnp.exe.png"):
            assert shown in table, table
        assert "\x1b[31mred" not in table and "\u202e" not in table and b"\xe9" not in res.stdout
        if not env:  # one line per image: header, title, 5 images, mean / min / max, the column note
            rows = [ln for ln in table.splitlines() if ln.rstrip().endswith(tuple("0123456789"))]
            assert len(rows) == 5 + 3, table
        with open(out, encoding=ENCODING, errors=ERRORS, newline="") as fh:  # the file keeps the true names
            assert {Path(read_cell(r[0])).name for r in list(csv.reader(fh))[1:]} == {"img00.png", *names}
        out.unlink()


def test_control_characters_in_a_skipped_name_stay_on_its_line(tmp_path):
    """**Was**: `attiqa score` and `attiqa eval` listed an unreadable `bad\\nname.png` over two lines (the
    name printed raw); the table escaped it already. Messages of several lines keep their newlines."""
    from attiqa.errors import ImageLoadError
    from attiqa.progress import plain_failure

    folder = tmp_path / "imgs"
    _noise_images(folder, 3)
    data = (folder / "img00.png").read_bytes()
    (folder / "bad\nname.png").write_bytes(data[: len(data) // 2])  # the header reads: found when decoded
    (folder / "mos.csv").write_text('image,mos\nimg00.png,1\nimg01.png,2\nimg02.png,3\n"bad\nname.png",4\n')
    shown = str(folder / "bad\\nname.png") + ": "
    env = {"ATTIQA_CACHE": str(tmp_path / "cache")}
    for args in (["score", folder], ["eval", "folder", "--root", folder, "-o", tmp_path / "e"]):
        res = run_attiqa(*args, "-m", "classical", "--workers", "0", "-q", env=env)
        assert res.returncode == 0, res.stderr
        listed = [ln.strip() for ln in res.stderr.splitlines() if "name.png" in ln]
        assert len(listed) == 1 and listed[0].startswith(shown), res.stderr
        assert not any(ln.startswith("name.png") for ln in res.stderr.splitlines()), res.stderr
    (folder / "bad\nname.png").write_bytes(b"not an image")  # refused before scoring: in the error's list
    res = run_attiqa("eval", "folder", "--root", folder, "-m", "classical", env=env)
    assert res.returncode == 2 and f"\n  {shown}not a recognised image format — " in res.stderr, res.stderr
    err = ImageLoadError(folder / "a\x1b[31m.png", "cannot identify image file", "check\nthe file")
    assert plain_failure(err) == f"{folder}/a\\x1b[31m.png: cannot identify image file — check\nthe file"


# ---------------------------------------------------------------------------------------------------------
# genbench import-agiqa3k: the root given as `.`, repeated rows


def _agiqa3k_layout(root: Path, images: Path, repeat: int = 0, nan: int = 0, conflict: int = 0) -> Path:
    """An AGIQA-3k folder (official data.csv columns) of 2 prompts x 4 images, its images in ``images``;
    ``repeat`` rows listed twice (the same row again), ``conflict`` rows listed again with another MOS,
    ``nan`` more rows without a finite MOS."""
    root.mkdir(parents=True)
    paths = _noise_images(images, 8)
    rows = [[p.name, f"prompt {i % 2}", "", "", "", f"{1 + 0.8 * (i // 2):.2f}", "0.5", "2.0", "0.5"]
            for i, p in enumerate(paths)]  # fmt: skip
    rows += [list(r) for r in rows[:repeat]]
    rows += [[r[0], r[1], "", "", "", "4.9", "0.5", "2.0", "0.5"] for r in rows[:conflict]]
    rows += [
        [paths[i].name, "prompt 9", "", "", "", v, "0.5", "2.0", "0.5"]
        for i, v in enumerate(["nan", "inf"][:nan])
    ]
    with open(root / "data.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(AGIQA3K_HEADER)
        w.writerows(rows)
    return root


def _imported_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    res = run_genbench("import-agiqa3k", _agiqa3k_layout(tmp_path / "agiqa", tmp_path / "agiqa"), "-o", run)
    assert res.returncode == 0, res.stderr
    return run


def test_import_agiqa3k_never_pairs_images_of_different_prompts(tmp_path, genbench_cli):
    """**Was**: a score file without a ``prompt`` column imported every image as one prompt "" (pairs
    across prompts, the opposite of the import's rule) without a word; so did rows with an empty prompt.
    Now the column is required (one line naming the file) and rows without a prompt are left out, counted."""
    root = _agiqa3k_layout(tmp_path / "agiqa", tmp_path / "agiqa")
    with open(root / "data.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for k, r in enumerate(rows[:3]):
        r["prompt"] = ["", "  ", ""][k]  # img00-img02: prompt 0, 1, 0 -> left out
    without = root.parent / "without"
    without.mkdir()
    for folder, cols in ((root, list(rows[0])), (without, [c for c in rows[0] if c != "prompt"])):
        with open(folder / "data.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        for p in root.glob("*.png"):
            if folder != root:
                shutil.copy(p, folder / p.name)
    res = genbench_cli("import-agiqa3k", without, "-o", tmp_path / "r0")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"{without / 'data.csv'}: no 'prompt' column" in " ".join(res.stderr.split())
    assert not (tmp_path / "r0" / "manifest.jsonl").exists()
    run = tmp_path / "run"
    res = genbench_cli("import-agiqa3k", root, "-o", run)
    assert res.returncode == 0, res.stderr
    assert "3 rows of the score file have an empty prompt: left out" in res.stderr
    records = [json.loads(ln) for ln in (run / "manifest.jsonl").read_text().splitlines()]
    names = {Path(r[f"image_{s}"]).name for r in records for s in "ab"}
    assert names == {f"img{i:02d}.png" for i in range(3, 8)} and {r["prompt"] for r in records} == {
        "prompt 0",
        "prompt 1",
    }
    assert len(records) == 1 + 3  # prompt 0: img04, img06; prompt 1: img03, img05, img07


def test_import_agiqa3k_from_dot_with_a_linked_image_folder(tmp_path, genbench_cli):
    """**Was**: `genbench import-agiqa3k .` (any relative ROOT) with ROOT/AGIQA-3K a link to the images —
    a layout the importer means to accept — refused every image as "outside the run's image folders"."""
    root = _agiqa3k_layout(tmp_path / "agiqa", tmp_path / "elsewhere" / "imgs")
    (root / "AGIQA-3K").symlink_to(tmp_path / "elsewhere" / "imgs")
    res = run_genbench("import-agiqa3k", ".", "-o", tmp_path / "run", cwd=root)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    # per prompt: 4 images (6 pairs), MOS 1.0 1.8 2.6 3.4 -> every pair >= 0.5 apart
    assert "12 pairs" in res.stderr
    assert genbench_cli("score", tmp_path / "run", "-m", "classical", "-w", "0").returncode == 0


def test_import_agiqa3k_leaves_out_repeated_rows_so_the_run_can_be_read(tmp_path, genbench_cli):
    """**Was**: a score file listing an image twice gave a run whose manifest repeats pair ids: `genbench
    score` / `agree` on it ended in "pair_id ... appears twice"; rows without a finite MOS were dropped
    without a word.
    **Was** (session 51): a repeat with another MOS was left out too, the first row's MOS kept — a guess
    `attiqa eval` refuses; now only exact repeats are counted once here
    (`test_genbench_agiqa3k_import_and_charts.py::test_import_agiqa3k_refuses_an_image_with_two_mos_as_eval_does`)."""
    root = _agiqa3k_layout(tmp_path / "agiqa", tmp_path / "agiqa", repeat=3, nan=2)
    run = tmp_path / "run"
    res = genbench_cli("import-agiqa3k", root, "-o", run)
    assert res.returncode == 0, res.stderr
    assert "3 rows of the score file repeat an earlier row (same image, same MOS): left out" in res.stderr
    assert "2 rows of the score file have no finite mos_quality" in res.stderr
    assert json.loads((run / "import.json").read_text())["repeated_rows"] == 3
    score = genbench_cli("score", run, "-m", "classical", "-w", "0")
    assert score.returncode == 0, score.stderr
    agree = genbench_cli("agree", run, "--metrics", "classical")
    assert agree.returncode == 0, agree.stderr


def test_import_agiqa3k_gives_images_sharing_a_stem_distinct_pair_ids(tmp_path, genbench_cli):
    """**Was**: pair ids were the two file stems, so `img00.png` and `img00.jpg` under one prompt gave every
    pair with a third image twice ("pair_id ... appears twice" in `score` / `agree`). Ids of images whose
    stem is their own stay as they were: a run resumes by pair id."""
    root = _agiqa3k_layout(tmp_path / "agiqa", tmp_path / "agiqa")
    plain_run = tmp_path / "plain"
    assert genbench_cli("import-agiqa3k", root, "-o", plain_run).returncode == 0
    before = [json.loads(ln)["pair_id"] for ln in (plain_run / "manifest.jsonl").read_text().splitlines()]
    assert "img00|img02" in before  # stems, as every earlier import wrote them
    Image.open(root / "img00.png").save(root / "img00.jpg")
    with open(root / "data.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["img00.jpg", "prompt 0", "", "", "", "4.80", "0.5", "2.0", "0.5"])
    run = tmp_path / "run"
    res = genbench_cli("import-agiqa3k", root, "-o", run)
    assert res.returncode == 0, res.stderr
    ids = [json.loads(ln)["pair_id"] for ln in (run / "manifest.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12 + 4  # prompt 0 now has 5 images: 10 pairs
    assert {"img00.png|img02", "img00.jpg|img02", "img00.jpg|img00.png"} <= set(ids)
    assert {i for i in before if "img00" not in i} <= set(ids)  # the other pairs keep their ids
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    agree = genbench_cli("agree", run, "--metrics", "classical")
    assert agree.returncode == 0, agree.stderr


# ---------------------------------------------------------------------------------------------------------
# attiqa train: sizes and widths a checkpoint cannot hold


def test_train_refuses_sizes_and_widths_its_checkpoint_could_not_hold(tmp_path):
    """**Was**: `resize_shorter: 20` trained and wrote a checkpoint that `attiqa score` then refused
    ("malformed model card — test_resize_shorter must be an integer in 32..4096"); `mos_hidden: 1000000000`
    ended in torch's "can't allocate memory" traceback; `resize_shorter: 60000` sat blowing every image up
    to 60,000 pixels."""
    from attiqa.cli.app import app

    for key, value in (("resize_shorter", 20), ("crop_size", 16), ("mos_hidden", 10**9),
                       ("resize_shorter", 60000)):  # fmt: skip
        cfg = tiny_train_config(tmp_path / f"{key}{value}", **{key: value})
        r = runner.invoke(app, ["train", "-c", str(cfg)])
        assert isinstance(r.exception, ConfigError), r.output  # run_app: one line, exit 2
        assert f"run.yaml: finetune.{key}: must be in [" in str(r.exception)
        assert not (tmp_path / f"{key}{value}" / "run").exists()  # refused before any work
    # the smallest view a checkpoint may hold trains, and its model scores
    cfg = tiny_train_config(tmp_path / "at_bound", resize_shorter=32, crop_size=32)
    r = runner.invoke(app, ["train", "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    ckpt = tmp_path / "at_bound" / "run" / "finetune" / "last.safetensors"
    scored = runner.invoke(
        app, ["score", str(tmp_path / "at_bound" / "set" / "images"), "-m", str(ckpt), "-w", "0"]
    )
    assert scored.exit_code == 0, scored.output


# ---------------------------------------------------------------------------------------------------------
# attiqa bench / eval folder: a spreadsheet's CSV from a decimal-comma locale


def test_a_semicolon_csv_with_decimal_commas_is_read(tmp_path):
    """**Was**: `image;mos` with `3,75` (what a spreadsheet in a decimal-comma locale exports; the reader
    sniffed the `;` for that very reason) failed on the first MOS cell; a name's own commas stay."""
    from attiqa.datasets import get_dataset

    images = _noise_images(tmp_path / "images", 4)
    shutil.copyfile(images[3], tmp_path / "images" / "a,b.png")
    (tmp_path / "mos.csv").write_text(
        "image;mos;rater_sd\n"
        + "".join(f"{p.name};{i},75;0,5\n" for i, p in enumerate(images[:3]))
        + "a,b.png;4,25e0;1\n"
    )
    ds = get_dataset("folder", tmp_path / "mos.csv")
    assert [(Path(it.image).name, it.mos) for it in ds.items] == [
        ("img00.png", 0.75), ("img01.png", 1.75), ("img02.png", 2.75), ("a,b.png", 4.25)
    ]  # fmt: skip
    assert "rater_sd" in ds.info.targets  # a numeric column: a target, not metadata


# ---------------------------------------------------------------------------------------------------------
# genbench agree: its report folder


def test_agree_refuses_a_file_name_or_the_scores_folder_as_its_report_folder(tmp_path, genbench_cli):
    """**Was**: `agree -o agreement.csv` made a folder of that name (after the bootstrap); `agree -o
    RUN/scores` put agreement.csv and per_pair.csv among the metric scores, and every later `agree`
    listed "agreement" and "per_pair" as metrics scoring no pair."""
    run = _imported_run(tmp_path)
    assert genbench_cli("score", run, "-m", "classical", "-w", "0").returncode == 0
    for out, said in ((run / "agreement.csv", "not a file"), (run / "scores", "is the run's scores folder")):
        res = genbench_cli("agree", run, "-o", out, "--bootstrap", "100")
        assert res.returncode == 2 and said in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert not (out / "agreement.csv").exists()
    res = genbench_cli("agree", run, "--bootstrap", "100")
    assert res.returncode == 0 and (run / "agreement" / "agreement.csv").is_file(), res.stderr
    # (no identity record: genbench's rows are keyed by manifest names, not paths — attiqa.scoring)
    assert sorted(p.name for p in (run / "scores").iterdir()) == ["classical.csv", "classical.json"]


# ---------------------------------------------------------------------------------------------------------
# isp-tune: a training raw cut short after a valid header


def test_isp_tune_reports_a_truncated_training_raw_by_its_own_reason(tmp_path, isp_raws):
    """A raw whose header reads but whose data is cut short passes the split's probe and fails when the
    teacher decodes it: skipped, listed in summary.json, the rest trained. **Was**: its reason read
    "no readable raw among the environment's files — FILE: LibRaw can't read it …" (the name twice)."""
    from helpers import quick_isp_tune

    from isp_env.cli import app

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws, teacher_raws=5, test_fraction="0")
    data = isp_raws[0].read_bytes()
    (raw_dir / "cut.dng").write_bytes(data[: len(data) // 2])
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    skipped = json.loads((out / "training.json").read_text())["skipped"]
    assert list(skipped) == [str(raw_dir / "cut.dng")]
    why = skipped[str(raw_dir / "cut.dng")]
    assert why.startswith(f"{raw_dir / 'cut.dng'}: LibRaw can't read it") and "no readable raw" not in why
    assert (out / "policy.safetensors").is_file()


# ---------------------------------------------------------------------------------------------------------
# genbench export-votes: an --out that is one of the run's own files


def test_export_votes_refuses_to_write_over_the_runs_own_files(tmp_path, genbench_cli):
    """**Was**: `export-votes RUN -o RUN/votes.sqlite` replaced the vote database with its CSV (every vote
    lost) and ended in a sqlite3 traceback; `-o RUN/manifest.jsonl` replaced the pairs."""
    from genbench.manifest import load_pairs
    from genbench.vote.store import VoteStore

    run = _imported_run(tmp_path)
    store = VoteStore(run / "votes.sqlite")
    for p in load_pairs(run)[:3]:
        store.add("rater1", p.pair_id, "a", "b")
    kept = {f: (run / f).read_bytes() for f in ("votes.sqlite", "manifest.jsonl", "prefs.csv")}
    for out in ("votes.sqlite", "manifest.jsonl", "prefs.csv", "."):
        res = genbench_cli("export-votes", run, "-o", run / out)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert len([ln for ln in res.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert {f: (run / f).read_bytes() for f in kept} == kept
    res = genbench_cli("export-votes", run)
    assert res.returncode == 0 and "3 votes from 1 rater" in res.stderr, res.stderr
    assert len((run / "votes.csv").read_text().splitlines()) == 4
