"""Each named dataset laid out as its OFFICIAL download is, written with a few tiny generated images: the
layouts of ``test_datasets_official_layouts`` and of the tests that reuse them (importing this module skips a
test where openpyxl is missing)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import io as sio

from attiqa.datasets.synthetic import LIVE_FOLDERS

openpyxl = pytest.importorskip("openpyxl")


def pic(path: Path, k: int) -> None:
    """A small photo-like image (a gradient with ``k``-dependent noise and blur), in the format of its
    extension (``.JPG``, ``.BMP`` too)."""
    rng = np.random.default_rng(k)
    y, x = np.mgrid[0:40, 0:48]
    base = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.float64)
    arr = np.clip(base + rng.normal(0, 4 + 9 * (k % 5), base.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def csv_file(
    path: Path, header: list[str], rows: list[list], crlf: bool = False, quote_all: bool = False
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_ALL if quote_all else 0)
        w.writerow(header)
        w.writerows(rows)


def workbook(path: Path, sheets: dict[str, list[list]]) -> None:
    """An .xlsx with the given sheets in order (rows as lists; ``None`` = an empty cell)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def cell_column(names: list[str]) -> np.ndarray:
    """A MATLAB N x 1 cell array of char, as savemat writes it from an object array."""
    arr = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        arr[i, 0] = n
    return arr


@dataclass
class Layout:
    """What a fixture holds: item count, splits, groups (``--group-by auto``), the images folder(s) that
    an archive unpacks to (removed for the half-downloaded case) and the words of that case's fix."""

    n: int
    image_dirs: list[str]
    fix: str
    splits: dict[str | None, int] = field(default_factory=dict)
    groups: int | None = None  # distinct groups under --group-by auto (None: image-wise)
    check: Callable[[object], None] | None = None


def koniq(root: Path) -> Layout:
    names = [f"{100 + i}{i}.jpg" for i in range(6)]
    sets = ["training", "training", "training", "training", "validation", "test"]
    mos = [72.5, 40.25, 65.0, 20.75, 55.5, 81.0]
    csv_file(
        root / "koniq10k_distributions_sets.csv",
        ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"],
        [[n, 0.0, 0.1, 0.3, 0.5, 0.1, 100, m, 0.5, s] for n, m, s in zip(names, mos, sets, strict=True)],
    )
    # the other official score file (1-5 MOS + MOS_zscore), as a spreadsheet might save it: quoted, CRLF
    csv_file(
        root / "koniq10k_scores_and_distributions.csv",
        ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"],
        [[n, 0, 10, 30, 50, 10, 100, round(1 + m / 25, 3), 0.5, m] for n, m in zip(names, mos, strict=True)],
        crlf=True,
        quote_all=True,
    )
    for k, n in enumerate(names):
        pic(root / "1024x768" / n, k)

    def check(ds) -> None:
        assert [x.mos for x in ds] == mos and all(1 <= x.extras["mos_1to5"] <= 5 for x in ds)
        assert [x.mos for x in ds.retarget("mos_1to5")] == [round(1 + m / 25, 3) for m in mos]

    return Layout(6, ["1024x768"], "koniq10k_1024x768.zip", {"train": 4, "val": 1, "test": 1}, check=check)


def koniq_unzipped(root: Path) -> Layout:
    """The scores file in the folder its zip unpacks to, the sets file where the koniq repository has it."""
    want = koniq(root)
    (root / "metadata").mkdir()
    (root / "koniq10k_distributions_sets.csv").rename(root / "metadata" / "koniq10k_distributions_sets.csv")
    (root / "koniq10k_scores_and_distributions").mkdir()
    name = "koniq10k_scores_and_distributions.csv"
    (root / name).rename(root / "koniq10k_scores_and_distributions" / name)
    return want


def clive(root: Path) -> Layout:
    training = [f"t{i}.bmp" for i in range(1, 8)]
    names = ["10.bmp", "100.bmp", "1000.JPG", "1001.JPG", "1002.JPG"]
    mos = [63.9, 25.3, 48.9, 75.2, 36.1]
    (root / "Data").mkdir(parents=True)
    sio.savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cell_column(training + names)})
    sio.savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[50.0] * 7 + mos])})
    sio.savemat(root / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": np.full((1, 12), 14.0)})
    for k, n in enumerate(training):
        pic(root / "Images" / "trainingImages" / n, k)
    for k, n in enumerate(names):
        pic(root / "Images" / n, k)

    def check(ds) -> None:
        assert [x.image.name for x in ds] == names and [x.mos for x in ds] == mos

    return Layout(5, ["Images"], "ChallengeDB_release", check=check)


def spaq(root: Path) -> Layout:
    rows = [[f"{i:05d}.jpg", 20.0 + 13 * i, 50, 40, 45, 30 + i, 60 - 7 * i] for i in range(1, 6)]
    header = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]
    workbook(root / "Annotations" / "MOS and Image attribute scores.xlsx", {"Sheet1": [header, *rows]})
    for k, r in enumerate(rows):
        pic(root / "TestImage" / r[0], k)

    def check(ds) -> None:
        assert [x.mos for x in ds] == [r[1] for r in rows]
        assert [x.mos for x in ds.retarget("sharpness")] == [r[6] for r in rows]

    return Layout(5, ["TestImage"], "TestImage/", check=check)


def flive(root: Path) -> Layout:
    db = root / "database"
    names = [
        "blur_dataset/motion0044.jpg",
        "blur_dataset/out_of_focus0059.jpg",
        "voc_emotic_ava/AVA__129332.jpg",
        "voc_emotic_ava/EMOTIC__2ccz61xjvddut42ywu.jpg",
        "voc_emotic_ava/JPEGImages__2007_001630.jpg",
        "voc_emotic_ava/VOC2012__2008_000497.jpg",
        "EE371R/rq59.jpg",
    ]
    mos = [75.44, 72.82, 58.65, 74.07, 69.38, 0.0, 66.1]
    csv_file(db / "labels_image.csv", ["name", "mos"], [[n, m] for n, m in zip(names, mos, strict=True)])
    # the release's split files: test images, and training images with their validation flag
    csv_file(db / "labels640.csv", ["mos_image", "name_image", "width_image"], [[59.6, names[2], 640]])
    csv_file(
        db / "labels=640_padded.csv",
        ["mos_image", "name_image", "is_valid"],
        [[m, n, v] for n, m, v in zip(names[3:6] + names[:2], mos, ["True"] + ["False"] * 4, strict=False)],
    )
    for k, n in enumerate(names):
        pic(db / n, k)
    # names[6] is in neither split file: no split
    return Layout(
        7,
        ["database/blur_dataset", "database/voc_emotic_ava", "database/EE371R"],
        "database_prep",
        {"train": 4, "val": 1, "test": 1, None: 1},
    )


def ava(root: Path) -> Layout:
    ids = ["953619", "953958", "954184", "954113", "953980"]
    lines = []
    for k, i in enumerate(ids, start=1):
        votes = [0, 1, 5 + k, 17, 38 - 3 * k, 36, 15 + 2 * k, 6, 5, 1]
        lines.append(" ".join(map(str, [k, i, *votes, 1, 22, 1396])))
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    (root / "aesthetics_image_lists").mkdir()
    (root / "aesthetics_image_lists" / "generic_test.jpgl").write_text(f"{ids[1]}\n{ids[4]}\n")
    for k, i in enumerate(ids):
        pic(root / "images" / f"{i}.jpg", k)
    return Layout(5, ["images"], "ROOT/images/", {"train": 3, "test": 2})


def ava_downloader(root: Path) -> Layout:
    """The photos in image/, the folder the release's old ava_downloader.py filled."""
    want = ava(root)
    (root / "images").rename(root / "image")
    return Layout(want.n, ["image"], want.fix, want.splits)


def kadid(root: Path) -> Layout:
    rows = []
    for ref in (1, 2, 3):
        pic(root / "images" / f"I{ref:02d}.png", 10 * ref)  # every image its own: no copies across references
        for lev in (1, 3):
            name = f"I{ref:02d}_01_{lev:02d}.png"
            rows.append([name, f"I{ref:02d}.png", 4.6 - lev + ref / 10, 0.3])
            pic(root / "images" / name, 10 * ref + lev)
    csv_file(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], rows)

    def check(ds) -> None:
        assert ds.info.direction == "MOS" and all(x.mos == x.raw for x in ds)  # DCR mean: higher is better

    return Layout(6, ["images"], "kadid10k.zip", groups=3, check=check)


def live(root: Path) -> Layout:
    dmos, orgs, refs, kept = [], [], [], {}
    for folder, n in LIVE_FOLDERS:
        for j in range(1, n + 1):
            distorted = j in (2, 5)  # two distorted images per folder, the rest reference copies
            dmos.append(20.0 + 7 * j + len(kept) if distorted else 0.0)
            orgs.append(0.0 if distorted else 1.0)
            refs.append("parrots.bmp" if j == 2 else "womanhat.bmp")
            if distorted:
                kept[f"{folder}/img{j}.bmp"] = dmos[-1]
    sio.savemat(root / "dmos.mat", {"dmos": np.array([dmos]), "orgs": np.array([orgs])})
    sio.savemat(root / "refnames_all.mat", {"refnames_all": cell_column(refs).T})
    for k, rel in enumerate(kept):
        pic(root / rel, k)
    for r in ("parrots.bmp", "womanhat.bmp"):
        pic(root / "refimgs" / r, 9)

    def check(ds) -> None:
        assert ds.info.direction == "DMOS"
        got = {f"{x.image.parent.name}/{x.image.name}": (x.raw, x.mos) for x in ds}
        assert got == {k: (v, 100.0 - v) for k, v in kept.items()}  # lower is better: flipped

    return Layout(10, [f for f, _ in LIVE_FOLDERS], "databaserelease2", groups=2, check=check)


_CSIQ_FILES = {"noise": ("awgn", "AWGN"), "jpeg 2000": ("jpeg2000", "jpeg2000"), "blur": ("blur", "BLUR")}


def csiq(root: Path) -> Layout:
    header = [None, None, None, "image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]
    rows = [
        [None, None, None, 1600, 1, "noise", 1, 0.02, 0.061],
        [None, None, None, 1600, 3, "jpeg 2000", 4, 0.03, 0.354],
        [None, None, None, "sunset_sparrow", 1, "noise", 2, 0.02, 0.172],
        [None, None, None, "sunset_sparrow", 5, "blur", 5, 0.05, 0.811],
    ]
    title = [["CSIQ DMOS"], [], []]  # the sheet's header is on row 4, from column D
    # all_by_distortion (same rows, another order) placed first: all_by_image is the sheet read
    workbook(
        root / "csiq.DMOS.xlsx",
        {"all_by_distortion": [*title, header, *rows[::-1]], "all_by_image": [*title, header, *rows]},
    )
    for k, r in enumerate(rows):
        folder, token = _CSIQ_FILES[r[5]]
        pic(root / "dst_imgs" / folder / f"{r[3]}.{token}.{r[6]}.png", k)
    for ref in ("1600", "sunset_sparrow"):
        pic(root / "src_imgs" / f"{ref}.png", 7)

    def check(ds) -> None:
        assert ds.info.direction == "DMOS" and [x.raw for x in ds] == [r[8] for r in rows]
        assert [x.mos for x in ds] == pytest.approx([1 - r[8] for r in rows])

    return Layout(4, ["dst_imgs"], "dst_imgs.zip", groups=2, check=check)


def tid2013(root: Path) -> Layout:
    names = ["I01_01_1.bmp", "I01_08_5.bmp", "I25_01_1.bmp", "I25_17_3.bmp"]
    mos = [5.51429, 2.13, 4.9, 6.02]
    lines = [f"{m} {n}" for m, n in zip(mos, names, strict=True)]
    (root / "mos_with_names.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())  # CRLF
    for k, n in enumerate(names):
        pic(root / "distorted_images" / n.lower(), k)  # the archive spells them i01_01_1.bmp
    pic(root / "reference_images" / "I01.BMP", 8)
    pic(root / "reference_images" / "i25.bmp", 9)  # the 25th reference is lower case in the archive

    def check(ds) -> None:
        assert [x.mos for x in ds] == mos and all(x.image.is_file() for x in ds)
        assert {Path(x.meta["ref"]).name for x in ds} == {"I01.BMP", "i25.bmp"}

    return Layout(4, ["distorted_images"], "tid2013.rar", groups=2, check=check)


def pipal(root: Path) -> Layout:
    """The NTIRE layout: Train_Label/, Train_Ref/, the distorted images split over Distortion_1..4."""
    for r, ref in enumerate(("A0001", "A0002"), 1):
        lines = [f"{ref}_{d:02d}_00.bmp,{1400.5 + 50 * d + (ref == 'A0002') * 7}" for d in (0, 1, 2)]
        (root / "Train_Label").mkdir(exist_ok=True)
        (root / "Train_Label" / f"{ref}.txt").write_text("\n".join(lines) + "\n")
        pic(root / "Train_Ref" / f"{ref}.bmp", 10 * r + 9)
        for d in (0, 1, 2):
            pic(root / f"Distortion_{d + 1}" / f"{ref}_{d:02d}_00.bmp", 10 * r + d)
    return Layout(6, ["Distortion_1", "Distortion_2", "Distortion_3"], "Distortion_1..4", groups=2)


def pipal_readme(root: Path) -> Layout:
    """The layout the authors' README draws: training/MOS_Scores_train, Reference_train, Distortion/."""
    t = root / "training"
    for ref in ("A0001", "A0002", "A0003"):
        lines = [f"{ref}_{d:02d}_00.bmp,{1500.25 - 40 * d + int(ref[-1])}" for d in (0, 1)]
        (t / "MOS_Scores_train").mkdir(parents=True, exist_ok=True)
        (t / "MOS_Scores_train" / f"{ref}.txt").write_text("\n".join(lines) + "\n")
        pic(t / "Reference_train" / f"{ref}.bmp", 10 * int(ref[-1]) + 9)
        for d in (0, 1):
            pic(t / "Distortion" / f"Distortion_{d + 1}" / f"{ref}_{d:02d}_00.bmp", 10 * int(ref[-1]) + d)

    def check(ds) -> None:
        assert all(Path(x.meta["ref"]).is_file() for x in ds)

    return Layout(6, ["training/Distortion"], "Distortion_1..4", groups=3, check=check)


AGIQA3K_HEADER = "name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align"


def agiqa3k(root: Path) -> Layout:
    header = AGIQA3K_HEADER.split(",")
    rows = []
    for k, (gen, prompt) in enumerate(
        [
            ("AttnGAN", "a red bike"),
            ("glide", "a red bike"),
            ("AttnGAN", "statue of a man"),
            ("midjourney", "statue of a man"),
            ("sd1.5", "a tray of sushi"),
        ]
    ):
        rows.append(
            [f"{gen}_normal_{k:03d}.jpg", prompt, None, None, None, 1 + k * 0.7, 0.5, 2 + k * 0.3, 0.6]
        )
    csv_file(root / "data.csv", header, rows)
    for k, r in enumerate(rows):
        pic(root / r[0], k)
    return Layout(5, [], "file.zip", groups=3)


def agiqa3k_xlsx(root: Path) -> Layout:
    """The download's score sheet alone (no data.csv), images unpacked from file.zip into ROOT/file."""
    header = AGIQA3K_HEADER.split(",")
    rows = [
        [
            f"midjourney_normal_{k:03d}.jpg ",
            f"prompt {k // 2}",
            None,
            None,
            None,
            1.5 + k / 2,
            0.5,
            3 - k / 3,
            0.6,
        ]
        for k in range(4)
    ]  # a cell typed with a trailing space
    workbook(root / "AIGC_MOS_Zscore.xlsx", {"Sheet1": [header, *rows]})
    for k, r in enumerate(rows):
        pic(root / "file" / r[0].strip(), k)

    def check(ds) -> None:
        assert [x.extras["mos_align"] for x in ds] == pytest.approx([r[7] for r in rows], rel=1e-12)
        assert all(x.meta["std_quality"] == "0.5" and x.meta["adj1"] == "" for x in ds)

    return Layout(4, ["file"], "file.zip", groups=2, check=check)


def agiqa1k(root: Path) -> Layout:
    """The download's AIGC_MOS_Zscore.xlsx (Image, Prompt, MOS) beside the repository's AIGC_all.csv."""
    names = [
        "deepai_9_6_0_1.jpg",
        "dreamStudio_9_6_0_1.jpg",
        "deepai_1_8_1_1.jpg",
        "dreamStudio_1_8_1_1.jpg",
        "deepai_5_6_1_1.jpg",
    ]
    prompts = ["alien playing baseball, city, realistic style"] * 2 + ["cat having hamburger, wild"] * 2
    prompts.append("teddy bear playing baseball, wild, realistic style")
    mos = [2.818181818, 3.1, 2.090909091, 1.7, 2.454545455]
    workbook(
        root / "AIGC_MOS_Zscore.xlsx",
        {"Sheet1": [["Image", "Prompt", "MOS"], *map(list, zip(names, prompts, mos, strict=True))]},
    )
    csv_file(
        root / "AIGC_all.csv",
        ["Image", "Score"],
        [[n, m] for n, m in zip(names, mos, strict=True)],
        crlf=True,
    )
    for k, n in enumerate(names):
        pic(root / "file" / n, k)

    def check(ds) -> None:
        assert [x.meta["prompt"] for x in ds] == prompts and [x.mos for x in ds] == mos

    return Layout(5, ["file"], "file.zip", groups=3, check=check)


def biq2021(root: Path) -> Layout:
    """The repository's two score files as stored (session 55): the training file's header has two empty
    columns more (``Image Name,MOS,,``), names hold a space and parentheses; photos in Images/."""
    train = [["ss03 (3753).jpg", "0.8471"], ["ss01 (1726).jpg", "0.2874"], ["ss02 (167).jpg", "0.3522"]]
    test = [["ss03 (7805).jpg", "0.7321"], ["ss01 (151).jpg", "0.1931"]]
    csv_file(
        root / "Train (Images and MOS).csv", ["Image Name", "MOS", "", ""], [[*r, "", ""] for r in train]
    )
    csv_file(root / "Test (Images and MOS).csv", ["Image Name", "MOS"], test)
    for k, (n, _) in enumerate(train + test):
        pic(root / "Images" / n, k)

    def check(ds) -> None:
        assert [x.mos for x in ds] == [float(m) for _, m in train + test]

    return Layout(5, ["Images"], "Images/", {"train": 3, "test": 2}, check=check)


LAYOUTS: dict[str, tuple[str, Callable[[Path], Layout]]] = {
    "koniq10k": ("koniq10k", koniq),
    "koniq10k-unzipped": ("koniq10k", koniq_unzipped),
    "clive": ("clive", clive),
    "spaq": ("spaq", spaq),
    "flive": ("flive", flive),
    "ava": ("ava", ava),
    "ava-downloader": ("ava", ava_downloader),
    "kadid10k": ("kadid10k", kadid),
    "live": ("live", live),
    "csiq": ("csiq", csiq),
    "tid2013": ("tid2013", tid2013),
    "pipal": ("pipal", pipal),
    "pipal-readme": ("pipal", pipal_readme),
    "agiqa3k": ("agiqa3k", agiqa3k),
    "agiqa3k-xlsx": ("agiqa3k", agiqa3k_xlsx),
    "agiqa1k": ("agiqa1k", agiqa1k),
    "biq2021": ("biq2021", biq2021),
}
