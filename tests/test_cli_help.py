"""Every command's --help, walked: what a user reads before running anything."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from touchmodel.access.keys import authenticate
from touchmodel.cli.app import app
from touchmodel.state.db import Store
from touchmodel.workspace import load_workspace

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # one help row per line, so a row is checked whole


def _commands() -> Iterator[tuple[list[str], Any]]:
    def walk(path: list[str], cmd: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk([*path, name], sub)

    yield from walk([], typer.main.get_command(app))


COMMANDS = list(_commands())


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    # a sample from each module, so an empty walk cannot pass the tests below
    assert {"run", "tasks", "task", "plan", "keys list", "outbox retry", "db upgrade"} <= names
    assert len(names) > 30


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "(top)")
def test_help_reads_right(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    # a flag takes no value: no "<bool>" after --json, --force, --help ...
    assert "<bool>" not in out
    # users never see the internal domain reference
    assert "SPEC" not in out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    # arguments are named like ITEM_ID, not {item_id}
    assert "{" not in usage and "}" not in usage, usage
    cmd = dict((tuple(p), c) for p, c in COMMANDS)[tuple(path)]
    for param in cmd.params:
        if param.param_type_name == "option":
            # every option says what it does (--limit was bare on runs, touchpoints, outbox)
            assert param.help, f"{' '.join(path)} {param.opts[0]}: no description"
            assert param.opts[0] in out


def test_item_id_usage_line() -> None:
    result = runner.invoke(app, ["snooze", "--help"], env=WIDE)
    assert "Usage: touchmodel snooze [OPTIONS] ITEM_ID" in result.output


def test_keys_list_shows_when_each_key_was_last_used(tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws_dir)]).exit_code == 0
    made = [
        runner.invoke(app, ["keys", "create", "--kind", kind, "-w", str(ws_dir)])
        for kind in ("api", "write")
    ]
    assert all(r.exit_code == 0 for r in made), [r.output for r in made]
    api_secret = made[0].stdout.strip()
    store = Store(load_workspace(ws_dir).state_url)
    try:
        with store.transaction() as session:
            used_at = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
            assert authenticate(session, api_secret, now=used_at) is not None
        # a second use within the minute is not written (and does not move the time)
        with store.transaction() as session:
            authenticate(session, api_secret, now=used_at + dt.timedelta(seconds=50))
    finally:
        store.close()
    result = runner.invoke(app, ["keys", "list", "-w", str(ws_dir)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "last used" in result.output
    rows = {
        line.split("│")[2].strip(): line for line in result.output.splitlines() if "│ tm_" in line
    }
    assert "2026-11-24 09:30" in rows["api"]
    assert "never" in rows["write"]
