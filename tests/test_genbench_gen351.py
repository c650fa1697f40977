"""genbench, session 51 (third round): `import-imagereward` refuses an --out among its dataset's files
(the one check it shares with `import-agiqa3k`); `per_pair.csv` carries the human MOS of AGIQA-3k imports;
`genbench agree`'s lines at 80 columns (docs/robustness.md rows of session 51). Small fixtures: noise PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import run_genbench
from PIL import Image


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return " ".join(stderr.split())


def _rankings(folder: Path, images: Path) -> Path:
    """``folder/r.json``: one item ranking three noise PNGs in ``images``."""
    images.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in ("x", "y", "z"):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(images / f"{n}.png")
    item = {"id": "k1", "prompt": "a cat", "generations": ["x.png", "y.png", "z.png"], "ranking": [1, 2, 3]}
    (folder / "r.json").write_text(json.dumps([item]), encoding="utf-8")
    return folder / "r.json"


def _tree(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*"))


def test_import_imagereward_refuses_an_out_folder_among_the_dataset(tmp_path):
    """**Was**: `genbench import-imagereward r.json --images IMGS -o IMGS` (or -o IMGS/run, or -o the
    folder r.json is in) wrote manifest.jsonl, manifest.csv, prefs.csv and image_root.json among the
    dataset's files, while `import-agiqa3k` refused the same. Now refused in the same words by the one check
    both share, nothing written; a run in a subfolder beside r.json (the README's `--out ir_run`) is fine."""
    data = tmp_path / "ir"
    rankings = _rankings(data, data / "images")
    before = _tree(data)
    for out, what, inside, args in (
        (data, "the rankings file's folder", "", []),  # --images defaults to that folder
        (data, "the rankings file's folder", "", ["--images", data / "images"]),
        (data / "images", "the --images folder", "", ["--images", data / "images"]),
        (data / "images" / "run", "the --images folder", "inside ", ["--images", data / "images"]),
    ):
        res = run_genbench("import-imagereward", rankings, *args, "--out", out)
        assert res.returncode == 2, res.stderr
        folder = data if what.startswith("the rankings") else data / "images"
        said = f"--out {out} is {inside}{what} {folder} — a run's files (manifest, prefs.csv, scores/, "
        assert said in _one_line(res.stderr), res.stderr
        assert "e.g. --out ir_run" in _one_line(res.stderr)
        assert _tree(data) == before
    res = run_genbench("import-imagereward", rankings, "--images", data / "images", "--out", data / "ir_run")
    assert res.returncode == 0, res.stderr
    assert (data / "ir_run" / "manifest.jsonl").is_file()
