"""Synthetically distorted datasets: KADID-10k, LIVE (Release 2), CSIQ, TID2013, PIPAL.

These are full-reference datasets; the reference image goes to ``item.meta["ref"]`` and the distortion
to ``item.meta["distortion"]`` where the score file says them. They are not in the paper's tables (it
evaluates on in-the-wild data) but are the usual sanity checks for an IQA toolkit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from attiqa.datasets.base import DatasetInfo, IQADataset, RawRecord, TargetInfo
from attiqa.datasets.readers import (
    CaseInsensitiveDir,
    load_mat,
    mat_numbers,
    mat_strings,
    mat_var,
    need_file,
    no_score_file,
    read_table,
    to_float,
)
from attiqa.errors import AttiqaError


def index_files(folders: Iterable[Path]) -> dict[str, Path]:
    """Lower-cased file name -> path over the given folders (recursive): for layouts that vary between
    releases (PIPAL's Train_Dis vs Distortion_1..4) and case mismatches (CSIQ, TID2013)."""
    idx: dict[str, Path] = {}
    for d in folders:
        if d.is_dir():
            for p in sorted(d.rglob("*")):
                if p.is_file():
                    idx.setdefault(p.name.lower(), p)
    return idx


# --------------------------------------------------------------------------------------------------
# KADID-10k

_KADID_LAYOUT = """  ROOT/dmos.csv         (dist_img,ref_img,dmos,var)
  ROOT/images/<dist_img> and ROOT/images/<ref_img>   (e.g. I01_01_01.png, I01.png)"""


class KADID10k(IQADataset):
    """KADID-10k (Lin, Hosu & Saupe, 2019): 81 references x 25 distortions x 5 levels = 10,125 images.

    Score file: the official ``dmos.csv``, columns ``dist_img, ref_img, dmos, var`` (names from the
    dataset's documentation — the file itself is not available offline; the image names and values
    were checked against the copy the ``iqadataset`` package redistributes).

    Direction — decided and documented: the column is called ``dmos`` but holds the mean of
    degradation-category ratings (DCR) on 1-5, where 5 = "imperceptible" and 1 = "very annoying", so
    HIGHER IS BETTER and nothing is flipped. This matches the KADID-10k paper (DCR scale), the
    ``iqadataset`` package (which stores it as a plain score) and the data: within each reference and
    distortion, the score falls as the level rises (I01 Gaussian blur: 4.57, 4.33, ... for levels 1,
    2, ...; tests/test_datasets.py checks this over all 2,025 groups). ``var`` goes to ``meta``.
    """

    info = DatasetInfo(
        name="kadid10k",
        full_name="KADID-10k (10,125 synthetically distorted images)",
        kind="synthetic",
        targets={
            "mos": TargetInfo("dmos", (1.0, 5.0), True, "DCR mean (named 'dmos'), 1-5, higher is better")
        },
        default_target="mos",
        score_files=("dmos.csv",),
        layout=_KADID_LAYOUT,
        official_split=None,
        citation="Lin, Hosu & Saupe, KADID-10k: A Large-scale Artificially Distorted IQA Database, "
        "QoMEX 2019",
        url="https://database.mmsp-kn.de/kadid-10k-database.html",
        verified=False,
        images="unzip kadid10k.zip and pass its kadid10k/ folder (dmos.csv beside images/)",
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        t = read_table(path)
        dist, ref, dmos = t.column("dist_img"), t.column("ref_img"), t.column("dmos")
        var = t.column("var", required=False)
        img = self.root / "images"
        out = []
        for i, r in t.numbered():
            m = re.match(r"I\d+_(\d+)_(\d+)", r[dist], re.IGNORECASE)
            meta = {"ref": str(img / r[ref])}
            if m:
                meta.update(distortion=m.group(1), level=str(int(m.group(2))))
            if var:
                meta["var"] = r[var]
            out.append(RawRecord(img / r[dist], {"mos": to_float(r[dmos], f"{path}:{i}")}, meta=meta))
        return out


# --------------------------------------------------------------------------------------------------
# LIVE Release 2

LIVE_FOLDERS: tuple[tuple[str, int], ...] = (
    ("jp2k", 227),
    ("jpeg", 233),
    ("wn", 174),
    ("gblur", 174),
    ("fastfading", 174),
)
"""Order and size of the image folders that ``dmos``/``orgs`` (982 entries) index, as in the release."""

_LIVE_LAYOUT = """  ROOT/dmos.mat             (dmos, orgs: 1x982; orgs==1 marks reference copies, dropped)
  ROOT/dmos_realigned.mat   (optional: dmos_new, orgs, dmos_std — target dmos_realigned)
  ROOT/refnames_all.mat     (optional: refnames_all, reference file name per entry)
  ROOT/jp2k/img1.bmp..img227.bmp, jpeg/ (233), wn/ (174), gblur/ (174), fastfading/ (174), refimgs/"""


class LIVE(IQADataset):
    """LIVE Image Quality Assessment Database Release 2 (Sheikh et al., 2006): 779 distorted images.

    Score files: the official MATLAB files. ``dmos.mat`` holds ``dmos`` and ``orgs`` for 982 entries
    in the folder order of :data:`LIVE_FOLDERS` (imgN.bmp, N from 1 within each folder); entries with
    ``orgs == 1`` are the references' copies and are dropped (779 remain). ``dmos_realigned.mat``
    (``dmos_new``, ``orgs``, ``dmos_std``) gives target ``dmos_realigned``. DMOS: lower is better,
    nominally 0-100 (the files' values fall slightly outside it at both ends, so a flipped score may be a
    little below 0 or above 100), flipped to ``100 - dmos``. The variable names and the folder order are
    from the release's readme, and pyiqa's preparation script reads the files so; the files could not be
    opened offline (the per-folder counts of non-reference images were checked against ``iqadataset``).
    """

    info = DatasetInfo(
        name="live",
        full_name="LIVE IQA Release 2 (779 distorted images)",
        short="LIVE",
        kind="synthetic",
        targets={
            "dmos": TargetInfo("dmos (dmos.mat)", (0.0, 100.0), False, "DMOS, lower is better"),
            "dmos_realigned": TargetInfo(
                "dmos_new (dmos_realigned.mat)", (0.0, 100.0), False, "realigned DMOS, lower is better"
            ),
        },
        default_target="dmos",
        score_files=("dmos.mat", "dmos_realigned.mat", "refnames_all.mat"),
        layout=_LIVE_LAYOUT,
        official_split=None,
        citation="Sheikh, Sabir & Bovik, A Statistical Evaluation of Recent Full Reference Image Quality "
        "Assessment Algorithms, IEEE TIP 2006",
        url="https://live.ece.utexas.edu/research/quality/subjective.htm",
        verified=False,
        images="unzip the release (databaserelease2) and pass the folder holding jp2k/, jpeg/, wn/, gblur/, "
        "fastfading/ and refimgs/ beside dmos.mat",
    )
    records_depend_on_target = True

    def read_records(self) -> list[RawRecord]:
        if self.target == "dmos_realigned":
            path = need_file(self.root, ("dmos_realigned.mat",), self.name, self.info.layout)
            mat = load_mat(path)
            dmos = mat_numbers(mat_var(mat, path, "dmos_new"))
        else:
            path = need_file(self.root, ("dmos.mat",), self.name, self.info.layout)
            mat = load_mat(path)
            dmos = mat_numbers(mat_var(mat, path, "dmos"))
        orgs = mat_numbers(mat_var(mat, path, "orgs"))
        total = sum(n for _, n in LIVE_FOLDERS)
        if len(dmos) != total or len(orgs) != total:
            raise AttiqaError(f"{path}: expected {total} entries (LIVE Release 2), found {len(dmos)}")
        refs: list[str] = []
        ref_p = self.root / "refnames_all.mat"
        if ref_p.is_file():
            refs = mat_strings(mat_var(load_mat(ref_p), ref_p, "refnames_all"))
        out, k = [], 0
        for folder, n in LIVE_FOLDERS:
            for j in range(1, n + 1):
                if orgs[k] != 1:
                    meta = {"distortion": folder}
                    if len(refs) == total:
                        meta["ref"] = str(self.root / "refimgs" / refs[k])
                    out.append(
                        RawRecord(self.root / folder / f"img{j}.bmp", {self.target: dmos[k]}, meta=meta)
                    )
                k += 1
        return out


# --------------------------------------------------------------------------------------------------
# CSIQ

_CSIQ_TYPES: dict[str, tuple[str, str]] = {
    # normalised dst_type -> (folder, token in the file name): dst_imgs/<folder>/<image>.<token>.<lev>.png
    "noise": ("awgn", "AWGN"),
    "awgn": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg2000": ("jpeg2000", "jpeg2000"),
    "jp2k": ("jpeg2000", "jpeg2000"),
    "fnoise": ("fnoise", "fnoise"),
    "pinknoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "gblur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}

_CSIQ_LAYOUT = """  ROOT/csiq.DMOS.xlsx   (sheet all_by_image: image,dst_idx,dst_type,dst_lev,dmos_std,dmos;
                        a CSV export with the same columns, csiq.DMOS.csv, is accepted too)
  ROOT/dst_imgs/<type>/<image>.<TYPE>.<lev>.png  (awgn/1600.AWGN.1.png, jpeg2000/1600.jpeg2000.1.png, ...)
  ROOT/src_imgs/<image>.png"""


class CSIQ(IQADataset):
    """CSIQ (Larson & Chandler, 2010): 30 references x 6 distortions x 4-5 levels = 866 images.

    Score file: ``csiq.DMOS.xlsx`` as distributed, read by column name from the first sheet row that
    has ``image``, ``dst_type``, ``dst_lev`` and ``dmos`` (the official sheet starts with title rows);
    needs openpyxl (a CSV export is read without it). Not verifiable offline: the sheet layout and the
    ``dst_type`` spellings (noise, jpeg, jpeg 2000, f noise, blur, contrast) are from the release as we
    know it; file names are matched case-insensitively, because copies differ in the folder case.
    DMOS in 0-1, lower is better, flipped to ``1 - dmos``.
    """

    info = DatasetInfo(
        name="csiq",
        full_name="CSIQ (866 synthetically distorted images)",
        kind="synthetic",
        targets={"dmos": TargetInfo("dmos", (0.0, 1.0), False, "DMOS 0-1, lower is better")},
        default_target="dmos",
        score_files=("csiq.DMOS.xlsx", "csiq.DMOS.csv"),
        layout=_CSIQ_LAYOUT,
        official_split=None,
        citation="Larson & Chandler, Most Apparent Distortion: Full-Reference Image Quality Assessment and "
        "the Role of Strategy, J. Electronic Imaging 2010",
        url="https://s2.smu.edu/~eclarson/csiq.html",
        verified=False,
        images="unzip dst_imgs.zip (and src_imgs.zip) into ROOT beside csiq.DMOS.xlsx: ROOT/dst_imgs/awgn/…",
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        t = read_table(path, header_has=("image", "dst_type", "dst_lev", "dmos"), sheet="all_by_image")
        image, dtype, lev, dmos = (
            t.column("image"),
            t.column("dst_type"),
            t.column("dst_lev"),
            t.column("dmos"),
        )
        dst = self.root / "dst_imgs"
        idx = index_files([dst])
        out = []
        for i, r in t.numbered():
            img = str(r[image]).strip()
            if img.endswith(".0"):  # numeric cells come back as floats from Excel
                img = img[:-2]
            key = re.sub(r"[\s_.-]", "", str(r[dtype]).lower())
            if key not in _CSIQ_TYPES:
                raise AttiqaError(
                    f"{path}:{i}: unknown dst_type {r[dtype]!r} (known: {', '.join(_CSIQ_TYPES)})"
                )
            folder, token = _CSIQ_TYPES[key]
            level = int(to_float(r[lev], f"{path}:{i}"))
            fname = f"{img}.{token}.{level}.png"
            p = idx.get(fname.lower(), dst / folder / fname)
            meta = {
                "distortion": folder,
                "level": str(level),
                "ref": str(self.root / "src_imgs" / f"{img}.png"),
            }
            out.append(RawRecord(p, {"dmos": to_float(r[dmos], f"{path}:{i}")}, meta=meta))
        return out


# --------------------------------------------------------------------------------------------------
# TID2013

_TID_LAYOUT = """  ROOT/mos_with_names.txt           (lines "<MOS> <name>", e.g. "5.51429 I01_01_1.bmp")
  ROOT/distorted_images/<name>      (file-name case may differ: i01_01_1.bmp)
  ROOT/reference_images/I01.BMP ..."""


class TID2013(IQADataset):
    """TID2013 (Ponomarenko et al., 2015): 25 references x 24 distortions x 5 levels = 3,000 images.

    Score file: the official ``mos_with_names.txt``: no header, one ``<MOS> <file name>`` pair per line
    (so fields are by position; the format is from the release's readme — the file is not available
    offline — and the names and scores were checked against the copy ``iqadataset`` redistributes).
    MOS 0-9 (observed 0.24-7.21), higher is better. The list writes ``I01_01_1.bmp`` while the
    archive holds ``i01_01_1.bmp``: names are resolved case-insensitively.
    """

    info = DatasetInfo(
        name="tid2013",
        full_name="TID2013 (3,000 synthetically distorted images)",
        kind="synthetic",
        targets={"mos": TargetInfo("MOS (1st field)", (0.0, 9.0), True, "MOS 0-9")},
        default_target="mos",
        score_files=("mos_with_names.txt",),
        layout=_TID_LAYOUT,
        official_split=None,
        citation="Ponomarenko et al., Image Database TID2013: Peculiarities, Results and Perspectives, "
        "Signal Processing: Image Communication 2015",
        url="https://www.ponomarenko.info/tid2013.htm",
        verified=False,
        images="unpack tid2013.rar and pass the folder holding distorted_images/ beside mos_with_names.txt",
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        dis = CaseInsensitiveDir(self.root / "distorted_images")
        ref = CaseInsensitiveDir(self.root / "reference_images")
        out = []
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise AttiqaError(f"{path}:{i}: expected '<MOS> <file name>', got {line.strip()!r}")
            mos, name = to_float(parts[0], f"{path}:{i}"), parts[1]
            m = re.match(r"(i\d+)_(\d+)_(\d+)", name, re.IGNORECASE)
            meta = {}
            if m:
                meta = {
                    "ref": str(ref(f"{m.group(1).upper()}.BMP")),
                    "distortion": m.group(2),
                    "level": m.group(3),
                }
            out.append(RawRecord(dis(name), {"mos": mos}, meta=meta))
        return out


# --------------------------------------------------------------------------------------------------
# PIPAL

_PIPAL_LAYOUT = """  ROOT/Train_Label/A0001.txt ... A0200.txt   (lines "<image name>,<ELO score>", no header)
  ROOT/Train_Dis/<image name>   (or ROOT/Distortion_1 .. Distortion_4/, as the download splits it)
  ROOT/Train_Ref/A0001.bmp ...
  or the layout of the authors' README: ROOT/training/MOS_Scores_train/*.txt, training/Reference_train/,
  training/Distortion/Distortion_1..4/ (ROOT may be training/ itself)"""

_PIPAL_LABELS = ("Train_Label", "MOS_Scores_train", "training/MOS_Scores_train")
_PIPAL_IMAGES = ("Train_Dis", "Distortion*", "training/Distortion*")
_PIPAL_REFS = ("Train_Ref", "Reference_train", "training/Reference_train")


class PIPAL(IQADataset):
    """PIPAL training set (Jinjin et al., 2020; NTIRE 2021/22 IQA challenge): 200 references, 23,200
    distorted images incl. GAN-based restoration outputs, with ELO scores (higher is better).

    Score files: one ``.txt`` per reference, lines ``name,score`` without a header (fields by position;
    the authors' loader, HaomingCai/PIPAL-dataset ``data/data_util.py``, splits each line at the comma
    the same way; names and scores were checked against the copy ``iqadataset`` redistributes). Two
    layouts are in use: the NTIRE challenge's ``Train_Label/``, ``Train_Ref/``, ``Train_Dis/`` (the
    distorted images sometimes in ``Distortion_1..4/``), and the one the authors' README draws,
    ``training/MOS_Scores_train/``, ``training/Reference_train/``, ``training/Distortion/Distortion_1..4/``;
    both are read (the second from that README only: no copy of it could be checked). Distorted images
    are found by name anywhere under those folders. The ELO range is nominal: the training labels span
    about 917-1836; we use 900-1900.
    """

    info = DatasetInfo(
        name="pipal",
        full_name="PIPAL (training set, 23,200 images, ELO scores)",
        kind="synthetic",
        targets={"elo": TargetInfo("2nd field of Train_Label/*.txt", (900.0, 1900.0), True, "ELO score")},
        default_target="elo",
        score_files=tuple(f"{d}/*.txt" for d in _PIPAL_LABELS),
        layout=_PIPAL_LAYOUT,
        official_split="the challenge's train/val/test (only the training labels are public)",
        citation="Jinjin et al., PIPAL: a Large-Scale Image Quality Assessment Dataset for Perceptual "
        "Image Restoration, ECCV 2020",
        url="https://github.com/HaomingCai/PIPAL-dataset",
        verified=False,
        images="unpack the training images (Train_Dis, or Distortion_1..4) beside the label folder in ROOT",
    )

    def source_files(self) -> list[Path]:
        return sorted(p for d in _PIPAL_LABELS for p in (self.root / d).glob("*.txt"))

    def read_records(self) -> list[RawRecord]:
        label_dir = next((self.root / d for d in _PIPAL_LABELS if any((self.root / d).glob("*.txt"))), None)
        if label_dir is None:
            first = tuple(f"{d}/A0001.txt" for d in _PIPAL_LABELS)
            raise no_score_file(self.root, first, self.name, self.info.layout)
        files = sorted(label_dir.glob("*.txt"))
        folders = [d for pattern in _PIPAL_IMAGES for d in sorted(self.root.glob(pattern)) if d.is_dir()]
        idx = index_files(folders)
        ntire = label_dir.name == "Train_Label"  # else the README's layout: its folders beside the labels
        home = self.root / "Train_Dis" if ntire else label_dir.parent / "Distortion"  # where a missing one is
        ref_dir = self.root / "Train_Ref" if ntire else label_dir.parent / "Reference_train"
        out = []
        for f in files:
            for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                parts = [p.strip() for p in line.split(",")]
                if len(parts) < 2:
                    raise AttiqaError(f"{f}:{i}: expected '<image name>,<score>', got {line.strip()!r}")
                name = parts[0]
                p = idx.get(name.lower(), home / name)
                meta = {"ref": str(ref_dir / f"{name.split('_')[0]}.bmp")}
                out.append(RawRecord(p, {"elo": to_float(parts[1], f"{f}:{i}")}, meta=meta))
        return out
