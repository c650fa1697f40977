"""``isp-tune --group-by camera``: a split where no camera is on both sides (does a policy carry to a new
camera?), the camera read from the raw manifest's ``libraw_make`` / ``libraw_model`` or a DNG's own tags;
and ``run(inputs, cfg)``, whose inputs are its one way in (a raw listing and start checks were taken
from its caller without asking whose)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from early_checks import ISP_HEAVY, check
from helpers import isp_run

from attiqa.errors import ConfigError
from isp_env.dng import demo_photo, dng_from_photo
from isp_env.raw import camera_name, dng_camera
from isp_env.run_inputs import InputSettings, list_raws, refuse_too_few, run_inputs
from isp_env.train_config import TrainConfig

ISP = "isp_env.cli"
REAL_RAWS = SHARED_DATA / "raw" / "real"
CAMERAS = (("Acme", "One"), ("Acme", "Two"))


def two_camera_dngs(folder: Path, per_camera: int = 2) -> list[Path]:
    """DNGs of scikit-image photos, ``per_camera`` named by each of the two :data:`CAMERAS` (Make, Model)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = ("astronaut", "coffee", "chelsea", "rocket")
    made = []
    for i in range(2 * per_camera):
        make, model = CAMERAS[i % 2]
        rgb = demo_photo(photos[i % len(photos)], 96)
        made.append(dng_from_photo(folder / f"shot{i}.dng", rgb, seed=i, make=make, model=model))
    return made


def _settings(tmp_path: Path, test_fraction: float) -> InputSettings:
    """A camera split of ``tmp_path/a`` into ``tmp_path/out`` at ``test_fraction`` (seed 0, neutral base)."""
    return InputSettings(
        raw_dir=tmp_path / "a", out=tmp_path / "out", test_fraction=test_fraction,
        group_by="camera", base="neutral", test_raws_cap=5,
    )  # fmt: skip


def cameraless_raws(folder: Path) -> None:
    """Two DNGs that name no camera (empty Make, Model and UniqueCameraModel; rawpy reads them) and a
    manifest of scene groups only: raws whose camera a split by camera cannot know. It was two real raws of
    ../shared (a KDC and a CRW, no camera rawpy gives), skipped without them: the point is the missing camera,
    which a DNG without its tags has as well; the second is saved as a `.nef` (LibRaw reads it by content),
    so a raw that is not a DNG, whose camera is never read from tags, is one of them (review, session 62)."""
    folder.mkdir(parents=True)
    for i, name in enumerate(("chart.dng", "street.nef")):
        dng_from_photo(folder / name, demo_photo(("astronaut", "coffee")[i], 64), seed=i, make="", model="")
    (folder / "manifest.csv").write_text("file,scene_group\nchart.dng,chart\n", encoding="utf-8")


def real_copies(folder: Path, names: list[str]) -> None:
    """Copies of named raws of ../shared/data/raw/real with their manifest rows (skipped without them)."""
    if not (REAL_RAWS / "manifest.csv").is_file() or not all((REAL_RAWS / n).is_file() for n in names):
        pytest.skip("../shared/data/raw/real is absent")
    folder.mkdir()
    lines = (REAL_RAWS / "manifest.csv").read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines[1:] if line.split(",", 1)[0] in names]
    (folder / "manifest.csv").write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")
    for n in names:
        shutil.copyfile(REAL_RAWS / n, folder / n)


def test_a_split_by_camera_holds_no_camera_on_both_sides(tmp_path: Path) -> None:
    """DNGs of two models (their Make / Model tags): over ten seeds each side holds whole cameras, both sides
    some; the scene groups stay the teacher's groups. (Its real raws' half skipped it all without ../shared:
    now a test of its own, below.)"""
    made = two_camera_dngs(tmp_path / "dngs", per_camera=3)
    assert [dng_camera(p) for p in made[:2]] == ["Acme One", "Acme Two"]
    for seed in range(10):
        listing = list_raws(tmp_path / "dngs", tmp_path / "out", 0.3, seed, group_by="camera")
        sides = listing.split_record()["cameras"]
        assert len(sides["train"]) == len(sides["test"]) == 1 and set(sides["train"]) != set(sides["test"])
        assert {dng_camera(p) for p in listing.test} == set(sides["test"])
        assert listing.groups == {p: p.name for p in made}  # every DNG its own scene group, as by scene


@pytest.mark.shared_data
def test_real_raws_of_three_cameras_split_by_camera_hold_none_on_both_sides(tmp_path: Path) -> None:
    """Real raws of three cameras (the manifest's libraw_make / libraw_model; the Blackmagic DNG's own
    UniqueCameraModel agrees with its row): over ten seeds each side holds whole cameras, both sides some;
    the manifest's scene groups stay the teacher's groups."""
    real = ["a2tools__DC0008L.KDC", "a2tools__DC0010S.KDC", "imagemeta__CRW.CRW", "twelvemonkeys__test.dng"]
    real_copies(tmp_path / "real", real)
    assert dng_camera(tmp_path / "real" / real[3]) == "Blackmagic Pocket Cinema Camera"
    for seed in range(10):
        listing = list_raws(tmp_path / "real", tmp_path / "out", 0.3, seed, group_by="camera")
        assert listing.cameras is not None
        train = {listing.cameras[p] for p in listing.train}
        test = {listing.cameras[p] for p in listing.test}
        assert train and test and not train & test, (seed, train, test)
        assert train | test == {"Kodak DC50", "Canon EOS D30", "Blackmagic Pocket Cinema Camera"}
        assert listing.groups[tmp_path / "real" / real[0]] == "a2-dc50-it8chart"  # the manifest's scene


def test_group_by_camera_refusals_are_told_before_torch(tmp_path: Path) -> None:
    """One line each, before torch: a typo of --group-by; raws of one camera (the demo DNGs: all "attiqa
    synthetic"); raws naming no camera, none named by manifest rows — by the run and
    by ``isp-tune check --group-by camera`` (**was**: the check said it after the reward model loaded)."""
    from isp_env.dng import demo_raws

    one = tmp_path / "one"
    demo_raws(one, long_side=64)
    none = tmp_path / "none"
    cameraless_raws(none)
    out = ["--out", str(tmp_path / "run")]
    check(
        [
            (
                ISP,
                ["--raw-dir", str(one), *out, "--group-by", "cam"],
                "--group-by 'cam': use scene or camera",
            ),
            (
                ISP,
                ["--raw-dir", str(one), *out, "--group-by", "camera"],
                f"{one}: its 4 raws are of one camera ('attiqa synthetic') — none can be held out by camera",
            ),
            (
                ISP,
                ["--raw-dir", str(none), *out, "--group-by", "camera"],
                f"{none / 'manifest.csv'}: no camera for 2 of the 2 raws (chart.dng, street.nef) — "
                "rawpy does not give LibRaw's make and model: add their rows to it "
                "with the columns file, libraw_make, libraw_model",
            ),
            (
                ISP,
                ["check", str(none), "--group-by", "camera", *out],
                f"{none / 'manifest.csv'}: no camera for 2 of the 2 raws (chart.dng, street.nef) — "
                "rawpy does not give LibRaw's make and model: add their rows to it "
                "with the columns file, libraw_make, libraw_model",
            ),
        ],
        ISP_HEAVY,
    )
    assert not (tmp_path / "run").exists()


def test_a_run_held_out_by_camera_records_it_and_refuses_another_grouping(tmp_path: Path) -> None:
    """A seconds-long teacher run on DNGs of two cameras: run.json and summary.json record the grouping and
    each side's camera, report.md names the held-out camera; the same command again is finished; a resume
    with --group-by scene is refused in one line (before: the split compare's "other raws or seed")."""
    from helpers import quick_isp_tune
    from typer.testing import CliRunner

    from isp_env.cli import app

    raw_dir, out, args = quick_isp_tune(tmp_path, two_camera_dngs(tmp_path / "made"))
    r = CliRunner().invoke(app, [*args, "--group-by", "camera"])
    assert r.exit_code == 0, r.output
    plan = json.loads((out / "run.json").read_text())
    assert plan["group_by"] == "camera"
    sides = plan["cameras"]
    assert sorted(sides["train"] + sides["test"]) == ["Acme One", "Acme Two"]
    assert json.loads((out / "summary.json").read_text())["split"] == {"group_by": "camera", "cameras": sides}
    report = (out / "report.md").read_text()
    assert f"whole cameras held out, `--group-by camera`: {sides['test'][0]}; trained on" in report
    r = CliRunner().invoke(app, [*args, "--group-by", "camera"])
    assert r.exit_code == 0 and "finished, nothing to do" in " ".join(r.output.split()), r.output
    r = CliRunner().invoke(app, args)  # --group-by scene, the default
    assert isinstance(r.exception, ConfigError), r.output
    assert str(r.exception) == (
        f"{out}: this run folder's split is by camera (--group-by camera), not by scene — pass --group-by "
        "camera to resume it, or use a new --out"
    )


def test_run_refuses_inputs_made_for_another_seed_or_policy_than_its_config(tmp_path: Path) -> None:
    """**Was**: ``run(listing=, start=)`` took a raw listing and start checks from its caller unchecked — a
    listing of another folder (or seed, or grouping) split this run's raws by it. Since session 59 the
    inputs are run's one way in (``run(inputs, cfg)``): folder, split and base are theirs alone, seed and
    ``--init-policy`` the ``cfg``'s they were made with (``run_inputs(settings, cfg)``); a ``cfg`` of another
    seed or policy handed to ``run`` is refused in one line before any work."""
    from isp_env.run import run

    two_camera_dngs(tmp_path / "a")
    inputs = run_inputs(_settings(tmp_path, 0.3), TrainConfig(algo="teacher", scorer="classical"))
    for cfg, said in (
        (TrainConfig(algo="teacher", scorer="classical", seed=1), "--seed 0, now 1"),
        (TrainConfig(algo="teacher", scorer="classical", init_policy="default"), "--init-policy None, now"),
    ):
        with pytest.raises(ConfigError) as err:
            run(inputs, cfg)
        assert str(err.value).startswith(
            f"run(inputs, cfg): the inputs were made with another config ({said}"
        ), str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_camera_named_by_a_manifest_row_and_by_its_dng_tags_is_one_camera(tmp_path: Path) -> None:
    """LibRaw's names (the manifest: "Canon", "EOS D30") and a DNG's own tags (Make "Canon", Model "Canon EOS
    D30"; Make "EASTMAN KODAK COMPANY", Model "KODAK DC50") are one camera each: the same camera was on both
    sides of the split ('Canon Canon EOS D30' held out, 'Canon EOS D30' trained) at seed 0."""
    raws = tmp_path / "raws"
    raws.mkdir()
    shots = [
        ("c1.dng", "Canon", "Canon EOS D30"),
        ("c2.dng", "Canon", "canon  EOS D30"),
        ("k1.dng", "EASTMAN KODAK COMPANY", "KODAK DC50"),
        ("k2.dng", "Kodak", "DC50"),
    ]
    for i, (name, make, model) in enumerate(shots):
        dng_from_photo(raws / name, demo_photo("astronaut", 64), seed=i, make=make, model=model)
    rows = "file,libraw_make,libraw_model\nc1.dng,Canon,EOS D30\nk2.dng,Kodak,DC50\n"
    (raws / "manifest.csv").write_text(rows, encoding="utf-8")
    for seed in range(4):
        listing = list_raws(raws, tmp_path / "out", 0.3, seed, group_by="camera")
        sides = listing.split_record()["cameras"]
        assert sorted(sides["train"] + sides["test"]) == ["Canon EOS D30", "Kodak DC50"], (seed, sides)
    assert camera_name("NIKON CORPORATION", "NIKON D850") == camera_name("Nikon", "D850") == "Nikon D850"
    assert camera_name("OLYMPUS IMAGING CORP.", "E-M1") == "Olympus E-M1"


def test_a_camera_split_says_a_share_far_from_test_fraction_and_advises_what_helps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whole cameras go: 1 raw of one camera and 5 of another held out 5 of 6 at --test-fraction 0.5, 0.2
    and 0.05 alike, without a word, and a split leaving too few training raws said "lower --test-fraction"
    — which does not move it. Now one line says the share, and the refusal says another seed or cameras."""
    raws = tmp_path / "raws"
    raws.mkdir()
    for i in range(6):
        model = "One" if i == 0 else "Two"
        dng_from_photo(raws / f"s{i}.dng", demo_photo("coffee", 64), seed=i, make="Acme", model=model)
    listing = next(
        found
        for seed in range(1, 10)
        if len((found := list_raws(raws, tmp_path / "out", 0.2, seed, group_by="camera")).test) == 5
    )
    said = " ".join(capsys.readouterr().err.split())  # the console writes to stderr
    assert (
        "raws: its 6 raws fall in 2 cameras and a split holds out whole cameras (1 of 2): train/test is "
        "17/83, not the 80/20 asked (--test-fraction 0.2) — another --seed picks other cameras, or add raws "
        "of other cameras" in said
    )
    with pytest.raises(ConfigError) as refused:
        refuse_too_few(len(listing.train), 2, raws, listing.group_by)
    assert "the split leaves 1 training raw(s), 2 needed — pass another --seed, or add raws of other " in str(
        refused.value
    )
    assert "--test-fraction" not in str(refused.value)
    with pytest.raises(ConfigError, match="lower --test-fraction, or add raws of other scenes"):
        refuse_too_few(1, 2, raws)  # by scene the fraction moves the split


def test_a_camera_split_holding_nothing_out_looks_up_no_camera(tmp_path: Path) -> None:
    """``--group-by camera --test-fraction 0``: every raw trains, no split is made — a folder without
    camera names (raws naming no camera, no manifest columns for them) was refused for a split that never
    happens."""
    none = tmp_path / "none"
    cameraless_raws(none)
    listing = list_raws(none, tmp_path / "out", 0, 0, group_by="camera")
    assert listing.train == sorted(listing.raws) and not listing.test
    assert listing.group_by == "camera" and listing.split_record() == {"group_by": "camera"}
    with pytest.raises(ConfigError, match="no camera for 2 of the 2 raws"):
        list_raws(none, tmp_path / "out", 0.3, 0, group_by="camera")


def test_run_takes_every_setting_from_its_inputs(tmp_path: Path) -> None:
    """``run(inputs=…)`` took every setting twice — as its own arguments and inside ``inputs.made_for`` —
    and compared them. Now (session 59) ``run(inputs, cfg)`` has no other way in: the inputs' folder, split
    and base are the run's; a read-only output folder's reason is raised once those checks pass."""
    from isp_env.run import run

    two_camera_dngs(tmp_path / "a")
    cfg = TrainConfig(algo="teacher", scorer="classical", seed=0)
    inputs = run_inputs(_settings(tmp_path, 0.5), cfg)
    read_only = PermissionError("out is read-only")  # raised once the run's checks pass: nothing is run
    with pytest.raises(PermissionError, match="out is read-only"):
        run(inputs, cfg, unwritable=read_only)
    assert not (tmp_path / "out").exists()


def test_isp_tune_check_by_camera_reads_cameras_as_the_run_does(tmp_path: Path) -> None:
    """**Was**: ``isp-tune check`` read no camera (its help spoke of cameras only): a folder with a raw no
    camera names passed the check and was refused only by the ``isp-tune --group-by camera`` run it was
    checked for. Now ``check --group-by camera`` reads each raw's camera with the run's function and
    refuses such a raw in the run's one line, nothing written; with cameras its ``--test-raws`` sample is
    spread over them (one raw of each), said so."""
    from typer.testing import CliRunner

    from isp_env.cli import app

    none = tmp_path / "none"
    cameraless_raws(none)
    with pytest.raises(ConfigError) as by_the_run:
        list_raws(none, tmp_path / "run", 0.3, 0, group_by="camera")
    args = ["check", "--group-by", "camera", "-m", "classical", "--out"]
    r = CliRunner().invoke(app, [*args, str(tmp_path / "c1"), str(none)])
    assert isinstance(r.exception, ConfigError), r.output
    assert str(r.exception) == str(by_the_run.value)
    assert not (tmp_path / "c1").exists()

    two_camera_dngs(tmp_path / "a")  # shot0, shot2: camera One; shot1, shot3: camera Two
    r = CliRunner().invoke(app, [*args, str(tmp_path / "c2"), "--test-raws", "2", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "evaluating 2 of the 4 raws found (--test-raws), spread over the cameras" in " ".join(
        r.output.split()
    )
    with (tmp_path / "c2" / "results.csv").open(newline="") as fh:
        images = {row["image"] for row in csv.DictReader(fh)}
    assert len(images) == 2 and {int(i.removeprefix("shot")) % 2 for i in images} == {0, 1}, images


def test_a_split_refused_for_too_few_training_raws_says_no_share_before_its_error(tmp_path: Path) -> None:
    """**Was** a split that leaves the teacher one training raw said its held-out share ("RAWS: its 6 raws
    fall in 2 cameras … train/test is 17/83 …") and then refused the run ("error: RAWS: the split leaves 1
    training raw(s), 2 needed"): a share of a run that never happens. Now the refusal alone, first line
    "error:" (by camera and by scene groups), before torch."""
    from isp_env.run_inputs import split

    cams = tmp_path / "cams"
    cams.mkdir()
    for i in range(6):  # 1 raw of one camera, 5 of another: the 5 held out leave 1
        model = "One" if i == 0 else "Two"
        dng_from_photo(cams / f"s{i}.dng", demo_photo("coffee", 64), seed=i, make="Acme", model=model)
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i in range(4):  # scene groups of 3 and 1: the 3 held out leave 1
        dng_from_photo(scenes / f"s{i}.dng", demo_photo("rocket", 64), seed=i)
    groups = "file,scene_group\n" + "".join(f"s{i}.dng,{'one' if i < 3 else 'two'}\n" for i in range(4))
    (scenes / "manifest.csv").write_text(groups, encoding="utf-8")

    def seed_holding(folder: Path, fraction: float, by: dict[str, str], held: int) -> int:
        """A seed whose split of ``folder`` by ``by`` (raw name -> group) holds out ``held`` raws."""
        paths = {folder / n: g for n, g in by.items()}
        return next(s for s in range(20) if len(split(list(paths), fraction, s, paths)[1]) == held)

    by_camera = {f"s{i}.dng": "One" if i == 0 else "Two" for i in range(6)}
    by_scene = {f"s{i}.dng": "one" if i < 3 else "two" for i in range(4)}
    cases = []
    for folder, by, fraction, held, group_by in (
        (cams, by_camera, 0.2, 5, "camera"),
        (scenes, by_scene, 0.3, 3, "scene"),
    ):
        seed = seed_holding(folder, fraction, by, held)
        args = ["--raw-dir", str(folder), "--out", str(tmp_path / f"run_{group_by}"), "--group-by", group_by]
        args += ["--test-fraction", str(fraction), "--seed", str(seed)]
        cases.append(("isp_env.cli", args, "the split leaves 1 training raw(s), 2 needed"))
    check(cases, ISP_HEAVY)  # each case's output starts "error:": no share line above it
    assert not (tmp_path / "run_camera").exists() and not (tmp_path / "run_scene").exists()


def test_the_library_refuses_a_split_too_small_before_saying_its_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """**Was** (session 59) the held-out share said before a refused split by ``isp-tune`` alone:
    ``run_inputs(settings)`` needed no training raw by default, so the library's runs said the share ("train/
    test is 75/25 …") and then ``run()`` refused the split. Now ``run_inputs(settings, cfg)`` takes what a new
    run needs from ``cfg`` (the teacher: 2 training raws), the refusal alone — and 0 for a resume."""
    from isp_env.run_inputs import split

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i in range(4):  # scene groups of 3 and 1: the 3 held out leave 1
        dng_from_photo(scenes / f"s{i}.dng", demo_photo("rocket", 64), seed=i)
    (scenes / "manifest.csv").write_text(
        "file,scene_group\n" + "".join(f"s{i}.dng,{'one' if i < 3 else 'two'}\n" for i in range(4)),
        encoding="utf-8",
    )
    paths = {scenes / f"s{i}.dng": "one" if i < 3 else "two" for i in range(4)}
    seed = next(s for s in range(20) if len(split(list(paths), 0.3, s, paths)[1]) == 3)
    cfg = TrainConfig(algo="teacher", scorer="classical", seed=seed)
    capsys.readouterr()
    with pytest.raises(ConfigError, match=re.escape("the split leaves 1 training raw(s), 2 needed")):
        isp_run(scenes, tmp_path / "run", cfg, test_fraction=0.3)
    said = capsys.readouterr().err
    assert "train/test is" not in said, said
    assert not (tmp_path / "run").exists()


def test_the_library_takes_a_checkpoint_path_and_says_a_call_of_the_old_form_in_one_line(
    tmp_path: Path,
) -> None:
    """**Was** (this session's review): ``TrainConfig(scorer=Path("m.safetensors"))`` — a library caller's
    checkpoint as a ``Path``, which the reward model's loaders take — ended in "'PosixPath' object has no
    attribute 'partition'" when the name check moved before the raws; ``run_inputs(settings, need)``, the call
    before session 59, in "'int' object has no attribute 'algo'". Now the path passes the name check and the
    old call is one line naming the new one."""
    two_camera_dngs(tmp_path / "a")
    ckpt = tmp_path / "m.safetensors"  # not read here: the name check and the listing come first
    inputs = run_inputs(_settings(tmp_path, 0.3), TrainConfig(algo="teacher", scorer=ckpt))  # type: ignore[arg-type]
    assert len(inputs.listing.train) + len(inputs.listing.test) == 4
    with pytest.raises(ConfigError) as err:
        run_inputs(_settings(tmp_path, 0.3), 2)  # type: ignore[arg-type]
    assert str(err.value) == (
        "run_inputs(settings, cfg): cfg is a int, not an isp_env.train_config.TrainConfig — pass the run's "
        "TrainConfig (it holds the seed, --init-policy and the reward model)"
    )


def test_a_manifest_naming_raws_by_their_path_in_a_nested_folder_gives_their_scene_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """**Was** a raw folder of sub-folders (`day1/IMG_1.dng`, as FiveK's `raw_photos/HQa*/photos/`) whose
    `manifest.csv` names each raw by its path under the folder: no row matched (rows were looked up by
    file name alone), so every raw was its own scene group — repeat shots of one scene on both sides of the
    split — without a word. Now a row's `file` is the raw's path under the folder (`/` or `\\`) or its
    name; a manifest whose rows name none of the raws is said."""
    from isp_env.run_inputs import scene_groups

    raws = tmp_path / "raws"
    shots = [raws / f"day{i // 2}" / f"IMG_{i}.dng" for i in range(4)]
    for i, p in enumerate(shots):
        p.parent.mkdir(parents=True, exist_ok=True)
        dng_from_photo(p, demo_photo("coffee", 48), seed=i)
    rows = (
        "file,scene_group\nday0/IMG_0.dng,cup\nday0\\IMG_1.dng,cup\n./day1/IMG_2.dng,desk\nIMG_3.dng,desk\n"
    )
    (raws / "manifest.csv").write_text(rows, encoding="utf-8")
    assert scene_groups(shots, raws) == dict(zip(shots, ["cup", "cup", "desk", "desk"], strict=True))
    assert "manifest.csv" not in capsys.readouterr().err
    (raws / "manifest.csv").write_text("file,scene_group\nother/IMG_0.dng,cup\n", encoding="utf-8")
    groups = scene_groups(shots, raws)
    assert len(set(groups.values())) == 4
    said = " ".join(capsys.readouterr().err.split())
    assert f"warning {raws / 'manifest.csv'} names none of the 4 raws" in said, said
