"""`attiqa train`, `attiqa bench` and `attiqa eval folder` as a user runs them."""

from __future__ import annotations

import json

from helpers import LABEL_AND_PRETRAIN, tiny_train_config

from attiqa.io.checkpoints import training_state_extra


def test_a_moved_folder_of_files_given_one_by_one_is_named_once(tmp_path, cli):
    """`label.images` as the folder's files one by one, the folder moved, `train --resume` with the files at
    the new place: **was** "pretrain: the dataset moved: OLD/img00.png -> NEW/img00.png, … (every file)"
    and the record held every path again beside the folder holding them (two records of one place); now
    one record of where the rows are — the folders given (a file: its folder) — and "OLD -> NEW" once."""
    cfg = tiny_train_config(tmp_path)
    images, new = tmp_path / "set" / "images", tmp_path / "new" / "photos"

    def train(folder, *more):
        files = ",".join(str(p) for p in sorted(folder.glob("*.png")))
        return cli("train", "--config", cfg, *LABEL_AND_PRETRAIN, "--set", f"label.images=[{files}]", *more)

    assert train(images).returncode == 0
    new.parent.mkdir()
    images.rename(new)
    res = train(new, "--resume", "--set", "pretrain.epochs=2")
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert f"pretrain: the dataset moved: {images} -> {new}, same rows" in said, said
    assert "img00.png" not in said
    record = training_state_extra(tmp_path / "run" / "pretrain" / "last.state.safetensors")["config"]["data"]
    assert record["roots"] == [str(new)] and "root" not in record


def _folder(root, rows):
    """``root/images`` of 6 noise images and ``root/mos.csv`` of ``rows`` (``image,mos`` lines)."""
    import numpy as np
    from PIL import Image

    (root / "images").mkdir(parents=True)
    for i in range(6):
        arr = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "images" / f"img{i}.png")
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return root


SIX = [(f"img{i}.png", 10 + 7 * i) for i in range(6)]


def test_a_score_of_n_a_is_no_score_in_bench_and_eval_as_in_train(tmp_path, cli):
    """A `mos.csv` cell `n/a`: `attiqa train` (finetune.csv) left the row out ("1 row(s) without a finite
    mos … (row 4)"), but `eval folder` and `bench` — the folder adapter's own test of a number — **were**
    refused: "mos.csv:4: mos 'n/a' is not a number". Now one rule (`readers.cell_number`): left out and said
    alike; a word that is no number is still refused, naming its line."""
    rows = [*SIX[:2], ("img2.png", "n/a"), *SIX[3:]]
    root = _folder(tmp_path / "set", rows)
    res = cli("eval", "folder", "--root", root, "-m", "classical", "-o", tmp_path / "ev")
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert "1 row(s) without a finite mos (empty, NaN or inf) left out (row 4)" in said, said
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["n"] == 5
    (root / "mos.csv").write_text((root / "mos.csv").read_text().replace("n/a", "abc"))
    res = cli("eval", "folder", "--root", root, "-m", "classical", "-o", tmp_path / "ev2")
    assert res.returncode == 2 and f"{root / 'mos.csv'}:4: mos 'abc' is not a number" in res.stderr


def test_missing_images_and_twice_scored_images_name_their_rows(tmp_path, cli):
    """`bench single -d mine:folder=DIR` with a row naming an image DIR lacks: **was** the image and "not
    found" with no row of mos.csv and no way out (eval's ends with its --skip-missing); now "(mos.csv line
    8)" and "put the files in place, or drop their rows from the score file". An image with two scores:
    **was** "IMG (17 and 40)"; now "IMG (17 on line 3 and 40 on line 8)"."""
    root = _folder(tmp_path / "set", [*SIX, ("gone.png", 50)])
    res = cli("bench", "single", "-d", f"mine:folder={root}", "-o", tmp_path / "b", "-q")
    assert res.returncode == 2
    assert f"{root / 'images' / 'gone.png'}: not found (mos.csv line 8)" in res.stderr, res.stderr
    assert res.stderr.rstrip().endswith("put the files in place, or drop their rows from the score file")
    assert not (tmp_path / "b" / "single").exists()
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"{a},{b}\n" for a, b in [*SIX, ("img1.png", 40)]))
    res = cli("eval", "folder", "--root", root, "-m", "classical", "-o", tmp_path / "ev")
    assert res.returncode == 2
    assert f"{root / 'images' / 'img1.png'} (17 on line 3 and 40 on line 8)" in res.stderr, res.stderr


def test_train_names_the_row_of_a_missing_image(tmp_path, cli):
    """`attiqa train` with `finetune.csv` naming an image that is not there: **was** "mos.csv: 1 of 9 images
    not found (…/gone.png)", no row; now "(…/gone.png on line 11)", counting the left-out row (an empty
    MOS) before it."""
    rows = "image,mos\n" + "".join(f"img{i:02d}.png,{1 + i}\n" for i in range(8)) + "img00.png,\ngone.png,5\n"
    cfg = tiny_train_config(tmp_path, mos_csv=rows)
    res = cli("train", "--config", cfg)
    assert res.returncode == 2
    gone = tmp_path / "set" / "images" / "gone.png"
    assert f"1 of 9 images not found ({gone} on line 11)" in " ".join(res.stderr.split()), res.stderr


def test_a_group_column_with_empty_cells_names_their_rows(tmp_path, cli):
    """`bench single --group-by prompt` on a `mos.csv` whose prompt column is empty on two rows: **was**
    "folder (DIR): 2 of 6 items have no 'prompt' to group by (their metadata: prompt)" — the column it says
    they lack is there, and no row is named; now the rows and the fix: "(mos.csv lines 3, 6: an empty cell)
    — fill them in, or use --group-by none for image-wise splits"."""
    root = _folder(tmp_path / "set", SIX)
    prompts = ["a", "", "b", "a", "", "b"]
    (root / "mos.csv").write_text(
        "image,mos,prompt\n" + "".join(f"{a},{b},{p}\n" for (a, b), p in zip(SIX, prompts, strict=True))
    )
    cfg = tmp_path / "ft.yaml"
    cfg.write_text("finetune:\n  backbone: tiny\n  pretrained_backbone: false\n  device: cpu\n")
    res = cli(
        "bench", "single", "-d", f"mine:folder={root}", "-c", cfg, "--group-by", "prompt", "-o", tmp_path
    )
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line == (
        f"error: folder ({root}): 2 of 6 items have no 'prompt' to group by (mos.csv lines 3, 6: an empty "
        "cell) — fill them in, or use --group-by none for image-wise splits"
    ), line


def test_a_bench_runs_record_says_how_many_test_images_its_metrics_are_over(tmp_path, cli):
    """`bench single` on a folder with a truncated JPEG that a split holds out: the run skipped it ("skipped
    …/cut.jpg: cannot decode image") and its metrics are over the other held-out images, but its run.json
    **said** only `"n_test": 3`, the images held out; now also `"n_scored": 2`, what the metrics are over."""
    import numpy as np
    from PIL import Image

    from attiqa.bench_splits import random_splits
    from attiqa.datasets import get_dataset

    root = _folder(
        tmp_path / "set", [*SIX, *[(f"img{i}.png", 50 + i) for i in range(6, 12)], ("cut.jpg", 30)]
    )
    for i in range(6, 12):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            root / "images" / f"img{i}.png"
        )
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (60, 60, 3), dtype=np.uint8)).save(whole)
    (root / "images" / "cut.jpg").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    items = get_dataset("folder", root).items
    cut = next(i for i, it in enumerate(items) if it.image.name == "cut.jpg")
    seed = next(s.seed for s in random_splits(len(items), 50, 0) if cut in s.test)
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "finetune:\n  backbone: tiny\n  pretrained_backbone: false\n  device: cpu\n  num_workers: 0\n"
        "  epochs: 1\n  batch_size: 4\n  resize_shorter: 40\n  crop_size: 32\n  mos_hidden: 8\n"
    )
    out = tmp_path / "b"
    res = cli(
        "bench", "single", "-d", f"mine:folder={root}", "-c", cfg, "-n", 1, "--seed", seed, "-o", out, "-q"
    )
    assert res.returncode == 0, res.stderr
    assert "cut.jpg: cannot decode image" in res.stdout + res.stderr
    record = json.loads((out / "single" / "mine" / "split00" / "run.json").read_text())
    assert (record["n_test"], record["n_scored"]) == (3, 2)
