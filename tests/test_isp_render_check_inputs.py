"""isp-tune: a finished run archived read-only, the help's figures, and `isp-tune render` / `check` given bad
input — each on real DNGs read by rawpy."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from helpers import TINY_TEACHER_OPTIONS, attiqa_env, isp_tune_cmd, tiny_teacher_run, unprivileged_cmd

READ_ONLY = stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP


def _rerun_read_only(run: Path, *args: object) -> subprocess.CompletedProcess:
    """``isp-tune ARGS`` with ``run`` and every folder in it read-only, without root's override."""
    folders = [run, *(p for p in run.rglob("*") if p.is_dir())]
    for p in folders:
        p.chmod(READ_ONLY)
    try:
        cmd = unprivileged_cmd(isp_tune_cmd(*args))
        return subprocess.run(cmd, env=attiqa_env(), capture_output=True, text=True, timeout=600)
    finally:
        for p in folders:
            p.chmod(stat.S_IRWXU)


def _stamps(run: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_finished_run_made_read_only_is_finished_not_refused(tmp_path, isp_raws):
    """**Was** the same command rerun on a finished run archived read-only refused with "make it writable
    (chmod -R u+w RUN) to resume the run in it", though it had nothing to resume (it would only have
    written its reports again); now "finished, nothing to do", its table from summary.json, exit 0, nothing
    written. The same folder rerun with other settings (work left) keeps the chmod advice."""
    opts = (*TINY_TEACHER_OPTIONS, "--no-baselines")
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, "--no-baselines")
    before = _stamps(run)
    res = _rerun_read_only(run, "--raw-dir", raw_dir, "--out", run, *opts)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "finished, nothing to do" in res.stderr and "Traceback" not in res.stderr, res.stderr
    n = json.loads((run / "summary.json").read_text())["n_test"]
    assert f"held-out raws ({n})" in res.stdout and "neutral" in res.stdout, res.stdout
    assert _stamps(run) == before

    res = _rerun_read_only(run, "--raw-dir", raw_dir, "--out", run, *opts, "--test-raws", 1)
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip()
    assert "\n" not in line and f"(chmod -R u+w {run}) to resume the run in it" in line, line

    first = sorted(p for p in raw_dir.iterdir())[0]  # a raw replaced since: its results are stale
    first.touch()
    res = _rerun_read_only(run, "--raw-dir", raw_dir, "--out", run, *opts)
    assert res.returncode == 2 and f"(chmod -R u+w {run})" in res.stderr, res.stderr[-2000:]
    assert _stamps(run) == before


def test_the_help_holds_no_measured_figures():
    """**Was** `isp-tune --help` holding figures that go stale — "--test-raws … (default 100: every held-out
    raw of a folder of up to ~330; FiveK holds out 1,500)", "--residual-scale … (0.4; 2, the whole range,
    …)", the ISP's "16 parameters of a 14-module" pipeline — and `isp-tune check --help` a measurement ("on a
    camera left out of training it helped on three of five"); now they are in docs/isp.md, the help says
    what each option does and its default, the shared --test-raws default read from its one constant."""
    from typer.testing import CliRunner

    from isp_env.cli import app
    from isp_env.registration import TEST_RAWS

    for command in ([], ["check"], ["render"]):
        said = " ".join(CliRunner().invoke(app, [*command, "--help"]).output.replace("│", " ").split())
        for figure in ("~330", "1,500", "0.4", "three of five", "16 parameters", "14-module"):
            assert figure not in said, (command, figure)
        if command != ["render"]:
            assert f"default {TEST_RAWS}" in said, command
    tune = " ".join(CliRunner().invoke(app, ["--help"]).output.replace("│", " ").split())
    assert "the whole range for the teacher" in tune and "docs/isp.md" in tune


def _render_line(*args: object) -> str:
    """`isp-tune render ARGS` in this process: its one-line refusal (nothing rendered)."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    r = CliRunner().invoke(app, ["render", *map(str, args)])
    assert r.exit_code != 0, r.output
    said = str(r.exception)
    assert "\n" not in said, said
    return said


def test_render_given_a_folder_names_the_commands_that_render_its_raws(tmp_path, isp_raws):
    """**Was** `isp-tune render DIR -o x.png` "DIR: a folder, not a raw file — pass one raw (`isp-tune
    --raw-dir` takes folders)": the command it named tunes a policy for hours, it renders nothing asked
    for. Now the render command for one of its raws, and `isp-tune check DIR --policy P -o OUT`, which
    renders each of them at full resolution; a folder without raws says so."""
    import shlex

    raws = tmp_path / "raws"
    raws.mkdir()
    for p in isp_raws[:2]:
        (raws / p.name).write_bytes(p.read_bytes())
    first = sorted(raws.iterdir())[0]
    said = _render_line(raws, "-o", tmp_path / "x.png", "--policy", "default")
    assert said.startswith(f"{raws}: a folder, not a raw file"), said
    assert (
        shlex.join(["isp-tune", "render", str(first), "--policy", "default", "-o", f"{first.stem}.png"])
        in said
    )
    assert f"isp-tune check {raws} --policy default -o OUT" in said and "--raw-dir" not in said
    (tmp_path / "empty").mkdir()
    assert "this folder holds none" in _render_line(tmp_path / "empty", "-o", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_render_params_path_typo_says_to_check_the_path(tmp_path, isp_raws):
    """**Was** `isp-tune render RAW --params gone.json` "gone.json: not a usable parameter JSON ([Errno 2] No
    such file or directory: 'gone.json') — see isp_env/params.py for the names and ranges": a fix about the
    file's contents for a path that is not there (a folder: "[Errno 21] Is a directory"). Now "cannot read
    it (No such file or directory) — check the --params path (…)", a folder "a folder, not a parameter JSON
    file"; a bad value keeps its line (range, NaN)."""
    raw = isp_raws[0]
    gone = tmp_path / "gone.json"
    said = _render_line(raw, "-o", tmp_path / "x.png", "--params", gone)
    assert said.startswith(f"{gone}: cannot read it (No such file or directory) — check the --params path")
    assert "Errno" not in said and "isp_env/params.py" not in said
    (tmp_path / "plain").mkdir()
    said = _render_line(raw, "-o", tmp_path / "x.png", "--params", tmp_path / "plain")
    assert said.startswith(f"{tmp_path / 'plain'}: a folder, not a parameter JSON file — check"), said
    nan = tmp_path / "nan.json"
    nan.write_text('{"tone_exposure": NaN}')
    said = _render_line(raw, "-o", tmp_path / "x.png", "--params", nan)
    assert "tone_exposure=nan (range" in said, said
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_check_into_a_run_folder_is_refused_before_its_report_is_replaced(tmp_path, isp_raws):
    """**Was** `isp-tune check RAWS --policy RUN -o RUN` (the run folder as the report folder: one word
    less to type) writing the check's results.csv, summary.json, report.md and grid.png over the run's —
    its held-out evaluation gone; now refused before any work, naming RUN and another --out (RUN/check)."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, "--no-baselines")
    before = _stamps(run)
    r = CliRunner().invoke(
        app, ["check", str(raw_dir), "--policy", str(run), "-m", "classical", "-o", str(run)]
    )
    said = str(r.exception)
    assert r.exit_code != 0 and "\n" not in said, r.output
    assert said == (
        f"{run}: an isp-tune run folder (run.json) — the check's report would replace the run's; pass "
        f"another --out, e.g. {run / 'check'}"
    )
    assert _stamps(run) == before
    r = CliRunner().invoke(
        app, ["check", str(raw_dir), "--policy", str(run), "-m", "classical", "-o", str(run / "check")]
    )
    assert r.exit_code == 0, r.output
    assert _stamps(run).items() >= before.items() and (run / "check" / "report.md").is_file()


def test_render_params_of_another_raw_says_so_and_renders(tmp_path, isp_raws, isp_cli):
    """**Was** `isp-tune render B.dng --params RUN/test/teacher/params/A.json` (A's tuned setting, which
    records its raw) rendered B without a word, while a setting per raw with none for B is refused. Now a
    note names the raw the setting was tuned for; the render is made as given, and A's own is not noted."""
    a, b = isp_raws[0], isp_raws[1]
    setting = tmp_path / "A.json"
    setting.write_text(json.dumps({"raw": str(a), "params": {"tone_exposure": 0.3}}))
    res = isp_cli("render", b, "-o", tmp_path / "b.png", "--params", setting)
    said = " ".join(res.stderr.split())
    assert res.returncode == 0, res.stderr
    assert f"note {setting} is the setting tuned for {a.name}, not {b.name} — rendered with it" in said, said
    assert (tmp_path / "b.png").is_file()
    res = isp_cli("render", a, "-o", tmp_path / "a.png", "--params", setting)
    assert res.returncode == 0 and "tuned for" not in res.stderr, res.stderr


XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description crs:Exposure2012="+0.50" '
    'xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"/></rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>\n'
)


def test_render_of_an_xmp_sidecar_says_it_is_one_and_names_its_raw(tmp_path):
    """**Was** `isp-tune render IMG.xmp -o x.png` (the sidecar Lightroom or darktable writes beside a raw,
    passed by mistake: it sorts next to the raw) "LibRaw can't read it (LibRawFileUnsupportedError …) —
    check the file is a complete camera raw or DNG": a user checked a raw that was whole. Now "an XMP
    sidecar …, not a camera raw — pass the raw it belongs to: IMG.dng", beside it under either naming
    (``IMG.xmp``, ``IMG.dng.xmp``); a sidecar under a raw's name is told too. A DNG written here, which
    rawpy reads (it skipped without ../shared/data's camera DNG: the point is the sidecar, not the camera)."""
    from isp_env.dng import demo_photo, dng_from_photo

    raw = dng_from_photo(tmp_path / "IMG_0001.dng", demo_photo("astronaut", 64))
    for name in ("IMG_0001.xmp", "IMG_0001.dng.xmp"):
        sidecar = tmp_path / name
        sidecar.write_text(XMP, encoding="utf-8")
        said = _render_line(sidecar, "-o", tmp_path / "x.png")
        assert said == (
            f"{sidecar}: an XMP sidecar (a raw editor's settings beside a raw), not a camera raw — pass the "
            f"raw it belongs to: {raw}"
        ), said
    alone = tmp_path / "lone.dng"  # a sidecar saved under a raw's name, no raw of its own beside it
    alone.write_text(XMP, encoding="utf-8")
    said = _render_line(alone, "-o", tmp_path / "x.png")
    assert said.endswith("not a camera raw — pass the raw it belongs to (the camera file of the same name)")
    assert not (tmp_path / "x.png").exists()
    from isp_env.raw import (
        probe_raw,  # met in a folder of raws: it may be left out of it (review, session 61)
    )

    listed = probe_raw(alone)
    assert listed is not None and str(listed).endswith(
        "pass the raw it belongs to (the camera file of the same name), or remove it from the folder"
    ), listed
