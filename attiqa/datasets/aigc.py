"""AI-generated image datasets: AGIQA-3k and AGIQA-1k."""

from __future__ import annotations

from attiqa.datasets.base import DatasetInfo, IQADataset, RawRecord, TargetInfo
from attiqa.datasets.readers import find_image_dir, need_file, read_table, to_float

_AGIQA3K_LAYOUT = """\
  ROOT/data.csv     (name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align)
  ROOT/<name>.jpg   (the images; also accepted: ROOT/images/, ROOT/AGIQA-3K/)"""


class AGIQA3k(IQADataset):
    """AGIQA-3k (Li et al., 2023): 2,982 text-to-image outputs of six generators, each with a perceptual
    quality MOS and a text-image alignment MOS (0-5, higher is better).

    Score file: the official ``data.csv`` (verified against the file distributed with the dataset:
    columns ``name, prompt, adj1, adj2, style, mos_quality, std_quality, mos_align, std_align``).
    ``target`` selects ``mos_quality`` (default) or ``mos_align``; the other becomes an extra target,
    and prompt / adjectives / style / standard deviations go to ``meta``. The image folder inside the
    image archive could not be checked offline, so the images are looked for in ROOT, ROOT/images and
    ROOT/AGIQA-3K.
    """

    info = DatasetInfo(
        name="agiqa3k",
        full_name="AGIQA-3K (AI-generated image quality, 2,982 images)",
        kind="aigc",
        targets={
            "mos_quality": TargetInfo("mos_quality", (0.0, 5.0), True, "perceptual quality MOS"),
            "mos_align": TargetInfo("mos_align", (0.0, 5.0), True, "text-image alignment MOS"),
        },
        default_target="mos_quality",
        score_files=("data.csv",),
        layout=_AGIQA3K_LAYOUT,
        official_split=None,
        citation="Li et al., AGIQA-3K: An Open Database for AI-Generated Image Quality Assessment, "
        "IEEE TCSVT 2023",
        url="https://github.com/lcysyzxdxc/AGIQA-3k-Database",
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        t = read_table(path)
        name = t.column("name")
        cols = self.target_columns(t)
        meta_cols = [
            c for c in ("prompt", "adj1", "adj2", "style", "std_quality", "std_align") if c in t.fields
        ]
        names = [r[name] for r in t.rows]
        img_dir = find_image_dir(self.root, ("", "images", "AGIQA-3K", "AGIQA-3k"), names)
        out = []
        for i, r in t.numbered():
            values = {k: to_float(r[c], f"{path}:{i}") for k, c in cols.items()}
            out.append(RawRecord(img_dir / r[name], values, meta={m: r[m] or "" for m in meta_cols}))
        return out


_AGIQA1K_LAYOUT = """  ROOT/AIGC_all.csv    (Image,Score) — or the same columns in AIGC_MOS_Zscore.xlsx/.csv
  ROOT/file/<Image>    (the images; also accepted: ROOT/images/, ROOT/AGIQA-1k/, ROOT)"""


class AGIQA1k(IQADataset):
    """AGIQA-1k (Zhang et al., 2023): 1,080 text-to-image outputs with a quality MOS (0-5).

    Score file: a table with columns ``Image, Score`` (verified on ``AIGC_all.csv`` as distributed;
    the repository also ships ``AIGC_MOS_Zscore.xlsx``, read when present, with the same columns —
    not verified offline). Image folder not verifiable offline: ROOT/file, ROOT/images, ROOT/AGIQA-1k
    and ROOT are searched.
    """

    info = DatasetInfo(
        name="agiqa1k",
        full_name="AGIQA-1K (AI-generated image quality, 1,080 images)",
        kind="aigc",
        targets={"mos": TargetInfo("Score", (0.0, 5.0), True, "perceptual quality MOS")},
        default_target="mos",
        score_files=("AIGC_all.csv", "AIGC_MOS_Zscore.csv", "AIGC_MOS_Zscore.xlsx"),
        layout=_AGIQA1K_LAYOUT,
        official_split=None,
        citation="Zhang et al., A Perceptual Quality Assessment Exploration for AIGC Images, ICMEW 2023",
        url="https://github.com/lcysyzxdxc/AGIQA-1k-Database",
        verified=True,
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        t = read_table(path, header_has=("Image",))
        name, score = t.column("Image", "name"), t.column("Score", "MOS")
        names = [str(r[name]).strip() for r in t.rows]
        img_dir = find_image_dir(self.root, ("file", "images", "AGIQA-1k", "AGIQA-1K", ""), names)
        return [
            RawRecord(img_dir / n, {"mos": to_float(r[score], f"{path}:{i}")})
            for n, (i, r) in zip(names, t.numbered(), strict=True)
        ]
