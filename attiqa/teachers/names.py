"""The CLIP teacher's default and how `attiqa label` takes a CLIP spec: plain names, apart from
:mod:`attiqa.teachers.clip` (torch) so the teacher registry and the prompts file are read without torch."""

DEFAULT_CLIP_SPEC = "ViT-B-16/openai"
"""The paper's CLIP (§4.2: ViT-B/16), OpenAI weights."""
TEACHER_FLAG = "--teacher clip:"  # how `attiqa label` takes a CLIP spec, in the hints of its errors
