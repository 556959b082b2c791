"""--data as a database URL: the same decisions from files, a DuckDB file and a PostgreSQL schema."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import ibis
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.conftest import postgres_database
from touchmodel.cli.app import app
from touchmodel.demo.generator import generate
from touchmodel.engine import Engine, RunResult
from touchmodel.errors import DataError, MappingFileError

AS_OF = dt.date(2026, 11, 1)
TABLES = ["accounts", "usage_events", "tickets", "nps_responses", "payments", "contacts"]
# One table by SQL (the same text is DuckDB's and PostgreSQL's SQL), the rest by name.
SQL_NPS = "select * from nps_responses where responded_at <= $as_of and score is not null"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "data"
    generate(folder, accounts=150, as_of=AS_OF, seed=9)
    return folder


@pytest.fixture(scope="module")
def from_files(demo: Path) -> RunResult:
    return Engine.from_spec("standard").run(demo, as_of=AS_OF, out=demo.parent / "out-files")


def assert_same_files(out: Path, expected: RunResult) -> None:
    files = expected.files["decisions_csv"].parent
    for name in ("decisions.csv", "decisions.parquet"):
        assert (out / name).read_bytes() == (files / name).read_bytes(), name


def _parquet(demo: Path, name: str) -> Path:
    return demo / f"{name}.parquet" if (demo / f"{name}.parquet").exists() else demo / name


def assert_same_run(got: RunResult, expected: RunResult) -> None:
    assert got.decisions.num_rows == expected.decisions.num_rows > 100
    assert got.decisions.column_names == expected.decisions.column_names
    for name in expected.decisions.column_names:
        assert got.decisions[name].to_pylist() == expected.decisions[name].to_pylist(), name
    assert got.excluded == expected.excluded
    assert got.counts == expected.counts
    assert got.rejects == expected.rejects


@pytest.fixture()
def duckdb_file(demo: Path, tmp_path: Path) -> Path:
    db = tmp_path / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        for name in TABLES:
            path = _parquet(demo, name)
            pattern = f"{path}/*.parquet" if path.is_dir() else str(path)
            con.execute(f"create table {name} as select * from read_parquet('{pattern}')")
    return db


def test_a_duckdb_file_gives_the_decisions_of_the_files(
    duckdb_file: Path, from_files: RunResult, tmp_path: Path
) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(f'tables:\n  nps_responses:\n    sql: "{SQL_NPS}"\n')
    result = Engine.from_spec("standard").run(
        f"duckdb://{duckdb_file}", as_of=AS_OF, mapping=mapping
    )
    assert_same_run(result, from_files)


def test_the_cli_takes_a_duckdb_url(
    duckdb_file: Path, tmp_path: Path, from_files: RunResult
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", "--data", f"duckdb://{duckdb_file}", "--as-of", AS_OF.isoformat(), "--out", str(out), "--no-state",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_same_files(out, from_files)


@pytest.fixture()
def postgres_schema(demo: Path) -> Iterator[str]:
    """A fresh database with the demo tables in schema ``crm``; yields its URL (with password)."""
    with postgres_database() as url:
        parts = make_url(url)
        pg = ibis.postgres.connect(
            host=parts.host, port=parts.port or 5432, user=parts.username,
            password=parts.password, database=parts.database,
        )  # fmt: skip
        pg.raw_sql("create schema crm").close()
        for name in TABLES:
            pg.create_table(name, pq.read_table(_parquet(demo, name)), database="crm")
        pg.disconnect()
        yield url


def test_a_postgresql_schema_gives_the_decisions_of_the_files(
    postgres_schema: str, from_files: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = make_url(postgres_schema)
    secret = parts.password
    assert secret
    monkeypatch.setenv("TM_TEST_PG_PASSWORD", secret)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "warehouse: {password_env: TM_TEST_PG_PASSWORD, schema: crm}\n"
        f'tables:\n  nps_responses:\n    sql: "{SQL_NPS.replace("from ", "from crm.")}"\n'
    )
    url = f"postgresql://{parts.username}@{parts.host}:{parts.port or 5432}/{parts.database}"
    result = Engine.from_spec("standard").run(url, as_of=AS_OF, mapping=mapping)
    assert_same_run(result, from_files)

    # The CLI: same files, and the password is in no output, file or message.
    out = tmp_path / "out"
    cli = CliRunner().invoke(app, [
        "run", "--data", url, "--mapping", str(mapping), "--as-of", AS_OF.isoformat(), "--out", str(out),
        "--no-state",
    ])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert_same_files(out, from_files)
    assert secret not in cli.output
    for written in out.iterdir():
        assert secret.encode() not in written.read_bytes(), written.name
    assert json.loads((out / "run.json").read_text())

    # An error in the query names the table and says what PostgreSQL said.
    mapping.write_text(
        "warehouse: {password_env: TM_TEST_PG_PASSWORD, schema: crm}\n"
        "tables:\n  nps_responses:\n    sql: select scor from crm.nps_responses\n"
    )
    with pytest.raises(MappingFileError, match=r"tables\.nps_responses\.sql: PostgreSQL: .*scor"):
        Engine.from_spec("standard").run(url, as_of=AS_OF, mapping=mapping)
    # Without the variable, a clear error (never a password prompt or a silent empty password).
    monkeypatch.delenv("TM_TEST_PG_PASSWORD")
    with pytest.raises(DataError, match=r"TM_TEST_PG_PASSWORD .* is not set"):
        Engine.from_spec("standard").run(url, as_of=AS_OF, mapping=mapping)


def test_a_password_in_the_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the URL holds a password"):
        Engine.from_spec("standard").run("postgresql://me:secret@localhost/db", as_of=AS_OF)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("duckdb:///nowhere/x.duckdb", "no DuckDB database file"),
        ("mysql://me@host/db", "expected a folder, duckdb:///file.db or postgresql://user@host/db"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        Engine.from_spec("standard").run(url, as_of=AS_OF)


def test_a_database_source_takes_no_file_key(duckdb_file: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("tables:\n  tickets:\n    file: tickets.csv\n")
    with pytest.raises(
        MappingFileError, match=r"tables\.tickets\.file: found 'tickets\.csv'; expected 'sql'"
    ):
        Engine.from_spec("standard").run(f"duckdb://{duckdb_file}", as_of=AS_OF, mapping=mapping)


def test_a_database_without_accounts_says_so(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(DataError, match="no 'accounts' table"):
        Engine.from_spec("standard").run(f"duckdb://{db}", as_of=AS_OF)


def test_a_workspace_reads_its_data_from_a_database_url(
    duckdb_file: Path, tmp_path: Path, from_files: RunResult
) -> None:
    import yaml

    from touchmodel.workspace import WORKSPACE_FILE, init_workspace

    ws = init_workspace(tmp_path / "ws")
    config = yaml.safe_load((ws.root / WORKSPACE_FILE).read_text())
    config.update(data=f"duckdb://{duckdb_file}", model="standard")
    (ws.root / WORKSPACE_FILE).write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["run", "-w", str(ws.root), "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    assert "State: run 1 recorded" in result.output
    assert_same_files(ws.root / "runs" / AS_OF.isoformat(), from_files)
