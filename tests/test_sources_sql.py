"""Contract tables defined by SQL in the mapping file, and the normalized example.

The example's decisions are checked against the same export flattened by
hand (plain Python below, no SQL), run without a mapping file.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from importlib import resources
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from touchmodel.demo.normalized import write_normalized
from touchmodel.engine import Engine
from touchmodel.errors import DataError, MappingFileError
from touchmodel.sources import load_folder, load_mapping

AS_OF = dt.date(2026, 11, 1)
EXAMPLE_MAPPING = Path(
    str(resources.files("touchmodel").joinpath("examples", "normalized-mapping.yaml"))
)


@pytest.fixture(scope="module")
def normalized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("normalized")
    write_normalized(folder, customers=150, seed=11, as_of=AS_OF)
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _day(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def flatten_by_hand(src: Path, out: Path, as_of: dt.date) -> None:
    """The normalized export as contract files, written the way a pandas script would."""
    out.mkdir()
    subs = _rows(src / "subscriptions.csv")
    active: dict[str, list[dict[str, str]]] = defaultdict(list)
    first: dict[str, dt.date] = {}
    for s in subs:
        start, end = _day(s["started_on"]), _day(s["ended_on"])
        assert start is not None
        first[s["customer_id"]] = min(first.get(s["customer_id"], start), start)
        if start <= as_of and (end is None or end > as_of):
            active[s["customer_id"]].append(s)
    latest: dict[str, tuple[dt.date, str]] = {}
    for e in _rows(src / "churn_events.csv"):
        day = _day(e["effective_date"])
        assert day is not None
        if day <= as_of and (e["customer_id"] not in latest or day > latest[e["customer_id"]][0]):
            latest[e["customer_id"]] = (day, e["event_type"])
    accounts = []
    for c in _rows(src / "customers.csv"):
        cid, mine = c["customer_id"], active[c["customer_id"]]
        churn = latest.get(cid)
        accounts.append({
            "account_id": cid,
            "name": c["company_name"],
            "arr": sum(float(s["mrr"]) for s in mine) * 12,
            "contract_start": first[cid].isoformat(),
            "employees": c["employee_count"],
            "plan": max(mine, key=lambda s: float(s["mrr"]))["plan_name"] if mine else "",
            "plan_limit": sum(int(s["monthly_quota"]) for s in mine) if mine else "",
            "seats": sum(int(s["seats"]) for s in mine) if mine else "",
            "industry": c["industry"],
            "strategic": c["key_account"] == "yes",
            "csm": c["owner"],
            "churned_on": churn[0].isoformat() if churn and churn[1] == "churned" else "",
        })  # fmt: skip
    with (out / "accounts.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(accounts[0]))
        writer.writeheader()
        writer.writerows(accounts)

    owner = {s["subscription_id"]: s["customer_id"] for s in subs}
    usage = pq.read_table(src / "feature_usage.parquet").to_pydict()
    pq.write_table(
        pa.table({
            "account_id": [owner[s] for s in usage["subscription_id"]],
            "timestamp": usage["used_at"],
            "event": usage["feature"],
            "user_id": usage["user_email"],
            "quantity": usage["count"],
        }),
        out / "usage_events.parquet",
    )  # fmt: skip

    renames = {"customer_id": "account_id", "opened": "opened_at", "closed": "closed_at",
               "csat": "satisfaction"}  # fmt: skip
    tickets = _rows(src / "support_tickets.csv")
    with (out / "tickets.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[renames.get(k, k) for k in tickets[0]])
        writer.writeheader()
        writer.writerows({renames.get(k, k): v for k, v in t.items()} for t in tickets)

    with (out / "nps_responses.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["account_id", "responded_at", "score"])
        for r in _rows(src / "survey_responses.csv"):
            if r["question"] == "nps" and r["score"]:
                writer.writerow([r["customer_id"], r["submitted_at"], r["score"]])


@pytest.mark.parametrize("as_of", [AS_OF, dt.date(2026, 8, 15)])
def test_the_normalized_example_decides_like_the_same_data_flattened_by_hand(
    normalized: Path, tmp_path: Path, as_of: dt.date
) -> None:
    engine = Engine.from_spec("standard")
    by_sql = engine.run(normalized, as_of=as_of, mapping=EXAMPLE_MAPPING)
    flat = tmp_path / "flat"
    flatten_by_hand(normalized, flat, as_of)
    by_hand = engine.run(flat, as_of=as_of)

    assert by_sql.rejects == by_hand.rejects
    assert sum(r["rejected"] for r in by_sql.rejects.values()) == 0
    assert by_sql.excluded == by_hand.excluded
    assert by_sql.excluded["churned"] > 0  # churn events are used
    assert by_sql.decisions.num_rows == by_hand.decisions.num_rows > 100
    assert by_sql.decisions.column_names == by_hand.decisions.column_names
    for name in by_sql.decisions.column_names:
        assert by_sql.decisions[name].to_pylist() == by_hand.decisions[name].to_pylist(), name
    # Signals too: ARR from the subscriptions active on the date, usage keyed to accounts.
    sql_sig, hand_sig = by_sql.accounts, by_hand.accounts
    for name in (
        "arr",
        "plan",
        "seats",
        "plan_limit",
        "usage_30d",
        "tickets_30d",
        "nps_score_180d",
    ):
        assert sql_sig[name].to_pylist() == pytest.approx(hand_sig[name].to_pylist()), name


def test_as_of_is_a_parameter_of_the_query(tmp_path: Path) -> None:
    (tmp_path / "subs.csv").write_text(
        "customer,mrr,started\nA,100,2026-01-01\nA,50,2026-10-15\nB,10,2026-12-01\n"
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "tables:\n  accounts:\n    sql: |\n"
        "      select customer as account_id, sum(mrr) * 12 as arr, min(started) as contract_start\n"
        "      from subs where started <= $as_of group by customer order by customer\n"
    )
    con = ibis.duckdb.connect()
    for as_of, arr in [(dt.date(2026, 10, 1), [1200.0]), (dt.date(2026, 11, 1), [1800.0]),
                       (dt.date(2026, 12, 1), [1800.0, 120.0])]:  # fmt: skip
        loaded = load_folder(con, tmp_path, mapping=load_mapping(mapping), as_of=as_of)
        assert loaded.tables["accounts"].arr.to_pyarrow().to_pylist() == arr
        assert loaded.files["accounts"] == "tables.accounts.sql"


def test_query_results_are_typed_checked_and_reported_like_a_file(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_text(
        "id,revenue,since,vip,tier\nA,1000,2024-01-01,Y,gold\nB,oops,2024-01-01,N,silver\n"
        "C,500,2024-13-01,N,gold\nA,700,2024-01-01,N,gold\n"
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "tables:\n  accounts:\n"
        "    sql: select id as account_id, revenue, since as contract_start, vip, tier from crm\n"
        "    columns:\n"
        "      arr: {from: revenue, scale: 12}\n"
        "      strategic: {from: vip, values: {Y: true, N: false}}\n"
        "      segment: {from: tier, values: {gold: premium}}\n"
    )
    engine = Engine.from_spec("standard")
    result = engine.run(tmp_path, as_of=AS_OF, mapping=mapping, out=tmp_path / "out",
                        max_reject_rate=1.0)  # fmt: skip
    assert result.decisions["account_id"].to_pylist() == ["A"]
    assert result.accounts["arr"].to_pylist() == [12_000.0]
    assert result.accounts["strategic"].to_pylist() == [True]
    assert result.accounts["segment"].to_pylist() == ["premium"]
    assert result.rejects["accounts"] == {"rows_read": 4, "rejected": 3, "values_nulled": 0}
    with (tmp_path / "out" / "rejected_rows.csv").open(newline="") as fh:
        report = list(csv.DictReader(fh))
    found = {(r["file"], r["row"], r["field"], r["value"]) for r in report}
    assert found == {
        ("tables.accounts.sql", "2", "revenue", "oops"),
        ("tables.accounts.sql", "3", "contract_start", "2024-13-01"),
        ("tables.accounts.sql", "4", "account_id", "A"),
    }


def _load_with(tmp_path: Path, sql: str, **files: str) -> None:
    for name, text in {"crm.csv": "id,arr\nA,1\n", **files}.items():
        (tmp_path / name).write_text(text)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "tables:\n  accounts:\n    sql: |\n"
        + "".join(f"      {line}\n" for line in sql.splitlines())
    )
    load_folder(ibis.duckdb.connect(), tmp_path, mapping=load_mapping(mapping), as_of=AS_OF)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select id as account_id,\n       revenu as arr\nfrom crm",
         'tables.accounts.sql at line 2, column 8: Binder Error: Referenced column "revenu" not found'),
        ("select id from crm\njoin nowhere using (id)",
         "tables.accounts.sql at line 2, column 6: Catalog Error: Table with name nowhere does not exist"),
        ("select * fro crm", "tables.accounts.sql at line 1, column 14: Parser Error: syntax error"),
        ("select cast(id || '!' as integer) as account_id from crm",
         "tables.accounts.sql at line 1, column 8: Conversion Error: Could not convert string 'A!' to INT32"),
        ("select cast(id as integer) as account_id from crm",
         'tables.accounts.sql: Conversion Error: CSV Error on Line: 2 Original Line: A,1 Error when converting '
         'column "id". Could not convert string "A" to \'INTEGER\''),
        ("select 1 as a; delete from crm", "tables.accounts.sql: found 2 statement(s); expected one SELECT"),
        ("select id from crm where arr > $min_arr",
         "tables.accounts.sql: Invalid Input Error: Values were not provided for the following parameters: "
         "min_arr (the query may use one parameter: $as_of"),
    ],
)  # fmt: skip
def test_a_bad_query_names_the_table_and_the_position(
    tmp_path: Path, sql: str, expected: str
) -> None:
    with pytest.raises(MappingFileError) as err:
        _load_with(tmp_path, sql)
    assert expected in str(err.value)
    assert str(tmp_path / "m.yaml") in str(err.value)


def test_file_and_sql_together_is_a_mapping_error(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("tables:\n  accounts:\n    file: crm.csv\n    sql: select 1\n")
    with pytest.raises(MappingFileError, match="give either 'file' or 'sql', not both"):
        load_mapping(mapping)


def test_two_files_with_one_view_name_are_an_error(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["A"]}), tmp_path / "crm.parquet")
    with pytest.raises(DataError, match=r"the SQL view 'crm' would read crm\.csv, crm\.parquet"):
        _load_with(tmp_path, "select id as account_id from crm")


def test_a_folder_of_parts_is_one_view(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    for i in range(2):
        pq.write_table(
            pa.table({"acct": ["A"], "n": [i + 1]}), tmp_path / "events" / f"part-{i}.parquet"
        )
    (tmp_path / "crm.csv").write_text("id,arr,start\nA,10,2024-01-01\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "tables:\n  accounts:\n    sql: >-\n      select id as account_id, arr + (select sum(n) from events)"
        " as arr, start as contract_start from crm\n"
    )
    loaded = load_folder(
        ibis.duckdb.connect(), tmp_path, mapping=load_mapping(mapping), as_of=AS_OF
    )
    assert loaded.tables["accounts"].arr.to_pyarrow().to_pylist() == [13.0]
