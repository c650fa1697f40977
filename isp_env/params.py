"""The 16 tuned parameters of the ISP (ATTIQA supplement §D.3): names, ranges, neutral defaults.

The paper lists only the modules and how many parameters each has: "Tone-mapping (3), UV channel Denoising
(3), Y channel Denoising (2), Brightness/Contrast control (2), Hue/Saturation control (2), Sharpening (3), and
Texture enhancing (1)". Which parameters and their ranges are ours. They follow the knobs of open ISPs
(openISP / fast-openISP: gamma, brightness offset and contrast gain, hue offset and saturation gain, edge
enhancement gain with a flat/edge threshold, bilateral/NLM strength; Infinite-ISP: the same set plus a
global tone curve) and were chosen so that each end of a range is a clearly visible but not absurd change.
The default of each parameter is the identity / standard setting ("neutral"): with all defaults the pipeline
is a plain camera rendering (auto-exposure, sRGB-like gamma 1/2.2, no enhancement).

Spatial parameters (``*_sigma``) are in pixels of a 512-pixel-long image and are scaled with the render size
(ours), so a policy tuned on previews gives the same look at full resolution.

Normalised values: the agent works in [-1, 1] per parameter, mapped linearly to [low, high].
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np

from attiqa.errors import ConfigError
from attiqa.io.atomic import write_json_atomic
from attiqa.io.hashes import sha256_of
from attiqa.progress import plain_name


@dataclass(frozen=True)
class Param:
    name: str
    module: str
    low: float
    high: float
    default: float
    doc: str


PARAMS: tuple[Param, ...] = (
    # Tone mapping (3)
    Param("tone_exposure", "tone_mapping", -1.5, 1.5, 0.0, "exposure in EV on top of the auto-exposure gain"),
    Param("tone_gamma", "tone_mapping", 0.30, 0.70, 1 / 2.2, "power-law exponent on linear RGB"),
    Param(
        "tone_curve",
        "tone_mapping",
        -1.0,
        1.0,
        0.0,
        "global S-curve strength: y = x - c sin(2 pi x) / (2 pi); > 0 more mid-tone contrast",
    ),
    # UV (chroma) denoising (3)
    Param("uv_nr_sigma", "uv_denoise", 0.5, 6.0, 2.0, "Gaussian sigma of the chroma low-pass (px @ 512)"),
    Param("uv_nr_threshold", "uv_denoise", 0.0, 0.1, 0.02, "chroma detail below this is treated as noise"),
    Param("uv_nr_strength", "uv_denoise", 0.0, 1.0, 0.0, "blend of the denoised chroma (0 = off)"),
    # Y (luma) denoising (2)
    Param("y_nr_sigma", "y_denoise", 0.5, 3.0, 1.0, "Gaussian sigma of the luma low-pass (px @ 512)"),
    Param(
        "y_nr_threshold", "y_denoise", 0.0, 0.08, 0.0, "soft-threshold (coring) of the luma detail; 0 = off"
    ),
    # Brightness / contrast (2)
    Param("brightness", "brightness_contrast", -0.25, 0.25, 0.0, "offset added to Y"),
    Param("contrast", "brightness_contrast", 0.5, 1.5, 1.0, "gain of Y around mid-grey 0.5"),
    # Hue / saturation (2)
    Param("hue", "hue_saturation", -30.0, 30.0, 0.0, "rotation of the UV plane in degrees"),
    Param("saturation", "hue_saturation", 0.0, 2.0, 1.0, "gain of U and V"),
    # Sharpening (3)
    Param("sharpen_amount", "sharpening", 0.0, 3.0, 0.0, "unsharp-mask gain on Y (0 = off)"),
    Param("sharpen_sigma", "sharpening", 0.5, 3.0, 1.0, "unsharp-mask Gaussian sigma (px @ 512)"),
    Param("sharpen_threshold", "sharpening", 0.0, 0.05, 0.01, "detail below this is not sharpened (coring)"),
    # Texture enhancement (1)
    Param(
        "texture_gain",
        "texture",
        -1.0,
        2.0,
        0.0,
        "gain of the mid-frequency band of Y (difference of Gaussians, sigma 2 and 6 px @ 512)",
    ),
)
NAMES: tuple[str, ...] = tuple(p.name for p in PARAMS)
N_PARAMS = len(PARAMS)
LOW = np.array([p.low for p in PARAMS])
HIGH = np.array([p.high for p in PARAMS])
DEFAULT = np.array([p.default for p in PARAMS])


def neutral() -> dict[str, float]:
    """The neutral defaults as ``name -> value``."""
    return {p.name: float(p.default) for p in PARAMS}


def from_normalized(norm: np.ndarray) -> dict[str, float]:
    """[-1, 1]^16 -> parameter values (non-finite entries become the neutral default, the rest is clipped)."""
    norm = np.asarray(norm, dtype=np.float64).reshape(N_PARAMS)
    values = LOW + (np.clip(norm, -1.0, 1.0) + 1.0) * 0.5 * (HIGH - LOW)
    values = np.where(np.isfinite(norm), values, DEFAULT)
    # float32 round trips (observations) must not switch a module on: snap to the neutral value
    values = np.where(np.abs(values - DEFAULT) < 1e-6 * (HIGH - LOW), DEFAULT, values)
    return {n: float(v) for n, v in zip(NAMES, values, strict=True)}


def to_normalized(values: dict[str, float]) -> np.ndarray:
    """Parameter values (missing names take the default) -> [-1, 1]^16."""
    unknown = set(values) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown ISP parameter(s) {sorted(unknown)}; known: {', '.join(NAMES)}")
    v = np.array([float(values.get(p.name, p.default)) for p in PARAMS])
    v = np.where(np.isfinite(v), v, DEFAULT)
    return np.clip(2.0 * (v - LOW) / (HIGH - LOW) - 1.0, -1.0, 1.0)


def check_values(values: dict[str, float]) -> dict[str, float]:
    """Complete a partial parameter dict with defaults and clip every value to its range."""
    return from_normalized(to_normalized(values))


def written_values(values: dict[str, float]) -> dict[str, float]:
    """A setting a run wrote (a held-out raw's cached parameters), read back as written when it is complete
    and in range, else :func:`check_values`'s: its round trip through the normalised range moves a value by
    a float ulp now and then (0.011889022771758705 -> …706), so a resumed run's setting differed from the
    one it had cached — the checked setting, keyed on it, was scored again, its files in the last digits."""
    if set(values) == set(NAMES) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and p.low <= v <= p.high
        for p, v in ((p, values[p.name]) for p in PARAMS)
    ):
        return {p.name: float(values[p.name]) for p in PARAMS}
    return check_values(values)


def given_values(doc: Any) -> dict[str, float]:
    """A setting a user wrote (``--params``, ``--base``: a JSON document of name -> value, or with them under
    ``params`` as isp-tune writes them): like :func:`check_values`, but a value that is not a finite number in
    its parameter's range is a ``ValueError`` naming it — not silently clipped."""
    values = doc.get("params", doc) if isinstance(doc, dict) else doc
    if not isinstance(values, dict):
        raise ValueError(f"expected an object of name -> value, got {type(values).__name__}")
    bad = []
    for p in PARAMS:
        if p.name in values:
            v = values[p.name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not p.low <= v <= p.high:
                bad.append(f"{p.name}={v!r} (range {p.low:g}..{p.high:g})")
    if bad and not set(values) - set(NAMES):  # (unknown names: to_normalized says which)
        raise ValueError(f"out of range or not a number: {', '.join(bad)}")
    return check_values(values)


class DamagedRunFile(ConfigError):
    """A kept JSON file of a run that is not what the run wrote; ``what``: in a few words, what it is
    instead (``not JSON``, ``a JSON array, not the object the run wrote``), for a line naming several."""

    def __init__(self, path: Path, what: str, detail: str = "") -> None:
        said = f"{what}: {detail}" if detail else what
        super().__init__(f"{path}: damaged ({said}) — delete it to redo its step, or use a new --out")
        self.what = what


def read_run_json(path: Path, objects: Sequence[str] = ()) -> Any:
    """A JSON file a run wrote (run.json, training.json, a search cache), ``{}`` when it is missing; one
    written whole but damaged since (an edit, a bad disk) is one line naming it, not a traceback
    (:class:`DamagedRunFile`). Each is a JSON object, and so are its values under the keys ``objects``
    (``"*"``: every value): valid JSON of another kind (``[]``, ``{"config": []}``) was an AttributeError
    at a ``.get``, on resume and in ``isp-tune check``."""
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        why = f"{exc.msg}, line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise DamagedRunFile(path, "not JSON", why) from None
    inner = (
        [(k, v) for k, v in doc.items() if "*" in objects or k in objects] if isinstance(doc, dict) else []
    )
    where, bad = next(((f"{k!r} holds", v) for k, v in inner if not isinstance(v, dict)), ("", doc))
    if not isinstance(bad, dict):
        kind = JSON_KINDS.get(type(bad), type(bad).__name__)
        raise DamagedRunFile(path, f"{where or 'it is'} a JSON {kind}, not the object the run wrote")
    return doc


# Every JSON file a resume reads back, under a run (or a check) folder, as a glob pattern -> what it holds as
# JSON objects (read_run_json's ``objects``; a file takes the first pattern it matches): the split and
# settings, the training record, the searches, each raw's parameters, the teacher's searches (each raw's
# entry an object) and scores, an agent's resume state (``checkpoint`` or, a kill in its swap, ``.tmp`` /
# ``.old``). The preview cache and the renders' records are read leniently: a damaged one is made again.
KEPT_JSON: dict[str, tuple[str, ...]] = {
    "run.json": ("config",),
    "training.json": ("config",),
    "baselines/*.json": (),
    "test/*/params/*.json": (),
    "teacher/targets_*.json": ("*",),
    "teacher/*.json": (),
    "checkpoint*/state.json": ("config",),
}


class RunFiles:
    """The kept JSON files of a run folder (:data:`KEPT_JSON`), each read and parsed once: what the check
    before any work (:meth:`checked`) parsed is what the steps use — they parsed every file a second time,
    and a file edited between the check and its step was read as two things — and a step's own write is
    what a later step reads. A file missing when first asked for is read when next asked (a step may write
    it meanwhile)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs: dict[Path, Any] = {}

    @classmethod
    def checked(cls, root: Path) -> RunFiles:
        """Every kept file of ``root`` read now, before any work: a damaged one (an edit, a bad disk; a kill
        cannot, each is written whole and renamed) stopped a run only when its step came, after the work
        before it, and named only the first. One line naming each with what is wrong (one file:
        read_run_json's line)."""
        files = cls(root)
        damaged: dict[Path, DamagedRunFile] = {}
        for pattern in KEPT_JSON:
            for p in sorted(root.glob(pattern)):
                if p not in files.docs and p not in damaged:
                    try:
                        files.docs[p] = read_run_json(p, files.objects(p))
                    except DamagedRunFile as exc:
                        damaged[p] = exc
        if len(damaged) == 1:
            raise next(iter(damaged.values()))
        if damaged:
            shown = [
                f"{plain_name(p.relative_to(root))} ({exc.what})" for p, exc in list(damaged.items())[:3]
            ]
            raise ConfigError(
                f"{root}: {len(damaged)} files of the run damaged: {', '.join(shown)}"
                + (", …" if len(damaged) > 3 else "")
                + " — delete them to redo their steps (the rest of the run is kept), or use a new --out"
            )
        return files

    def objects(self, path: Path) -> tuple[str, ...]:
        """What ``path`` holds as JSON objects: its :data:`KEPT_JSON` row's."""
        rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else path.name
        return next((objects for pattern, objects in KEPT_JSON.items() if fnmatchcase(rel, pattern)), ())

    def read(self, path: Path) -> Any:
        """``path``'s document as checked, written or first read (``{}`` when missing)."""
        if path not in self.docs:
            if not path.exists():
                return {}
            self.docs[path] = read_run_json(path, self.objects(path))
        return self.docs[path]

    def write(self, path: Path, doc: Any) -> None:
        """``doc`` written atomically to ``path``, and what a later :meth:`read` of it returns."""
        write_json_atomic(path, doc)
        self.docs[path] = doc


JSON_KINDS = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "true/false",
    type(None): "null",
}


def raw_record(path: Path, root: Path) -> dict[str, str]:
    """What a parameter file records of its raw: ``raw``, its absolute path (``..`` folded, links kept), and
    ``raw_in_dir``, its path under the raw folder ``root``. The path as the run was given it was relative to
    the run's working folder: ``isp-tune render --params`` from another folder matched it by file name only
    (two raws of one name in a run: neither)."""
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return {"raw": os.path.abspath(path), "raw_in_dir": rel.as_posix()}


def recorded_tail(record: dict[str, Any]) -> tuple[str, ...]:
    """How a path to a parameter file's raw must end (:func:`raw_record`): its path under the raw folder, or
    (a file of an earlier version) the path the run was given, less its leading ``..``; () when none."""
    given = record.get("raw_in_dir", record.get("raw"))
    if not isinstance(given, str) or not given:
        return ()
    parts = Path(given).parts
    while parts and parts[0] == "..":
        parts = parts[1:]
    return parts


def read_values(path: str | Path, problem: str, fix: str) -> dict[str, float]:
    """:func:`given_values` of the JSON file ``path``; an unreadable or unusable file is one line,
    ``PATH: PROBLEM (why) — FIX`` (``--params``, ``--base``)."""
    try:
        return given_values(json.loads(Path(path).read_text()))
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: {problem} ({exc}) — {fix}") from None


def file_stamp(path: Path, *, hashed: bool) -> list[int | str] | None:
    """A file's stamp, or None when it cannot be read: its size, then with ``hashed`` the SHA-256 of all its
    bytes, else its modification time (ns).

    ``hashed`` (a render's sidecar, checked on a resume): what changes when a file is cut short, replaced,
    rewritten with other pixels or damaged anywhere. The hash of its first and last 64 KiB
    (:func:`isp_env.run_inputs.ends`) missed damage in the middle of a PNG of the same size, and the damaged
    render was kept; the whole file costs a small fraction of a decode (docs/isp.md, "Checking renders on a
    resume"). Not its mtime: a resumed run's records equal an uninterrupted run's, file for file.

    Not ``hashed`` (the raws of a run's invocation, a finished run's files): unchanged since the run
    finished, without reading a finished run's full-resolution renders again."""
    try:
        st = path.stat()
        return [st.st_size, sha256_of(path) if hashed else st.st_mtime_ns]
    except OSError:
        return None
