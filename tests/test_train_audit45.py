"""Session 45's new-user pass over the training side — `attiqa label`, `train`, `bench`, `distort`,
`select-prompts` (docs/robustness.md): what a user's own files did before their fix. Every fixture is
generated here; each test failed before its fix."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.errors import AttiqaError

runner = CliRunner()


def _refused(args: list[str]) -> str:
    """The one line a command stops with (the app runner prints it as `error: …`, exit 2)."""
    res = runner.invoke(app, args)
    assert isinstance(res.exception, AttiqaError), res.output
    return " ".join(str(res.exception).split())


def _photos(folder, n: int = 3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        base = np.linspace(0, 255, 48 * 40 * 3).reshape(40, 48, 3)
        img = np.clip(base + rng.normal(0, 10 + 5 * i, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_label_out_that_is_not_a_label_file_is_refused_before_the_teacher_loads(tmp_path):
    """**Was**: `attiqa label photos -o mos.csv` (an existing score CSV, or a photo) ended in pyarrow's
    "Parquet magic bytes not found" traceback, and `-o labels.csv` (new) wrote Parquet bytes under a
    `.csv` name. Now one line each, before any labelling, and the file is left as it was."""
    photos = _photos(tmp_path / "photos")
    score_csv = tmp_path / "mos.csv"
    score_csv.write_text("image,mos\nphotos/p0.png,3.5\n")
    said = _refused(["label", str(photos), "-o", str(score_csv)])
    assert f"{score_csv}: exists and is not a label file" in said and "choose another --out" in said
    assert score_csv.read_text() == "image,mos\nphotos/p0.png,3.5\n"

    new_csv = tmp_path / "labels.csv"
    assert f"name it {tmp_path / 'labels.parquet'}" in _refused(["label", str(photos), "-o", str(new_csv)])
    assert not new_csv.exists()

    # the same through a run config's label.out
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'run'}\nlabel:\n  images: [{photos}]\n  out: {score_csv}\n")
    assert f"{score_csv}: exists and is not a label file" in _refused(["train", "-c", str(cfg)])
    assert not (tmp_path / "run").exists()

    good = tmp_path / "labels.parquet"
    res = runner.invoke(app, ["label", str(photos), "-o", str(good)])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["label", str(photos), "-o", str(good)]).exit_code == 0  # resumes
