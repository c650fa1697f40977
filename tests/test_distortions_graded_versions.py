"""A graded set (`attiqa degrade`'s folder; since session 64 also `make-distorted`'s) resumed after the
library changed a type's bytes: session 62 changed `contrast` and `iso_noise`, and a resumed set kept the old
images beside the new ones without a word. Now ``versions.json`` records each type's version; a changed type
is made again (or refused in one line when the folder holds images of it the command would not make again),
and a folder made before the record is told once that it cannot be checked."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from conftest import resized

from attiqa.distortions import DISTORTIONS
from attiqa.distortions.graded import write_graded_set
from attiqa.distortions.multi import make_distorted_set, plan_item
from attiqa.distortions.versions import VERSIONS_FILE


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
    assert res.versions.redone == {
        "contrast": (DISTORTIONS["contrast"].version - 1, DISTORTIONS["contrast"].version)
    }
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
    assert res.versions.redone == {"contrast": (now["contrast"], now["contrast"] + 1)}
    assert sorted(p.name for p in res.written) == ["astronaut__contrast_1.png", "coffee__contrast_1.png"]


def test_a_record_of_not_known_versions_is_told_once_then_taken_as_this_versions(tmp_path, sources):
    """A ``null`` a session-63 run recorded for a folder made before the record: told once more, then the
    version recorded like the notice says."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast"], [1])
    (out / VERSIONS_FILE).write_text(json.dumps({"versions": {"contrast": None}}))
    assert write_graded_set(sources, out, ["contrast"], [1]).versions.unchecked == ["contrast"]
    assert _versions(out) == {"contrast": DISTORTIONS["contrast"].version}
    assert not write_graded_set(sources, out, ["contrast"], [1]).versions.unchecked


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
    assert res.versions.unchecked == ["contrast"]
    assert _versions(out)["contrast"] == DISTORTIONS["contrast"].version
    assert write_graded_set(sources, out, ["contrast"], [1, 3]).versions.unchecked == []


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and mtime (a refused run leaves them all as they were)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _orphan(folder: Path, name: str) -> Path:
    """A temp file a killed writer left (unknown owner, hours old: any run's clean-up would delete it)."""
    tmp = folder / f".{name}.abcd1234.tmp"
    tmp.write_bytes(b"half")
    os.utime(tmp, (1.0e9, 1.0e9))
    return tmp


def test_a_refused_resume_leaves_every_file_as_it_was(tmp_path, sources, cli, monkeypatch):
    """**Was**: a set without ``settings.json`` (made before it was kept, or deleted) got one written, and
    a killed run's temp files were deleted, before the versions' check refused the run: the refused command
    changed the folder. Now every check comes before the first write."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast"], [1, 3])
    (out / "settings.json").unlink()
    _orphan(out, "astronaut__contrast_3.png")
    _changed(monkeypatch, "contrast")
    kept = _state(out)
    res = cli("degrade", sources[0].parent, "-o", out, "--distortions", "contrast", "--levels", "1")
    assert res.returncode == 2 and "made by another version of it" in res.stderr, res.stderr
    assert _state(out) == kept


def test_a_type_on_disk_the_record_does_not_name_is_told_not_taken(tmp_path, sources):
    """**Was**: images of a type that a present ``versions.json`` does not name (copied in from another set,
    or a record written by a library caller) were taken as this version's without a word when the run made
    that type. Now they are told once, as a folder made before the record, then recorded."""
    out = tmp_path / "deg"
    write_graded_set(sources, out, ["contrast", "gaussian_blur"], [1])
    (out / VERSIONS_FILE).write_text(json.dumps({"versions": {"contrast": DISTORTIONS["contrast"].version}}))
    res = write_graded_set(sources, out, ["contrast", "gaussian_blur"], [1])
    assert res.versions.unchecked == ["gaussian_blur"] and not res.written
    assert _versions(out) == {"contrast": DISTORTIONS["contrast"].version, "gaussian_blur": 1}
    assert write_graded_set(sources, out, ["contrast", "gaussian_blur"], [1]).versions.unchecked == []


# `attiqa make-distorted`'s folders (ExIQA multi-distortion sets) record the versions their images were made
# with, through the same check and record: **was** none, so a run resumed after the library changed a type's
# bytes kept the images an earlier version made beside new ones, without a word. Now the images whose mix
# holds a changed type are made again (their labels the same: the draw does not change), a folder made before
# the record is told once, and a refused resume leaves every file as it was.

TYPES = ["gaussian_blur", "contrast", "brightness_down"]


def _images(out: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted((out / "images").rglob("*.png"))}


def test_a_resume_after_a_type_changed_makes_its_images_again(tmp_path, sources, monkeypatch):
    out = tmp_path / "md"
    make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES)
    assert json.loads((out / VERSIONS_FILE).read_text())["versions"] == {
        k: DISTORTIONS[k].version for k in TYPES
    }
    before, labels = _images(out), (out / "labels.csv").read_bytes()
    holds = {
        p for p in before if "contrast" in plan_item(2, int(p.parent.name[1:]), int(p.name[:5]), TYPES).names
    }
    assert holds and holds != set(before)  # some mixes hold contrast, some do not
    _changed(monkeypatch, "contrast")
    res = make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES)
    assert res.versions.redone == {
        "contrast": (DISTORTIONS["contrast"].version - 1, DISTORTIONS["contrast"].version)
    }
    assert res.written == len(holds) and res.existing == len(before) - len(holds)
    after = _images(out)
    assert {p for p in before if after[p] != before[p]} == holds
    assert (out / "labels.csv").read_bytes() == labels
    assert (
        json.loads((out / VERSIONS_FILE).read_text())["versions"]["contrast"]
        == DISTORTIONS["contrast"].version
    )
    again = make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES)
    assert again.written == 0 and not again.versions.redone


def test_make_distorted_says_it_made_a_changed_type_again_and_tells_an_old_set_once(
    tmp_path, sources, cli, monkeypatch
):
    out = tmp_path / "md"
    args = ["make-distorted", sources[0].parent, "-o", out, "--rounds", "2", "--distortions", ",".join(TYPES)]
    assert cli(*args).returncode == 0
    _changed(monkeypatch, "contrast")
    res = cli(*args)
    said = " ".join(res.stderr.split())
    assert res.returncode == 0 and "made again: the images of contrast" in said, said
    (out / VERSIONS_FILE).unlink()  # as an earlier version of the library left it
    res = cli(*args)
    said = " ".join(res.stderr.split())
    assert res.returncode == 0 and said.count("cannot be checked") == 1, said
    assert "0 written" in said  # resumed as before: its images kept
    assert "cannot be checked" not in cli(*args).stderr  # told once


def test_a_refused_make_distorted_resume_leaves_every_file_as_it_was(tmp_path, sources, cli):
    """**Was**: a folder whose ``meta.json`` holds its sources as the command gave them (before they were
    recorded as absolute paths) had it rewritten, and a killed run's temp files deleted, before the other
    settings refused the run."""
    out = tmp_path / "md"
    make_distorted_set(sources, out, rounds=1, seed=0, distortions=TYPES)
    meta = json.loads((out / "meta.json").read_text())
    meta["sources"] = [os.path.relpath(s) for s in meta["sources"]]
    (out / "meta.json").write_text(json.dumps(meta))
    tmp = out / "images" / "r00" / ".00000_astronaut.png.abcd1234.tmp"
    tmp.write_bytes(b"half")
    os.utime(tmp, (1.0e9, 1.0e9))  # hours old, its owner unknown: any run's clean-up deletes it
    kept = {
        str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    }
    res = cli("make-distorted", *sources, "-o", out, "--rounds", "2", "--distortions", ",".join(TYPES))
    assert res.returncode == 2 and "rounds 1, now 2" in res.stderr, res.stderr
    now = {
        str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    }
    assert now == kept


def _stop_after(n: int):
    """An ``on_item`` that stops the run (as Ctrl-C does) once ``n`` sources are done."""
    done = []

    def on_item(k: int) -> None:
        done.append(k)
        if len(done) >= n:
            raise KeyboardInterrupt

    return on_item


def test_a_remake_stopped_midway_resumes_where_it_stopped(tmp_path, sources, monkeypatch):
    """**Was** (session 64) a changed type's images overwritten one by one under its old number, kept until
    all were made: a run stopped midway (Ctrl-C, kill -9) left the record old, so its next run made every
    image of the type again — those the stopped run had made too — and a job stopped more often than the
    remake takes never finished it. Now the old images are deleted first and the record names the new
    version before any image is made: what is on disk is all of the new version, and a rerun makes only what
    is missing."""
    out, fresh = tmp_path / "deg", tmp_path / "fresh"
    write_graded_set(sources, out, ["gaussian_blur", "contrast"], [1, 3])
    _changed(monkeypatch, "contrast")
    write_graded_set(sources, fresh, ["gaussian_blur", "contrast"], [1, 3])  # the new version's bytes
    with pytest.raises(KeyboardInterrupt):
        write_graded_set(sources, out, ["gaussian_blur", "contrast"], [1, 3], on_item=_stop_after(1))
    assert _versions(out)["contrast"] == DISTORTIONS["contrast"].version
    left = sorted(out.glob("*__contrast_*.png"))
    assert [p.name for p in left] == ["astronaut__contrast_1.png", "astronaut__contrast_3.png"]
    assert all(p.read_bytes() == (fresh / p.name).read_bytes() for p in left)  # no old image among them
    res = write_graded_set(sources, out, ["gaussian_blur", "contrast"], [1, 3])
    assert sorted(p.name for p in res.written) == ["coffee__contrast_1.png", "coffee__contrast_3.png"]
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == {
        p.name: p.read_bytes() for p in fresh.glob("*.png")
    }


def test_a_make_distorted_remake_stopped_midway_resumes_where_it_stopped(tmp_path, sources, monkeypatch):
    """As :func:`test_a_remake_stopped_midway_resumes_where_it_stopped` for `make-distorted`: the images whose
    mix holds the changed type are deleted first; a run stopped midway leaves the new version's only, and the
    next makes the rest."""
    out, fresh = tmp_path / "md", tmp_path / "fresh"
    make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES)
    _changed(monkeypatch, "contrast")
    make_distorted_set(sources, fresh, rounds=3, seed=2, distortions=TYPES)
    want = {p.relative_to(fresh): b for p, b in _images(fresh).items()}
    first = make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES, on_item=_stop_after(2))
    assert first.interruption is not None and first.written == 2
    assert json.loads((out / VERSIONS_FILE).read_text())["versions"]["contrast"] == (
        DISTORTIONS["contrast"].version
    )
    got = {p.relative_to(out): b for p, b in _images(out).items()}
    assert all(want[p] == b for p, b in got.items())  # no image of the old version left
    res = make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES)
    assert res.written == len(want) - len(got) and res.existing == len(got)
    assert {p.relative_to(out): b for p, b in _images(out).items()} == want
    assert (out / "labels.csv").read_bytes() == (fresh / "labels.csv").read_bytes()


class _Killed(BaseException):
    """A kill -9 as the run sees it: nothing after the point it is raised at runs (no except, no flush)."""


def test_a_make_distorted_remake_killed_after_its_deletes_lists_no_deleted_image(
    tmp_path, sources, monkeypatch
):
    """**Was** (rev_graded64) ``start()`` deleted the changed type's images while ``labels.csv`` still listed
    them until the run's first flush: a kill -9 in between left the table `attiqa train exiqa` reads naming
    missing files. Now ``labels.csv`` is rewritten without them before they are deleted."""
    out = tmp_path / "md"
    make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES)
    _changed(monkeypatch, "contrast")

    def killed(*args, **kwargs):
        raise _Killed

    monkeypatch.setattr("attiqa.distortions.multi.atomic_path", killed)
    with pytest.raises(_Killed):
        make_distorted_set(sources, out, rounds=3, seed=2, distortions=TYPES)
    listed = [line.split(",")[0] for line in (out / "labels.csv").read_text().splitlines()[1:]]
    assert listed and all((out / name).is_file() for name in listed), listed


def degrade_and_label_run(tmp_path: Path, sources: list[Path]) -> tuple[Path, Path]:
    """(run folder, ``run.yaml``): a train of a degrade stage (contrast, level 1) and a label stage."""
    run = tmp_path / "run"
    yaml = tmp_path / "run.yaml"
    yaml.write_text(
        f"out_dir: {run}\ndegrade:\n  sources: [{sources[0].parent}]\n  distortions: [contrast]\n"
        "  levels: [1]\nlabel:\n  teacher: classical\n",
        encoding="utf-8",
    )
    return run, yaml


def refused_over_a_damaged(cli, record: Path, text: str, args: tuple) -> str:
    """``record`` written as ``text`` (cut short) in a new folder, then the command ``args`` refused in one
    line without a traceback: its words, on one line."""
    record.parent.mkdir(parents=True)
    record.write_text(text, encoding="utf-8")
    res = cli(*args)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    return " ".join(res.stderr.split())


def test_an_unreadable_record_names_each_commands_own_option_for_a_new_folder(tmp_path, sources, cli):
    """A damaged ``versions.json`` is refused in one line whose fix names how the command that read it is
    pointed at a new folder: a train's degrade stage was told "use another --out folder", an option `attiqa
    train` does not have (its is ``degrade.out`` in the config)."""
    run, yaml = degrade_and_label_run(tmp_path, sources)
    new_out = "or write to a new --out folder"
    deg, md = tmp_path / "deg", tmp_path / "md"
    commands = {
        run / "graded": (("train", "--config", yaml), "or set degrade.out to a new folder"),
        deg: (("degrade", sources[0].parent, "-o", deg), new_out),
        md: (("make-distorted", sources[0].parent, "-o", md, "--rounds", "1"), new_out),
    }
    for folder, (args, fix) in commands.items():
        said = refused_over_a_damaged(cli, folder / VERSIONS_FILE, '{"versions": [', args)
        assert f"{folder / VERSIONS_FILE}: unreadable record of the distortion versions" in said, said
        assert said.endswith(fix), said
        assert ("--out" in said) == (args[0] != "train"), said


def test_an_unreadable_list_of_source_names_names_each_commands_own_option_for_a_new_folder(
    tmp_path, sources, cli
):
    """The row above's defect in the graded set's other record: a damaged ``sources.json`` read by a train's
    degrade stage **was** "… unreadable list of source names — restore it, or use another --out folder" (an
    option `attiqa train` does not have), the versions' record alone being given the caller's words. Now
    the same ``new_out``: a train "… or set degrade.out to a new folder", `degrade` "… --out folder"."""
    from attiqa.distortions.graded import NAMES_FILE

    run, yaml = degrade_and_label_run(tmp_path, sources)
    deg = tmp_path / "deg"
    commands = {
        run / "graded": (("train", "--config", yaml), "or set degrade.out to a new folder"),
        deg: (("degrade", sources[0].parent, "-o", deg), "or write to a new --out folder"),
    }
    for folder, (args, fix) in commands.items():
        said = refused_over_a_damaged(cli, folder / NAMES_FILE, '{"names": {', args)
        assert f"{folder / NAMES_FILE}: unreadable list of source names — restore it, {fix}" in said, said
