"""genbench run: the real diffusers pipeline code on a tiny random-weight Stable Diffusion built from configs.

Covers the run folder (images + manifest JSONL/CSV + run.json), determinism of seeds, resume after a
SIGKILL of the real command, refusing changed settings on resume, and the one-line offline error.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from genbench_helpers import build_tiny_sd
from helpers import attiqa_env, genbench_cmd, interrupt_when, kill_when, run_genbench
from PIL import Image

from attiqa.errors import AttiqaError, ConfigError, ModelLoadError
from genbench.generate import GenSettings, generate_run, load_pipeline
from genbench.manifest import load_pairs, write_manifest
from genbench.prompts import load_prompt_spec


@pytest.fixture(scope="module", autouse=True)
def _diffusers():
    """Skips the module without diffusers and transformers — when its tests run, not at collection:
    importing diffusers (torch._dynamo with it) took 3.6 s of each collection of the suite, on each worker."""
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("tiny") / "sd")


@pytest.fixture(scope="module")
def tiny_pipe(tiny_sd):
    return load_pipeline(str(tiny_sd), "fp32", "cpu")


def _settings(model: Path, **kw) -> GenSettings:
    base = dict(model=str(model), steps=2, width=32, height=32, seed=7)
    base.update(kw)
    return GenSettings(**base)


def test_run_folder_manifest_and_determinism(tmp_path, tiny_sd, tiny_pipe):
    spec = load_prompt_spec()
    res = generate_run(tmp_path / "run", spec, _settings(tiny_sd), 3, pipeline=tiny_pipe)
    assert (res.made, res.kept, res.failed) == (6, 0, [])
    pairs = load_pairs(tmp_path / "run")
    assert [p.pair_id for p in pairs] == ["p0000", "p0001", "p0002"]
    rec = pairs[0].record
    assert rec["prompt"].startswith("masterpiece, best quality") and rec["seed_a"] != rec["seed_b"]
    assert {k: rec[k] for k in ("model", "steps", "width", "height", "dtype", "guidance")} == {
        "model": str(tiny_sd),
        "steps": 2,
        "width": 32,
        "height": 32,
        "dtype": "fp32",
        "guidance": 7.5,
    }
    with open(tmp_path / "run" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["pair_id"] for r in rows] == ["p0000", "p0001", "p0002"]
    assert rows[1]["prompt"] == pairs[1].record["prompt"]
    a = np.asarray(Image.open(tmp_path / "run" / pairs[0].image_a))
    b = np.asarray(Image.open(tmp_path / "run" / pairs[0].image_b))
    assert a.shape == (32, 32, 3) and not np.array_equal(a, b)  # two seeds, two images
    header = json.loads((tmp_path / "run" / "run.json").read_text())
    assert header["settings"]["seed"] == 7 and header["prompts"]["candidates"]["action"][0] == "playing"

    # the same settings elsewhere give the same pixels (seeded CPU noise)
    again = generate_run(tmp_path / "again", spec, _settings(tiny_sd), 1, pipeline=tiny_pipe)
    assert again.made == 2
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "again" / pairs[0].image_a)))

    # resume: one missing image is remade, identical; the rest is kept
    target = tmp_path / "run" / pairs[2].image_b
    before = target.read_bytes()
    target.unlink()
    res = generate_run(tmp_path / "run", spec, _settings(tiny_sd), 3, pipeline=tiny_pipe)
    assert (res.made, res.kept) == (1, 5)
    assert np.array_equal(np.asarray(Image.open(target)), np.asarray(Image.open(io.BytesIO(before))))

    # changed pixels-affecting settings are refused, naming what differs
    with pytest.raises(ConfigError, match="steps=2"):
        generate_run(tmp_path / "run", spec, _settings(tiny_sd, steps=3), 3, pipeline=tiny_pipe)


def test_scheduler_choice(tmp_path, tiny_sd):
    pipe = load_pipeline(str(tiny_sd), "fp32", "cpu", scheduler="euler")
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    with pytest.raises(ConfigError, match="unknown scheduler"):
        load_pipeline(str(tiny_sd), "fp32", "cpu", scheduler="nonsense")


def test_not_a_pipeline_folder_is_one_line(tmp_path):
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_pipeline(str(tmp_path), "fp32", "cpu")
    with pytest.raises(ModelLoadError, match="no such folder"):
        load_pipeline("sd21-missing-folder", "fp32", "cpu")


@pytest.mark.slow
def test_kill_and_resume_with_the_real_command(tmp_path, tiny_sd, genbench_cli):
    out = tmp_path / "run"
    args = [
        "run",
        "--model",
        str(tiny_sd),
        "--pairs",
        "4",
        "--steps",
        "8",
        "--width",
        "32",
        "--height",
        "32",
        "--batch-size",
        "1",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(
        genbench_cmd(*args), env=attiqa_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    kill_when(proc, lambda: bool(list((out / "images").glob("*.png"))))
    kept = {p.name: p.read_bytes() for p in (out / "images").glob("*.png")}
    assert 1 <= len(kept) < 8
    done = load_pairs(out)  # the manifest on disk is complete JSON listing finished pairs only
    assert all((out / p.image_a).exists() and (out / p.image_b).exists() for p in done)

    res = genbench_cli(*args)  # the rerun in this process (the kill was the real command's)
    assert res.returncode == 0, res.stderr
    assert f"{len(kept)} already there" in res.stderr
    assert len(load_pairs(out)) == 4 and len(list((out / "images").glob("*.png"))) == 8
    assert all((out / "images" / n).read_bytes() == b for n, b in kept.items())  # finished work untouched
    assert not list(out.rglob("*.tmp"))


def test_an_interrupted_run_ends_with_the_signal_s_code_and_one_line(tmp_path, tiny_sd, genbench_cli):
    """**Was** (session 36): exit 130 for SIGTERM too (``typer.Exit(130)``: Slurm or a supervisor read
    Ctrl-C); now 143 / 130 as every command, the command's own line the only "interrupted", and the rerun
    completes the run."""
    out = tmp_path / "run"
    args = ["run", "--model", tiny_sd, "--pairs", "6", "--steps", "8", "--width", "32", "--height", "32"]
    args += ["--batch-size", "1", "--out", out, "--device", "cpu"]
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        before = len(list(out.glob("images/*.png")))
        res = interrupt_when(
            genbench_cmd(*args), sig, lambda n=before: len(list(out.glob("images/*.png"))) > n
        )
        err = res.stderr
        assert res.returncode == code and "Traceback" not in err, err
        assert [ln for ln in err.splitlines() if ln.startswith("interrupted")] == [
            "interrupted — rerun the same command to continue"
        ], err
    made = len(list(out.glob("images/*.png")))
    assert 2 <= made < 12
    res = genbench_cli(*args)  # the rerun in this process (the signals were the real command's)
    assert res.returncode == 0 and f"{12 - made} images made, {made} already there" in res.stderr, res.stderr


def test_offline_without_weights_is_one_clear_line(tmp_path, tiny_sd, tiny_pipe, genbench_cli):
    """**Was** (session 46): the one line came third, after diffusers' own two ("Couldn't connect to the
    Hub: [Errno -2] Name or service not known." / "Will try to load from local cache."), which the
    error then contradicts. Now the command's line is all of stderr. ``HF_HUB_OFFLINE=1``: the same
    failure on a machine with a network (no 5 GB download in a test)."""
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    res = run_genbench("run", "--pairs", "1", "--out", tmp_path / "run", env={**env, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot load 'stabilityai/stable-diffusion-2-1'")
    assert "--model" in lines[0], res.stderr
    # session 48, **was**: the failure left the run folder behind (run.json, images/, an empty manifest and a
    # manifest.csv without a header; `genbench_run/` without --out); now the model loads before any write
    assert not (tmp_path / "run").exists()
    res = genbench_cli("run", "--pairs", "1", "--out", tmp_path / "run", "--model", tmp_path / "sd21")
    assert res.returncode == 2 and "sd21: no such folder — pass the folder made by" in res.stderr, res.stderr
    assert not (tmp_path / "run").exists()

    # session 34, **was**: `score` on a run of no image yet (an empty manifest: one stopped before its first
    # image) loaded every metric and ended in "no metric could score this run — ... check the images listed
    # as unreadable" (none were)
    write_manifest(tmp_path / "run", [])
    (tmp_path / "run" / "run.json").write_text("{}")
    for cmd in (["score", "-m", "classical"], ["agree"]):
        res = genbench_cli(cmd[0], tmp_path / "run", *cmd[1:])
        assert res.returncode == 2 and "no finished pair in the manifest yet" in res.stderr, res.stderr
    res = genbench_cli("score", tmp_path / "run" / "run.json")  # a file of the run instead of the run
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "run.json: a file, not a run folder" in said, res.stderr

    # following the advice (another --model, same --out) works: the failed run made no image
    res = generate_run(tmp_path / "run", load_prompt_spec(), _settings(tiny_sd), 1, pipeline=tiny_pipe)
    assert (res.made, res.failed) == (2, [])
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["model"] == str(tiny_sd)


def test_a_run_folder_of_imported_pairs_is_not_overwritten(tmp_path, tiny_sd, tiny_pipe):
    from genbench.imagereward import import_imagereward

    for k in (1, 2):
        Image.new("RGB", (16, 16), (40 * k, 0, 0)).save(tmp_path / f"{k}.png")
    items = [{"id": "i", "prompt": "p", "generations": ["1.png", "2.png"], "ranking": [1, 2]}]
    (tmp_path / "r.json").write_text(json.dumps(items))
    import_imagereward(tmp_path / "r.json", None, tmp_path / "run")
    with pytest.raises(ConfigError, match="imported pairs"):
        generate_run(tmp_path / "run", load_prompt_spec(), _settings(tiny_sd), 1, pipeline=tiny_pipe)
    assert [p.pair_id for p in load_pairs(tmp_path / "run")] == ["i:0-1"]

    # session 34, **was**: the other way round, an import replaced a generated run's manifest (its seeds,
    # prompts, settings per pair) and left it unable to resume ("holds imported pairs")
    generate_run(tmp_path / "gen", load_prompt_spec(), _settings(tiny_sd), 1, pipeline=tiny_pipe)
    made = (tmp_path / "gen" / "manifest.jsonl").read_bytes()
    with pytest.raises(AttiqaError, match="holds a generated run .1 pair of `genbench run`. — an import"):
        import_imagereward(tmp_path / "r.json", None, tmp_path / "gen")
    assert (tmp_path / "gen" / "manifest.jsonl").read_bytes() == made
    assert (
        not (tmp_path / "gen" / "image_root.json").exists() and not (tmp_path / "gen" / "prefs.csv").exists()
    )


def test_a_prompt_longer_than_the_text_encoder_reads_is_said_once(tmp_path, tiny_sd):
    """**Was** (session 46): a prompt over CLIP's 77 tokens (a long `--candidates` entry) got diffusers'
    "The following part of your input was truncated because CLIP can only handle sequences up to 77
    tokens: [...]" for every batch holding it — 4 KB a line, the cut-off text token by token, amid the
    progress (and transformers' "Token indices sequence length is longer than ..."). Now the run says it
    once, with a pair to look at: stderr is the progress, the summary and that line."""
    (tmp_path / "t.txt").write_text("{style} {object}\n")
    long = "very " * 100 + "long"
    (tmp_path / "c.json").write_text(json.dumps({"style": [long], "object": ["a dog", "a cat"]}))
    args = ["run", "--model", tiny_sd, "--pairs", "2", "--steps", "1", "--width", "32", "--height", "32"]
    args += ["--template", tmp_path / "t.txt", "--candidates", tmp_path / "c.json", "--out", tmp_path / "run"]
    res = run_genbench(*args, "--batch-size", "1", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    said = [ln for ln in res.stderr.splitlines() if not ln.startswith(("generating: ", f"{tmp_path}"))]
    assert said == [
        "warning: 2 prompts are longer than the text encoder reads (77 tokens): only the start conditions "
        "the images (e.g. p0000 in the manifest) — shorten the template or the candidates"
    ], res.stderr


def test_an_out_that_is_a_file_is_said_before_the_model_loads(tmp_path, genbench_cli):
    """**Was** `genbench run --out FILE` loaded (or downloaded) Stable Diffusion first and then failed on
    the folder; offline it said only "cannot load … from the Hub"; now the file is named first."""
    out = tmp_path / "notes"
    out.write_text("mine")
    res = genbench_cli("run", "--pairs", "1", "--out", out, "--model", tmp_path / "no_sd")
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and f"{out}: cannot create the output folder ({out} is a file" in said, said
    assert out.read_text() == "mine"


@pytest.mark.parametrize("guidance", ["nan", "inf", "-inf"])
def test_a_guidance_that_is_no_number_is_refused_before_the_model_loads(
    tmp_path, tiny_sd, genbench_cli, guidance
):
    """**Was** `genbench run --guidance nan` (or `inf`) accepted: images made from NaN noise predictions,
    `null` recorded as the guidance in run.json, and the same command run again refused ("was made with
    guidance=None (now nan)"); now one line naming the option, before the model loads and the folder is
    made."""
    out = tmp_path / "run"
    small = ("--width", "32", "--height", "32", "--steps", "1")
    res = genbench_cli(
        "run", "--pairs", "1", "--out", out, "--model", tiny_sd, *small, "--guidance", guidance
    )
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and f"--guidance must be a finite number (got {guidance})" in said, said
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()


@contextlib.contextmanager
def address_space_of(headroom: int):
    """This process's address space capped ``headroom`` bytes above its size now, for the block: an
    allocation past it fails for real whatever the machine's overcommit (with ``vm.overcommit_memory=1`` a
    307 GB ask is granted and the pages touched: swap, or the OOM killer on the test worker)."""
    resource = pytest.importorskip("resource")
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("no /proc/self/status to size the address space by")
    size = next(
        int(line.split()[1]) * 1024 for line in status.read_text().splitlines() if line.startswith("VmSize:")
    )
    before = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + headroom, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, before)


def test_out_of_memory_stops_at_the_first_batch_and_names_the_fix(tmp_path, tiny_sd, genbench_cli):
    """**Was** `genbench run` out of memory (a GPU too small for --width/--height at --batch-size; here a
    width no machine holds): every batch tried in turn, each failing the same way, then "rerun the same
    command to retry the failed images" — which fails alike. Now the run stops at the first such batch
    and says to lower --batch-size or the size; the finished images are kept. The failure is real but
    bounded: the address space is capped 4 GB above its size (review of session 64)."""
    out = tmp_path / "run"
    big = ("--width", "100000000", "--height", "768", "--steps", "1", "--batch-size", "2")  # 614 GB at once
    with address_space_of(4 << 30):
        res = genbench_cli("run", "--pairs", "2", "--out", out, "--model", tiny_sd, *big)
    said = " ".join(res.stderr.split())
    assert res.returncode == 1, said
    assert said.count("failed p0000/") == 2 and "p0001" not in said, said  # its one batch, then a stop
    assert "rerun the same command to retry" not in said, said
    assert "out of memory making 100000000x768 images, 2 a call — lower --batch-size" in said, said


def test_a_memory_error_in_a_batch_stops_the_run_and_another_error_skips_only_its_batch(
    tmp_path, tiny_sd, genbench_cli, monkeypatch
):
    """**Was** a ``MemoryError`` from the pipeline (numpy's failed allocation, e.g. the decoded images to
    PIL) a traceback: only ``RuntimeError`` / ``ValueError`` were caught, so :func:`out_of_memory`'s
    ``MemoryError`` test never ran; now it stops the run like torch's out of memory, the finished images
    kept. Any other failure still skips its batch alone, the rest made (review of session 64)."""
    import diffusers

    real = diffusers.StableDiffusionPipeline.__call__
    calls: list[int] = []

    def failing(error):
        def call(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise error
            return real(self, *args, **kwargs)

        return call

    small = ("--width", "32", "--height", "32", "--steps", "1", "--batch-size", "1")
    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "__call__", failing(MemoryError()))
    res = genbench_cli("run", "--pairs", "2", "--out", tmp_path / "a", "--model", tiny_sd, *small)
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and "Traceback" not in said, said
    assert (
        said.count("failed p0") == 1 and "out of memory making 32x32 images one a call — a smaller" in said
    ), said
    assert "--batch-size" not in said, said  # 1 is its floor: lowering it is refused
    assert len(calls) == 2 and len(list((tmp_path / "a").rglob("*.png"))) == 1

    calls.clear()
    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "__call__", failing(ValueError("odd prompt")))
    res = genbench_cli("run", "--pairs", "2", "--out", tmp_path / "b", "--model", tiny_sd, *small)
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and "out of memory" not in said, said
    assert said.count("failed p0") == 1 and "rerun the same command to retry the failed images" in said, said
    assert len(calls) == 4 and len(list((tmp_path / "b").rglob("*.png"))) == 3
