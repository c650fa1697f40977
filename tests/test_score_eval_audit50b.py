"""Session 50's second pass over `attiqa score` / `attiqa eval` (docs/robustness.md): what a read-only
output folder, an eval into a folder of another eval, the scatter plot and the help say. Each test failed
before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import attiqa_env, run_attiqa, unprivileged_cmd
from PIL import Image


def _errors(res) -> list[str]:
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    return [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture()
def mos_folder(tmp_path: Path, photos) -> Path:
    """A `folder` dataset: five real photos and a mos.csv."""
    root = tmp_path / "set"
    root.mkdir()
    rows = ["image,mos"]
    for i, (name, img) in enumerate(photos.items()):
        img.resize((img.width // 2, img.height // 2), Image.BICUBIC).save(root / f"{name}.jpg")
        rows.append(f"{name}.jpg,{30 + 10 * i}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root


def test_a_new_output_folder_under_a_read_only_one_names_the_folder_that_refuses(mos_folder, tmp_path):
    """**Was**: `attiqa score … -o RO/sub/x.csv` (RO read-only, sub not there) said "RO/sub: not writable
    (permission denied)" — a folder that does not exist, while RO, which refuses, went unnamed; so did
    `attiqa eval --out RO/sub/res` and the atomic writes' own check ("RO/sub: cannot create the output folder
    (Permission denied)"). Now every one names RO: the one check (`attiqa.io.atomic.output_folder`) looks
    at the nearest folder there is. (Run without root's permission override.)"""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    said = f"error: {ro}: not writable (permission denied) — choose another --out"
    try:
        score = run_attiqa(
            "score", mos_folder, "-m", "classical", "-o", ro / "sub" / "x.csv", unprivileged=True
        )
        assert _errors(score) == [said]
        ev = run_attiqa("eval", "folder", "-r", mos_folder, "-m", "classical", "-o", ro / "sub" / "res",
                        "--no-cache", unprivileged=True)  # fmt: skip
        assert _errors(ev) == [said]
        # the same check where a file is written (create=True): what a library caller meets
        code = "from attiqa.io.atomic import write_text_atomic as w; import sys; w(sys.argv[1], 'x')"
        cmd = unprivileged_cmd([sys.executable, "-c", code, str(ro / "sub" / "deeper" / "x.txt")])
        res = subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=120)
        assert f"AttiqaError: {ro}: not writable (permission denied)" in res.stderr, res.stderr[-2000:]
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o755)
