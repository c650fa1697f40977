"""What ``isp-tune`` is given, checked before a model, torch or Stable-Baselines3 loads: the run's config
(:func:`isp_env.train_config.check_config`: the settings that do not fit together) first; the output folder,
``--test-raws``, a ``--base`` file and the ``--init-policy`` file (:func:`check_start`: cheap, so before the
raws); and the raws — listed, probed, grouped by scene (or by camera: ``--group-by camera``) and split, with
the refusals of a folder too small for a run. :func:`run_inputs` makes them all, in that order, into one
:class:`RunInputs` for :func:`isp_env.run.run` — ``isp-tune`` before the heavy imports (a mistake said in
one line without their ~seconds), the library's runs the same way, so both say the same words in the same
order.
"""

from __future__ import annotations

import json
import random
import shlex
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attiqa.datasets.readers import read_csv
from attiqa.errors import ConfigError, did_you_mean
from attiqa.io.formats import RAW_EXTENSIONS
from attiqa.io.images import content_key, discover_images
from attiqa.io.run_meta import differing_settings
from attiqa.progress import console, plain, plain_failure, plain_name, shown_name
from attiqa.scorers.zoo import refuse_unknown_scorer
from attiqa.splits import say_share
from isp_env.params import RunFiles, neutral, read_values
from isp_env.policy_files import init_policy_file, resolve_policy
from isp_env.raw import camera_name, dng_camera, find_raws, probe_raw
from isp_env.registration import (
    BASE,
    CMA_GLOBAL_BUDGET,
    CMA_IMAGE_BUDGET,
    GROUP_BY_DEFAULT,
    TEST_FRACTION,
    TEST_RAWS,
)
from isp_env.train_config import AGENT_ONLY, TeacherSettings, TrainConfig, check_config, ignored_settings

GROUP_BY = ("scene", "camera")  # --group-by: what the split keeps whole on one side


def check_group_by(group_by: str) -> None:
    """``--group-by``: scene (repeat shots of a subject on one side) or camera (no camera on both sides)."""
    if group_by not in GROUP_BY:
        hint = did_you_mean(group_by, GROUP_BY)
        raise ConfigError(f"--group-by {group_by!r}: use scene or camera{hint}")


@dataclass
class RawListing:
    """A raw folder as a run sees it: the raws LibRaw reads, the others (path -> why), scene groups, split.
    ``cameras``: each raw's camera when the split is by camera (:attr:`group_by`; empty when nothing is
    held out: not looked up), else None; ``groups`` stay the scene groups either way (the teacher's
    cross-validation and the raws' spread use them)."""

    raws: list[Path]
    skipped: dict[str, str]
    groups: dict[Path, str]
    train: list[Path]
    test: list[Path]
    cameras: dict[Path, str] | None = None

    @property
    def group_by(self) -> str:
        """``--group-by``: camera when the raws' cameras split them, else scene."""
        return "scene" if self.cameras is None else "camera"

    def split_record(self) -> dict[str, Any]:
        """How the split was made, for run.json and the report: ``group_by``, and by camera the cameras on
        each side."""
        if not self.cameras:  # by scene, or by camera with nothing held out
            return {"group_by": self.group_by}
        sides = {
            side: sorted({self.cameras[p] for p in raws})
            for side, raws in (("train", self.train), ("test", self.test))
        }
        return {"group_by": self.group_by, "cameras": sides}


def list_raws(
    raw_dir: Path,
    out: Path,
    test_fraction: float,
    seed: int,
    synth_photos: Path | None = None,
    group_by: str = "scene",
    need: int = 0,
) -> RawListing:
    """The raws of ``raw_dir`` probed, grouped and split (:func:`split`) by scene group or, ``group_by``
    camera, by camera (:func:`raw_cameras`); one line when there are too few to train on some and test on
    others, when no raw can be held out, or when the split leaves fewer than ``need`` training raws
    (:func:`refuse_too_few`) — before the held-out share is said (:func:`say_split_share`): a run refused
    had its share said above its error."""
    check_group_by(group_by)
    raws, skipped = readable_raws(find_raws(raw_dir))  # unreadable files stay out of the split
    say_photos_left_out(
        raw_dir, out, "photos train only as --synth-photos (unprocessed into raws)", synth_photos
    )
    if len(raws) == 1:  # it listed the extensions searched, as if the raw had not been found
        one = shlex.join(["isp-tune", "render", str(raws[0]), "--policy", "default", "--check", "-o"])
        raise ConfigError(
            f"{raw_dir}: one raw LibRaw can read ({raws[0].name}"
            + (f"; {len(skipped)} it cannot, above" if skipped else "")
            + ") — isp-tune trains on some raws and tests on others: give a folder of 2 or more; to render "
            f"this one with the shipped policy, {one} {shlex.quote(raws[0].stem + '.png')}"
        )
    if len(raws) < 2:
        raise ConfigError(
            f"{raw_dir}: found {len(raws)} raw file(s)"
            + (f" LibRaw can read ({len(skipped)} it cannot, above)" if skipped else "")
            + ", need at least 2 (one to train, one to test) — extensions searched: "
            + ", ".join(sorted(RAW_EXTENSIONS))
        )
    manifest = read_manifest(raw_dir)  # read once for both columns
    groups = scene_groups(raws, raw_dir, manifest)
    if group_by == "camera" and test_fraction <= 0:  # nothing held out: no camera needed (none looked up)
        return RawListing(raws, skipped, groups, sorted(raws), [], {})
    if group_by == "camera":
        cameras = raw_cameras(raws, raw_dir, manifest)
        found = sorted(set(cameras.values()))
        if len(found) < 2:
            raise ConfigError(
                f"{raw_dir}: its {len(raws)} raws are of one camera ({found[0]!r}) — none can be held out by "
                "camera (--group-by camera); add raws of another camera, or pass --group-by scene to hold "
                "out scene groups"
            )
        train_raws, test_raws = split(raws, test_fraction, seed, cameras)
        refuse_too_few(len(train_raws), need, raw_dir, "camera")
        listing = RawListing(raws, skipped, groups, train_raws, test_raws, cameras)
        say_split_share(raw_dir, listing, test_fraction)
        return listing
    train_raws, test_raws = split(raws, test_fraction, seed, groups)
    if test_fraction > 0 and not test_raws:  # one scene group: it always trains
        raise ConfigError(
            f"{raw_dir}: its {len(raws)} raws are one scene group ({groups[raws[0]]!r}: manifest.csv's "
            "scene_group, or byte-identical copies) — none can be held out for testing; add raws of other "
            "scenes, or pass --test-fraction 0 to train on all of them"
        )
    refuse_too_few(len(train_raws), need, raw_dir)
    listing = RawListing(raws, skipped, groups, train_raws, test_raws)
    say_split_share(raw_dir, listing, test_fraction)
    return listing


def raw_cameras(raws: list[Path], root: Path, manifest: RawManifest | None = None) -> dict[Path, str]:
    """Raw -> camera (:func:`isp_env.raw.camera_name`): LibRaw's make and model as ``root/manifest.csv``
    gives them (:func:`read_manifest`; rawpy does not expose LibRaw's), else a DNG's own Make and Model tags
    (:func:`isp_env.raw.dng_camera`) — one name for one camera whichever gave it, its case as first found
    (sorted raws). A raw with neither is said in one line naming the manifest and the fix — never put in a
    camera of its own, which would hold it out as a "new camera". ``manifest``: read here when None."""
    manifest = read_manifest(root) if manifest is None else manifest
    path = root / "manifest.csv"
    cameras: dict[Path, str] = {}
    spelled: dict[str, str] = {}  # casefolded name -> the first spelling seen
    unknown: list[Path] = []
    for p in sorted(raws):
        found = RawManifest.row_of(manifest.cameras, p, root) or dng_camera(p)
        if found:
            cameras[p] = spelled.setdefault(found.casefold(), found)
        else:
            unknown.append(p)
    if unknown:
        names = ", ".join(plain_name(p.name) for p in unknown[:3]) + (", …" if len(unknown) > 3 else "")
        fix = "add their rows to it" if path.is_file() else "write it"
        raise ConfigError(
            f"{path}: no camera for {len(unknown)} of the {len(raws)} raws ({names}) — rawpy does not "
            f"give LibRaw's make and model: {fix} with the columns file, libraw_make, libraw_model (a DNG's "
            "own Make and Model tags are read when it has none), or pass --group-by scene"
        )
    return cameras


def say_split_share(raw_dir: Path, listing: RawListing, test_fraction: float) -> None:
    """One line (:func:`attiqa.splits.say_share`, bench's sentence) when a split holds out a share of the
    raws far from ``--test-fraction``: groups go whole — by camera, 1 raw of one camera and 5 of another
    held out 5 of 6 at any fraction; by scene, 2 raws held out 1 at 0.3 — without a word. Said only: the
    split is not changed (runs' resumes compare it). Raws each of its own group (a folder without a
    manifest) are silent (:func:`attiqa.splits.say_share`'s rule)."""
    if not listing.test:
        return
    by_camera = listing.cameras is not None
    groups = listing.cameras if listing.cameras is not None else listing.groups
    members = [groups[p] for p in listing.raws]
    held = [len({groups[p] for p in listing.test})]
    kind = "cameras" if by_camera else "scene groups"
    more = "cameras" if by_camera else "scenes"
    fix = f"another --seed picks other {kind}, or add raws of other {more}"
    say_share(
        shown_name(raw_dir),  # (say_share makes it plain)
        len(listing.raws),
        members,
        held,
        len(listing.test) / len(listing.raws),
        test_fraction,
        fix,
        items="raws",
        kind=kind,
        asked_by=f" (--test-fraction {test_fraction:g})",
    )


def training_need(algo: str, init_policy: str | None) -> int:
    """Training raws a new run needs: an agent 1, a teacher 2 (a fit), none with a prior (it refits)."""
    return 1 if algo != "teacher" else 0 if init_policy else 2


def refuse_too_few(n_train: int, need: int, raw_dir: Path, group_by: str = "scene") -> None:
    """A high --test-fraction that left fewer than ``need`` training raws: said before anything is written.
    By camera the fraction barely moves a split of few cameras (whole cameras go: :func:`say_split_share`),
    so the fix is another seed or more cameras."""
    if n_train < need:
        fix = (
            "pass another --seed, or add raws of other cameras"
            if group_by == "camera"
            else "lower --test-fraction, or add raws of other scenes"
        )
        raise ConfigError(
            f"{raw_dir}: the split leaves {n_train} training raw(s), {need} needed — {fix}; nothing was "
            "written"
        )


@dataclass(frozen=True)
class RawManifest:
    """What a raw folder's ``manifest.csv`` says, by raw name: ``groups`` its ``scene_group`` column (None
    without the columns ``file`` and ``scene_group``), ``cameras`` its ``libraw_make`` and ``libraw_model``
    (:func:`isp_env.raw.camera_name`); ``fields`` its columns (None: no manifest)."""

    groups: dict[str, str] | None
    cameras: dict[str, str]
    fields: list[str] | None

    @staticmethod
    def row_of(table: dict[str, str], raw: Path, root: Path) -> str | None:
        """``raw``'s value in ``table`` (keyed by :func:`manifest_key`): by its path under ``root``, else its
        name. Looked up by name alone, a nested folder's manifest naming raws by path matched none."""
        if raw.is_relative_to(root) and (found := table.get(manifest_key(str(raw.relative_to(root))))):
            return found
        return table.get(manifest_key(raw.name))


def manifest_key(cell: str) -> str:
    """A manifest ``file`` cell as a lookup key: trimmed, ``\\`` as ``/`` (a Windows path), no ``./``."""
    key = cell.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


def read_manifest(root: Path) -> RawManifest:
    """``root/manifest.csv`` read once for the split's two columns (scene groups, cameras); an empty
    :class:`RawManifest` without one. The reader trims cells: a raw named " a.dng" is found trimmed too."""
    path = root / "manifest.csv"
    if not path.is_file():
        return RawManifest({}, {}, None)
    what = "raw manifest (columns file, scene_group; libraw_make, libraw_model for --group-by camera)"
    table = read_csv(path, ",", what=what)
    file_col, group_col, make_col, model_col = (
        table.column(c, required=False) for c in ("file", "scene_group", "libraw_make", "libraw_model")
    )
    groups = None
    cameras: dict[str, str] = {}
    if file_col is not None and group_col is not None:
        groups = {
            manifest_key(str(r[file_col])): str(r[group_col])
            for r in table.rows
            if r.get(file_col) and r.get(group_col)
        }
    if file_col is not None and make_col is not None and model_col is not None:
        for r in table.rows:
            camera = camera_name(str(r.get(make_col) or ""), str(r.get(model_col) or ""))
            if r.get(file_col) and camera:
                cameras[manifest_key(str(r[file_col]))] = camera
    return RawManifest(groups, cameras, list(table.fields))


def scene_groups(raws: list[Path], root: Path, manifest: RawManifest | None = None) -> dict[Path, str]:
    """Raw -> scene group: ``root/manifest.csv`` (``file``, ``scene_group``) when present, else the file.

    Byte-identical copies (a folder copied in twice, a link) join the group of the first: each copy its
    own group put copies of a training raw on the test side. Only raws of one size and the same first and
    last 64 KiB are hashed whole (:func:`ends`; uncompressed DNGs of one camera are all of one size).
    ``raws``: probed ones (:func:`readable_raws`): each is stat-ed and may be read, unguarded.
    ``manifest``: :func:`read_manifest`'s, read here when None."""
    groups = {p: str(p.relative_to(root)) if p.is_relative_to(root) else p.name for p in raws}
    manifest = read_manifest(root) if manifest is None else manifest
    if manifest.fields is not None and manifest.groups is None:  # `scene`: no groups
        console.print(
            f"[yellow]warning[/] {plain_name(root / 'manifest.csv')} has no columns file and scene_group "
            f"(found: {plain(', '.join(manifest.fields)) or 'none'}): every raw is its "
            "own scene group, so repeat shots of one scene may land on both sides of the split"
        )
    listed = {p: RawManifest.row_of(manifest.groups or {}, p, root) for p in raws}
    if raws and manifest.groups and not any(listed.values()):  # e.g. paths of another folder's layout
        example = plain(next(iter(manifest.groups)))
        console.print(
            f"[yellow]warning[/] {plain_name(root / 'manifest.csv')} names none of the {len(raws)} raws "
            f"(e.g. its row {example}): every raw is its own scene group — name each raw in its file "
            "column by its path under the folder or by its file name"
        )
    for p in raws:
        groups[p] = listed[p] or groups[p]
    by_size: dict[int, list[Path]] = {}
    for p in sorted(raws):  # probed raws (:func:`readable_raws`): each one a file that opens
        by_size.setdefault(p.stat().st_size, []).append(p)
    first: dict[str, str] = {}
    for same_size in (ps for ps in by_size.values() if len(ps) > 1):
        by_ends: dict[bytes, list[Path]] = {}
        for p in same_size:
            by_ends.setdefault(ends(p), []).append(p)
        for p in (p for same in by_ends.values() if len(same) > 1 for p in same):
            groups[p] = first.setdefault(content_key(p), groups[p])
    return groups


def readable_raws(found: list[Path]) -> tuple[list[Path], dict[str, str]]:
    """The raws of ``found`` whose header LibRaw reads (:func:`isp_env.raw.probe_raw`), and the others'
    paths -> why, each said in one line: probed once, before the split and the scene groups (which stat and
    read the raws they are given), so a symlink loop, a broken link or a raw without read permission is
    skipped, never a traceback, and takes no raw's place in the split. ``isp-tune`` and ``isp-tune check``."""
    raws: list[Path] = []
    skipped: dict[str, str] = {}
    for p in found:
        problem = probe_raw(p)
        if problem is None:
            raws.append(p)
        else:
            skipped[str(p)] = str(problem)
            console.print(f"[yellow]skipped[/] {plain_failure(problem, p)}")
    return raws, skipped


def ends(path: Path, size: int = 1 << 16) -> bytes:
    """The first and last ``size`` bytes of a file: same-size raws that differ there are no copies, and
    need not be read whole (FiveK: 5,000 raws of 10-25 MB)."""
    with open(path, "rb") as fh:
        head = fh.read(size)
        fh.seek(max(0, fh.seek(0, 2) - size))
        return head + fh.read(size)


def split(
    raws: list[Path], test_fraction: float, seed: int, groups: dict[Path, str] | None = None
) -> tuple[list[Path], list[Path]]:
    """Seeded split by scene group: whole groups go to the test side until it holds ``test_fraction`` of the
    raws; at least one raw on each side when there are two groups or more. ``test_fraction`` 0: every raw
    trains (a policy to ship; nothing is evaluated)."""
    if test_fraction <= 0:
        return sorted(raws), []
    groups = groups or {p: str(p) for p in raws}
    names = sorted({groups[p] for p in raws})
    random.Random(seed).shuffle(names)
    target = test_fraction * len(raws)
    test_groups: set[str] = set()
    n = 0
    for g in names[:-1]:  # the last group always trains
        if n >= target or (n and n + sum(groups[p] == g for p in raws) > target + 0.5 * target):
            continue
        test_groups.add(g)
        n += sum(groups[p] == g for p in raws)
    if not test_groups and len(names) > 1:
        test_groups.add(names[0])
    test = sorted(p for p in raws if groups[p] in test_groups)
    return sorted(p for p in raws if groups[p] not in test_groups), test


def say_photos_left_out(raw_dir: Path, out: Path, fix: str, synth: Path | None = None) -> None:
    """One line naming the photos (JPEG, PNG, TIFF, …) among ``raw_dir``'s files, which are not camera raws
    and so are left out (outputs under ``out`` and ``--synth-photos`` aside): they were passed over without
    a word, and a user who had put photos there took them to be used."""
    used = [q.resolve() for q in (out, synth) if q is not None]
    photos = sorted(
        p for p in discover_images([raw_dir]) if not any(p.resolve().is_relative_to(q) for q in used)
    )
    if photos:
        named = ", ".join(
            plain_name(p.relative_to(raw_dir) if p.is_relative_to(raw_dir) else p) for p in photos[:3]
        )
        console.print(
            f"[yellow]left out[/] {len(photos)} photo(s) in {plain_name(raw_dir)} that are not camera raws "
            f"({named}{', …' if len(photos) > 3 else ''}) — isp-tune reads raws and DNGs; {fix}",
            highlight=False,
        )


def base_setting(base: str) -> dict[str, float]:
    """``--base neutral`` or a parameter JSON (name -> value, or under ``params``) as a setting."""
    if base == "neutral":
        return neutral()
    return read_values(
        base, "not a readable parameter JSON for --base", "pass neutral, global or a file of name -> value"
    )


@dataclass
class RunStart:
    """What a run checks before its raws are listed, as read then — handed on, never read again: its
    kept files (:meth:`isp_env.params.RunFiles.checked`) and its ``--base`` setting (None: ``global``,
    searched)."""

    files: RunFiles
    base: dict[str, float] | None


def check_start(
    out: Path, base: str, test_raws_cap: int, init_policy: str | None, group_by: str = "scene"
) -> RunStart:
    """The cheap checks of a run, before its raws are listed (probing a FiveK-sized folder takes minutes) and
    before torch: ``--group-by``, ``--test-raws``, the output folder (another command's report, a damaged
    kept file), the ``--base`` file and the ``--init-policy`` file (its card is compared with the run's
    settings later, with torch: :func:`isp_env.tuning.checked_agent_init`)."""
    check_group_by(group_by)
    if test_raws_cap < 1:
        raise ConfigError(f"--test-raws {test_raws_cap}: evaluate at least 1 held-out raw")
    refuse_other_report(out, "run")
    files = RunFiles.checked(out)  # every kept file read once, before any work; the steps use these
    given_base = None if base == "global" else base_setting(base)
    if init_policy:
        init_policy_file(init_policy, out)
    return RunStart(files, given_base)


@dataclass(frozen=True, kw_only=True)
class InputSettings:
    """The options a run's checks before torch and its raws' listing follow from, besides its
    :class:`isp_env.train_config.TrainConfig` (whose seed draws the split and whose ``init_policy`` is
    checked: held there once), for :func:`run_inputs`, the one way into :func:`isp_env.run.run`. The one
    place of the split's and the base's defaults: a setting not given is this one's (the command passes its
    own options, whose defaults are the same constants)."""

    raw_dir: Path
    out: Path
    test_fraction: float = TEST_FRACTION
    synth_photos: Path | None = None
    group_by: str = GROUP_BY_DEFAULT
    base: str = BASE  # residual actions' base: global | neutral | a parameter JSON
    test_raws_cap: int = TEST_RAWS  # --test-raws


@dataclass(frozen=True)
class RunInputs:
    """What ``isp-tune`` checks before torch, handed to :func:`isp_env.run.run` as its one way in: the start
    checks, the raws' listing, the settings both were made for (:attr:`made_for`: the run's raw folder,
    output folder, split, base and ``--test-raws``, said there once) and the seed and ``--init-policy`` of
    the config they were made with (:meth:`refuse_other`)."""

    start: RunStart
    listing: RawListing
    made_for: InputSettings
    seed: int
    init_policy: str | None
    # the options typed (isp-tune's ``given=``), whose warning run_inputs said; None: a library run's, whose
    # one warning :func:`isp_env.run.run` says with the settings only it is given (:func:`say_run_ignores`)
    given: frozenset[str] | None = None
    teacher: TeacherSettings | None = None  # the ``--teacher-*`` settings they were made with (checked)

    def teacher_for(self, teacher: TeacherSettings | None) -> TeacherSettings | None:
        """The run's teacher settings: ``teacher`` (:func:`isp_env.run.run`'s), else the ones the inputs were
        made with — ``run_inputs(settings, cfg, teacher)`` then ``run(inputs, cfg)``, as docs/isp.md writes
        it, searched with the defaults (150 calls, 3 restarts, 60 raws) without a word. Two that differ are
        refused in one line."""
        if teacher is not None and self.teacher is not None and teacher != self.teacher:
            raise ConfigError(
                f"run(inputs, cfg, teacher={teacher}): the inputs were made with another {self.teacher} — "
                "pass the teacher settings once, to run_inputs(settings, cfg, teacher)"
            )
        return self.teacher if teacher is None else teacher

    def refuse_other(self, cfg: TrainConfig) -> None:
        """One line when ``cfg`` (the config :func:`isp_env.run.run` is given) has another seed or
        ``--init-policy`` than the one :func:`run_inputs` was: the split was drawn by the seed, the start
        checks read the policy."""
        made = {"--seed": self.seed, "--init-policy": self.init_policy}
        now = {"--seed": cfg.seed, "--init-policy": cfg.init_policy}
        if made != now:
            raise ConfigError(
                f"run(inputs, cfg): the inputs were made with another config "
                f"({differing_settings(made, now)}) — make them with isp_env.run_inputs.run_inputs(settings, "
                "cfg) of this cfg"
            )


def run_inputs(
    s: InputSettings,
    cfg: TrainConfig,
    teacher: TeacherSettings | None = None,
    *,
    given: Collection[str] | None = None,
    baselines: bool = True,
) -> RunInputs:
    """A run's checks before torch, as one, in the order of their cost: ``cfg``'s settings that do not fit
    together and its reward model's name (:func:`isp_env.train_config.check_config`,
    :func:`attiqa.scorers.zoo.refuse_unknown_scorer`), and for ``isp-tune`` a warning naming the options typed
    that the run ignores (:func:`say_ignored`), then :func:`check_start`, then :func:`list_raws` (the
    raws probed: minutes on a FiveK-sized folder) split by ``cfg.seed``, refused when it leaves fewer
    training raws than a new run on raws alone needs (:func:`training_need`; none for a resume, or with
    synthetic raws) — before its held-out share is said. ``teacher``: ``--algo teacher``'s settings, as
    :func:`isp_env.run.run` is given them. ``given``: the options typed (``isp-tune``; by name, e.g.
    ``teacher_budget``), said here as options before the raws are listed (a Ctrl-C then costs nothing);
    ``baselines``: the command's (``--no-baselines``: a ``--cma-image-budget`` typed is ignored). A library
    run (``given`` None) is warned by :func:`isp_env.run.run` instead, once, of every setting it ignores by
    the library's names (:func:`say_run_ignores`): said here too, its ``run(cma_image_budget=…)`` and the
    ``teacher`` handed to ``run`` came in a second line, or not at all."""
    if not isinstance(cfg, TrainConfig):  # e.g. run_inputs(settings, need) of the call before session 59
        raise ConfigError(
            f"run_inputs(settings, cfg): cfg is a {type(cfg).__name__}, not an "
            "isp_env.train_config.TrainConfig — pass the run's TrainConfig (it holds the seed, --init-policy "
            "and the reward model)"
        )
    check_config(cfg, teacher if cfg.algo == "teacher" else None)
    refuse_unknown_scorer(cfg.scorer)
    if given is not None:  # isp-tune's options (a library run's settings: run() says them, all in one line)
        say_ignored(ignored_settings(cfg, given, s.test_fraction, baselines, base=s.base))  # the run goes on
    start = check_start(s.out, s.base, s.test_raws_cap, cfg.init_policy, s.group_by)
    resume = (s.out / "run.json").is_file()
    need = training_need(cfg.algo, cfg.init_policy) if s.synth_photos is None and not resume else 0
    listing = list_raws(s.raw_dir, s.out, s.test_fraction, cfg.seed, s.synth_photos, s.group_by, need)
    typed = None if given is None else frozenset(given)
    return RunInputs(start, listing, s, cfg.seed, cfg.init_policy, typed, teacher)


def given_settings(s: InputSettings, cfg: TrainConfig, teacher: TeacherSettings | None) -> set[str]:
    """A library run's settings that are not at their defaults, by the name of the option that sets them
    (``teacher_budget``): what :func:`isp_env.train_config.ignored_settings` looks at when no options
    typed are given (``isp-tune`` passes those). ``delta_scale`` counts under ``--action-mode absolute``
    only (a delta step's size uses it too)."""
    default, taught = TrainConfig(), TeacherSettings()
    given = {n for n in AGENT_ONLY if getattr(cfg, n) != getattr(default, n)}
    for k in ("budget", "raws", "restarts", "start") if teacher is not None else ():
        if getattr(teacher, k) != getattr(taught, k):
            given.add(f"teacher_{k}")
    if cfg.delta_scale is not None and cfg.action_mode == "absolute":
        given.add("residual_scale")
    if s.test_raws_cap != TEST_RAWS:
        given.add("test_raws")
    return given


def say_ignored(why: list[str], *, as_options: bool = True) -> None:
    """One warning line, before any work, naming each setting a run ignores and why
    (:func:`isp_env.train_config.ignored_settings`); nothing when none. ``as_options``: ``isp-tune``'s
    options, said before the raws are listed (Ctrl-C then costs nothing), else a library run's settings —
    no "Ctrl-C" to a caller at no prompt."""
    if why:
        what, stop = ("options", " (Ctrl-C now)") if as_options else ("settings", "")
        console.print(
            f"[yellow]warning[/] {what} this run ignores — {plain('; '.join(why))}: drop them, or change "
            f"the run{stop}",
            highlight=False,
        )


def say_run_ignores(
    inputs: RunInputs,
    cfg: TrainConfig,
    teacher: TeacherSettings | None,
    baselines: bool,
    budgets: dict[str, int],
) -> None:
    """:func:`isp_env.run.run`'s warning of the settings a run ignores, by the library's names: for a library
    run (``inputs.given`` None) every one in one line — its ``cfg`` and ``teacher`` as ``run`` is given them
    (:func:`given_settings`), its ``InputSettings`` and ``run``'s CMA-ES ``budgets`` (``cma_image_budget``,
    ``cma_global_budget``) not at their defaults; for ``isp-tune``'s inputs (:func:`run_inputs` said the
    options typed) only a budget handed to ``run`` but not typed."""
    default = {"cma_image_budget": CMA_IMAGE_BUDGET, "cma_global_budget": CMA_GLOBAL_BUDGET}
    changed = {name for name, calls in budgets.items() if calls != default[name]}
    given = (
        given_settings(inputs.made_for, cfg, teacher) | changed
        if inputs.given is None
        else changed - inputs.given
    )
    s = inputs.made_for
    why = ignored_settings(cfg, given, s.test_fraction, baselines, base=s.base, as_options=False)
    say_ignored(why, as_options=False)


@dataclass(frozen=True)
class CheckInputs:
    """What ``isp-tune check`` checks before torch (:func:`check_inputs`), handed to
    :func:`isp_env.run.check_policy` as its one way in: the raw folder, the report folder, the ``--policy``
    as given (``spec``) and its file, ``--group-by``, the report folder's kept files, the readable raws (the
    others: path -> why) and their groups (cameras by ``--group-by camera``, else scene groups). Held once:
    check_policy took the folders, policy and grouping again beside them and had to refuse a mismatch."""

    raw_dir: Path
    out: Path
    spec: str
    group_by: str
    policy: Path
    files: RunFiles
    raws: list[Path]
    skipped: dict[str, str]
    groups: dict[Path, str]


def check_inputs(raw_dir: Path, out: Path, spec: str, group_by: str = GROUP_BY_DEFAULT) -> CheckInputs:
    """``isp-tune check``'s checks before the reward model and torch load, each said in the run's one line:
    ``--group-by``, a report folder of another command, the ``--policy`` file, a folder of no raw, and by
    camera a raw no camera names (:func:`raw_cameras`, as the run reads it). The raws are probed
    (:func:`readable_raws`) and grouped here."""
    check_group_by(group_by)
    refuse_other_report(out, "check")
    policy = resolve_policy(spec)
    files = RunFiles.checked(out)
    found = find_raws(raw_dir)
    say_photos_left_out(raw_dir, out, "check the policy on the photos' raws")
    if not found:  # it was "no raw LibRaw can read" for a folder LibRaw was never given a file of
        raise ConfigError(
            f"{raw_dir}: found no raw file — give a folder of camera raws or DNGs (extensions searched: "
            + ", ".join(sorted(RAW_EXTENSIONS))
            + ")"
        )
    raws, skipped = readable_raws(found)  # (evaluate skips, and lists, a raw damaged after its header)
    # by camera, each raw's camera as isp-tune --group-by camera reads it: a raw with none refused here, in
    # the run's one line, not first by the run the check was made for
    groups = raw_cameras(raws, raw_dir) if group_by == "camera" else scene_groups(raws, raw_dir)
    return CheckInputs(raw_dir, out, spec, group_by, policy, files, raws, skipped, groups)


REPORT_FILES = ("results.csv", "summary.json", "report.md", "grid.png")  # what a run and a check write


def refuse_other_report(out: Path, kind: str) -> None:
    """Refuse, before any work, an ``out`` whose report a ``kind`` (``run``: ``isp-tune``; ``check``:
    ``isp-tune check``) would replace but is not its own: a run's folder (run.json) for a check, a check's
    (summary.json's ``checked_policy``) for a run, or another command's ``REPORT_FILES`` for either (an
    ``attiqa eval`` folder's summary.json). ``isp-tune --out`` of a check's folder overwrote its report."""
    marker = next((n for n in RUN_MARKERS if (out / n).exists()), None)
    is_run = marker is not None  # a run folder, even after its run.json was deleted to redo its step
    if kind == "run" and is_run:  # a run to resume, or finished: its own
        return
    present = [n for n in REPORT_FILES if (out / n).is_file()]
    if not is_run and not present:
        return
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    checked = isinstance(summary, dict) and "checked_policy" in summary
    if kind == "check" and checked and not is_run:  # an earlier check: rerun over it
        return
    if is_run:
        what, whose = f"an isp-tune run folder ({marker})", "the run's"
    elif checked:
        what, whose = "an isp-tune check's report folder (summary.json)", "the check's"
    else:
        what, whose = f"a folder holding another command's {', '.join(present)}", "those"
    raise ConfigError(
        f"{out}: {what} — the {kind}'s report would replace {whose}; pass another --out, e.g. "
        f"{shlex.quote(str(out / kind))}"
    )


FINISHED_JSON = "finished.json"  # a finished run's invocation and its files' stamps (finished_run)
# What only a run writes (a check writes evaluate's report alone): a run folder is known by any of them — a
# damaged run.json's line says to delete it, and the rerun must find its own folder (refuse_other_report)
RUN_MARKERS = ("run.json", "training.json", "policy.safetensors", FINISHED_JSON, "teacher", "baselines",
               "checkpoint")  # fmt: skip
