"""The commands the README and docs/*.md show still parse, with their values, arguments and paths.

A new user copies command lines from the docs. This reads every `attiqa`, `genbench`, `isp-tune` and `torchrun
... -m attiqa.cli` line of their code blocks and inline code, walks it through the real command tree (typer's,
as the console scripts build it) and fails on a subcommand or an option the command does not have, then runs
the line through the command's own parser without running the command: values of the wrong type, values
outside the set the code takes, arguments too many, a code block's command missing one. `python
benchmarks/X.py` / `python experiments/.../X.py` lines must name a script that exists, with options that
script defines, and parse with its own argparse parser (tests/doc_script_args.py stops each script when its
parser returns); `make X` a Makefile target. The project's files a line names (`configs/x.yaml`) must exist,
and `../shared/data/...` paths where that folder is present. Placeholders (`photos/`, `ckpt.safetensors`) and
a user's data are not checked; the `attiqa` / `genbench` / `isp-tune` lines of docs/robustness.md, which
records refused input, for names only."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "configs" / "ablations" / "README.md",
]
PROGRAMS = ("attiqa", "genbench", "isp-tune")


def doc_lines(text: str, inline: bool = True) -> list[str]:
    """Command lines of fenced blocks, 4-space indented blocks (continuations joined) and, with ``inline``,
    inline code."""
    out: list[str] = []

    def joined(lines: list[str]) -> None:
        cur = ""
        for line in lines:
            line = (cur + " " + line.strip()) if cur else line.strip()
            cur = ""
            if line.endswith("\\"):
                cur = line[:-1]
                continue
            out.append(line)

    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        joined(block.splitlines())
    lines, i = text.splitlines(), 0
    while i < len(lines):  # indented blocks: a command and its backslash continuations
        first = lines[i].split()[:1]
        if lines[i].startswith("    ") and first and first[0] in (*PROGRAMS, "python", "torchrun", "make"):
            start = i
            while lines[i].rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
            joined(lines[start : i + 1])
        i += 1
    if inline:
        out += re.findall(r"`([^`\n]+)`", text)
    return out


def invocations(line: str) -> list[tuple[str, list[str]]]:
    """(program, arguments) of each command of a line (`a && b` is two); comments, a synopsis' optional
    `[--opt X | --other Y]`, shell redirections and pipes, `$VAR` and `...` placeholders dropped."""
    line = re.split(r"\s#", " " + line, maxsplit=1)[0].strip()
    line = re.sub(r"\[-[^\]]*\]", " ", line)
    found = []
    for part in line.split("&&"):
        part = part.strip()
        try:
            toks = shlex.split(part)
        except ValueError:  # prose in backticks, not a command
            continue
        for i, tok in enumerate(toks):
            if tok in ("|", ";") or re.match(r"\d?[<>]", tok):
                toks = toks[:i]
                break
        toks = [t for t in toks if not t.startswith("$") and t not in ("...", "…")]
        if not toks:
            continue
        if (
            "-m" in toks
            and toks[0] == "torchrun"
            and toks[toks.index("-m") + 1 : toks.index("-m") + 2] == ["attiqa.cli"]
        ):
            found.append(("attiqa", toks[toks.index("-m") + 2 :]))
        elif toks[0] in PROGRAMS or toks[0] in ("python", "make"):
            found.append((toks[0], toks[1:]))
    return found


def _commands():
    from attiqa.cli import app_command
    from attiqa.cli.app import app as attiqa_app
    from genbench.cli import app as genbench_app
    from isp_env.cli import app as isp_app

    return {
        name: app_command(app)  # the command tree as the console scripts run it (--version included)
        for name, app in zip(PROGRAMS, (attiqa_app, genbench_app, isp_app), strict=True)
    }


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def _is_option(tok: str) -> bool:
    return tok.startswith("-") and len(tok) > 1 and not re.match(r"-\.?\d", tok)


def check_cli(root, program: str, args: list[str], whole: bool = False, values: bool = True) -> list[str]:
    """Problems of ``program args`` against the command tree: subcommand and option names; then the
    command's own parser (click's, as the console script parses; nothing runs): option values of a fixed
    set (choices) and number types, arguments left over. ``whole``: a command line of a code block, also
    checked for missing arguments (inline code may name a command in a sentence: `attiqa score`)."""
    cmd, path, args = root, [program], list(args)
    while hasattr(cmd, "list_commands") and args and not _is_option(args[0]):
        sub = cmd.get_command(cmd.context_class(cmd), args[0])
        if sub is None:
            if not (_options(cmd) - {"--help", "--version"}):  # no options of its own: a wrong name
                return [f"{' '.join(path)}: no command {args[0]!r}"]
            break
        cmd, path = sub, [*path, args.pop(0)]
    known = _options(cmd)
    found = [
        f"{' '.join(path)}: no option {t.split('=')[0]}"
        for t in args
        if _is_option(t) and t.split("=")[0] not in known
    ]
    if found or not values or "--help" in args:
        return found
    return parse_problems(cmd, " ".join(path), args, whole)


def _is_path(param) -> bool:
    desc = getattr(param, "type_descriptor", None)  # typer >= 0.29 (its own copy of click)
    if desc is not None:
        return bool(desc.is_path or desc.is_file)
    return param.type.name.lower() in ("path", "file", "filename", "directory")


def _convert(param, value, ctx):
    """``value`` as the command would take it: typed, a choice checked (no callback runs)."""
    if hasattr(param, "get_runtime_param"):  # typer >= 0.29: pydantic-backed coercion
        return param.get_runtime_param().coerce(value, param=param, ctx=ctx)
    return param.type_cast_value(ctx, value)


def parse_problems(cmd, where: str, args: list[str], whole: bool) -> list[str]:
    """``args`` through ``cmd``'s own parser, then each value through its parameter's type unless that is a
    path (the docs' paths are placeholders or a user's data: :func:`path_problems` checks the project's)."""
    ctx = cmd.context_class(cmd, info_name=where, resilient_parsing=True)
    try:
        values, rest, _ = cmd.make_parser(ctx).parse_args(args=list(args))
    except Exception as exc:  # click's UsageError (typer's own copy of click in 0.29)
        if not hasattr(exc, "format_message"):
            raise
        return [f"{where}: {exc.format_message()}"]
    out = [] if hasattr(cmd, "list_commands") else [f"{where}: unexpected argument {a!r}" for a in rest]
    for param in cmd.params:
        value = values.get(param.name)
        if value is None:
            if whole and param.required and param.param_type_name == "argument":
                out.append(f"{where}: missing argument {param.name.upper()}")
            continue
        if _is_path(param) or getattr(param, "is_flag", False):
            continue
        try:
            _convert(param, value, ctx)
        except Exception as exc:
            if not hasattr(exc, "format_message"):
                raise
            out.append(f"{where}: {param.opts[0]} {value!r}: {exc.format_message()}")
            continue
        accepts = choices().get((where.split()[0], param.name))
        if accepts is not None and not accepts(value):
            out.append(f"{where}: {param.opts[0]} {value!r}: not a value the command takes")
    return out


@cache
def choices() -> dict[tuple[str, str], Callable[[str], bool]]:
    """(program, parameter) -> does the command take this value. These options are plain strings to click
    (no click Choice in the project): their sets are the code's own, checked in the command's body."""
    import torch

    from attiqa.bench_setup import PROTOCOLS
    from attiqa.datasets import SPLITS
    from attiqa.scorers.attiqa_scorer import CROP_MODES
    from genbench.agreement import MODEL_TIE_RULES, TIE_POLICIES
    from genbench.generate import DTYPES
    from isp_env.env import ACTION_MODES, OBS_MODES
    from isp_env.registration import RL_ALGOS

    def device(spec: str) -> bool:
        try:
            return spec == "auto" or bool(torch.device(spec).type)
        except RuntimeError:
            return False

    sets = {
        ("attiqa", "crops"): CROP_MODES,
        ("attiqa", "split"): SPLITS,
        ("attiqa", "protocol"): tuple(PROTOCOLS),
        ("attiqa", "select_by"): ("joint", "distortion", "human"),  # attiqa/cli/prompts.py
        ("genbench", "ties"): TIE_POLICIES,
        ("genbench", "model_ties"): MODEL_TIE_RULES,
        ("genbench", "dtype"): DTYPES,
        ("isp-tune", "algo"): ("teacher", *RL_ALGOS),
        ("isp-tune", "action_mode"): ACTION_MODES,
        ("isp-tune", "obs_mode"): OBS_MODES,
    }
    out: dict[tuple[str, str], Callable[[str], bool]] = {k: v.__contains__ for k, v in sets.items()}
    out |= {(program, "device"): device for program in PROGRAMS}
    return out


def check_script(args: list[str]) -> list[str]:
    if not args or not args[0].endswith(".py") or not args[0].startswith(("benchmarks/", "experiments/")):
        return []
    script = ROOT / args[0]
    if not script.is_file():
        return [f"{args[0]}: no such script"]
    source = script.read_text(encoding="utf-8")
    return [
        f"{args[0]}: no option {t.split('=')[0]}"
        for t in args[1:]
        if t.startswith("--")
        and t != "--help"  # argparse's own
        and not any(re.search(rf"[\"']{re.escape(o)}[\"']", source) for o in _spellings(t))
    ]


def _spellings(tok: str) -> list[str]:
    """The option as the script may define it (`--no-x` comes from argparse's BooleanOptionalAction `--x`)."""
    name = tok.split("=")[0]
    return [name, "--" + name[5:]] if name.startswith("--no-") else [name]


def check_make(args: list[str]) -> list[str]:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    return [
        f"make {t}: no such target"
        for t in args
        if not t.startswith("-") and "=" not in t and t not in targets
    ]


REPO_DIRS = ("configs/", "benchmarks/", "experiments/", "docs/", "attiqa/", "genbench/", "isp_env/", "tests/")
SHARED = SHARED_DATA  # the maintainers' data beside the checkout (../shared/data)
OUTPUTS = {"-o", "--out", "--output", "--save", "--figure", "--sheet", "--json"}


def path_problems(args: list[str]) -> list[str]:
    """The project's own files a command line names (`configs/x.yaml`, `NAME=docs/y.md`) must exist, and so
    must `../shared/data/...` paths where that folder is present; outputs (`-o`, `--out`, ...) need not."""
    out = []
    for before, tok in zip(["", *args], args, strict=False):
        if before.split("=")[0] in OUTPUTS or tok.split("=")[0] in OUTPUTS:
            continue
        for part in [tok, *tok.split("=")[1:]]:
            shared = part.startswith("../shared/data/") and SHARED.is_dir()
            if (part.startswith(REPO_DIRS) or shared) and not _exists(part):
                out.append(f"{part}: " + ("not in ../shared" if shared else "no such file in the project"))
    return out


def _exists(pattern: str) -> bool:
    """A path, a glob (`runs/*/x`) or a shell brace list (`s26/{C2,D1}.yaml`: each) that is there."""
    brace = re.search(r"\{([^{}]*)\}", pattern)
    if brace:
        return all(_exists(pattern.replace(brace[0], alt, 1)) for alt in brace[1].split(","))
    return any(ROOT.glob(pattern.rstrip("/"))) if "*" in pattern else (ROOT / pattern).exists()


def problems(text: str, roots, values: bool = True) -> list[str]:
    """What is wrong with the command lines of ``text``; without ``values`` the names only (the bad input
    docs/robustness.md records is meant to be refused)."""
    out = []
    blocks = set(doc_lines(text, inline=False))
    for line in doc_lines(text):
        for program, args in invocations(line):
            out += path_problems(args)
            if program == "python":
                out += check_script(args)
            elif program == "make":
                out += check_make(args)
            else:
                out += check_cli(roots[program], program, args, line in blocks, values)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_name_existing_subcommands_and_options(doc):
    found = problems(doc.read_text(encoding="utf-8"), _commands(), values=doc.name != "robustness.md")
    assert not found, f"{doc.relative_to(ROOT)}: " + "; ".join(found)


def test_the_check_sees_the_readme_commands_and_catches_a_drift():
    """Guard for the guard: the README's command lines are found; a renamed option or command is caught."""
    roots = _commands()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = [inv for line in doc_lines(readme) for inv in invocations(line) if inv[0] in PROGRAMS]
    assert len(found) >= 60, len(found)
    assert {p for p, _ in found} == set(PROGRAMS)
    drift = "\n".join(
        [
            "```bash",
            "attiqa score shots/ --modle classical",
            "genbench agreee run/",
            "isp-tune render r.dng --outptu x.png",
            "```",
        ]
    )
    assert problems(drift, roots) == [
        "attiqa score: no option --modle",
        "genbench: no command 'agreee'",
        "isp-tune render: no option --outptu",
    ]
    assert problems("`python benchmarks/isp_speed.py --thread 2` and `make demos`", roots) == [
        "benchmarks/isp_speed.py: no option --thread",
        "make demos: no such target",
    ]
    assert problems("`python benchmarks/score_throughput.py --n 24 --no-fold` then `make demo`", roots) == []


def test_the_check_parses_values_arguments_and_paths_as_the_commands_do():
    """Guard for the guard (session 52): beyond names, each command line goes through the command's own
    parser — a value of the wrong type, a value outside the set the code takes (`--crops`, `--algo`,
    `--model-ties`: plain strings to click, their sets the code's own), an argument too many, a code block's
    command without its argument — and a project file it names must exist."""
    roots = _commands()
    drift = "\n".join(
        [
            "```bash",
            "attiqa score shots/ --crops centre",
            "attiqa score shots/ --batch-size many",
            "isp-tune --raw-dir raws/ --out run/ --algo dqn",
            "attiqa score --model classical",
            "attiqa models extra",
            "attiqa train --config configs/nope.yaml",
            "genbench agree run/ --model-ties lose",
            "```",
            "`attiqa score` in a sentence names the command; `attiqa train -c configs/cpu_small.yaml`: fine",
        ]
    )
    assert problems(drift, roots) == [
        "attiqa score: --crops 'centre': not a value the command takes",
        "attiqa score: --batch-size 'many': Invalid value for '--batch-size' / '-b': Input should be a valid "
        "integer, unable to parse string as an integer",
        "isp-tune: --algo 'dqn': not a value the command takes",
        "attiqa score: missing argument PATHS",
        "attiqa models: unexpected argument 'extra'",
        "configs/nope.yaml: no such file in the project",
        "genbench agree: --model-ties 'lose': not a value the command takes",
    ]
    assert problems("`attiqa score shots/ --crops centre`", roots, values=False) == []  # robustness.md


def script_lines() -> list[tuple[str, list[str], str]]:
    """(script, arguments, doc) of the docs' `python benchmarks/X.py ...` / `python experiments/.../X.py`
    lines whose script parses its arguments with argparse; an inline mention without arguments is a name."""
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        blocks = set(doc_lines(text, inline=False))
        for line in doc_lines(text):
            for program, args in invocations(line):
                if program != "python" or not args or not args[0].startswith(("benchmarks/", "experiments/")):
                    continue
                script = ROOT / args[0]
                parsed = script.is_file() and "ArgumentParser" in script.read_text(encoding="utf-8")
                if parsed and (len(args) > 1 or line in blocks):
                    out.append((args[0], args[1:], str(doc.relative_to(ROOT))))
    return out


def parse_scripts(items: list[tuple[str, list[str]]]) -> list[str]:
    """argparse's error for each (script, arguments), "" where they parse: every script run in one process
    by tests/doc_script_args.py, stopped when its parser returns (nothing else of it runs)."""
    import json
    import subprocess
    import sys

    from helpers import attiqa_env

    res = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "doc_script_args.py")],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=attiqa_env(),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


def test_documented_script_lines_parse_with_the_scripts_own_parser():
    """Each documented benchmark / experiment command line through its script's own argparse parser (the
    `--help`-free way: choices, types, required options, arguments). The guard lines at the end must fail."""
    items = script_lines()
    assert len(items) >= 60, len(items)
    guard = [
        ("benchmarks/isp_heldout.py", ["RAWS", "--run", "agent=RUN"]),
        ("benchmarks/score_throughput.py", ["--n", "many"]),
        ("benchmarks/isp_scale.py", ["mkae", "/tmp/fivek"]),
    ]
    said = parse_scripts([[s, a] for s, a, _ in items] + [list(g) for g in guard])
    lines = zip(items, said, strict=False)
    found = [f"{doc}: python {s} {' '.join(a)}: {r}" for (s, a, doc), r in lines if r]
    assert not found, "\n".join(found)
    assert said[len(items) :] == [
        "isp_heldout.py: error: the following arguments are required: --out",
        "score_throughput.py: error: argument --n: invalid int value: 'many'",
        "isp_scale.py: error: argument what: invalid choice: 'mkae' (choose from 'make', 'run', 'stats')",
    ]
