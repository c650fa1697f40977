"""Antonym prompt pairs per attribute (paper §3.2 eq. 2, §3.3 Table 1), stored as versioned JSON.

File format (version 1), written by hand or by a prompt-selection tool (§3.3)::

    {
      "format": "attiqa-prompts",
      "version": 1,
      "name": "attiqa_table1",                # optional, short id
      "source": "where the prompts come from", # optional
      "template": "{} image",                 # optional, informational: how prompts were formed
      "notes": "...",                         # optional
      "attributes": {
        "sharpness": {"positive": "Splendid image", "negative": "Blurry image"},
        ... all five attributes of attiqa.attributes.ATTRIBUTES ...
      }
    }

The ``positive``/``negative`` strings are the exact texts given to the CLIP text encoder; extra
top-level keys (e.g. a selection tool's scores) are kept in ``extra`` and ignored.

The packaged default, ``attiqa/data/prompts/attiqa_table1.json``, is paper Table 1 except one word: the
noisiness negative is "Grainy image" where Table 1 prints "Graimy image". Table 1's pairs are picks from
supplement Table 14, whose noisiness negatives hold "grainy" and no "graimy", so the authors' selection
(and labels) can only have used "Grainy" (said in the file's ``notes`` and docs/method.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ConfigError, did_you_mean
from attiqa.io.atomic import write_json_atomic

PROMPTS_FORMAT = "attiqa-prompts"
PROMPTS_VERSION = 1
DEFAULT_PROMPTS = "attiqa_table1.json"
_KNOWN_KEYS = {"format", "version", "name", "source", "template", "notes", "attributes"}


class PromptFileError(ConfigError):
    """A prompts JSON file is missing, unreadable or incomplete."""


@dataclass(frozen=True)
class PromptPair:
    """The positive ("good") and negative ("bad") prompt of one attribute."""

    positive: str
    negative: str


@dataclass(frozen=True)
class PromptSet:
    """Prompt pairs for all attributes, in :data:`ATTRIBUTES` order."""

    pairs: dict[str, PromptPair]
    version: int = PROMPTS_VERSION
    name: str = ""
    source: str = ""
    template: str | None = None
    notes: str = ""
    path: str | None = None  # the file it was loaded from, if any
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [a for a in ATTRIBUTES if a not in self.pairs]
        if missing:
            raise ValueError(f"prompt set lacks attributes: {', '.join(missing)}")
        # Normalise the order so texts() lines up with ATTRIBUTES whatever order the file used.
        object.__setattr__(self, "pairs", {a: self.pairs[a] for a in ATTRIBUTES})

    def texts(self) -> list[str]:
        """``[pos_0, neg_0, pos_1, neg_1, ...]`` in ATTRIBUTES order (what the text encoder sees)."""
        return [t for a in ATTRIBUTES for t in (self.pairs[a].positive, self.pairs[a].negative)]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this set (the file format above)."""
        doc: dict[str, Any] = {"format": PROMPTS_FORMAT, "version": self.version}
        for key in ("name", "source", "template", "notes"):
            value = getattr(self, key)
            if value:
                doc[key] = value
        doc["attributes"] = {
            a: {"positive": p.positive, "negative": p.negative} for a, p in self.pairs.items()
        }
        doc.update(self.extra)
        return doc

    def fingerprint(self) -> str:
        """sha256 of the prompt texts (not the comments): identifies the labels they produce."""
        return hashlib.sha256(json.dumps(self.texts()).encode("utf-8")).hexdigest()

    def swapped(self, attributes: tuple[str, ...] | None = None) -> PromptSet:
        """A copy with positive and negative exchanged (for all, or the given attributes)."""
        flip = set(ATTRIBUTES if attributes is None else attributes)
        pairs = {a: PromptPair(p.negative, p.positive) if a in flip else p for a, p in self.pairs.items()}
        return dataclasses.replace(self, pairs=pairs, path=None)

    def save(self, path: str | Path) -> Path:
        """Write the set as a prompts JSON file (atomically) and return the path."""
        path = Path(path)
        write_json_atomic(path, self.to_dict())
        return path


def default_prompts_path() -> Path:
    """The packaged paper Table 1 prompts."""
    return Path(str(resources.files("attiqa") / "data" / "prompts" / DEFAULT_PROMPTS))


def same_prompt(a: str, b: str) -> bool:
    """Whether CLIP's text encoder sees two prompts as one: open_clip's tokenizer lowercases and collapses
    whitespace, so "Sharp image" and "sharp  image" are one prompt (a pair of them scores every image 0.5)."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _fail(path: Path, what: str) -> PromptFileError:
    return PromptFileError(f"{path}: {what}")


def read_json_doc(path: Path, what: str, inside: str, like: Path | None = None) -> Any:
    """A JSON file of ``what`` (prompts, prompt candidates, ...) read, or one line naming the file and the
    fix: a folder (``inside``: the file such a folder holds, e.g. select-prompts' ``prompts.json``), a file
    that is not UTF-8 text, YAML or other text that is not JSON (``like``: a packaged file of the kind)."""
    example = f"{what} files are JSON, like {like or default_prompts_path()}"
    if path.is_dir():
        hint = f" — pass the file in it: {path / inside}" if (path / inside).is_file() else f" — {example}"
        raise _fail(path, f"a folder, not a {what} file{hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(path, f"{what} file not found — check the path") from None
    except UnicodeDecodeError:
        raise _fail(path, f"not a text file (not UTF-8) — {example}") from None
    except OSError as exc:
        raise _fail(path, f"cannot read {what} file ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}: {exc.msg}) — {example}") from None


def prompt_set(prompts: str | Path | PromptSet | None) -> PromptSet:
    """The one reading of a teacher's ``prompts=``: a :class:`PromptSet` as handed on (a command's check
    read the file already), else the file loaded (None: paper Table 1)."""
    return prompts if isinstance(prompts, PromptSet) else load_prompts(prompts)


def load_prompts(path: str | Path | None = None) -> PromptSet:
    """Load and validate a prompts JSON file (None = paper Table 1); errors name the file and the gap."""
    path = default_prompts_path() if path is None else Path(path)
    doc = read_json_doc(path, "prompts", "prompts.json")
    if not isinstance(doc, dict):
        raise _fail(path, "expected a JSON object with an 'attributes' entry")
    fmt = doc.get("format", PROMPTS_FORMAT)
    if fmt != PROMPTS_FORMAT:
        raise _fail(path, f"format is {fmt!r}, expected {PROMPTS_FORMAT!r}")
    version = doc.get("version")
    if version != PROMPTS_VERSION:
        raise _fail(path, f"unsupported version {version!r} (this attiqa reads version {PROMPTS_VERSION})")
    attrs = doc.get("attributes")
    if not isinstance(attrs, dict):
        raise _fail(path, "missing 'attributes' object mapping each attribute to {positive, negative}")
    unknown = [k for k in attrs if k not in ATTRIBUTES]
    if unknown:
        hints = [f"{k!r}{did_you_mean(k, ATTRIBUTES)}" for k in unknown]
        raise _fail(path, f"unknown attribute(s) {', '.join(hints)}; expected: {', '.join(ATTRIBUTES)}")
    missing = [a for a in ATTRIBUTES if a not in attrs]
    if missing:
        raise _fail(path, f"missing attribute(s): {', '.join(missing)}")
    pairs: dict[str, PromptPair] = {}
    for a in ATTRIBUTES:
        entry = attrs[a]
        if not isinstance(entry, dict):
            raise _fail(path, f"attributes.{a} must be an object with 'positive' and 'negative' strings")
        texts = {}
        for polarity in ("positive", "negative"):
            value = entry.get(polarity)
            if not isinstance(value, str) or not value.strip():
                raise _fail(path, f"attributes.{a}.{polarity} is missing or not a non-empty string")
            texts[polarity] = value
        pos, neg = texts["positive"], texts["negative"]
        if same_prompt(pos, neg):
            said = (
                f"both {pos!r}"
                if pos == neg
                else f"{pos!r} and {neg!r}: one prompt to CLIP, which ignores case"
            )
            raise _fail(
                path,
                f"attributes.{a}: positive and negative are the same prompt ({said}) — every image would "
                f"score 0.5 on {a}: give two opposite prompts",
            )
        pairs[a] = PromptPair(texts["positive"], texts["negative"])
    template = doc.get("template")
    if template is not None and not isinstance(template, str):
        raise _fail(path, "'template' must be a string like \"{} image\"")
    return PromptSet(
        pairs=pairs,
        version=version,
        name=str(doc.get("name", path.stem)),
        source=str(doc.get("source", "")),
        template=template,
        notes=str(doc.get("notes", "")),
        path=str(path),
        extra={k: v for k, v in doc.items() if k not in _KNOWN_KEYS},
    )
