"""Names a package re-exports but imports on first use (a PEP 562 module ``__getattr__``).

Why: a command line that needs only a package's light names (``attiqa --help``, ``attiqa models``) must not
pay for the modules behind its heavy ones (torch, scipy: seconds and hundreds of MiB; figures in
docs/default_model.md, "Implementation speed notes"). ``tests/test_cli_startup.py`` holds the light
commands to it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str], first: tuple[str, ...] = ()) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where`` maps each name to the module defining it;
    ``first`` lists modules imported before any of them (one that registers itself in a registry the names
    expose). A name, once found, is set on the package, so later reads are plain attributes."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        for module in first:
            importlib.import_module(module)
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
