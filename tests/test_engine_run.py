"""Engine.run over a data folder on disk, through the real loader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from touchmodel.engine import Engine


def test_a_column_the_source_lacks_makes_its_rules_inactive(tmp_path: Path) -> None:
    accounts = pa.table({
        "account_id": ["A", "B"],
        "arr": [80_000.0, 5_000.0],
        "contract_start": [dt.date(2024, 1, 1), dt.date(2024, 1, 1)],
    })  # fmt: skip
    pq.write_table(accounts, tmp_path / "accounts.parquet")
    events = pa.table({
        "account_id": ["A"],
        "timestamp": [dt.datetime(2026, 10, 30, 12)],
        "event": ["report.created"],
    })  # fmt: skip
    pq.write_table(events, tmp_path / "usage_events.parquet")
    result = Engine.from_spec("standard").run(tmp_path, as_of=dt.date(2026, 11, 1))
    inactive = {r.id: r.reason for r in result.inactive}
    # No csm column at all: "nobody owns it" is unknown, so the rule must not fire.
    assert inactive["value.dedicated_csm"] == "needs has_csm: column 'accounts.csm' is missing"
    assert inactive["expansion.plan_capacity"] == (
        "needs plan_utilization: column 'accounts.plan_limit' is missing"
    )
    assert "value.dedicated_csm" not in "".join(result.decisions["triggers"].to_pylist())
    # A column with a contract default (strategic: false) is not "missing".
    assert not any("strategic" in r for r in inactive.values())


def test_an_empty_csm_column_is_data_and_the_rule_fires(tmp_path: Path) -> None:
    accounts = pa.table({
        "account_id": ["A"],
        "arr": [80_000.0],
        "contract_start": [dt.date(2024, 1, 1)],
        "csm": pa.array([None], type=pa.string()),
    })  # fmt: skip
    pq.write_table(accounts, tmp_path / "accounts.parquet")
    result = Engine.from_spec("standard").run(tmp_path, as_of=dt.date(2026, 11, 1))
    assert "value.dedicated_csm" in result.decisions["triggers"][0].as_py()
