"""Prompt candidates (ATTIQA supplement Table 14) and the proxy distortions per attribute (supplement §A),
both loaded from data files.

Candidate file format (``attiqa/data/prompts/attiqa_table14_candidates.json`` is the packaged one)::

    {"format": "attiqa-prompt-candidates", "version": 1,
     "template": "{} image",                       # optional; the paper's "[adjective] image" (§3.3)
     "attributes": {"sharpness": {"positive": ["crisp", ...], "negative": ["blurry", ...]}, ...}}

A user file may list any subset of the five attributes. Repeated adjectives are dropped (first kept).
Prompts are ``template.format(adjective)`` with the first letter capitalised, as Table 1 writes them
("Splendid image").
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from attiqa.attributes import ATTRIBUTES
from attiqa.distortions import get_distortion
from attiqa.errors import ConfigError
from attiqa.teachers.prompts import read_json_doc, same_prompt

CANDIDATES_FORMAT = "attiqa-prompt-candidates"
PROXY_FORMAT = "attiqa-proxy-distortions"
DEFAULT_TEMPLATE = "{} image"


def _data_path(*parts: str) -> Path:
    return Path(str(resources.files("attiqa").joinpath("data", *parts)))


def default_candidates_path() -> Path:
    """Supplement Table 14, verbatim."""
    return _data_path("prompts", "attiqa_table14_candidates.json")


def default_proxy_path() -> Path:
    """Supplement §A's attribute -> distortions pairing."""
    return _data_path("proxy_distortions.json")


def make_prompt(adjective: str, template: str = DEFAULT_TEMPLATE) -> str:
    """``"[adjective] image"`` with the first letter capitalised (Table 1's spelling)."""
    text = template.format(adjective.strip())
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class AttributeCandidates:
    """Positive and negative adjectives of one attribute (deduplicated, in file order)."""

    attribute: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    template: str = DEFAULT_TEMPLATE

    @property
    def n_pairs(self) -> int:
        return len(self.positive) * len(self.negative)

    def prompts(self, polarity: str) -> list[str]:
        words = self.positive if polarity == "positive" else self.negative
        return [make_prompt(w, self.template) for w in words]


def _read_json(path: Path, what: str, like: Path) -> dict[str, Any]:
    doc = read_json_doc(path, what, f"{what}.json", like)
    if not isinstance(doc, dict) or not isinstance(doc.get("attributes"), dict):
        raise ConfigError(f"{path}: expected a JSON object with an 'attributes' object ({what})")
    unknown = [a for a in doc["attributes"] if a not in ATTRIBUTES]
    if unknown:
        raise ConfigError(
            f"{path}: unknown attribute(s) {', '.join(unknown)}; expected: {', '.join(ATTRIBUTES)}"
        )
    return doc


def _dedupe(words: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for w in words:
        seen.setdefault(w.strip(), None)
    return tuple(seen)


def load_candidates(path: str | Path | None = None) -> dict[str, AttributeCandidates]:
    """Candidate adjectives per attribute (None = the packaged Table 14), in ATTRIBUTES order."""
    path = default_candidates_path() if path is None else Path(path)
    doc = _read_json(path, "prompt-candidates", default_candidates_path())
    fmt = doc.get("format", CANDIDATES_FORMAT)
    if fmt != CANDIDATES_FORMAT:
        raise ConfigError(f"{path}: format is {fmt!r}, expected {CANDIDATES_FORMAT!r}")
    template = doc.get("template", DEFAULT_TEMPLATE)
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ConfigError(f"{path}: 'template' must be a string with one '{{}}', like \"{{}} image\"")
    out: dict[str, AttributeCandidates] = {}
    for a in ATTRIBUTES:
        entry = doc["attributes"].get(a)
        if entry is None:
            continue
        lists = {}
        for polarity in ("positive", "negative"):
            words = entry.get(polarity) if isinstance(entry, dict) else None
            if (
                not isinstance(words, list)
                or not words
                or not all(isinstance(w, str) and w.strip() for w in words)
            ):
                raise ConfigError(f"{path}: attributes.{a}.{polarity} must be a non-empty list of adjectives")
            lists[polarity] = _dedupe(words)
        both = [
            (p, n)
            for p in lists["positive"]
            for n in lists["negative"]
            if same_prompt(make_prompt(p, template), make_prompt(n, template))
        ]
        if both:
            p, n = both[0]
            said = repr(p) if p == n else f"{p!r} and {n!r} (one prompt to CLIP, which ignores case)"
            raise ConfigError(
                f"{path}: attributes.{a}: {said} in both the positive and the negative list — a pair of one "
                "prompt scores every image 0.5; keep each adjective in one list"
            )
        out[a] = AttributeCandidates(a, lists["positive"], lists["negative"], template)
    if not out:
        raise ConfigError(f"{path}: no attribute has candidates")
    return out


def load_proxy_distortions(path: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """Attribute -> names of its proxy distortions (supplement §A); every name is checked."""
    path = default_proxy_path() if path is None else Path(path)
    doc = _read_json(path, "proxy-distortions", default_proxy_path())
    out: dict[str, tuple[str, ...]] = {}
    for a in ATTRIBUTES:
        names = doc["attributes"].get(a)
        if names is None:
            continue
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{path}: attributes.{a} must be a non-empty list of distortion names")
        for n in names:
            d = get_distortion(n)  # a typo fails here with suggestions
            if d.attribute not in (None, a):
                raise ConfigError(f"{path}: distortion {n!r} moves {d.attribute}, not {a}")
        out[a] = tuple(names)
    return out
