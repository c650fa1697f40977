"""The five image attributes of ATTIQA (paper §3.1): names, fixed order, direction.

Every array of attribute scores in this project has shape (N, 5) in this order, and every score is
"higher is better" — for noisiness that means *less* noisy (the paper's positive prompt is the clean one).
"""

from __future__ import annotations

ATTRIBUTES: tuple[str, ...] = ("sharpness", "contrast", "brightness", "colorfulness", "noisiness")
"""Fixed attribute order used by teachers, label files, heads and score tables."""

NUM_ATTRIBUTES = len(ATTRIBUTES)

ATTRIBUTE_MEANING: dict[str, str] = {
    "sharpness": "higher = sharper (less blur)",
    "contrast": "higher = more contrast",
    "brightness": "higher = brighter",
    "colorfulness": "higher = more colourful",
    "noisiness": "higher = cleaner (less noise)",
}

DISPLAY_NAMES: dict[str, str] = {"noisiness": "cleanliness"}
"""Column names as a person reads them (tables, sheets). The ``noisiness`` column is high for a *clean*
image; files keep the name programs parse (CSV/JSON schema unchanged), people see what it shows."""


def display_name(column: str) -> str:
    return DISPLAY_NAMES.get(column, column)


def attribute_index(name: str) -> int:
    """Index of an attribute in the fixed order; a clear error for an unknown name."""
    try:
        return ATTRIBUTES.index(name)
    except ValueError:
        raise ValueError(f"unknown attribute {name!r}; the attributes are: {', '.join(ATTRIBUTES)}") from None
