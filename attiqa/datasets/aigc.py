"""AI-generated image datasets: AGIQA-3k and AGIQA-1k."""

from __future__ import annotations

from attiqa.datasets.base import DatasetInfo, IQADataset, RawRecord, TargetInfo
from attiqa.datasets.readers import find_image_dir, need_file, read_table, to_float

_AGIQA3K_LAYOUT = """\
  ROOT/data.csv     (name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align;
                     or the download's AIGC_MOS_Zscore.xlsx with the same columns)
  ROOT/<name>.jpg   (the images; also accepted: ROOT/file/, ROOT/images/, ROOT/AGIQA-3K/)"""


class AGIQA3k(IQADataset):
    """AGIQA-3k (Li et al., 2023): 2,982 text-to-image outputs of six generators, each with a perceptual
    quality MOS and a text-image alignment MOS (0-5, higher is better).

    Score file: the official ``data.csv`` (verified against the file distributed with the dataset:
    columns ``name, prompt, adj1, adj2, style, mos_quality, std_quality, mos_align, std_align``).
    ``target`` selects ``mos_quality`` (default) or ``mos_align``; the other becomes an extra target,
    and prompt / adjectives / style / standard deviations go to ``meta``. The download (the README's
    Drive / Baidu link) ships ``file.zip`` and ``AIGC_MOS_Zscore.xlsx``, whose nine columns the README
    describes in the order of ``data.csv``; it is read by the same column names when ``data.csv`` is
    not there — the sheet's own header could not be checked offline (a header with other names is
    refused, naming the columns it has). The image folder inside ``file.zip`` could not be checked
    either, so the images are looked for in ROOT, ROOT/file, ROOT/images and ROOT/AGIQA-3K.
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
        score_files=("data.csv", "AIGC_MOS_Zscore.xlsx"),
        layout=_AGIQA3K_LAYOUT,
        official_split=None,
        citation="Li et al., AGIQA-3K: An Open Database for AI-Generated Image Quality Assessment, "
        "IEEE TCSVT 2023",
        url="https://github.com/lcysyzxdxc/AGIQA-3k-Database",
        images="unzip the image archive (file.zip) into ROOT beside the score file",
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        t = read_table(path)
        name = t.column("name")
        cols = self.target_columns(t)
        meta_cols = {  # by name in any case, as the name and MOS columns: `Prompt` was dropped, and
            # with it --group-by auto's prompt groups (one prompt's images on both sides of a split)
            m: c
            for m in ("prompt", "adj1", "adj2", "style", "std_quality", "std_align")
            if (c := t.column(m, required=False)) is not None
        }
        names = [str(r[name] or "").strip() for r in t.rows]  # a sheet's cell keeps its spaces
        img_dir = find_image_dir(self.root, ("", "file", "images", "AGIQA-3K", "AGIQA-3k"), names)
        out = []
        for n, (i, r) in zip(names, t.numbered(), strict=True):
            values = {k: to_float(r[c], f"{path}:{i}: {c}") for k, c in cols.items()}
            meta = {m: "" if r.get(c) is None else str(r[c]) for m, c in meta_cols.items()}
            out.append(RawRecord(img_dir / n, values, meta=meta))
        return out


_AGIQA1K_LAYOUT = """  ROOT/AIGC_MOS_Zscore.xlsx   (Image, Prompt, MOS: the download's sheet, or a .csv of it)
  ROOT/AIGC_all.csv           (Image,Score: the GitHub repository's file, no prompts)
  ROOT/file/<Image>           (file.zip; also accepted: ROOT/images/, ROOT/AGIQA-1k/, ROOT)"""


class AGIQA1k(IQADataset):
    """AGIQA-1k (Zhang et al., 2023): 1,080 text-to-image outputs with a quality MOS (0-5).

    Score files: the download's ``AIGC_MOS_Zscore.xlsx`` — columns ``Image, Prompt, MOS`` (the README
    lists them in this order; public loaders read them by these names; the sheet itself could not be
    checked offline) — or the repository's ``AIGC_all.csv``, columns ``Image, Score`` (verified on the
    file as distributed: CRLF line ends). The sheet is read first when both are there, because only it
    holds the prompts: they go to ``meta["prompt"]``, so ``--group-by auto`` keeps the images of one
    prompt on one side of a split (was: the adapter read ``AIGC_all.csv`` first and never the prompts,
    so every split was image-wise). Whether ``MOS`` and ``Score`` hold the same numbers could not be
    checked offline. Images: ``file.zip`` unpacks to ROOT/file (the README's folder name as public
    loaders use it); ROOT/images, ROOT/AGIQA-1k and ROOT are searched too.
    """

    info = DatasetInfo(
        name="agiqa1k",
        full_name="AGIQA-1K (AI-generated image quality, 1,080 images)",
        kind="aigc",
        targets={"mos": TargetInfo("MOS (sheet) / Score (AIGC_all.csv)", (0.0, 5.0), True, "quality MOS")},
        default_target="mos",
        score_files=("AIGC_MOS_Zscore.xlsx", "AIGC_MOS_Zscore.csv", "AIGC_all.csv"),
        layout=_AGIQA1K_LAYOUT,
        official_split=None,
        citation="Zhang et al., A Perceptual Quality Assessment Exploration for AIGC Images, ICMEW 2023",
        url="https://github.com/lcysyzxdxc/AGIQA-1k-Database",
        verified=True,
        images="unzip the image archive (file.zip) into ROOT: it makes ROOT/file/",
    )

    def read_records(self) -> list[RawRecord]:
        path = need_file(self.root, self.info.score_files, self.name, self.info.layout)
        t = read_table(path, header_has=("Image",))
        name, score = t.column("Image", "name"), t.column("MOS", "Score")
        prompt = t.column("Prompt", required=False)
        names = [str(r[name]).strip() for r in t.rows]
        img_dir = find_image_dir(self.root, ("file", "images", "AGIQA-1k", "AGIQA-1K", ""), names)
        return [
            RawRecord(
                img_dir / n,
                {"mos": to_float(r[score], f"{path}:{i}")},
                meta={"prompt": str(r[prompt] or "").strip()} if prompt else {},
            )
            for n, (i, r) in zip(names, t.numbered(), strict=True)
        ]
