"""A RANK left in the shell of a one-process command (a job script's export, a shell left from a launcher) is
not this process's rank — the label stage and the error said once took it for one."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from helpers import one_line_error, run_attiqa
from PIL import Image


def four_photos(folder: Path) -> Path:
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (64, 48), (40 * i, 90, 200 - 40 * i)).save(folder / f"p{i}.png")
    return folder


def test_one_process_labels_every_image_whatever_rank_its_shell_holds(tmp_path: Path) -> None:
    """**Was**: `RANK=1 attiqa label photos/` (one process) labelled 3 of 4 images, the first left out without
    a word (its share of a 1-process job from rank 1); `RANK=x`: a ValueError traceback. Now one process is
    rank 0 (attiqa.launch.launched_rank): every image labelled."""
    photos = four_photos(tmp_path / "photos")
    for rank in ("1", "x"):
        out = tmp_path / f"labels{rank}.parquet"
        res = run_attiqa("label", photos, "-t", "classical", "-o", out, env={"RANK": rank})
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
        assert pq.read_table(out).num_rows == 4


def test_one_process_says_an_error_meant_once_whatever_rank_its_shell_holds(tmp_path: Path) -> None:
    """**Was**: `RANK=1 attiqa train -c run.yaml` over an out_dir holding an earlier run's checkpoints ended
    with exit 2 and no word (the error every process meets is said by rank 0 only); now said."""
    out = tmp_path / "run"
    (out / "pretrain").mkdir(parents=True)
    (out / "pretrain" / "last.state.safetensors").write_bytes(b"")
    config = tmp_path / "run.yaml"
    config.write_text(f"out_dir: {out}\nlabel:\n  images: [{tmp_path}]\n  teacher: classical\n")
    line = one_line_error(run_attiqa("train", "-c", config, env={"RANK": "1"}))
    assert "holds checkpoints of an earlier run" in line and "--resume" in line, line
