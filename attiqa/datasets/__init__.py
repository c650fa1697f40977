"""Dataset registry (pyiqa-style): ``get_dataset("koniq10k", root)`` reads a dataset's OFFICIAL score
files into one uniform table (:class:`DatasetItem`: absolute image path, MOS "higher is better", raw
value, split, extra targets). ``list_datasets()`` gives each adapter's metadata.

Datasets of the paper's §4.1: ``clive``, ``koniq10k``, ``spaq``, ``flive``, ``ava``. Also: ``agiqa3k``,
``agiqa1k`` (AI-generated images), ``biq2021`` (authentic), ``kadid10k``, ``live``, ``csiq``, ``tid2013``,
``pipal`` (synthetic distortions) and ``folder`` (any images + CSV ``image,mos[,split]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from attiqa.datasets.aigc import AGIQA1k, AGIQA3k
from attiqa.datasets.base import (
    SPLITS,
    DatasetInfo,
    DatasetItem,
    IQADataset,
    RawRecord,
    TargetInfo,
    canonical_split,
    find_unreadable,
)
from attiqa.datasets.folder import FolderDataset
from attiqa.datasets.synthetic import CSIQ, LIVE, PIPAL, TID2013, KADID10k
from attiqa.datasets.wild import AVA, BIQ2021, CLIVE, FLIVE, SPAQ, KonIQ10k
from attiqa.errors import AttiqaError, did_you_mean

DATASETS: dict[str, type[IQADataset]] = {
    cls.info.name: cls
    for cls in (
        AGIQA3k,
        AGIQA1k,
        KonIQ10k,
        CLIVE,
        SPAQ,
        FLIVE,
        AVA,
        BIQ2021,
        KADID10k,
        LIVE,
        CSIQ,
        TID2013,
        PIPAL,
        FolderDataset,
    )
}
"""Registry name -> adapter class (``cls.info`` holds the metadata)."""

_ALIASES = {
    "livec": "clive",
    "livechallenge": "clive",
    "liveitw": "clive",  # LIVE in the Wild: CLIVE, not LIVE Release 2 (was suggested as 'live' first)
    "livewild": "clive",
    "liveinthewild": "clive",
    "challengedb": "clive",
    "koniq": "koniq10k",
    "kadid": "kadid10k",
    "tid": "tid2013",
    "paq2piq": "flive",
    "livefb": "flive",  # LIVE-FB is FLIVE's other name (was suggested as 'live')
    "liveiqa": "live",
    "liverelease2": "live",
    "biq": "biq2021",
}
"""Other names of the datasets, written without separators (:func:`squashed`)."""

_SPELLED = {"koniq-10k": "koniq10k", "kadid-10k": "kadid10k", "agiqa-3k": "agiqa3k", "agiqa-1k": "agiqa1k"}
"""The names as their papers spell them: suggested for a misspelling as the name they stand for (a typo of
``kadid-10k`` is closer to them than to ``agiqa1k``)."""


def squashed(name: str) -> str:
    """A dataset name as it is looked up: lower case, without spaces, ``-``, ``_`` and ``.`` — ``KADID-10k``,
    ``tid_2013``, ``LIVE-itW`` and ``agiqa 3k`` are the registry's ``kadid10k``, ``tid2013``, ``clive`` and
    ``agiqa3k`` (``tid-2013`` was "unknown dataset")."""
    return re.sub(r"[\s_.\-]+", "", name.lower())


def resolve_name(name: str) -> str:
    """Canonical registry name (case and separators ignored, a few common aliases); unknown names get
    suggestions."""
    key = squashed(name)
    key = _ALIASES.get(key, key)
    if key in DATASETS:
        return key
    names = sorted(DATASETS)
    hint = (
        did_you_mean(key, names, n=3, cutoff=0.5, aliases={**_ALIASES, **_SPELLED})
        or f" (known datasets: {', '.join(names)})"
    )
    raise AttiqaError(f"unknown dataset {name!r}{hint} — see `attiqa datasets`")


def get_dataset(name: str, root: str | Path, **kwargs: Any) -> IQADataset:
    """The adapter for ``name`` on the dataset unpacked at ``root`` (``target=`` and adapter options in
    ``kwargs``, e.g. ``get_dataset("agiqa3k", root, target="mos_align")``)."""
    cls = DATASETS[resolve_name(name)]
    try:
        return cls(root, **kwargs)
    except TypeError as exc:
        raise AttiqaError(f"{name}: invalid option ({exc})") from None


def list_datasets() -> list[DatasetInfo]:
    """Metadata of every registered dataset, in registry order."""
    return [cls.info for cls in DATASETS.values()]


__all__ = [
    "DATASETS",
    "SPLITS",
    "DatasetInfo",
    "DatasetItem",
    "IQADataset",
    "RawRecord",
    "TargetInfo",
    "canonical_split",
    "find_unreadable",
    "get_dataset",
    "list_datasets",
    "resolve_name",
]
