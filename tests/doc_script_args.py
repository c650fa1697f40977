"""Each ``[script, args]`` of stdin's JSON list through the script's own argparse parser, and nothing
else: the script is run as ``__main__`` with ``ArgumentParser.parse_args`` stopping it once it has parsed.
Prints a JSON list: "" where the arguments parse, else argparse's error line (tests/test_doc_commands.py)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import runpy
import sys
from pathlib import Path


class Parsed(Exception):
    """The arguments parsed: stop before the script does its work."""


orig_parse_args = argparse.ArgumentParser.parse_args
orig_known = argparse.ArgumentParser.parse_known_args
depth = 0


def parse_args(self, args=None, namespace=None):
    global depth
    depth += 1
    try:
        orig_parse_args(self, args, namespace)
    finally:
        depth -= 1
    raise Parsed


def parse_known_args(self, args=None, namespace=None):
    if depth:
        return orig_known(self, args, namespace)
    orig_known(self, args, namespace)
    raise Parsed


def main() -> None:
    argparse.ArgumentParser.parse_args = parse_args
    argparse.ArgumentParser.parse_known_args = parse_known_args
    out = []
    for script, args in json.load(sys.stdin):
        sys.argv = [script, *args]
        sys.path.insert(0, str(Path(script).parent))  # as `python SCRIPT` puts it first
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                runpy.run_path(script, run_name="__main__")
            said = "ran to its end without parsing arguments"
        except Parsed:
            said = ""
        except SystemExit as exc:
            lines = err.getvalue().strip().splitlines() or [f"exit {exc.code}"]
            said = "" if exc.code in (0, None) else lines[-1]
        finally:
            sys.path.pop(0)
        out.append(said)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
