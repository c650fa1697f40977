"""Any folder of images with a CSV of scores: the adapter for user data and for score files we ship
in the ``image,mos[,split]`` form (e.g. the CLIVE development subset)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from attiqa.datasets.base import DatasetInfo, IQADataset, RawRecord, TargetInfo, existing_root
from attiqa.datasets.readers import (
    MOS_HEADER,
    CaseInsensitiveDir,
    cell_number,
    find_image_dir,
    not_a_file,
    posix_name,
    read_csv,
    to_float,
)
from attiqa.errors import AttiqaError

_FOLDER_LAYOUT = """\
  ROOT/mos.csv (or --csv FILE)  columns: image, mos [, split] [, numeric columns = extra targets]
  ROOT/<image> or ROOT/images/<image>  (paths relative to ROOT, or absolute)"""


class FolderDataset(IQADataset):
    """A CSV with columns ``image, mos[, split]`` (by name) and images relative to ``root``.

    Every other column whose non-empty cells are all numbers becomes a selectable target (``target=``);
    every column but the image and split goes to ``meta`` (a group for ``--group-by``, numbers too).
    ``higher_is_better=False`` declares DMOS-like scores (flipped within ``mos_range``, which defaults to
    the observed min/max). ``root`` may also be the CSV itself.
    """

    info = DatasetInfo(
        name="folder",
        full_name="a folder of images + a CSV (image,mos[,split])",
        kind="custom",
        targets={"mos": TargetInfo("mos", (math.nan, math.nan), True, "the CSV's mos column")},
        default_target="mos",
        score_files=("mos.csv",),
        layout=_FOLDER_LAYOUT,
        official_split="the CSV's split column, if any (train/val/test)",
        citation="",
    )

    def __init__(
        self,
        root: str | Path,
        target: str | None = None,
        csv: str | Path | None = None,
        higher_is_better: bool = True,
        mos_range: tuple[float, float] | None = None,
    ) -> None:
        root = Path(root).expanduser()
        if csv is None and root.is_file():
            root, csv = root.parent, root
        why = None if csv is not None or root.is_dir() else not_a_file(root)  # a CSV path that is a bad link
        if why is not None:
            raise AttiqaError(f"{root}: {why}")
        if csv is None and root.suffix.lower() in (".csv", ".tsv") and not root.exists():  # a mistyped CSV
            raise AttiqaError(
                f"{root}: score CSV not found — check the path (the folder adapter takes a CSV "
                "file or a folder holding mos.csv)"
            )
        existing_root(root, self.info)  # a mistyped --root: said as such, not as its mos.csv missing
        self.csv_path = Path(csv).expanduser() if csv else root / "mos.csv"
        if not self.csv_path.is_absolute() and not self.csv_path.exists() and (root / self.csv_path).exists():
            self.csv_path = root / self.csv_path
        why = not_a_file(self.csv_path)
        if why is not None:
            raise AttiqaError(f"{self.csv_path}: {why}")
        if not self.csv_path.is_file():
            raise AttiqaError(
                f"{self.csv_path}: score CSV not found — the folder adapter expects:\n{_FOLDER_LAYOUT}"
            )
        self._table = read_csv(self.csv_path, header=MOS_HEADER)
        self._image_col = self._table.column("image")
        self._split_col = self._table.column("split", required=False)
        mos_name = self._table.column("mos", required=False)  # any case: a spreadsheet's "MOS" is the mos
        numeric = [
            c for c in self._table.fields if c not in (self._image_col, self._split_col) and self._numeric(c)
        ]
        if mos_name is None and numeric and (target or "mos").lower() == "mos":
            likely = next((c for c in numeric if "mos" in c.lower() or "score" in c.lower()), numeric[0])
            try:
                self._table.column("mos")
            except AttiqaError as err:  # its fix renamed the column; the scores are there under a name
                raise AttiqaError(
                    f"{err}; or keep it and name it: --target {likely} (a run config: finetune.target: "
                    f"{likely}) — its number columns: {', '.join(numeric)}"
                ) from None
        if mos_name not in numeric and (target or "mos").lower() == "mos":
            mos_col = self._table.column("mos")  # raises "missing column 'mos'" (or it is not numeric: below)
            if not self._table.rows:
                raise AttiqaError(f"{self.csv_path}: no rows under the header — one row per image: image,mos")
            rows = self._table.numbered()
            bad = next(((i, r[mos_col]) for i, r in rows if not self._number(r[mos_col])), None)
            if bad is None:
                raise AttiqaError(f"{self.csv_path}: column 'mos' is empty in every row — fill in the scores")
            raise AttiqaError(
                f"{self.csv_path}:{bad[0]}: mos {bad[1]!r} is not a number — fix the cell (a decimal point, "
                "not a comma), or leave it empty to leave that image out"
            )
        # target name -> its column: the mos column is the target "mos" whatever its case
        self._target_cols = {("mos" if c == mos_name else c): c for c in numeric}
        targets = {}
        for t, c in self._target_cols.items():
            vals = [to_float(r[c], f"{self.csv_path}:{i}") for i, r in self._table.numbered()]
            vals = [v for v in vals if math.isfinite(v)]
            rng = (
                mos_range
                if (mos_range and t.lower() == (target or "mos").lower())
                else (min(vals), max(vals))
            )
            targets[t] = TargetInfo(t, (float(rng[0]), float(rng[1])), higher_is_better, f"column {c}")
        self.info = DatasetInfo(  # type: ignore[misc]  # per instance: the targets are the CSV columns
            name="folder",
            full_name=f"folder dataset ({self.csv_path.name})",
            kind="custom",
            targets=targets,
            default_target="mos" if "mos" in targets else next(iter(targets), "mos"),
            score_files=(str(self.csv_path),),
            layout=_FOLDER_LAYOUT,
            official_split="the CSV's split column" if self._split_col else None,
            citation="",
        )
        super().__init__(root, target)

    @staticmethod
    def _number(cell: str | None) -> bool:
        """A number or no score (empty, ``n/a``: counted and left out, not an error — as `train` reads it)."""
        return cell_number(cell) is not None

    def _numeric(self, col: str) -> bool:
        seen = False
        for r in self._table.rows:
            v = cell_number(r.get(col))
            if v is None:
                return False
            seen = seen or not math.isnan(v)
        return seen

    def source_files(self) -> list[Path]:
        return [self.csv_path]

    def identity(self) -> dict[str, Any]:
        """The root, the CSV and the columns read: two tables under one root are two datasets."""
        columns = {"image": self._image_col, "split": self._split_col or ""}
        return {**super().identity(), "csv": str(self.csv_path.resolve()), "columns": columns}

    def read_records(self) -> list[RawRecord]:
        # every other column is a group a split can keep on one side (--group-by), a column of numbers too
        # (a scene or reference id): as a target only, "--group-by scene" found no 'scene' in the file
        meta_cols = [c for c in self._table.fields if c not in (self._image_col, self._split_col)]
        names = [
            posix_name((r[self._image_col] or "").strip(), self.root, self.root / "images")
            for r in self._table.rows
        ]
        img_dir = find_image_dir(self.root, ("", "images"), [n for n in names if not Path(n).is_absolute()])
        out = []
        folders: dict[Path, CaseInsensitiveDir] = {}  # a name off by case only is its file (`A.JPG`: `a.jpg`)
        for name, (i, r) in zip(names, self._table.numbered(), strict=True):
            if not name:
                raise AttiqaError(f"{self.csv_path}:{i}: empty image name — fill it in, or delete the row")
            p = Path(name).expanduser()
            p = p if p.is_absolute() else img_dir / p
            if not p.exists():
                p = folders.setdefault(p.parent, CaseInsensitiveDir(p.parent))(p.name)
            values = {t: to_float(r[c], f"{self.csv_path}:{i}") for t, c in self._target_cols.items()}
            split = r[self._split_col] if self._split_col else None
            out.append(RawRecord(p, values, split, meta={c: r[c] or "" for c in meta_cols}, line=i))
        return out
