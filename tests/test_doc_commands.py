"""The commands the README and docs/*.md show still parse (session 38's user-journey audit).

A new user copies command lines from the docs. This reads every `attiqa`, `genbench`, `isp-tune` and
`torchrun ... -m attiqa.cli` line of their code blocks and inline code, walks it through the real command
tree (typer's, as the console scripts build it) and fails on a subcommand or an option the command does not
have; `python benchmarks/X.py` / `python experiments/.../X.py` lines must name a script that exists and
options that script defines, and `make X` a Makefile target. Paths and values are not checked: the docs use
placeholders (`photos/`, `ckpt.safetensors`) and data a user brings."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "configs" / "ablations" / "README.md",
]
PROGRAMS = ("attiqa", "genbench", "isp-tune")


def doc_lines(text: str) -> list[str]:
    """Command lines of fenced blocks, 4-space indented blocks (continuations joined) and inline code."""
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
    out += re.findall(r"`([^`\n]+)`", text)
    return out


def invocations(line: str) -> list[tuple[str, list[str]]]:
    """(program, arguments) of each command of a line (`a && b` is two); comments dropped."""
    line = re.split(r"\s#", " " + line, maxsplit=1)[0].strip()
    found = []
    for part in line.split("&&"):
        part = part.strip()
        try:
            toks = shlex.split(part)
        except ValueError:  # prose in backticks, not a command
            continue
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
    import typer

    from attiqa.cli.app import app as attiqa_app
    from genbench.cli import app as genbench_app
    from isp_env.cli import app as isp_app

    return {
        name: typer.main.get_command(app)
        for name, app in zip(PROGRAMS, (attiqa_app, genbench_app, isp_app), strict=True)
    }


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def _is_option(tok: str) -> bool:
    return tok.startswith("-") and len(tok) > 1 and not re.match(r"-\.?\d", tok)


def check_cli(root, program: str, args: list[str]) -> list[str]:
    cmd, path, args = root, [program], list(args)
    while hasattr(cmd, "list_commands") and args and not _is_option(args[0]):
        sub = cmd.get_command(cmd.context_class(cmd), args[0])
        if sub is None:
            if not (_options(cmd) - {"--help"}):  # a group without options of its own: a wrong name
                return [f"{' '.join(path)}: no command {args[0]!r}"]
            break
        cmd, path = sub, [*path, args.pop(0)]
    known = _options(cmd)
    return [
        f"{' '.join(path)}: no option {t.split('=')[0]}"
        for t in args
        if _is_option(t) and t.split("=")[0] not in known
    ]


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


def problems(text: str, roots) -> list[str]:
    out = []
    for line in doc_lines(text):
        for program, args in invocations(line):
            if program == "python":
                out += check_script(args)
            elif program == "make":
                out += check_make(args)
            else:
                out += check_cli(roots[program], program, args)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_name_existing_subcommands_and_options(doc):
    found = problems(doc.read_text(encoding="utf-8"), _commands())
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
