"""malloc tuned for tensor work (attiqa.allocator): freed activations stay mapped, forks still work.

Each case runs in a fresh interpreter, since the setting is per process and cannot be undone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="glibc only",
)

# Allocates, fills and frees a 64 MB tensor (an early activation map of a five-crop batch) 20 times and
# counts the page faults: with glibc's defaults every round maps fresh zero pages.
_CHURN_FAULTS = textwrap.dedent(
    """
    import resource, torch
    def churn_faults():
        for _ in range(8):  # glibc settles its heap in the first few rounds
            torch.empty(16 << 20).fill_(1.0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            torch.empty(16 << 20).fill_(1.0)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    """
)
_CHURN = _CHURN_FAULTS + textwrap.dedent(
    """
    import json, os
    from attiqa.allocator import tune_allocator
    tuned = tune_allocator()
    faults = churn_faults()
    child = os.fork()
    if child == 0:
        os._exit(0 if float(torch.ones(4).sum()) == 4.0 else 1)
    _, status = os.waitpid(child, 0)
    x = torch.empty(16 << 20).fill_(2.0)
    print(json.dumps({"tuned": tuned, "faults": faults, "child": os.waitstatus_to_exitcode(status),
                      "after_fork": float(x[-1])}))
    """
)


def _run(malloc: str) -> dict:
    env = {**os.environ, "ATTIQA_MALLOC": malloc, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _CHURN], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tuned_malloc_keeps_freed_pages_and_forks_cleanly():
    system, tuned = _run("system"), _run("")
    assert system["tuned"] is False and tuned["tuned"] is True
    # 20 rounds x 64 MB = 320k pages touched: the defaults fault on nearly all of them, tuned on almost none
    assert system["faults"] > 100_000
    assert tuned["faults"] < system["faults"] / 20
    # the trim before a fork leaves both processes working on correct memory
    assert tuned["child"] == 0 and tuned["after_fork"] == 2.0


_FORK_KEEPS = textwrap.dedent(
    """
    import json, os, torch
    from attiqa.allocator import tune_allocator
    def anon_mib():
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("RssAnon:")) / 1024
    assert tune_allocator()
    xs = [torch.empty(8 << 20).fill_(1.0) for _ in range(8)]  # 256 MB, then freed: kept by the tuning
    del xs
    before = anon_mib()
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(w, json.dumps({"child": anon_mib(), "sum": float(torch.ones(4).sum())}).encode())
        os._exit(0)
    got = json.loads(os.read(r, 4096))
    os.waitpid(child, 0)
    y = torch.empty(8 << 20).fill_(2.0)
    print(json.dumps({"before": before, "parent": anon_mib(), **got, "after": float(y[-1])}))
    """
)


def test_a_forked_child_hands_the_kept_pages_back_and_the_parent_keeps_them():
    """The parent reuses its kept pages after a fork (no zero-fill); the child does not hold them."""
    env = {**os.environ, "ATTIQA_MALLOC": "", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _FORK_KEEPS], env=env, capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["parent"] > got["before"] - 50  # the parent's 256 MB of freed pages stay mapped
    assert got["child"] < got["before"] - 200  # the child gave its references to them back at once
    assert got["sum"] == 4.0 and got["after"] == 2.0  # both work on correct memory


def test_command_lines_tune_at_start():
    """`attiqa`, `genbench` and `isp-tune` start through run_app, which tunes malloc before the command."""
    code = _CHURN_FAULTS + textwrap.dedent(
        """
        import sys, typer
        from attiqa.cli import run_app
        app = typer.Typer()
        @app.command()
        def churn() -> None:
            print(churn_faults())
        sys.argv = ["x"]
        run_app(app)
        """
    )
    faults = {}
    for malloc in ("", "system"):
        env = {**os.environ, "ATTIQA_MALLOC": malloc, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-c", code]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        faults[malloc] = int(out.stdout.strip().splitlines()[-1])
    assert faults["system"] > 100_000 and faults[""] < faults["system"] / 20
