"""Round 2 of :mod:`test_cli_early_checks`: the bad inputs that still loaded torch before their one line
(a run config's values, ...), each run through its command line's real entry point in ONE fresh interpreter
that must not have imported torch when the line is said (``check``). Timed by ``benchmarks/cli_startup.py``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from early_checks import check
from PIL import Image


def test_run_config_value_errors_are_told_before_torch(tmp_path: Path) -> None:
    """The value checks read the backbone names (attiqa.backbone_info), the crop rule (attiqa.limits) and a
    label table's footer (attiqa.io.label_tables): all torch-free now."""
    configs = {
        "epochs.yaml": "finetune:\n  epochs: 0\n",
        "backbone.yaml": "model:\n  backbone: resnet5\n",
        "stage_backbone.yaml": "pretrain:\n  backbone: efficientnet_lite9\n",
        "crop.yaml": "finetune:\n  crop_size: 400\n  resize_shorter: 300\n",
        "labels.yaml": f"labels: {tmp_path / 'one.parquet'}\npretrain: {{}}\n",
    }
    for name, text in configs.items():
        (tmp_path / name).write_text(text)
    pq.write_table(pa.table({"image": ["a.png"], "sharpness": [0.5]}), tmp_path / "one.parquet")
    a = "attiqa.cli"

    def train(name: str) -> list[str]:
        return ["train", "--config", str(tmp_path / name)]

    check(
        [
            (a, train("epochs.yaml"), "finetune.epochs: must be >= 1, got 0"),
            (a, train("backbone.yaml"), "model.backbone: 'resnet5' is not one of resnet50"),
            (a, train("stage_backbone.yaml"), "pretrain.backbone: 'efficientnet_lite9' is not one of"),
            (a, train("crop.yaml"), "finetune.crop_size: 400 is larger than resize_shorter 300"),
            (a, train("labels.yaml"), "is not a label table (1 row(s) — ranking needs at least 2 images)"),
        ]
    )


def test_the_vote_server_serves_and_records_a_vote_without_torch(tmp_path: Path, photos) -> None:
    """`genbench vote` serves pages and records votes: no model, so no torch (its import chain reached it
    through prefs -> agreement -> run_scores -> attiqa.scoring; ~3 s a start, and tests start it ~28
    times). The real server process, a rater's requests over HTTP; the process's loaded libraries are read
    from /proc: torch's shared library is in them once anything imported torch."""
    import json
    import urllib.request

    pytest.importorskip("flask")
    from genbench_helpers import VoteServer, make_photo_run

    run = make_photo_run(tmp_path / "run", dict(list(photos.items())[:2]))
    srv = VoteServer(run, tmp_path / "server.log")
    try:
        page = urllib.request.urlopen(srv.url + "/", timeout=30).read().decode()
        assert "<html" in page.lower()
        nxt = json.loads(urllib.request.urlopen(srv.url + "/api/next?rater=r1", timeout=30).read())
        assert urllib.request.urlopen(srv.url + nxt["left"], timeout=30).read()[:4] == b"\x89PNG"
        body = json.dumps({"rater": "r1", "pair_id": nxt["pair_id"], "choice": "left"}).encode()
        req = urllib.request.Request(srv.url + "/api/vote", body, {"Content-Type": "application/json"})
        assert urllib.request.urlopen(req, timeout=30).status == 201
        libs = Path(f"/proc/{srv.proc.pid}/maps").read_text()
    finally:
        srv.stop()
    assert "libtorch" not in libs, "genbench vote imported torch to serve the study"


def test_attiqa_label_images_and_prompts_are_told_before_torch(tmp_path: Path) -> None:
    """`attiqa label`'s images are found and its --prompts file read before the label stage loads torch
    (the teachers package re-exports its torch modules on first use; the prompts module is torch-free)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 24), (120, 80, 40)).save(photos / "a.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "bad.json").write_text('{"format": 1\n')
    (tmp_path / "half.json").write_text('{"attributes": {"sharpness": {}}}')
    out = ["-o", str(tmp_path / "labels.parquet")]
    a = "attiqa.cli"

    def prompts(name: str) -> list[str]:
        return ["label", str(photos), "--teacher", "clip", "--prompts", str(tmp_path / name), *out]

    check(
        [
            (a, ["label", str(tmp_path / "missing.jpg"), *out], "missing.jpg: no such file or folder"),
            (a, ["label", str(empty), *out], "no images found in"),
            (a, prompts("no.json"), "no.json: prompts file not found"),
            (a, prompts("bad.json"), "bad.json: not valid JSON"),
            (a, prompts("half.json"), "half.json"),
        ]
    )
    assert not (tmp_path / "labels.parquet").exists()


def test_attiqa_bench_input_errors_are_told_before_torch(tmp_path: Path) -> None:
    """`attiqa bench`'s checks before its splits (attiqa.bench_setup: the protocol and its options, the
    datasets and score files, the base config, --init) run before attiqa.protocols (torch) is imported."""
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 24), (40 * i, 80, 40)).save(data / f"{i}.png")
    (data / "mos.csv").write_text("image,mos\n" + "".join(f"{i}.png,{i}\n" for i in range(4)))
    (data / "same.csv").write_text("image,mos\n" + "".join(f"{i}.png,3\n" for i in range(4)))
    (data / "gap.csv").write_text("image,mos\n0.png,1\nmissing.png,2\n")
    d = ["-d", f"folder={data}"]
    out = ["-o", str(tmp_path / "bench")]
    a = "attiqa.cli"
    check(
        [
            (a, ["bench", "singel", *d, *out], "unknown protocol 'singel'"),
            (a, ["bench", "single", *d, "-c", str(tmp_path / "no.yaml"), *out], "base config not found"),
            (a, ["bench", "single", "-d", f"folder={tmp_path / 'nope'}", *out], "dataset root not found"),
            (a, ["bench", "single", *d, "--target", "mos_algn", *out], "--target 'mos_algn'"),
            (a, ["bench", "single", *d, "--fractions", "0.1", *out], "--fractions 0.1: only the data-eff"),
            (a, ["bench", "data-efficient", *d, "--fractions", "a", *out], "--fractions must be comma-sep"),
            (a, ["bench", "cross", *d, *out], "cross: needs at least two datasets"),
            (a, ["bench", "cross", *d, "-d", f"folder={data}", *out], "datasets need distinct labels"),
            (a, ["bench", "single", *d, "-o", str(data)], "is the dataset's own folder"),
            (a, ["bench", "single", "-d", f"folder={data / 'gap.csv'}", *out], "missing.png"),
            (a, ["bench", "single", "-d", f"folder={data / 'same.csv'}", *out], "have the same mos"),
            (a, ["bench", "single", *d, "--init", str(tmp_path / "no.safetensors"), *out], "no.safetensors"),
        ]
    )
    assert not (tmp_path / "bench").exists()
