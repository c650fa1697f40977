"""A command that does its work imports only what that work needs: ``attiqa score`` of one image (the
shipped default model) and ``genbench score`` compute no correlation, build no CLIP model and run no
diffusion or RL stack, so scipy, torchvision, open_clip, diffusers, gymnasium and stable-baselines3 stay
unloaded (``scipy.stats`` alone was ~0.8 s of a ~4 s ``attiqa score``). Each command runs to its end in a
fresh interpreter through its real ``main()``; the modules are read from ``sys.modules`` as it exits.
``attiqa bench``'s checks before and of its splits say their error without scipy too; ``genbench agree``,
which reads score files, imports no torch at all. Structural, not timed:
``benchmarks/cli_startup.py`` measures the time (docs/default_model.md, speed notes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from early_checks import HEAVY, check
from helpers import agiqa3k_folder, attiqa_env
from PIL import Image

UNUSED = ("scipy", "torchvision", "open_clip", "diffusers", "gymnasium", "stable_baselines3")

# argv[1]: the entry module; the rest its arguments. The module names loaded by the end go to stderr's
# last line (atexit: after main's sys.exit).
WRAPPER = """
import atexit, json, sys
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr, flush=True))
module = sys.argv[1]
sys.argv = [module.split(".")[0], *sys.argv[2:]]
__import__(module, fromlist=["main"]).main()
"""


def run_main(module: str, *args: object) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``module``'s ``main()`` with ``args`` in a fresh interpreter: the finished process and the names
    in its ``sys.modules`` at exit."""
    res = subprocess.run(
        [sys.executable, "-c", WRAPPER, module, *map(str, args)],
        capture_output=True,
        text=True,
        env=attiqa_env({"COLUMNS": "200"}),
        timeout=600,
    )
    *_, last = res.stderr.splitlines() or [""]
    assert last.startswith("MODULES "), res.stderr[-3000:]
    return res, set(json.loads(last.removeprefix("MODULES ")))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of the packages ``names`` (or any of their submodules) are among ``modules``."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(path)
    return path


def test_attiqa_score_of_one_image_imports_no_unused_stack(tmp_path):
    img = photo(tmp_path / "one.png", 0)
    res, modules = run_main("attiqa.cli", "score", img)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 image(s) scored" in res.stdout and "one.png" in res.stdout
    assert "torch" in modules  # the model did run
    assert loaded(modules, UNUSED) == []


def test_genbench_score_imports_no_unused_stack(tmp_path):
    from genbench.manifest import write_manifest

    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    for side in "ab":
        photo(run / "images" / f"p0_{side}.png", ord(side))
    write_manifest(run, [{"pair_id": "p0", "image_a": "images/p0_a.png", "image_b": "images/p0_b.png"}])
    res, modules = run_main("genbench.cli", "score", run, "-m", "attiqa-default", "-w", "0")
    assert res.returncode == 0, res.stderr[-3000:]
    scored = (run / "scores" / "attiqa-default.csv").read_text().splitlines()
    assert len(scored) == 3 and scored[0].startswith("image,")  # the header and both images
    assert loaded(modules, UNUSED) == []


def test_attiqa_bench_checks_are_told_without_scipy(tmp_path):
    """The protocol's name and the split of a one-image dataset (``attiqa/bench_splits.py``, which reads the
    metrics module's ``FEW_IMAGES``) are told before any correlation is computed."""
    data = tmp_path / "photos"
    data.mkdir()
    photo(data / "a.png", 1)
    (data / "mos.csv").write_text("image,mos\na.png,1\n")
    d, out = ["-d", f"folder={data}"], ["-o", str(tmp_path / "bench")]
    check(
        [
            ("attiqa.cli", ["bench", "singel", *d, *out], "unknown protocol 'singel'"),
            ("attiqa.cli", ["bench", "single", *d, *out], "gives 1 to train on and 0 to test on"),
        ],
        heavy=(*HEAVY, "scipy"),
    )
    assert not (tmp_path / "bench").exists()


def test_genbench_agree_reads_a_runs_scores_without_torch(tmp_path):
    """**Was**: `genbench agree` only reads score files, yet imported torch (~2 s of its ~3 s start): the
    scoring half of ``genbench.run_scores`` (``attiqa.scoring``) at import, and the shipped-model test
    (``zoo.shipped_model``) hashing a shipped model's tensors through ``attiqa.io.checkpoints``. Now both
    are torch-free (``attiqa.io.hashes.safetensors_hashes``), and a run scored by attiqa-agiqa3k (its
    identity hashed, so the shipped files are hashed to know it) still gets the training-fit warning."""
    from genbench.agiqa3k import import_agiqa3k
    from genbench.manifest import load_pairs
    from genbench.metric_scoring import score_run

    run = tmp_path / "run"
    import_agiqa3k(agiqa3k_folder(tmp_path / "agiqa"), run)
    for metric in ("classical", "attiqa-agiqa3k"):
        assert score_run(run, load_pairs(run), metric, num_workers=0).error == ""
    record = json.loads((run / "scores" / "attiqa-agiqa3k.json").read_text())
    assert record["identity"]["tensors_sha256"]  # agree tells it by its weights, not its name
    res, modules = run_main("genbench.cli", "agree", run, "--bootstrap", "100")
    assert res.returncode == 0, res.stdout + res.stderr[:3000]
    said = " ".join((res.stdout + res.stderr).split())
    assert "attiqa-agiqa3k was trained on AGIQA-3K images; agreement on them is not a held-out figure" in said
    assert "classical was trained" not in said
    assert loaded(modules, ("torch",)) == []


def test_genbench_score_of_a_run_scored_already_loads_no_scorer(tmp_path):
    """**Was**: a rerun of `genbench score` on a run every metric had scored imported torch and loaded each
    scorer (~3 s and ~750 MiB for attiqa-default) to find nothing to do. Now each metric's record proves it
    without loading (``genbench.run_scores.scored_already``: its weights and card by hash, the score file's
    version, the run's images), and the rerun says each metric's images are already scored."""
    from genbench.agiqa3k import import_agiqa3k
    from genbench.manifest import load_pairs
    from genbench.metric_scoring import score_run

    run = tmp_path / "run"
    import_agiqa3k(agiqa3k_folder(tmp_path / "agiqa"), run)
    for metric in ("classical", "attiqa-default"):
        assert score_run(run, load_pairs(run), metric, num_workers=0).scored == 6
    before = {p.name: p.read_bytes() for p in (run / "scores").iterdir()}
    res, modules = run_main("genbench.cli", "score", run, "-m", "classical,attiqa-default")
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    said = " ".join((res.stdout + res.stderr).split())  # the report is on stderr (attiqa.progress.console)
    assert "classical: 0 scored, 6 already scored, 0 unreadable" in said
    assert "attiqa-default: 0 scored, 6 already scored, 0 unreadable" in said
    assert loaded(modules, ("torch",)) == []
    assert {p.name: p.read_bytes() for p in (run / "scores").iterdir()} == before  # nothing rewritten


# A registry with a named model fetched by URL (none is shipped today), asked whether a metric is it.
URL_ENTRY = """
import sys
from attiqa.scorers import zoo
shipped = zoo.named_models
zoo.named_models = lambda: {**shipped(), "fetched": {"url": "https://example.invalid/f.safetensors",
                                                     "sha256": "0" * 64}}
assert zoo.shipped_model({"sha256": "1" * 64, "tensors_sha256": "2" * 64}) is None
print("torch" in sys.modules)
"""


def test_a_named_model_fetched_by_url_is_looked_up_without_torch(tmp_path):
    """**Was**: where a URL model's download is kept came from ``attiqa.io.checkpoints.cache_dir`` (torch), so
    `genbench agree`'s shipped-model test imported torch for a registry holding one. Now ``cache_dir`` is in
    the torch-free ``attiqa.io.cache_home``."""
    res = subprocess.run(
        [sys.executable, "-c", URL_ENTRY],
        capture_output=True,
        text=True,
        env=attiqa_env({"ATTIQA_CACHE": str(tmp_path / "cache")}),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == ["False"]
