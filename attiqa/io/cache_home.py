"""Where attiqa keeps what it fetches and caches (named models' downloads, the feature and score caches):
``$ATTIQA_CACHE``, default ``~/.cache/attiqa``. Torch-free, so that finding a named model's download
(`genbench agree`'s shipped-model test, `genbench score`'s rerun with nothing left to score) loads no model
stack."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("ATTIQA_CACHE", Path.home() / ".cache" / "attiqa"))
