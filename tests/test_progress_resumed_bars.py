"""Every resumable command's bar counts what an earlier run kept from its first frame, said as kept and
outside the rate (`attiqa.progress.progress_task(kept=…)`, docs/robustness.md). The real commands on tiny
fixtures; each test failed before its fix."""

from __future__ import annotations

import re

import pytest
from conftest import photo_folder
from helpers import terminal_bar


def test_a_resumed_label_run_shows_the_kept_images_in_its_first_frame(tmp_path, photos, cli):
    """**Was**: `attiqa label photos -o l.parquet` rerun after 2 photos were added to its 3 drew its live bar
    at "0/5" first, the 3 kept images arriving as one jump after it. Now "3/5" from the first frame."""
    folder = photo_folder(tmp_path / "photos", photos, n=3, side=64)
    out = tmp_path / "l.parquet"
    assert cli("label", folder, "-o", out, "--workers", "0").returncode == 0
    photo_folder(folder, {f"more{k}": img for k, img in enumerate(photos.values())}, n=2, side=64)
    with terminal_bar("labelling (classical)") as frames:
        res = cli("label", folder, "-o", out, "--workers", "0")
    assert res.returncode == 0, res.stderr
    counts = [re.search(r" (\d+)/5 ", f)[1] for f in frames]  # type: ignore[index]
    assert counts and counts[0] == "3" and counts[-1] == "5", frames


@pytest.mark.parametrize("workers", ["1", "0"])
def test_a_resumed_score_counts_the_rows_of_its_file_from_the_first_frame(photo_dir, tmp_path, cli, workers):
    """**Was**: `attiqa score DIR -o s.csv -b 2` rerun after 2 of its 5 photos were scored into s.csv said
    "resuming: 2 image(s) already in s.csv, 3 to score", then a bar of the 3 left only, its first line the
    first batch's ("scoring: 1/3" with a decode worker, "scoring: 2/3" without) and its last "3/3", the
    file's 2 rows unsaid. Now "2/5", said as kept, up to "5/5", as `eval` counts its cache hits."""
    out = tmp_path / "s.csv"
    two = sorted(photo_dir.glob("*.jpg"))[:2]
    assert cli("score", *two, "-m", "classical", "-o", out, "-q").returncode == 0
    res = cli("score", photo_dir, "-m", "classical", "-o", out, "-b", "2", "--workers", workers)
    assert res.returncode == 0, res.stderr
    lines = [" ".join(ln.split()) for ln in res.stderr.splitlines()]
    bar = [ln for ln in lines if ln.startswith("scoring")]
    assert lines[lines.index(bar[0]) - 1] == f"resuming: 2 image(s) already in {out}, 3 to score", lines
    assert bar[0] == "scoring: 2/5 (none done now, 2 kept from an earlier run)", bar
    assert bar[-1].startswith("scoring: 5/5 (") and bar[-1].endswith(" img/s, 2 kept from an earlier run)")


def test_the_feature_cache_pass_counts_the_cached_images_as_kept(tmp_path, cli):
    """**Was**: `attiqa train` fine-tuning on cached backbone features (`finetune.feature_cache: true`) with
    5 of its 8 images' features already in the cache (an earlier run on 5 of them) drew "backbone features
    (cache): 3/3": the cached images were not in its count at all. Now "5/8 (…, 5 kept …)" first, then 8/8."""
    from helpers import tiny_train_config

    fc = {"feature_cache": "true", "feature_cache_dir": tmp_path / "features"}
    rows = "image,mos\n" + "".join(f"img{i:02d}.png,{1 + 0.3 * i:.1f}\n" for i in range(5))
    first = tiny_train_config(tmp_path / "a", mos_csv=rows, val_fraction=0.4, **fc)  # the same 8 images
    assert cli("train", "--config", first).returncode == 0
    res = cli("train", "--config", tiny_train_config(tmp_path / "b", **fc))
    assert res.returncode == 0, res.stderr
    bar = [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("backbone features")]
    assert bar and bar[0] == "backbone features (cache): 5/8 (none done now, 5 kept from an earlier run)", bar
    assert bar.count(bar[-1]) == 1, bar  # was said twice: an advance of nothing at the end printed it again
    assert bar[-1].startswith("backbone features (cache): 8/8 (") and bar[-1].endswith(
        " kept from an earlier run)"
    )


def test_degrade_rerun_with_added_photos_counts_the_kept_sources_from_its_first_line(tmp_path, photos, cli):
    """**Was**: `attiqa degrade photos -o g` rerun after 2 photos were added to its 3 counted each source
    as it came to it ("degrading: 1/5 (none done now, 1 kept …)" first, the live bar at 0/5); now the 3
    sources an earlier run made are in the count from the first line, "3/5 (none done now, 3 kept …)"."""
    folder = photo_folder(tmp_path / "photos", photos, n=3, side=48)
    args = ("degrade", folder, "--out", tmp_path / "g", "--levels", "1", "--distortions", "gaussian_blur")
    assert cli(*args).returncode == 0
    photo_folder(folder, {f"more{k}": img for k, img in enumerate(photos.values())}, n=2, side=48)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    bar = [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("degrading")]
    assert bar and bar[0] == "degrading: 3/5 (none done now, 3 kept from an earlier run)", bar
    assert bar[-1].startswith("degrading: 5/5 (") and bar[-1].endswith(" img/s, 3 kept from an earlier run)")


def test_make_distorted_resumed_counts_the_images_made_before_from_its_first_frame(tmp_path, photos, cli):
    """**Was**: `attiqa make-distorted photos --out set --rounds 1` resumed with 1 of its 3 images left
    counted each as it came to it: on a terminal the bar was drawn at "0/3" first. Now "2/3" from the
    first frame, and the log's first line says the 2 are kept."""
    folder = photo_folder(tmp_path / "photos", photos, n=3, side=48)
    args = ("make-distorted", folder, "--out", tmp_path / "set", "--rounds", "1")
    assert cli(*args).returncode == 0
    sorted((tmp_path / "set" / "images").rglob("*.png"))[-1].unlink()  # as a stopped run leaves it
    with terminal_bar("distorting") as frames:
        assert cli(*args).returncode == 0
    assert frames and re.search(r" 2/3 ", frames[0]) and re.search(r" 3/3 ", frames[-1]), frames
    sorted((tmp_path / "set" / "images").rglob("*.png"))[0].unlink()
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    bar = [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("distorting")]
    assert bar and bar[0] == "distorting: 2/3 (none done now, 2 kept from an earlier run)", bar


def test_isp_tune_resumed_stages_count_what_they_kept_from_their_first_line(tmp_path, isp_raws, isp_cli):
    """`isp-tune` (its teacher, 2 held-out raws, the baselines) rerun after one raw's tuned setting, its
    check and its per-image search were lost (as a stop leaves them), then with `--teacher-restarts 2`.
    **Was**: each stage counted a kept raw as it came to it — "teacher: read + tune: 1/2 (16.4 img/s)"
    first (the lost raw came first), the teacher's searches "1/4 (…, 1 kept …)" of 2 kept, and the teacher's
    cross-validation, all 18 scores read from its cache, "2/18 (1896.2 raw/s)": the kept in the rate. Now
    every stage's first line counts what it kept, outside the rate."""
    import json

    from helpers import quick_isp_tune

    _, out, args = quick_isp_tune(tmp_path, isp_raws, test_fraction="0.5")
    args = [a for a in args if a != "--no-baselines"] + [
        "--cma-global-budget",
        "8",
        "--cma-image-budget",
        "4",
    ]
    assert isp_cli(*args).returncode == 0
    for method in ("teacher", "teacher_checked"):
        sorted((out / "test" / method / "params").glob("*.json"))[0].unlink()
    searches = out / "baselines" / "cma_per_image.json"
    per = json.loads(searches.read_text())
    searches.write_text(json.dumps({k: v for k, v in per.items() if k != min(per)}))

    def first_lines(res) -> dict[str, str]:
        assert res.returncode == 0, res.stderr[-3000:]
        lines = [" ".join(ln.split()) for ln in res.stderr.splitlines()]
        found: dict[str, str] = {}
        for ln in lines:
            if re.match(r".+: \d+/\d+ \(", ln):
                found.setdefault(ln.rsplit(": ", 1)[0], ln.rsplit(": ", 1)[1])
        return found

    first = first_lines(isp_cli(*args))
    for what in ("teacher: read + tune", "teacher_checked: policy / base / neutral", "per-image CMA-ES"):
        assert first[what] == "1/2 (none done now, 1 kept from an earlier run)", (what, first)
    first = first_lines(isp_cli(*args, "--teacher-restarts", "2"))
    kept = "(none done now, {} kept from an earlier run)"
    assert first["teacher: per-image CMA-ES on the training raws"] == "2/4 " + kept.format(2), first
    assert first["teacher: cross-validation"] == "18/18 " + kept.format(18), first


def test_isp_tune_training_resumed_says_its_kept_steps_from_the_first_line(tmp_path, isp_raws, isp_cli):
    """**Was**: `isp-tune --algo sac --timesteps 16` over a run trained to step 8 logged no line until a
    tenth of the work was done and then "training SAC: 10/16 (… step/s)": the 8 kept steps were in the
    count (``progress_task(done=)``) but said nowhere. Now "8/16 (none done now, 8 kept …)" first, as every
    resumed bar (one rule: ``progress_task(kept=)``)."""
    from helpers import TINY_SAC, quick_isp_tune

    _, out, args = quick_isp_tune(tmp_path, isp_raws)
    assert isp_cli(*args, *TINY_SAC, "--timesteps", "8", "--checkpoint-every", "8").returncode == 0
    res = isp_cli(*args, *TINY_SAC, "--timesteps", "16", "--checkpoint-every", "8")
    assert res.returncode == 0, res.stderr[-3000:]
    bar = [" ".join(ln.split()) for ln in res.stderr.splitlines() if ln.startswith("training SAC: ")]
    assert bar and bar[0] == "training SAC: 8/16 (none done now, 8 kept from an earlier run)", bar
    assert bar[-1].startswith("training SAC: 16/16 (") and bar[-1].endswith(
        " step/s, 8 kept from an earlier run)"
    )


def test_train_exiqa_resumed_shows_its_kept_epochs_in_the_first_frame(tmp_path, exiqa_set, tiny_dir, cli):
    """**Was**: `attiqa train-exiqa DATA -o RUN --epochs 3` resumed after its first epoch drew its live bar at
    "0/3" first, the kept epoch arriving as a jump after it. Now "1/3" from the first frame."""
    from helpers import exiqa_stopped_after_one_epoch

    data, _ = exiqa_set
    run = tmp_path / "run"
    exiqa_stopped_after_one_epoch(data, run, tiny_dir)
    with terminal_bar("exiqa epochs") as frames:
        res = cli("train-exiqa", data, "-o", run, "--clip", tiny_dir, "--epochs", "3", "--warmup-epochs", "1",
                  "--prompts", "2", "-b", "8", "--val-fraction", "0.2", "--device", "cpu")  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert frames and re.search(r" 1/3 ", frames[0]) and re.search(r" 3/3 ", frames[-1]), frames


def test_select_prompts_resumed_counts_its_cached_photos_from_the_first_line(tmp_path, photos, tiny_dir, cli):
    """**Was**: `attiqa select-prompts … -o sel` resumed with 2 of its 3 photos' embeddings cached counted
    each as it came to it: "task 1: distortion series: 1/3 (none done now, 1 kept …)" first (on a terminal
    "0/3"). Now "2/3 (…, 2 kept …)" from the first line."""
    folder = photo_folder(tmp_path / "photos", photos, n=3, side=64)
    args = ["select-prompts", "-t", f"clip:{tiny_dir}", "-i", folder, "-o", tmp_path / "sel",
            "--work-size", "32", "--device", "cpu"]  # fmt: skip
    assert cli(*args).returncode == 0
    (tmp_path / "sel" / "cache" / "series_00002.safetensors").unlink()  # as a stopped run leaves it
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    bar = [" ".join(x.split()) for x in res.stderr.splitlines() if x.startswith("task 1")]
    assert bar and bar[0] == "task 1: distortion series: 2/3 (none done now, 2 kept from an earlier run)", bar
    assert bar[-1].startswith("task 1: distortion series: 3/3 (") and bar[-1].endswith(
        " 2 kept from an earlier run)"
    )
