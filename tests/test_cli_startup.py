"""A command line answers ``--help`` (every command's) and ``attiqa models`` without importing the heavy
libraries: torch, scipy, PIL, numpy, the CLIP / diffusion / RL stacks. Each CLI runs in a fresh interpreter
(what is imported stays imported); speed itself is measured by ``benchmarks/cli_startup.py``.

``isp-tune`` may import Gymnasium (and numpy with it): ``import isp_env`` registers the environment, as
documented (README, docs/isp.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_attiqa

ROOT = Path(__file__).resolve().parents[1]

HEAVY = (
    "torch",
    "torchvision",
    "scipy",
    "PIL",
    "numpy",
    "skimage",
    "safetensors",
    "open_clip",
    "timm",
    "diffusers",
    "transformers",
    "gymnasium",
    "stable_baselines3",
    "rawpy",
    "matplotlib",
    "pyarrow",
)

# In a fresh interpreter: every command's --help (the tree typer builds), then the extra argument lists, each
# through typer's runner; then the console script's ``main`` (allocator tuning, signal handler) with --help.
# Prints, per invocation, its exit code, whether it printed anything and the heavy modules loaded so far.
PROBE = """
import contextlib, io, json, sys
from typer.main import get_command
from typer.testing import CliRunner

module, entry, heavy, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
cli = __import__(module, fromlist=["app"])
report = {"import " + module: [0, True, [m for m in heavy if m in sys.modules]]}

def paths(cmd, prefix):
    yield prefix
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from paths(sub, prefix + [name])

runner = CliRunner()
for argv in [p + ["--help"] for p in paths(get_command(cli.app), [])] + extra:
    r = runner.invoke(cli.app, argv)
    report[" ".join(argv)] = [r.exit_code, bool(r.output.strip()), [m for m in heavy if m in sys.modules]]

out = io.StringIO()
sys.argv = [module, "--help"]
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    __import__(entry, fromlist=["main"]).main()
report["main --help"] = [0, "Usage" in out.getvalue(), [m for m in heavy if m in sys.modules]]
print(json.dumps(report))
"""


def probe(module: str, entry: str, extra: list[list[str]]) -> dict[str, list]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, module, entry, json.dumps(HEAVY), json.dumps(extra)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    ("module", "entry", "extra", "allowed"),
    [
        ("attiqa.cli.app", "attiqa.cli", [["models"]], ()),
        ("genbench.cli", "genbench.cli", [], ()),
        ("isp_env.cli", "isp_env.cli", [], ("gymnasium", "numpy")),
    ],
)
def test_help_and_models_import_no_heavy_library(module, entry, extra, allowed):
    report = probe(module, entry, extra)
    assert len(report) >= 3  # the import, the top-level --help, main --help: at least
    for what, (code, printed, loaded) in report.items():
        assert code == 0 and printed, f"{module}: {what} exited {code} (printed: {printed})"
        assert [m for m in loaded if m not in allowed] == [], f"{module}: {what} imported {loaded}"


def test_models_lists_every_zoo_name_without_torch():
    """``attiqa models`` piped: one block per scorer, the same names the zoo table holds."""
    res = run_attiqa("models")
    assert res.returncode == 0, res.stderr
    heads = [line.split()[0] for line in res.stdout.splitlines() if line and not line.startswith(" ")]
    from attiqa.scorers.zoo import zoo_table

    assert heads == list(zoo_table())
    assert "attiqa-default" in heads and "classical" in heads
