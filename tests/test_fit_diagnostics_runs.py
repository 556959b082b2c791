"""Data-fit diagnostics as a user meets them: renamed events, `model check --data`,
the run summary and run.json, the demo, the run record and the dashboard."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from markupsafe import escape
from typer.testing import CliRunner

from tests.live_server import build_workspace, live_server
from touchmodel.cli.app import app
from touchmodel.demo.generator import generate
from touchmodel.engine import Engine, RunResult
from touchmodel.report import summarize
from touchmodel.state.db import Store
from touchmodel.state.tables import Run

runner = CliRunner()
AS_OF = dt.date(2026, 11, 1)
WIDE = {"COLUMNS": "220"}


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's console took its width when first imported (80 columns under xdist, where
    another test imported it first); the findings are checked unwrapped, as WIDE asks."""
    from touchmodel.cli import app as cli_app

    monkeypatch.setattr(cli_app.console, "width", int(WIDE["COLUMNS"]))


# The standard preset's triggers that read a signal of a named event group
# (core, premium, integration, executive, milestone, seats): renaming every
# event leaves them nothing to count. The usage group is "*" minus a few
# prefixes, so the usage triggers still match the renamed names.
NEED_NAMED_EVENTS = {
    "risk.feature_abandonment",
    "expansion.seat_growth",
    "expansion.premium_interest",
    "expansion.integration",
    "complexity.enterprise_feature_on_starter",
    "executive.intent",
    "lifecycle.milestone",
}


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fit") / "data"
    generate(folder, accounts=600, as_of=AS_OF, seed=11)
    return folder


@pytest.fixture(scope="module")
def renamed(demo_data: Path) -> Path:
    """The demo data with every usage event renamed (``report.created`` -> ``acme_report_created``)."""
    out = demo_data.parent / "renamed"
    shutil.copytree(demo_data, out)
    files = sorted((out / "usage_events").glob("*.parquet")) or [out / "usage_events.parquet"]
    for f in files:
        t = pq.read_table(f)
        new = pc.binary_join_element_wise("acme_", pc.replace_substring(t["event"], ".", "_"), "")
        pq.write_table(t.set_column(t.schema.get_field_index("event"), "event", new), f)
    return out


def flat(text: str) -> str:
    """Printed text without table borders and line breaks, to find a wrapped sentence in."""
    return " ".join(text.replace("│", " ").split())


def fired_counts(result: RunResult) -> dict[str, int]:
    return summarize(Engine.from_spec("standard").model, result).triggers


def no_events(result: RunResult) -> set[str]:
    assert result.diagnostics is not None
    return {
        f.subjects[0]
        for f in result.diagnostics.findings
        if f.kind == "cannot_fire" and f.cause == "no_events"
    }


def test_renamed_events_name_every_trigger_that_can_no_longer_fire(
    demo_data: Path, renamed: Path
) -> None:
    engine = Engine.from_spec("standard")
    before = engine.run(demo_data, as_of=AS_OF)
    after = engine.run(renamed, as_of=AS_OF)
    assert no_events(before) == set()
    named = no_events(after)
    assert named == NEED_NAMED_EVENTS
    # Every trigger that fired on the real names and fires on no account after
    # the rename is named, and each one named really fires on nobody now.
    was, now = fired_counts(before), fired_counts(after)
    silenced = {t for t, n in was.items() if n and not now.get(t)}
    assert silenced, "the demo data fires triggers of the named groups"
    assert silenced <= named
    assert all(not now.get(t) for t in named)
    # Each names the event group and says none of the data's names match it.
    assert after.diagnostics is not None
    why = {f.subjects[0]: f.message for f in after.diagnostics.findings}
    assert "event group 'core' (report.created, dashboard.viewed" in why["risk.feature_abandonment"]
    assert "which matches none of the" in why["lifecycle.milestone"]


def test_model_check_with_data_prints_the_findings(renamed: Path, tmp_path: Path) -> None:
    team = Path(__file__).parents[1] / "src/touchmodel/examples/team.yaml"
    result = runner.invoke(
        app,
        ["model", "check", "standard", "--data", str(renamed), "--as-of", "2026-11-01",
         "--team", str(team)],
        env=WIDE,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "standard: OK" in out and "Model fit:" in out
    for trigger in NEED_NAMED_EVENTS:
        assert f"{trigger} cannot fire: it reads" in out
    assert "the team's 13 CSMs can work 130 a week" in out
    assert not list(tmp_path.iterdir()), "model check writes nothing"
    # A bad team file is one line and exit 2, like every user error.
    bad = runner.invoke(
        app, ["model", "check", "standard", "--data", str(renamed), "--team", "nope.yaml"]
    )
    assert bad.exit_code == 2 and "nope.yaml" in bad.output


def test_the_run_summary_and_run_json_carry_the_diagnostics(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # outside any workspace
    monkeypatch.delenv("TOUCHMODEL_WORKSPACE", raising=False)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", "--data", str(demo_data), "--out", str(out), "--as-of", "2026-11-01"],
        env=WIDE,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    diag = record["diagnostics"]
    assert diag["accounts"] == record["accounts"] > 0
    assert diag["event_names"] > 0
    risk = diag["risk"]
    decisions = pq.read_table(out / "decisions.parquet")
    at_risk = pc.sum(pc.equal(decisions["lifecycle_stage"], "at_risk")).as_py()
    assert risk["at_risk"] == at_risk and risk["team_fte"] is None
    pairs = {" & ".join(f["subjects"]) for f in diag["findings"] if f["kind"] == "overlap"}
    assert "risk.usage_decline & risk.usage_drop_mom" in pairs
    for f in diag["findings"]:
        assert set(f) == {"kind", "cause", "subjects", "message", "numbers"}
        assert f["message"] in flat(result.stdout) or f["cause"] == "missing_input"
    assert f"At risk: {risk['share']:.1%} of accounts" in result.stdout


def test_the_demo_summary_shows_the_diagnostics(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "-n", "150", "--dir", str(tmp_path), "--as-of", "2026-11-01"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "Model fit" in result.stdout and "At risk:" in result.stdout
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["diagnostics"]["accounts"] == record["accounts"]


def test_a_workspace_run_records_them_and_the_dashboard_lists_them(
    state_url: str, tmp_path: Path
) -> None:
    built = build_workspace(tmp_path / "ws", accounts=80, state_url=state_url)
    store = Store(built.ws.state_url)
    try:
        with store.transaction() as s:
            run = s.query(Run).order_by(Run.id.desc()).first()
            assert run is not None and run.diagnostics is not None
            stored, run_id = run.diagnostics, run.id
    finally:
        store.close()
    # The workspace's team file is known: the at-risk work is set against it.
    assert stored["risk"]["team_fte"] > 0 and stored["risk"]["capacity_per_week"] > 0
    record = json.loads((built.ws.out_dir(AS_OF.isoformat()) / "run.json").read_text())
    assert record["diagnostics"] == stored
    with live_server(built.ws) as server:
        admin = {"Authorization": f"Bearer {built.admin_token}"}
        csm = {"Authorization": f"Bearer {built.csm_token}"}
        api = httpx.get(f"{server.url}/api/runs/{run_id}", headers=admin).json()
        assert api["diagnostics"] == stored
        assert (
            httpx.get(f"{server.url}/api/runs/{run_id}", headers=csm).json()["diagnostics"] is None
        )
        for token, shown in ((built.admin_token, True), (built.csm_token, False)):
            with httpx.Client(base_url=server.url) as client:
                page = client.get("/login").text
                csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
                client.post("/login", data={"token": token, "csrf_token": csrf})
                html = client.get("/").text
            assert ('id="model-fit"' in html) is shown
            if shown:
                assert f"run {run_id}, {AS_OF.isoformat()}" in html
                for f in stored["findings"]:
                    assert str(escape(f["message"])) in html
