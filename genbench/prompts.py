"""Prompts for the generated-pairs study (ATTIQA supplement §D.1).

The paper's template is "masterpiece, best quality, photorealistic photography, crystal clear, 8K UHD,
{action} {object} {place}" with the Table 13 candidates (9 actions x 5 objects x 6 places = 270 prompts);
both ship verbatim as data files (``genbench/data/template.txt``, ``genbench/data/candidates_table13.json``).
Users may pass their own template (any ``{slot}`` names) and a JSON file mapping each slot to a list.

How N prompts are drawn is ours (the paper does not say): every combination of the candidates, in a
random order fixed by ``seed``; the first N are used. The order does not depend on N, so a run extended
from 200 to 250 pairs keeps its first 200 prompts.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attiqa.errors import ConfigError
from genbench.files import read_json

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_TEMPLATE = DATA / "template.txt"
DEFAULT_CANDIDATES = DATA / "candidates_table13.json"


@dataclass(frozen=True)
class PromptSpec:
    template: str
    candidates: dict[str, list[str]]  # slot -> candidates, in the template's slot order

    @property
    def n_combinations(self) -> int:
        return int(np.prod([len(v) for v in self.candidates.values()])) if self.candidates else 1


@dataclass(frozen=True)
class Prompt:
    text: str
    slots: dict[str, str]


def template_slots(template: str, where: str | Path = "the template") -> list[str]:
    """Slot names of a ``str.format`` template, in order of first appearance; a malformed template is a
    :class:`ConfigError` naming ``where`` (its file)."""
    names: list[str] = []
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:  # "Single '}' encountered", "expected '}' before end of string"
        raise ConfigError(
            f"{where}: not a template ({exc}) — slots are written {{action}}, a literal brace {{{{ or }}}}"
        ) from None
    for _, field, spec, conv in fields:
        if field is None:
            continue
        if not field.isidentifier() or spec or conv:
            raise ConfigError(
                f"{where}: template slot {{{field}}} is not a plain name — use slots like {{action}}"
            )
        if field not in names:
            names.append(field)
    return names


def load_prompt_spec(template_file: Path | None = None, candidates_file: Path | None = None) -> PromptSpec:
    """Read a template (text file, one line) and candidates (JSON: slot -> list of strings)."""
    tpath = template_file or DEFAULT_TEMPLATE
    cpath = candidates_file or DEFAULT_CANDIDATES
    try:
        template = Path(tpath).read_text(encoding="utf-8-sig").strip()
    except OSError as exc:
        raise ConfigError(f"{tpath}: cannot read the template ({exc.strerror}) — pass a text file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{tpath}: the template is not UTF-8 text — save it as UTF-8") from None
    raw = read_json(cpath, "candidates")
    if not template:
        raise ConfigError(f"{tpath}: the template is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{cpath}: expected a JSON object mapping each template slot to a list of strings")
    slots = template_slots(template, tpath)
    missing = [s for s in slots if s not in raw]
    if missing:
        raise ConfigError(f"{cpath}: no candidates for template slot(s) {', '.join(missing)} — add them")
    candidates: dict[str, list[str]] = {}
    for s in slots:
        values = raw[s]
        if not (isinstance(values, list) and values and all(isinstance(v, str) for v in values)):
            raise ConfigError(f"{cpath}: {s!r} must be a non-empty list of strings")
        if len(set(values)) != len(values):
            raise ConfigError(f"{cpath}: {s!r} lists a candidate twice — remove the duplicate")
        candidates[s] = list(values)
    return PromptSpec(template=template, candidates=candidates)


def all_prompts(spec: PromptSpec) -> list[Prompt]:
    """Every combination of the candidates, in the product order of the template's slots."""
    names = list(spec.candidates)
    out = []
    for combo in itertools.product(*(spec.candidates[n] for n in names)):
        slots = dict(zip(names, combo, strict=True))
        out.append(Prompt(text=spec.template.format(**slots), slots=slots))
    return out


def draw_prompts(spec: PromptSpec, n: int, seed: int = 0) -> list[Prompt]:
    """``n`` distinct prompts: the first ``n`` of a seeded permutation of every combination."""
    prompts = all_prompts(spec)
    if n < 1:
        raise ConfigError("--pairs must be at least 1")
    if n > len(prompts):
        raise ConfigError(
            f"--pairs {n} asks for more distinct prompts than the candidates make ({len(prompts)}) — "
            "lower --pairs or add candidates"
        )
    order = np.random.default_rng(seed).permutation(len(prompts))
    return [prompts[i] for i in order[:n]]
