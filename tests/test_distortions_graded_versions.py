"""A graded set (`attiqa degrade`'s folder) resumed after the library changed a type's bytes: session 62
changed `contrast` and `iso_noise`, and a resumed set kept the old images beside the new ones without a word.
Now ``versions.json`` records each type's version; a changed type is made again (or refused in one line when
the folder holds images of it the command would not make again), and a folder made before the record is told
once that it cannot be checked."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import resized

from attiqa.distortions import DISTORTIONS
from attiqa.distortions.graded import VERSIONS_FILE, write_graded_set


@pytest.fixture()
def sources(tmp_path, photos) -> list[Path]:
    d = tmp_path / "src"
    d.mkdir()
    for n in ("astronaut", "coffee"):
        resized(photos[n], longer=40).save(d / f"{n}.png")
    return sorted(d.glob("*.png"))


def _changed(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``name`` as a later library version makes it: other levels (other bytes) under a higher version."""
    d = DISTORTIONS[name]
    levels = tuple(v * 0.5 for v in d.levels)
    monkeypatch.setitem(DISTORTIONS, name, dataclasses.replace(d, levels=levels, version=d.version + 1))


def _versions(out: Path) -> dict[str, int | None]:
    return json.loads((out / VERSIONS_FILE).read_text())["versions"]


def test_a_type_changed_since_the_set_was_made_is_made_again(tmp_path, sources, monkeypatch):
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["gaussian_blur", "contrast"], [1, 3])
    assert _versions(out) == {"gaussian_blur": 1, "contrast": DISTORTIONS["contrast"].version}
    blur = {p: p.stat().st_mtime_ns for p in out.glob("*__gaussian_blur_*.png")}
    before = {p: p.read_bytes() for p in out.glob("*__contrast_*.png")}
    _changed(monkeypatch, "contrast")
    res = write_graded_set(sources, out, ["gaussian_blur", "contrast"], [1, 3])
    assert res.redone == {"contrast": (DISTORTIONS["contrast"].version - 1, DISTORTIONS["contrast"].version)}
    assert sorted(res.written) == sorted(before)  # the contrast images only, all of them
    assert all(p.read_bytes() != old for p, old in before.items())
    assert {p: p.stat().st_mtime_ns for p in blur} == blur
    assert _versions(out)["contrast"] == DISTORTIONS["contrast"].version
    assert not write_graded_set(sources, out, ["gaussian_blur", "contrast"], [1, 3]).written  # now current


def test_images_of_a_changed_type_the_command_would_not_make_again_are_refused(
    tmp_path, sources, cli, monkeypatch
):
    """A source added since is not recorded by the refused command either (sources.json was written before
    the check)."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast"], [1, 3])
    _changed(monkeypatch, "contrast")
    kept = {p: p.read_bytes() for p in out.iterdir()}
    (sources[0].parent / "added.png").write_bytes(sources[0].read_bytes())
    res = cli("degrade", sources[0].parent, "-o", out, "--distortions", "contrast", "--levels", "1")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "contrast" in line and "delete them" in line, line
    assert "made by another version of it" in line, line
    assert {p: p.read_bytes() for p in out.iterdir()} == kept  # nothing made, nothing recorded
    res = cli("degrade", sources[0].parent, "-o", out, "--distortions", "contrast", "--levels", "1,3")
    assert res.returncode == 0, res.stderr
    assert "made again: the images of contrast" in " ".join(res.stderr.split()), res.stderr


def test_a_set_made_before_versions_were_recorded_is_told_once(tmp_path, sources, cli, monkeypatch):
    """Told once, then taken as this version's: a later change of a type makes its images again (recorded
    as not known, null, it was never checked again). A user's own file named like a graded image of an
    unknown type is no type of the set."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast", "iso_noise"], [1])
    (out / VERSIONS_FILE).unlink()  # as an earlier version of the library left it
    (out / "holiday__beach_1.png").write_bytes(sources[0].read_bytes())
    res = cli(
        "degrade", sources[0].parent, "-o", out, "--distortions", "contrast,gaussian_blur", "--levels", "1"
    )
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())  # the console wraps a long line
    assert said.count("cannot be checked") == 1, res.stderr
    assert "images of contrast, iso_noise cannot" in said and "contrast, iso_noise changed since" in said, (
        said
    )
    now = {k: DISTORTIONS[k].version for k in ("contrast", "iso_noise", "gaussian_blur")}
    assert _versions(out) == now
    again = cli(
        "degrade", sources[0].parent, "-o", out, "--distortions", "contrast,gaussian_blur", "--levels", "1"
    )
    assert again.returncode == 0 and "cannot be checked" not in again.stderr, again.stderr
    assert "0 written" in again.stderr  # resumed as before: its images kept
    _changed(monkeypatch, "contrast")
    res = write_graded_set(sources, out, ["contrast", "gaussian_blur"], [1])
    assert res.redone == {"contrast": (now["contrast"], now["contrast"] + 1)}
    assert sorted(p.name for p in res.written) == ["astronaut__contrast_1.png", "coffee__contrast_1.png"]


def test_a_record_of_not_known_versions_is_told_once_then_taken_as_this_versions(tmp_path, sources):
    """A ``null`` a session-63 run recorded for a folder made before the record: told once more, then the
    version recorded like the notice says."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast"], [1])
    (out / VERSIONS_FILE).write_text(json.dumps({"versions": {"contrast": None}}))
    assert write_graded_set(sources, out, ["contrast"], [1]).unchecked == ["contrast"]
    assert _versions(out) == {"contrast": DISTORTIONS["contrast"].version}
    assert not write_graded_set(sources, out, ["contrast"], [1]).unchecked


def test_a_resume_with_nothing_to_do_does_not_rewrite_the_record(tmp_path, sources):
    """Every run rewrote versions.json, so a finished set on read-only storage could no longer be resumed
    (to list its images): the record is written only when it changes."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast", "gaussian_blur"], [1])
    stat = (out / VERSIONS_FILE).stat()
    res = write_graded_set(sources, out, ["contrast", "gaussian_blur"], [1])
    assert not res.written and len(res.existing) == 6
    again = (out / VERSIONS_FILE).stat()
    assert (again.st_ino, again.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)  # an atomic write: a new file


def test_a_trains_degrade_stage_says_what_it_made_again(tmp_path, sources, monkeypatch, capsys):
    """`attiqa train`'s degrade stage writes the same graded set: it remade a changed type's images (and
    took an older set's images unchecked) without a word — `attiqa degrade` said both."""
    from attiqa.config import load_config
    from attiqa.runner import run_degrade_stage

    yaml = tmp_path / "run.yaml"
    yaml.write_text(
        f"out_dir: {tmp_path / 'run'}\n"
        f"degrade:\n  sources: [{sources[0].parent}]\n  distortions: [contrast]\n  levels: [1]\n"
        "label:\n  teacher: classical\n",
        encoding="utf-8",
    )
    cfg = load_config(yaml)
    out = run_degrade_stage(cfg, tmp_path / "run", progress=False)
    capsys.readouterr()
    _changed(monkeypatch, "contrast")
    run_degrade_stage(cfg, tmp_path / "run", progress=False)
    said = " ".join(capsys.readouterr().err.split())
    assert "made again: the images of contrast" in said, said
    (out / VERSIONS_FILE).unlink()  # as an earlier version of the library left it
    run_degrade_stage(cfg, tmp_path / "run", progress=False)
    said = " ".join(capsys.readouterr().err.split())
    assert "cannot be checked" in said and "set degrade.out to a new folder" in said, said
    next(out.glob("*__contrast_1.png")).write_bytes(b"")  # as a kill mid-write on a filesystem without rename
    run_degrade_stage(cfg, tmp_path / "run", progress=False)
    said = " ".join(capsys.readouterr().err.split())
    assert "1 damaged image(s) on disk made again" in said, said


def test_a_run_stopped_before_it_tells_an_unknown_version_tells_it_again(tmp_path, sources):
    """**Was** (review 4 of session 63) a type whose version was not known recorded at this version before
    any image was made, its notice said only after the run: a run stopped in between (Ctrl-C, a full disk)
    left the images taken as this version's and the user never told. Now it stays ``null`` until the run
    that tells it ends."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast"], [1])
    (out / VERSIONS_FILE).unlink()  # as an earlier version of the library left it

    def stop(_n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_graded_set(sources, out, ["contrast"], [1, 3], on_item=stop)
    assert _versions(out)["contrast"] is None
    res = write_graded_set(sources, out, ["contrast"], [1, 3])
    assert res.unchecked == ["contrast"]
    assert _versions(out)["contrast"] == DISTORTIONS["contrast"].version
    assert write_graded_set(sources, out, ["contrast"], [1, 3]).unchecked == []
