"""The README's examples, re-run: every figure it prints must be what the commands print.

The README pins the demo to ``--as-of 2026-11-24`` (the demo's data depends on
the seed, the as-of date and the number of accounts), so its console blocks
can be reproduced. Each ``$ command`` block is run as a user would (at 100
columns, in a folder holding ``demo-out``, then in the workspace ``acme-cs``
the README creates there) and compared
with the README text: whitespace runs are folded (the README wraps long lines
as a terminal does), a line starting with ``...`` stands for lines left out,
and the run time ("Done in 1.7s.") is not compared.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
WORKSPACE_RUN = "touchmodel run --data ../demo-out/data --as-of 2026-11-24"


# Runs commands in one fresh interpreter (one import of touchmodel, not one per
# command), with COLUMNS set before Rich reads it, as a user's shell would have it.
_RUNNER = """
import contextlib, io, json, os, sys
from touchmodel.cli.app import app
outputs = []
for cwd, args in json.loads(sys.argv[1]):
    os.chdir(cwd)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = app(args, prog_name="touchmodel", standalone_mode=False)
    outputs.append({"code": code or 0, "stdout": out.getvalue()})
print(json.dumps(outputs))
"""


def touchmodel_many(commands: list[tuple[Path, list[str]]]) -> list[str]:
    """Run CLI commands (each in its folder) as a user would; what each printed on stdout."""
    env = {**os.environ, "COLUMNS": "100"}
    plan = json.dumps([(str(cwd), args) for cwd, args in commands])
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, plan], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    for (_, args), result in zip(commands, results, strict=True):
        assert result["code"] == 0, (args, result["stdout"])
    return [r["stdout"] for r in results]


def console_blocks() -> list[tuple[str, str]]:
    """``(command, expected output)`` of every README console block that starts with ``$``."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", README, re.S):
        if not body.startswith("$ "):
            continue
        text = re.sub(r" \\\n\s*", " ", body)  # a command continued with a backslash
        command, _, output = text.partition("\n")
        blocks.append((command[2:], output))
    return blocks


def cli_args(command: str) -> list[str] | None:
    """The touchmodel arguments of a README command (None for other programs, e.g. curl)."""
    words = shlex.split(command)
    if words[:2] == ["bash", "scripts/demo.sh"]:
        return ["demo", *words[2:]]
    if words[0] in ("touchmodel", ".venv/bin/touchmodel"):
        return words[1:]
    return None


def _fold(text: str) -> str:
    text = re.sub(r"Done in \d+(\.\d+)?s\.", "Done in <time>.", text)
    return " ".join(text.split())


def assert_shows(expected: str, actual: str) -> None:
    """Every README part (between ``...`` lines) appears in the output, in order."""
    parts: list[list[str]] = [[]]
    for line in expected.splitlines():
        if line.lstrip().startswith("..."):
            parts.append([])
        else:
            parts[-1].append(line)
    folded, at = _fold(actual), 0
    for part in parts:
        want = _fold("\n".join(part))
        if not want:
            continue
        found = folded.find(want, at)
        assert found >= 0, f"README text not in the output:\n{want}\n\n--- output ---\n{actual}"
        at = found + len(want)


def _block(name: str, history: bool = False) -> tuple[list[str], str]:
    """The CLI arguments and expected output of the README's ``name`` example.

    ``history``: the example on the demo base with history (``demo-history``).
    """
    [(args, expected)] = [
        (a, o)
        for c, o in console_blocks()
        if (a := cli_args(c)) is not None and a[0] == name and ("demo-history" in c) == history
    ]
    return args, expected


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every README example run once, in order, in a folder that then holds demo-out and
    acme-cs: what each printed. The workspace is run twice on the same day, as shown."""
    home = tmp_path_factory.mktemp("readme")
    ws = home / "acme-cs"
    run = shlex.split(WORKSPACE_RUN)[1:]
    commands = {
        "demo": (home, _block("demo")[0]),
        "plan": (home, _block("plan")[0]),
        "select": (home, _block("select")[0]),
        "economics": (home, _block("economics")[0]),
        "init": (home, ["init", "acme-cs"]),
        "run 1": (ws, run),
        "run 2": (ws, run),
        "tasks": (ws, _block("tasks")[0]),
        "demo --history": (home, _block("demo", history=True)[0]),
        "backtest": (home, _block("backtest", history=True)[0]),
        "calibrate": (home, _block("calibrate", history=True)[0]),
        "whatif": (home, _block("whatif", history=True)[0]),
    }
    outputs = touchmodel_many(list(commands.values()))
    printed = dict(zip(commands, outputs, strict=True))
    printed["home"] = str(home)
    return printed


def test_every_console_example_is_checked() -> None:
    names = [(cli_args(c) or ["(other)"])[0] for c, _ in console_blocks()]
    assert sorted(names) == [
        "(other)", "backtest", "calibrate", "demo", "demo", "economics", "plan", "select", "tasks",
        "whatif",
    ]  # fmt: skip
    # each example on the demo data names the date the data was made for (backtest and
    # calibrate name their own dates)
    for command, _ in console_blocks():
        args = cli_args(command)
        if "demo" in command and args is not None and args[0] not in ("backtest", "calibrate"):
            assert "--as-of 2026-11-24" in command, command
    assert README.count(WORKSPACE_RUN) == 2  # the README runs the same day twice


def test_the_demo_summary_is_what_the_readme_shows(printed: dict[str, str]) -> None:
    assert_shows(_block("demo")[1], printed["demo"])


def test_the_decision_row_is_what_the_readme_shows(printed: dict[str, str]) -> None:
    table = README.split("One row of `demo-out/out/decisions.csv`:", 1)[1].split("\n\n")[1]
    shown: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        _, key, value, _ = line.split("|")
        for k, v in zip(key.split(" / "), value.split(" / "), strict=True):
            shown[k.strip()] = v.strip().strip("*")
    decisions = Path(printed["home"]) / "demo-out" / "out" / "decisions.csv"
    with decisions.open() as fh:
        rows = {r["account_id"]: r for r in csv.DictReader(fh)}
    row = rows[shown["account_id"]]
    assert shown == {k: row[k] for k in shown}


@pytest.mark.parametrize("name", ["plan", "select", "economics"])
def test_the_planning_examples_are_what_the_readme_shows(
    printed: dict[str, str], name: str
) -> None:
    assert_shows(_block(name)[1], printed[name])


@pytest.mark.parametrize("name", ["demo --history", "backtest", "calibrate", "whatif"])
def test_the_fitting_examples_are_what_the_readme_shows(printed: dict[str, str], name: str) -> None:
    command = name.split()[0]
    assert_shows(_block(command, history=True)[1], printed[name])


def test_the_workspace_runs_and_queue_are_what_the_readme_shows(printed: dict[str, str]) -> None:
    state = README.split("What the two runs add to the run summary", 1)[1]
    expected = re.search(r"```console\n(.*?)```", state, re.S)
    assert expected is not None
    assert_shows(expected.group(1), printed["run 1"] + printed["run 2"])
    assert_shows(_block("tasks")[1], printed["tasks"])
