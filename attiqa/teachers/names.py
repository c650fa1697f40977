"""The CLIP teacher's default and how `attiqa label` takes a CLIP spec: plain names, apart from
:mod:`attiqa.teachers.clip` (torch) so the teacher registry and the prompts file are read without torch."""

from __future__ import annotations

from pathlib import Path

from attiqa.errors import ModelLoadError

DEFAULT_CLIP_SPEC = "ViT-B-16/openai"
"""The paper's CLIP (§4.2: ViT-B/16), OpenAI weights."""
TEACHER_FLAG = "--teacher clip:"  # how `attiqa label` takes a CLIP spec, in the hints of its errors
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")  # a CLIP spec with one of these names a file


def no_such_clip_path(spec: str) -> ModelLoadError:
    """The one line for a CLIP spec written as a path that is not there."""
    return ModelLoadError(f"{spec}: no such file or folder — check the path")


def clip_path(spec: str) -> Path:
    """``spec`` as a path, ``~`` / ``~user`` expanded; a ``~user`` that names no user is no such path, in
    :func:`no_such_clip_path`'s line (was ``Path.expanduser``'s RuntimeError, a traceback — no model name
    starts with ``~``)."""
    try:
        return Path(spec).expanduser()
    except RuntimeError:
        raise no_such_clip_path(spec) from None


def check_clip_path(spec: str) -> None:
    """A CLIP spec that can only be a path (``./x``, ``/x``, ``~/x``, a bare ``x.safetensors``) and is not
    there: :func:`no_such_clip_path`'s line, torch-free — `attiqa label` says it before its lock probe and
    before torch loads. Anything else (MODEL/TAG, MODEL/weights.pt) is left to
    :func:`attiqa.teachers.clip.parse_clip_spec`, which knows open_clip's models."""
    spec = spec.strip()
    as_path = clip_path(spec)
    only_a_path = spec.startswith((".", "/", "~")) or ("/" not in spec and as_path.suffix in WEIGHT_SUFFIXES)
    if only_a_path and not (as_path.exists() or as_path.is_symlink()):
        raise no_such_clip_path(spec)
