"""Every benchmark script, as the next engineer starts it from the repo root: ``--help`` says what it
measures, and a missing input (the maintainers' ../shared data absent, a run folder mistyped) is one line,
not a traceback. One child process runs all the scripts in turn (their imports paid once): fast."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = {"_common.py", "_isp.py", "tap_maps.py"}  # imported by the scripts, not run
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name not in HELPERS)

# Runs each (script, argv) in this one process as ``python benchmarks/SCRIPT ARGV`` would, and reports its
# exit code, its output, and the exception that escaped it (a traceback a user would see), if any.
DRIVER = r"""
import contextlib, io, json, runpy, sys, traceback
sys.path.insert(0, "benchmarks")
out = []
for script, argv in json.loads(sys.argv[1]):
    sys.argv = [f"benchmarks/{script}", *argv]
    buf = io.StringIO()
    code, escaped = 0, None
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            runpy.run_path(f"benchmarks/{script}", run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                buf.write(str(exc.code))
        except BaseException:
            code, escaped = 1, traceback.format_exc(limit=-3)
    out.append({"script": script, "code": code, "text": buf.getvalue(), "escaped": escaped})
print("RESULTS:" + json.dumps(out))
"""


def run_scripts(cases: list[tuple[str, list[str]]]) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(cases)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULTS:")), None)
    assert line is not None, proc.stderr[-3000:]
    return list(json.loads(line[len("RESULTS:") :]))


def test_every_benchmark_script_answers_help_with_what_it_measures() -> None:
    results = run_scripts([(s, ["--help"]) for s in SCRIPTS])
    for r in results:
        assert r["escaped"] is None, f"{r['script']} --help: {r['escaped']}"
        assert r["code"] == 0, f"{r['script']} --help exited {r['code']}: {r['text'][-500:]}"
        assert r["text"].startswith("usage: "), r["script"]
        # the docstring's first paragraph (what is measured, against what) whole: not cut after its first line
        doc = ast.get_docstring(ast.parse((ROOT / "benchmarks" / r["script"]).read_text())) or ""
        said = " ".join(doc.split("\n\n")[0].split())
        assert len(said) > 40, f"{r['script']}: its docstring does not say what it measures"
        assert said in " ".join(r["text"].split()), f"{r['script']} --help lacks {said!r}"


def test_a_missing_input_is_one_line_naming_it_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "not-here"
    cases: list[tuple[str, list[str]]] = [
        ("isp_teacher_cv.py", [str(missing)]),  # a run folder: run.json read by _isp.run_plan
        ("isp_teacher_prior.py", [str(missing)]),
        ("isp_camera_holdout.py", [str(missing)]),
        ("isp_compare_policies.py", [str(missing), "--out", str(tmp_path / "cmp")]),
        ("score_stages.py", ["--root", str(missing), "--n", "2"]),  # the docs' ../shared/data/clive-dev
        ("isp_render_hashes.py", [str(missing)]),  # the docs' ../shared/data/raw/real
        ("isp_render_check.py", [str(missing)]),
        ("isp_attack.py", [str(missing / "a.dng"), "--out", str(tmp_path / "attack")]),
        ("isp_scale.py", ["make", str(tmp_path / "fivek"), "--n", "1", "--photos", str(missing)]),
    ]
    results = run_scripts(cases)
    for r in results:
        assert r["escaped"] is None, f"{r['script']}: a traceback: {r['escaped']}"
        assert r["code"] != 0, f"{r['script']}: exited 0 on a missing input"
        lines = [x for x in r["text"].strip().splitlines() if x.strip()]
        assert len(lines) == 1 and "not-here" in lines[0], f"{r['script']}: {r['text'][-800:]}"
    assert not (tmp_path / "attack").exists()  # made its --out (default: isp_attack/ in the cwd) first
    run_words = {r["script"]: r["text"] for r in results}["isp_teacher_cv.py"]
    assert "not an isp-tune run" in run_words and "--out folder" in run_words


@pytest.mark.slow  # ~25 s: the 24-megapixel photo is written before the model loads
@pytest.mark.parametrize("script", ["big_image.py"])
def test_a_model_that_does_not_load_is_one_line_from_a_benchmark_child(script: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--model", str(tmp_path / "none.safetensors"), "--n", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "none.safetensors" in proc.stderr.strip().splitlines()[-1]


def test_the_scripts_write_their_outputs_atomically() -> None:
    """A report or sheet written to ``--out`` goes through attiqa.io's atomic writers (``save_image``,
    ``write_json_atomic``, ``atomic_path``): a run killed while writing leaves the old file or none. Read
    from the source: a direct ``.save(`` / ``.write_text(`` / ``.open(`` on ``args.out`` fails."""
    direct = []
    for script in SCRIPTS:
        tree = ast.parse((ROOT / "benchmarks" / script).read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr not in {"save", "write_text", "write_bytes", "savefig", "to_csv", "open"}:
                continue
            target = ast.unparse(node.func.value) + " " + " ".join(ast.unparse(a) for a in node.args[:1])
            if "args.out" in target:
                direct.append(f"{script}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not direct, "\n".join(direct)


def test_make_bench_quick_runs_the_scripts_of_make_bench() -> None:
    """``make bench-quick`` is ``make bench`` on small inputs: the same scripts in the same order."""
    text = (ROOT / "Makefile").read_text()

    def scripts(target: str) -> list[str]:
        body = text.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        return re.findall(r"benchmarks/(\w+\.py)", body)

    assert scripts("bench") and scripts("bench-quick") == scripts("bench")
    assert all(s in SCRIPTS for s in scripts("bench"))


def test_cli_startup_rescore_of_a_damaged_scores_record_is_one_line(tmp_path: Path) -> None:
    """**Was** `python benchmarks/cli_startup.py --rescore RUN` with a ``RUN/scores/<metric>.json`` cut short
    (or holding no metric name) a JSONDecodeError / KeyError traceback; now one line naming the record and
    the command that writes it again."""
    runs = []
    for i, text in enumerate(('{"metric": "class', "[]", '{"column": "score"}')):
        scores = tmp_path / f"run{i}" / "scores"
        scores.mkdir(parents=True)
        (scores / "classical.csv").write_text("image,score\n")
        (scores / "classical.json").write_text(text)
        runs.append(scores.parent)
    results = run_scripts(
        [("cli_startup.py", ["--rescore", str(r), "--only", "--rounds", "1"]) for r in runs]
    )
    for run, r in zip(runs, results, strict=True):
        assert r["escaped"] is None, f"a traceback: {r['escaped']}"
        lines = [x for x in r["text"].strip().splitlines() if x.strip()]
        assert r["code"] != 0 and len(lines) == 1, r["text"][-800:]
        assert lines[0].startswith(f"{run / 'scores' / 'classical.json'}: not a whole genbench scores record")
        assert f"genbench score {run} -m METRIC" in lines[0]
