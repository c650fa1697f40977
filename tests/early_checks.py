"""Runs a command line's real entry point on bad inputs in one fresh interpreter and asserts each case's one
error line came before torch (and the other heavy stacks) was imported: the early-check tests' harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "gymnasium", "stable_baselines3")
ISP_HEAVY = ("torch", "diffusers", "stable_baselines3")  # `import isp_env` registers its Gymnasium id


# argv[1]: JSON list of [entry module, argv, expected words]; prints one JSON line per case
PROBE = """
import contextlib, io, json, sys
heavy = json.loads(sys.argv[2])
for module, argv, words in json.loads(sys.argv[1]):
    err = io.StringIO()
    sys.argv = [module.split(".")[0], *argv]
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            __import__(module, fromlist=["main"]).main()
        except SystemExit as exc:
            code = exc.code
    loaded = [m for m in heavy if m in sys.modules]
    print(json.dumps([module, argv, code, err.getvalue(), loaded]), flush=True)
    if loaded:
        break
"""


def run_cases(cases: list[tuple[str, list[str], str]], heavy: tuple[str, ...]) -> list[list]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("WORLD_SIZE", None)
    res = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(cases), json.dumps(heavy)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("[")]


def check(cases: list[tuple[str, list[str], str]], heavy: tuple[str, ...] = HEAVY) -> None:
    results = run_cases(cases, heavy)
    for (module, argv, code, err, loaded), (_, _, words) in zip(results, cases, strict=False):
        what = f"{module} {' '.join(argv)}"
        assert loaded == [], f"{what}: imported {loaded} before saying its error ({err.strip()!r})"
        assert code == 2, f"{what}: exit {code}, said {err!r}"
        # the error's line (a dataset's may add its expected layout below it), never a traceback
        assert err.startswith("error:") and "Traceback" not in err, f"{what}: said {err!r}"
        assert words in " ".join(err.split()), f"{what}: said {err!r}, not {words!r}"
    assert len(results) == len(cases)
