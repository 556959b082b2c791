"""Messages a first user meets: each says what is wrong and what to type instead.

Every case is what a new user did on day one (issue 12 item 14), run through
the command line as they ran it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from touchmodel.cli.app import app
from touchmodel.errors import MappingFileError, ModelFileError
from touchmodel.model.loader import load_model
from touchmodel.ops.workitems import Fired, sync_trigger_items
from touchmodel.plan.team import TeamFileError, read_team_file
from touchmodel.sources.mapping import load_mapping
from touchmodel.state.db import Store
from touchmodel.workspace import WorkspaceError, init_workspace, load_workspace

runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # messages on one line, as a script greps them
HEADER = "account_id,arr,plan,seats,contract_start,renewal_date,employees\n"


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=WIDE)
    return result.exit_code, result.output


def data_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "accounts.csv").write_text(text)
    return folder


def run_on(tmp_path: Path, data: Path, *extra: str) -> tuple[int, str]:
    return run_cli(
        "run", "--no-state", "--data", str(data), "--as-of", "2026-11-01",
        "--out", str(tmp_path / "out"), *extra,
    )  # fmt: skip


# --- mapping files ----------------------------------------------------------------------


def test_a_mapping_typo_gets_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text("tables:\n  accounts:\n    colums:\n      arr: MRR\n")
    with pytest.raises(MappingFileError, match=r"colums: .*did you mean 'columns'\?"):
        load_mapping(path)
    path.write_text("tables:\n  acounts:\n    columns: {arr: MRR}\n")
    with pytest.raises(MappingFileError, match=r"'acounts' \(did you mean 'accounts'\?\)"):
        load_mapping(path)
    path.write_text("tables:\n  accounts:\n    columns:\n      arr: {from: MRR, scal: 12}\n")
    with pytest.raises(MappingFileError, match=r"scal: .*did you mean 'scale'\?"):
        load_mapping(path)


def test_a_column_named_in_another_case_is_suggested(tmp_path: Path) -> None:
    data = data_folder(tmp_path, HEADER.replace(",arr,", ",ARR,") + "A1,1,p,1,2025-01-01,,5\n")
    code, out = run_on(tmp_path, data)
    assert code == 2
    assert "arr (did you mean 'ARR'?)" in out


def test_a_semicolon_csv_suggests_the_delimiter_key(tmp_path: Path) -> None:
    text = HEADER.replace(",", ";") + "A1;1200;pro;10;2025-01-01;2026-12-31;50\n"
    code, out = run_on(tmp_path, data_folder(tmp_path, text))
    assert code == 2
    assert "the header looks separated by ';'" in out
    assert 'delimiter: ";" under tables.accounts in a mapping file' in out
    # and the suggestion works
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('tables:\n  accounts:\n    delimiter: ";"\n')
    code, out = run_on(tmp_path, tmp_path / "data", "--mapping", str(mapping))
    assert code == 0, out


def test_money_and_day_month_values_suggest_format(tmp_path: Path) -> None:
    text = HEADER + 'A1,"$1,200",pro,10,03/11/2025,2026-12-31,50\nA2,5000,pro,10,2025-01-01,,50\n'
    code, out = run_on(tmp_path, data_folder(tmp_path, text))
    assert code == 2
    # the message that stops the run shows the first problem and what to add
    assert "The first: accounts.csv row 2, arr '$1,200': not a number" in out
    assert "add format: money to this column in the mapping file" in out
    code, _ = run_on(tmp_path, tmp_path / "data", "--max-reject-rate", "1")
    report = pacsv.read_csv(tmp_path / "out" / "rejected_rows.csv").to_pylist()
    reasons = {r["field"]: r["reason"] for r in report}
    assert "format: money" in reasons["arr"]
    assert "add format: '%m/%d/%Y' (or '%d/%m/%Y')" in reasons["contract_start"]


def test_format_money_reads_currency_and_thousands(tmp_path: Path) -> None:
    text = HEADER + 'A1,"$1,200.50",pro,10,2025-01-01,,"1,050"\nA2," 5,000 ",pro,10,2025-01-01,,7\n'
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "tables:\n  accounts:\n    columns:\n"
        "      arr: {format: money}\n      employees: {format: money}\n"
    )
    code, out = run_on(tmp_path, data_folder(tmp_path, text), "--mapping", str(mapping))
    assert code == 0, out
    assert "no rejected rows" in out and "$6,200" in out  # 1,200.50 + 5,000 (rounded)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["accounts"] == 2
    mapping.write_text("tables:\n  accounts:\n    columns:\n      plan: {format: money}\n")
    with pytest.raises(MappingFileError, match=r"plan.format: found 'money'; expected it only"):
        load_mapping(mapping)


# --- YAML syntax and presets ------------------------------------------------------------


def test_yaml_syntax_errors_show_file_line_column_and_a_plain_message(tmp_path: Path) -> None:
    bad = tmp_path / "model.yaml"
    bad.write_text("tiers:\n  - id: high\n   name: x\n")
    with pytest.raises(ModelFileError) as err:
        load_model(bad)
    assert err.value.problems == [
        f"{bad}:3:4: not valid YAML: the indentation does not line up with the lines above"
    ]
    code, out = run_cli("model", "check", str(bad))
    assert code == 2 and f"{bad}:3:4: not valid YAML" in out and "<block" not in out

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("tables:\n  accounts:\n    columns:\n      arr: MRR: x\n")
    with pytest.raises(MappingFileError) as merr:
        load_mapping(mapping)
    assert f"{mapping}:4:15: not valid YAML: a ':' where no key can start" in str(merr.value)

    team = tmp_path / "team.yaml"
    team.write_text("csms:\n\t- name: A\n")
    with pytest.raises(TeamFileError) as terr:
        read_team_file(team)
    assert str(terr.value) == f"{team}:2:1: not valid YAML: a tab: YAML indents with spaces only"

    ws = init_workspace(tmp_path / "ws")
    (ws.root / "touchmodel.yaml").write_text("model: [model.yaml\n")
    with pytest.raises(WorkspaceError) as werr:
        load_workspace(ws.root)
    assert "touchmodel.yaml:2:1: not valid YAML: a '[' list that is not closed" in str(werr.value)


def test_a_preset_typo_gets_a_suggestion(tmp_path: Path) -> None:
    data = data_folder(tmp_path, HEADER + "A1,1,p,1,2025-01-01,,5\n")
    code, out = run_on(tmp_path, data, "--model", "standrd")
    assert code == 2 and "did you mean 'standard'?" in out
    code, out = run_cli("model", "show", "hybird")
    assert code == 2 and "did you mean 'hybrid'?" in out
    code, out = run_cli("init", str(tmp_path / "ws"), "--preset", "standrd")
    assert code == 2 and "did you mean 'standard'?" in out


# --- runs, keys, queues -----------------------------------------------------------------


def test_a_header_only_accounts_file_warns(tmp_path: Path) -> None:
    code, out = run_on(tmp_path, data_folder(tmp_path, HEADER))
    assert code == 0
    assert "warning: accounts.csv: 0 accounts (the file has no rows after its header)" in out
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["accounts"] == 0 and "0 accounts" in record["warnings"][0]


def test_a_csm_key_must_name_someone_on_the_team(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    base = ["keys", "create", "--kind", "api", "--role", "csm", "-w", str(ws.root)]
    code, out = run_cli(*base, "--csm", "Nobody")
    assert code == 2
    assert "--csm: 'Nobody' is not on the team" in out and "'Dana Reyes'" in out
    code, out = run_cli(*base, "--csm", "dana reyes")
    assert code == 2 and "did you mean 'Dana Reyes'?" in out
    code, out = run_cli(*base, "--csm", "Dana Reyes")
    assert code == 0, out


def test_tasks_owner_matches_ignoring_case(tmp_path: Path, state_url: str) -> None:
    ws = init_workspace(tmp_path / "ws", state=state_url)
    store = Store(ws.state_url)
    try:
        with store.transaction() as s:
            sync_trigger_items(
                s, load_model("standard"), as_of=dt.date(2026, 11, 1), account_ids=("A1",),
                fired=[Fired("A1", "risk.nps_detractor", "csm_immediate_followup", "")],
                owners={"A1": "Dana Reyes"}, run_id=None,
            )  # fmt: skip
    finally:
        store.close()
    for asked in ("dana reyes", "DANA REYES", "Dana Reyes"):
        code, out = run_cli("tasks", "--owner", asked, "--json", "-w", str(ws.root))
        assert code == 0, out
        assert [i["owner"] for i in json.loads(out)] == ["Dana Reyes"], asked
    code, out = run_cli("tasks", "--owner", "dana", "--json", "-w", str(ws.root))
    assert json.loads(out) == []
