"""Every script, config and documented command runs from a fresh clone: no tracked file of the product, its
experiments, configs, benchmarks or docs names a path of a developer's machine (``/work/...``). Data is
``../shared/data`` beside the repo root, run outputs go under ``runs/`` inside it (README)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("attiqa", "isp_env", "genbench", "experiments", "configs", "benchmarks", "docs", "README.md")
# an absolute /work/ path (not the tail of a longer or relative one such as framework/work/ or ../work/)
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/work/")
# the developers' environment's package lists, named in docs as where a search looked, never read by code
ALLOWED = ("/work/.library/",)
SKIP_DIRS = {"__pycache__", ".git", ".ruff_cache", ".mypy_cache", ".pytest_cache", "runs"}


def checked_files() -> list[Path]:
    """The tracked files under CHECKED (``git ls-files``); without git or outside a clone (a tarball), every
    file under them."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *CHECKED], cwd=ROOT, capture_output=True,
                             check=True, timeout=60).stdout  # fmt: skip
        files = [ROOT / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = []
    if files:
        return [f for f in files if f.is_file()]
    found = []
    for top in CHECKED:
        p = ROOT / top
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            for f in p.rglob("*"):
                parts = set(f.relative_to(ROOT).parts)
                if f.is_file() and not parts & SKIP_DIRS and not any(d.endswith(".egg-info") for d in parts):
                    found.append(f)
    return sorted(found)


def machine_paths(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: text`` for each line of a text file that holds an absolute /work/ path."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:  # binary (images, weights)
        return []
    hits = []
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if any(m and not line.startswith(ALLOWED, m.start()) for m in MACHINE_PATH.finditer(line)):
            hits.append(f"{path.relative_to(root)}:{n}: {line.strip()[:120]}")
    return hits


def test_checked_files_found() -> None:
    names = {f.relative_to(ROOT).as_posix() for f in checked_files()}
    assert "README.md" in names and "configs/default_model.yaml" in names, sorted(names)[:10]


def test_no_developer_machine_paths() -> None:
    hits = [h for f in checked_files() for h in machine_paths(f)]
    assert not hits, (
        "absolute paths of a developer's machine (use ../shared/data for data, runs/<name>/ for outputs):\n"
        + "\n".join(hits)
    )


def test_detects_machine_paths(tmp_path: Path) -> None:
    f = tmp_path / "x.md"
    f.write_text("ok ../shared/data\nbad /work/shared/data/clive\nok /work/.library/env/x\nframework/work/\n")
    assert machine_paths(f, tmp_path) == ["x.md:2: bad /work/shared/data/clive"]
