"""Pseudo-label teachers (paper §3.2) and their registry.

Teacher specs (the ``--teacher`` option / ``label.teacher`` config field):

- ``classical`` — weight-free classical measures (ours; :class:`ClassicalTeacher`);
- ``clip`` — the paper's CLIP, ``clip:ViT-B-16/openai`` (§4.2);
- ``clip:MODEL/PRETRAINED`` or ``clip:PATH`` — any open_clip model, see :mod:`attiqa.teachers.clip`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from attiqa.errors import ConfigError, did_you_mean
from attiqa.teachers.base import Teacher
from attiqa.teachers.classical import ClassicalTeacher
from attiqa.teachers.clip import DEFAULT_CLIP_SPEC, ClipTeacher, parse_clip_spec
from attiqa.teachers.prompts import PromptFileError, PromptPair, PromptSet, load_prompts

_TEACHERS: dict[str, str] = {
    "classical": "weight-free classical measures per attribute (ours)",
    "clip": f"CLIP zero-shot antonym prompts, paper §3.2 (clip = clip:{DEFAULT_CLIP_SPEC})",
}


class UnknownTeacherError(ConfigError):
    """A teacher spec names no known teacher."""


def list_teachers() -> list[str]:
    """Names of the available teacher kinds (the part of a spec before ``:``)."""
    return list(_TEACHERS)


def create_teacher(
    spec: str,
    device: str | torch.device = "cpu",
    prompts: str | Path | None = None,
    clip_scale: float = 1.0,
) -> Teacher:
    """Build a teacher from a spec string (see the module docstring).

    ``prompts`` (a prompts JSON file; None = paper Table 1) and ``clip_scale`` (the factor k of
    ``softmax(k * cos)`` in eq. 2; 1.0 = the paper as printed) only apply to CLIP teachers.
    """
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "classical":
        if sep and arg.strip():
            raise UnknownTeacherError(f"teacher 'classical' takes no argument, got {spec!r}")
        return ClassicalTeacher(device=device)
    if kind == "clip":
        return ClipTeacher(arg.strip() or DEFAULT_CLIP_SPEC, device=device, prompts=prompts, scale=clip_scale)
    hint = did_you_mean(kind, _TEACHERS, n=2, cutoff=0.5)
    raise UnknownTeacherError(
        f"unknown teacher {spec!r}{hint}; use one of: classical, clip, clip:MODEL/PRETRAINED, clip:PATH"
    )


def clip_spec(spec: str) -> str:
    """The open_clip spec of a CLIP teacher spec, for a command that needs CLIP itself (prompt selection):
    ``clip`` -> the paper's, ``clip:X`` -> X, a bare MODEL/TAG or path as it is. ``classical`` (no prompts)
    and a misspelt name are one line, not open_clip's "unknown open_clip model 'clip'"."""
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    if kind.strip().lower() == "clip":
        return arg.strip() or DEFAULT_CLIP_SPEC
    need = "prompt selection chooses a CLIP teacher's prompts: pass clip, clip:MODEL/PRETRAINED or clip:PATH"
    if kind.strip().lower() == "classical":
        raise UnknownTeacherError(f"teacher 'classical' uses no prompts — {need}")
    if not sep and "/" not in text and not Path(text).exists():
        hint = did_you_mean(kind.strip().lower(), ["clip"], n=1, cutoff=0.5)
        raise UnknownTeacherError(f"unknown teacher {spec!r}{hint}; {need}")
    return text


__all__ = [
    "ClassicalTeacher",
    "ClipTeacher",
    "clip_spec",
    "DEFAULT_CLIP_SPEC",
    "PromptFileError",
    "PromptPair",
    "PromptSet",
    "Teacher",
    "UnknownTeacherError",
    "create_teacher",
    "list_teachers",
    "load_prompts",
    "parse_clip_spec",
]
