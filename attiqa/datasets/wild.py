"""Authentic ("in the wild") datasets: the paper's §4.1 — CLIVE, KonIQ-10k, SPAQ, FLIVE — BIQ2021, AVA."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attiqa.datasets.base import DatasetInfo, IQADataset, RawRecord, TargetInfo
from attiqa.datasets.readers import (
    find_image_dir,
    first_file,
    load_mat,
    mat_numbers,
    mat_strings,
    mat_var,
    need_file,
    no_score_file,
    read_csv,
    read_table,
    to_float,
)
from attiqa.errors import AttiqaError

# --------------------------------------------------------------------------------------------------
# KonIQ-10k

_KONIQ_LAYOUT = """  ROOT/koniq10k_distributions_sets.csv        (image_name,c1..c5,c_total,MOS,SD,set)
  ROOT/koniq10k_scores_and_distributions.csv  (image_name,c1..c5,c_total,MOS,SD,MOS_zscore)  [either or both]
      (each also read from the folder its zip unpacks to, ROOT/koniq10k_scores_and_distributions/, and
       the sets file from the GitHub repository's ROOT/metadata/)
  ROOT/1024x768/<image_name>                  (koniq10k_1024x768.zip; or 512x384/, resolution=512x384)"""


_KONIQ_SETS = ("koniq10k_distributions_sets.csv", "metadata/koniq10k_distributions_sets.csv")
_KONIQ_SCORES = (
    "koniq10k_scores_and_distributions.csv",
    "koniq10k_scores_and_distributions/koniq10k_scores_and_distributions.csv",
)


class KonIQ10k(IQADataset):
    """KonIQ-10k (Hosu et al., 2020): 10,073 in-the-wild photos, official training/validation/test sets.

    Score files, read by column name (either or both may be present):

    - ``koniq10k_distributions_sets.csv`` (verified on the distributed file): ``image_name``, vote
      distribution, ``MOS`` on the 1-100 (z-score rescaled) scale, ``SD``, and the official ``set``
      (training 7,058 / validation 1,000 / test 2,015) -> split train/val/test.
    - ``koniq10k_scores_and_distributions.csv`` (from the dataset page; its columns match the public
      loaders that read ``MOS`` and ``MOS_zscore`` by name; the file itself not verifiable offline):
      ``MOS`` is the raw 1-5 mean and ``MOS_zscore`` the 1-100 value.

    Each is also read where a copy keeps it: the scores file in ``koniq10k_scores_and_distributions/``
    (the folder an unzip tool makes of ``koniq10k_scores_and_distributions.zip``; a public loader reads
    it there), the sets file in ``metadata/`` (its place in the subpic/koniq repository).

    Targets: ``mos`` = the 1-100 value (the scale most papers report; default) and ``mos_1to5`` = the
    raw mean (only from the scores file). The paper (§4.1) uses random 80/20 splits for KonIQ, not the
    official sets; the split is carried along for users who want it (``attiqa eval --split test``).
    """

    info = DatasetInfo(
        name="koniq10k",
        full_name="KonIQ-10k (10,073 in-the-wild photos)",
        short="KonIQ",
        kind="authentic",
        targets={
            "mos": TargetInfo("MOS (sets file) / MOS_zscore (scores file)", (1.0, 100.0), True, "MOS, 1-100"),
            "mos_1to5": TargetInfo("MOS (scores file)", (1.0, 5.0), True, "raw mean opinion score, 1-5"),
        },
        default_target="mos",
        score_files=(*_KONIQ_SETS, *_KONIQ_SCORES),
        layout=_KONIQ_LAYOUT,
        official_split="`set` column: training 7,058 / validation 1,000 / test 2,015 (the paper uses 80/20)",
        citation="Hosu et al., KonIQ-10k: An Ecologically Valid Database for Deep Learning of Blind Image "
        "Quality Assessment, IEEE TIP 2020",
        url="https://database.mmsp-kn.de/koniq-10k-database.html",
        images="unzip koniq10k_1024x768.zip into ROOT (it makes ROOT/1024x768/); or koniq10k_512x384.zip "
        "with resolution=512x384",
    )

    def __init__(self, root: str | Path, target: str | None = None, resolution: str = "1024x768") -> None:
        super().__init__(root, target)
        self.resolution = resolution

    def read_records(self) -> list[RawRecord]:
        sets_p, scores_p = first_file(self.root, _KONIQ_SETS), first_file(self.root, _KONIQ_SCORES)
        if sets_p is None and scores_p is None:
            raise no_score_file(self.root, self.info.score_files, self.name, self.info.layout)
        values: dict[str, dict[str, float]] = {}
        split: dict[str, str] = {}
        order: list[str] = []
        if sets_p is not None:
            t = read_csv(sets_p)
            name, mos, st = t.column("image_name"), t.column("MOS"), t.column("set")
            for i, r in t.numbered():
                n = r[name]
                order.append(n)
                values[n] = {"mos": to_float(r[mos], f"{sets_p}:{i}")}
                split[n] = r[st]
        if scores_p is not None:
            t = read_csv(scores_p)
            name, mos = t.column("image_name"), t.column("MOS")
            z = t.column("MOS_zscore", required=False)
            for i, r in t.numbered():
                n = r[name]
                if n not in values:
                    order.append(n)
                    values[n] = {}
                values[n]["mos_1to5"] = to_float(r[mos], f"{scores_p}:{i}")
                if z is not None:
                    values[n].setdefault("mos", to_float(r[z], f"{scores_p}:{i}"))
        img_dir = find_image_dir(self.root, (self.resolution, "512x384", "1024x768", "images", ""), order)
        return [RawRecord(img_dir / n, values[n], split.get(n)) for n in order]


# --------------------------------------------------------------------------------------------------
# CLIVE

_CLIVE_LAYOUT = """  ROOT/Data/AllImages_release.mat   (variable AllImages_release: 1169x1 cell of file names)
  ROOT/Data/AllMOS_release.mat      (variable AllMOS_release: 1x1169 MOS, 0-100)
  ROOT/Data/AllStdDev_release.mat   (optional: AllStdDev_release)
  ROOT/Images/<name>                (the first 7 entries, the training images, are dropped)"""


class CLIVE(IQADataset):
    """LIVE In the Wild Image Quality Challenge (Ghadiyaram & Bovik, 2016): 1,162 photos, MOS 0-100.

    Score files: the official MATLAB files ``Data/AllImages_release.mat`` (``AllImages_release``) and
    ``Data/AllMOS_release.mat`` (``AllMOS_release``), matched by position (variable names from the
    release; the .mat files are not available offline — the MOS values were checked on the clive-dev
    subset); ``AllStdDev_release.mat``
    goes to ``meta`` when present. As is standard, the first 7 entries (the training images
    t1.bmp..t7.bmp, stored in Images/trainingImages/) are dropped, leaving 1,162. For the
    ``clive-dev`` subset that ships as ``mos.csv`` (image,original_name,mos,std), use the ``folder``
    adapter.
    """

    N_TRAINING_IMAGES = 7

    info = DatasetInfo(
        name="clive",
        full_name="LIVE In the Wild Image Quality Challenge (CLIVE / LIVEC, 1,162 photos)",
        short="CLIVE",
        kind="authentic",
        targets={"mos": TargetInfo("AllMOS_release", (0.0, 100.0), True, "MOS, 0-100")},
        default_target="mos",
        score_files=("Data/AllImages_release.mat", "Data/AllMOS_release.mat"),
        layout=_CLIVE_LAYOUT,
        official_split=None,
        citation="Ghadiyaram & Bovik, Massive Online Crowdsourced Study of Subjective and Objective "
        "Picture Quality, IEEE TIP 2016",
        url="https://live.ece.utexas.edu/research/ChallengeDB/",
        verified=False,
        images="unzip the release and pass its ChallengeDB_release/ folder (Data/ beside Images/)",
    )

    def read_records(self) -> list[RawRecord]:
        img_p = need_file(self.root, ("Data/AllImages_release.mat",), self.name, self.info.layout)
        mos_p = need_file(self.root, ("Data/AllMOS_release.mat",), self.name, self.info.layout)
        names = mat_strings(mat_var(load_mat(img_p), img_p, "AllImages_release"))
        mos = mat_numbers(mat_var(load_mat(mos_p), mos_p, "AllMOS_release"))
        if len(names) != len(mos):
            raise AttiqaError(f"{img_p}: {len(names)} image names but {len(mos)} MOS values in {mos_p}")
        std_p = self.root / "Data" / "AllStdDev_release.mat"
        std = (
            mat_numbers(mat_var(load_mat(std_p), std_p, "AllStdDev_release"))
            if std_p.is_file()
            else np.full(len(mos), np.nan)
        )
        k = self.N_TRAINING_IMAGES
        img_dir = self.root / "Images"
        return [
            RawRecord(img_dir / n, {"mos": float(m)}, meta={"std": f"{s:.6g}"})
            for n, m, s in zip(names[k:], mos[k:], std[k:], strict=True)
        ]


# --------------------------------------------------------------------------------------------------
# SPAQ

_SPAQ_XLSX = "Annotations/MOS and Image attribute scores.xlsx"
_SPAQ_LAYOUT = f"""  ROOT/{_SPAQ_XLSX}
      (columns: Image name, MOS, Brightness, Colorfulness, Contrast, Noisiness, Sharpness;
       a .csv with the same name and columns is accepted too)
  ROOT/TestImage/<Image name>    (or ROOT/SPAQ/TestImage/, as SPAQ.zip unpacks, or ROOT/Dataset/TestImage/)"""

_SPAQ_ATTRS = ("brightness", "colorfulness", "contrast", "noisiness", "sharpness")
_SPAQ_IMAGES = ("TestImage", "SPAQ/TestImage", "Dataset/TestImage")
"""Where copies hold the photos: the image archive (SPAQ.zip) unpacks with its own top folder beside
Annotations/ (ROOT/SPAQ/TestImage, as public loaders and READMEs have it); the ``iqadataset`` copy keeps them
in Dataset/TestImage. Was ROOT/TestImage only: "none of the 11125 images … is under ROOT"."""


class SPAQ(IQADataset):
    """SPAQ (Fang et al., 2020): 11,125 smartphone photos, MOS and five attribute scores (0-100).

    Score file: ``Annotations/MOS and Image attribute scores.xlsx`` as distributed with the dataset,
    read by column name (``Image name, MOS, Brightness, Colorfulness, Contrast, Noisiness,
    Sharpness``) with openpyxl (optional dependency: a clear error names it when missing; a CSV export
    with the same columns is read without it). The sheet itself could not be opened offline; two public
    conversions of it (pyiqa's meta-info CSV, a user's CSV export) have exactly this header, in this
    order. Targets: ``mos`` (default) and the five attributes; all are read as "higher is better" (for
    noisiness: higher = less noisy, as in attiqa's attribute convention — in those conversions the
    photos with the lowest MOS have low noisiness ratings too). Photos: ``_SPAQ_IMAGES``.
    """

    info = DatasetInfo(
        name="spaq",
        full_name="SPAQ (Smartphone Photography Attribute and Quality, 11,125 photos)",
        kind="authentic",
        targets={
            "mos": TargetInfo("MOS", (0.0, 100.0), True, "MOS, 0-100"),
            **{a: TargetInfo(a.capitalize(), (0.0, 100.0), True, f"{a} rating, 0-100") for a in _SPAQ_ATTRS},
        },
        default_target="mos",
        score_files=(_SPAQ_XLSX,),
        layout=_SPAQ_LAYOUT,
        official_split=None,
        citation="Fang et al., Perceptual Quality Assessment of Smartphone Photography, CVPR 2020",
        url="https://github.com/h4nwei/SPAQ",
        verified=False,
        images="put the photos' folder TestImage/ beside Annotations/ in ROOT",
    )

    def read_records(self) -> list[RawRecord]:
        csv_alt = str(Path(_SPAQ_XLSX).with_suffix(".csv"))
        path = need_file(self.root, (_SPAQ_XLSX, csv_alt), self.name, self.info.layout)
        t = read_table(path, header_has=("Image name", "MOS"))
        name = t.column("Image name", "Image_name", "image")
        cols = self.target_columns(t)
        names = [str(r[name]).strip() for r in t.rows]
        img_dir = find_image_dir(self.root, _SPAQ_IMAGES, names)
        return [
            RawRecord(img_dir / n, {k: to_float(r.get(c), f"{path}:{i}") for k, c in cols.items()})
            for n, (i, r) in zip(names, t.numbered(), strict=True)
        ]


# --------------------------------------------------------------------------------------------------
# FLIVE (PaQ-2-PiQ)

_FLIVE_LAYOUT = """\
  ROOT/database/labels_image.csv   (or ROOT/labels_image.csv: the folder FLIVE_Database/database itself;
                                    header name,mos — name_image,mos_image also read)
  ROOT/database/<name>             (names hold their sub-folder: blur_dataset/…, voc_emotic_ava/AVA__….jpg)
  ROOT/database/labels640.csv, labels=640_padded.csv   (optional: the official test / train+val split)"""

_FLIVE_TEST = "labels640.csv"  # name_image column: the test images
_FLIVE_TRAIN = "labels=640_padded.csv"  # name_image, is_valid: training (False) and validation (True) images


class FLIVE(IQADataset):
    """FLIVE / PaQ-2-PiQ (Ying et al., 2020): ~39.8k in-the-wild pictures (patches are not used here:
    the paper, Table 2 note, compares on full images).

    Score file: ``labels_image.csv`` of the release (FLIVE_Database's ``database/`` folder, also in
    baidut/PaQ-2-PiQ's ``database/``): header ``name,mos``, names with their sub-folder
    (``voc_emotic_ava/AVA__129332.jpg``), MOS on 0-100 (checked on the file in that repository; an
    earlier version of this adapter expected ``name_image,mos_image``, still read).

    The paper follows FLIVE's official split (§4.1). The release keeps it in two other files beside
    ``labels_image.csv``: ``labels640.csv`` lists the test images (``name_image``) and
    ``labels=640_padded.csv`` the training images with ``is_valid`` marking validation ones — the reading
    pyiqa's preparation script and other public loaders make of them; the release itself does not say it
    in words. Images listed in neither file get no split (pyiqa counts them as training; we do not
    guess). A ``set``/``split`` column in ``labels_image.csv`` (train/val/test) is read too.
    """

    info = DatasetInfo(
        name="flive",
        full_name="FLIVE / PaQ-2-PiQ (39,810 pictures; patches not used)",
        short="FLIVE",
        kind="authentic",
        targets={"mos": TargetInfo("mos", (0.0, 100.0), True, "MOS, 0-100")},
        default_target="mos",
        score_files=("database/labels_image.csv", "labels_image.csv"),
        layout=_FLIVE_LAYOUT,
        official_split=f"{_FLIVE_TEST} (test), {_FLIVE_TRAIN} (is_valid: val, else train), or a set column",
        citation="Ying et al., From Patches to Pictures (PaQ-2-PiQ): Mapping the Perceptual Space of "
        "Picture Quality, CVPR 2020",
        url="https://github.com/niu-haoran/FLIVE_Database",
        verified=True,  # labels_image.csv as in baidut/PaQ-2-PiQ's database/; the split files: see above
        images="FLIVE_Database's database_prep.ipynb downloads them into database/ (blur_dataset/, "
        "voc_emotic_ava/, …): pass the folder holding database/, or database/ itself",
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        t = read_table(path)
        name = t.column("name", "name_image", "image")
        mos = t.column("mos", "mos_image", "MOS")
        split_col = t.column("set", "split", required=False)
        names = [r[name] for r in t.rows]
        here = path.parent.relative_to(self.root).as_posix()
        img_dir = find_image_dir(self.root, (here if here != "." else "", "database", "", "images"), names)
        official = self._official_split(path.parent)
        return [
            RawRecord(
                img_dir / n,
                {"mos": to_float(r[mos], f"{path}:{i}")},
                r[split_col] if split_col else official.get(n),
            )
            for n, (i, r) in zip(names, t.numbered(), strict=True)
        ]

    @staticmethod
    def _official_split(folder: Path) -> dict[str, str]:
        """Image name -> train/val/test from the release's split files in ``folder`` (empty without them)."""
        split: dict[str, str] = {}
        train_p = folder / _FLIVE_TRAIN
        if train_p.is_file():
            t = read_csv(train_p)
            name, valid = t.column("name_image"), t.column("is_valid")
            for i, r in t.numbered():
                flag = str(r[valid]).strip().lower()
                if flag not in ("true", "false", "1", "0", "1.0", "0.0"):
                    raise AttiqaError(f"{train_p}:{i}: is_valid {r[valid]!r} is not True/False")
                split[r[name]] = "val" if flag in ("true", "1", "1.0") else "train"
        test_p = folder / _FLIVE_TEST
        if test_p.is_file():
            t = read_csv(test_p)
            name = t.column("name_image")
            split.update({r[name]: "test" for r in t.rows})
        return split


# --------------------------------------------------------------------------------------------------
# BIQ2021

_BIQ_TRAIN = "Train (Images and MOS).csv"
_BIQ_TEST = "Test (Images and MOS).csv"
_BIQ_LAYOUT = f"""  ROOT/{_BIQ_TRAIN}   (Image Name,MOS: 10,000 photos, the official training set)
  ROOT/{_BIQ_TEST}    (Image Name,MOS: 2,000 photos, the official test set)   [either or both]
  ROOT/Images/<Image Name>             (e.g. "ss03 (3753).jpg"; the repository's zip unpacks to
                                        BIQ2021-main/)"""


class BIQ2021(IQADataset):
    """BIQ2021 (Ahmed & Asif, 2022): 12,000 photos in three subsets (``ss01`` a photographer's gallery,
    ``ss02`` deliberately degraded captures, ``ss03`` Unsplash), MOS scaled to 0-1, higher is better.

    Score files: the repository's (nisarahmedrana/BIQ2021) ``Train (Images and MOS).csv`` and ``Test (Images
    and MOS).csv``, read by column name (``Image Name``, ``MOS``; the training file's header has two empty
    columns more, ``Image Name,MOS,,``) — the files the authors' own training script reads, and the values the
    ``iqadataset`` package redistributes. They give the official split (train / test). Not read: the
    repository's ``Train.csv`` / ``Test.csv``, the same images on another scale (values below 0), nor
    ``BIQ2021.xlsx``. Images: ``Images/`` beside them.
    """

    info = DatasetInfo(
        name="biq2021",
        full_name="BIQ2021 (12,000 photos of three subsets)",
        kind="authentic",
        targets={"mos": TargetInfo("MOS", (0.0, 1.0), True, "MOS, 0-1")},
        default_target="mos",
        score_files=(_BIQ_TRAIN, _BIQ_TEST),
        layout=_BIQ_LAYOUT,
        official_split=f"{_BIQ_TRAIN} (train, 10,000) / {_BIQ_TEST} (test, 2,000)",
        citation="Ahmed & Asif, BIQ2021: A Large-Scale Blind Image Quality Assessment Database, "
        "J. Electronic Imaging 2022",
        url="https://github.com/nisarahmedrana/BIQ2021",
        images="download the repository with its Images/ folder (12,000 photos) and pass the folder holding "
        "Images/ beside the two CSVs",
    )

    def read_records(self) -> list[RawRecord]:
        files = [
            (f, split)
            for f, split in ((_BIQ_TRAIN, "train"), (_BIQ_TEST, "test"))
            if (self.root / f).is_file()
        ]
        if not files:
            raise no_score_file(self.root, self.info.score_files, self.name, self.info.layout)
        rows: list[tuple[str, float, str]] = []
        for f, split in files:
            path = self.root / f
            t = read_csv(path)
            name, mos = t.column("Image Name", "image_name", "image"), t.column("MOS")
            rows += [(str(r[name]).strip(), to_float(r[mos], f"{path}:{i}"), split) for i, r in t.numbered()]
        img_dir = find_image_dir(self.root, ("Images", "images", ""), [n for n, *_ in rows])
        return [RawRecord(img_dir / n, {"mos": m}, split) for n, m, split in rows]


# --------------------------------------------------------------------------------------------------
# AVA

_AVA_LAYOUT = """  ROOT/AVA.txt            (whitespace-separated, no header: index, image id, 10 vote counts,
                           semantic tag 1, semantic tag 2, challenge id)
  ROOT/images/<id>.jpg    (or ROOT/image/, the folder the release's old ava_downloader.py filled)
  ROOT/aesthetics_image_lists/generic_test.jpgl   (optional: test image ids, one per line)"""


class AVA(IQADataset):
    """AVA (Murray et al., 2012): ~255k photos with 1-10 aesthetic vote histograms.

    Score file: the official ``AVA.txt`` (whitespace-separated, no header — so columns are by
    position, as documented in the dataset's readme: index, image id, counts of votes 1..10, two
    semantic tags, challenge id; the release's README.txt, as in imfing/ava_downloader's
    ``AVA_dataset/``). MOS = the vote-weighted mean score (1-10). The paper uses AVA's official split
    (§4.1): test ids are read from ``aesthetics_image_lists/generic_test.jpgl`` when present (one id per
    line, as in that copy; other images = train). Which list counts as "the" official split is the
    reading of pyiqa's preparation script, not the README's words; pass ``test_list=`` to use another
    one. The images are not part of the release (dpchallenge.com's copyright): the downloader wrote them
    to ``image/``, most copies have ``images/``; both are looked in.
    """

    info = DatasetInfo(
        name="ava",
        full_name="AVA (Aesthetic Visual Analysis, ~255k photos)",
        kind="aesthetic",
        targets={"mos": TargetInfo("mean of vote counts 1..10", (1.0, 10.0), True, "mean aesthetic score")},
        default_target="mos",
        score_files=("AVA.txt",),
        layout=_AVA_LAYOUT,
        official_split="test ids in aesthetics_image_lists/generic_test.jpgl (others train); unverified",
        citation="Murray, Marchesotti & Perronnin, AVA: A Large-Scale Database for Aesthetic Visual "
        "Analysis, CVPR 2012",
        url="https://github.com/imfing/ava_downloader",
        verified=False,
        images="put the photos in ROOT/images/ (or ROOT/image/) as <image id>.jpg",
    )

    def __init__(
        self, root: str | Path, target: str | None = None, test_list: str | Path | None = None
    ) -> None:
        super().__init__(root, target)
        self.test_list = (
            Path(test_list) if test_list else self.root / "aesthetics_image_lists/generic_test.jpgl"
        )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        test_ids: set[str] | None = None
        if self.test_list.is_file():
            test_ids = {ln.strip() for ln in self.test_list.read_text().splitlines() if ln.strip()}
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        first = [f"{p[1]}.jpg" for p in (ln.split() for ln in lines[:3]) if len(p) > 1]
        img_dir = find_image_dir(self.root, ("images", "image"), first)
        scores = np.arange(1, 11, dtype=np.float64)
        out = []
        for i, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 12:
                raise AttiqaError(f"{path}:{i}: expected at least 12 fields (index, id, 10 counts)")
            try:
                counts = np.array([float(x) for x in parts[2:12]])
            except ValueError:
                raise AttiqaError(f"{path}:{i}: vote counts are not numbers — is this AVA.txt?") from None
            total = counts.sum()
            mos = float((counts * scores).sum() / total) if total > 0 else float("nan")
            img_id = parts[1]
            split = None if test_ids is None else ("test" if img_id in test_ids else "train")
            out.append(
                RawRecord(img_dir / f"{img_id}.jpg", {"mos": mos}, split, meta={"votes": f"{int(total)}"})
            )
        return out
