"""Pseudo-label teachers (paper §3.2) and their registry.

Teacher specs (the ``--teacher`` option / ``label.teacher`` config field):

- ``classical`` — weight-free classical measures (ours; :class:`ClassicalTeacher`);
- ``clip`` — the paper's CLIP, ``clip:ViT-B-16/openai`` (§4.2);
- ``clip:MODEL/PRETRAINED`` or ``clip:PATH`` — any open_clip model, see :mod:`attiqa.teachers.clip`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from attiqa.errors import ConfigError, did_you_mean
from attiqa.lazy import lazy_names
from attiqa.teachers.names import DEFAULT_CLIP_SPEC, TEACHER_FLAG
from attiqa.teachers.prompts import PromptFileError, PromptPair, PromptSet, load_prompts

if TYPE_CHECKING:
    import torch

    from attiqa.teachers.base import Teacher
    from attiqa.teachers.classical import ClassicalTeacher
    from attiqa.teachers.clip import ClipTeacher, parse_clip_spec

# re-exported names whose modules import torch, imported on first use (a prompts file is read without it)
__getattr__ = lazy_names(
    __name__,
    {
        "Teacher": "attiqa.teachers.base",
        "ClassicalTeacher": "attiqa.teachers.classical",
        "ClipTeacher": "attiqa.teachers.clip",
        "parse_clip_spec": "attiqa.teachers.clip",
    },
)

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
    prompts: str | Path | PromptSet | None = None,
    clip_scale: float = 1.0,
    hint_flag: str = TEACHER_FLAG,
) -> Teacher:
    """Build a teacher from a spec string (see the module docstring).

    ``prompts`` (a prompts JSON file or its :class:`PromptSet`, read already; None = paper Table 1),
    ``clip_scale`` (the factor k of ``softmax(k * cos)`` in eq. 2; 1.0 = the paper as printed) and
    ``hint_flag`` (how the command takes a CLIP spec, for its errors' hints: ``attiqa label``'s
    :data:`TEACHER_FLAG` by default) only apply to CLIP teachers.
    """
    from attiqa.teachers.classical import ClassicalTeacher
    from attiqa.teachers.clip import ClipTeacher

    kind, arg = parse_teacher_spec(spec)
    if kind == "classical":
        return ClassicalTeacher(device=device)
    return ClipTeacher(arg, device=device, prompts=prompts, scale=clip_scale, hint_flag=hint_flag)


TEACHER_SPECS = "classical, clip, clip:MODEL/PRETRAINED, clip:PATH"


def parse_teacher_spec(spec: str, fix: str = f"use one of: {TEACHER_SPECS}") -> tuple[str, str]:
    """``(kind, arg)`` of a teacher spec: the kind before ``:`` lower-cased, ``clip`` alone the paper's
    CLIP (``arg`` = :data:`DEFAULT_CLIP_SPEC`), ``classical`` without an argument. The one reading of a
    spec (``label``, ``select-prompts``, the config check); a misspelt kind is one line ending in ``fix``."""
    kind, sep, arg = spec.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind == "clip":
        return kind, arg or DEFAULT_CLIP_SPEC
    if kind == "classical":
        if sep and arg:
            raise UnknownTeacherError(f"teacher 'classical' takes no argument, got {spec!r}")
        return kind, ""
    hint = did_you_mean(kind, _TEACHERS, n=2, cutoff=0.5)
    raise UnknownTeacherError(f"unknown teacher {spec!r}{hint}; {fix}")


def clip_spec(spec: str) -> str:
    """The open_clip spec of a CLIP teacher spec, for a command that needs CLIP itself (prompt selection):
    ``clip`` -> the paper's, ``clip:X`` -> X, a bare MODEL/TAG or path as it is. ``classical`` (no prompts)
    and a misspelt name are one line, not open_clip's "unknown open_clip model 'clip'"."""
    text = spec.strip()
    kind = text.partition(":")[0].strip().lower()
    if kind not in _TEACHERS and ("/" in text or Path(text).exists()):  # MODEL/TAG or a path: open_clip's
        return text
    need = "prompt selection chooses a CLIP teacher's prompts: pass clip, clip:MODEL/PRETRAINED or clip:PATH"
    kind, arg = parse_teacher_spec(text, need)
    if kind == "classical":
        raise UnknownTeacherError(f"teacher 'classical' uses no prompts — {need}")
    return arg


__all__ = [
    "ClassicalTeacher",
    "ClipTeacher",
    "clip_spec",
    "DEFAULT_CLIP_SPEC",
    "PromptFileError",
    "PromptPair",
    "PromptSet",
    "TEACHER_FLAG",
    "Teacher",
    "UnknownTeacherError",
    "create_teacher",
    "list_teachers",
    "parse_teacher_spec",
    "load_prompts",
    "parse_clip_spec",
]
