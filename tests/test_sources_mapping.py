"""Mapping files: renames, value maps, formats, scales, derived fields, and their errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import ibis
import pytest

from touchmodel.errors import MappingFileError
from touchmodel.sources import LoadedData, Mapping, load_folder, load_mapping

AS_OF = dt.date(2026, 11, 1)


def setup(folder: Path, csv_text: str, mapping_yaml: str, name: str = "crm.csv") -> Mapping:
    (folder / name).write_text(csv_text, encoding="utf-8")
    path = folder / "mapping.yaml"
    path.write_text(mapping_yaml, encoding="utf-8")
    return load_mapping(path)


def load(folder: Path, mapping: Mapping | None) -> LoadedData:
    return load_folder(ibis.duckdb.connect(), folder, mapping=mapping, as_of=AS_OF)


def accounts(loaded: LoadedData) -> list[dict[str, Any]]:
    return loaded.tables["accounts"].to_pyarrow().to_pylist()


def report(loaded: LoadedData) -> list[dict[str, Any]]:
    return loaded.rejects.to_pyarrow().to_pylist()


def problems_of(err: pytest.ExceptionInfo[MappingFileError]) -> list[str]:
    return list(err.value.problems)  # type: ignore[attr-defined]


CRM = (
    "Customer ID,Company,MRR,Start,Key account,Renewal,Status,Seats\n"
    "C-1,Acme,1000,2025-03-01,Yes,01/03/2027,Active,12\n"
    "C-2,Beta,250.5,2024-07-15,No,15/07/2026,Churned,3\n"
)

CRM_MAPPING = """
max_reject_rate: 0.1
tables:
  accounts:
    file: crm.csv
    types: {Seats: integer}
    columns:
      account_id: Customer ID
      name: {from: Company}
      arr: {from: MRR, scale: 12}
      contract_start: Start
      strategic: {from: Key account, values: {Yes: true, No: false}}
      renewal_date: {from: Renewal, format: "%d/%m/%Y"}
      churned_on: {expr: "as_of if Status == 'Churned' else null"}
      seats: Seats
"""


# --- what a mapping does ------------------------------------------------------------


def test_renames_value_maps_formats_scale_and_exprs(tmp_path: Path) -> None:
    mapping = setup(tmp_path, CRM, CRM_MAPPING)
    assert mapping.max_reject_rate == 0.1
    loaded = load(tmp_path, mapping)
    acme, beta = accounts(loaded)
    assert acme["account_id"] == "C-1" and acme["name"] == "Acme"
    # ARR from MRR x 12.
    assert acme["arr"] == 12000.0 and beta["arr"] == 3006.0
    assert acme["contract_start"] == dt.date(2025, 3, 1)
    # YAML 1.1 would read the keys Yes/No as booleans; the mapping loader does not.
    assert (acme["strategic"], beta["strategic"]) == (True, False)
    assert acme["renewal_date"] == dt.date(2027, 3, 1)
    assert (acme["churned_on"], beta["churned_on"]) == (None, AS_OF)
    assert acme["seats"] == 12
    # Unmapped source columns pass through under their own names; renamed ones do not.
    assert acme["Status"] == "Active"
    assert "Customer ID" not in acme and "MRR" not in acme
    assert report(loaded) == []


def test_mapping_can_be_given_without_file_for_canonical_files(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "account_id,name,MRR,contract_start\nA1,Acme,10,2025-01-01\n",
        "tables: {accounts: {columns: {arr: {from: MRR, scale: 12}}}}",
        name="accounts.csv",
    )
    assert accounts(load(tmp_path, mapping))[0]["arr"] == 120.0


def test_several_date_formats_and_bad_formatted_dates(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,arr,start\nA1,1,31/12/2024\nA2,1,2024-12-30\nA3,1,12/31/2024\n",
        """
tables:
  accounts:
    file: crm.csv
    columns:
      account_id: id
      contract_start: {from: start, format: ["%d/%m/%Y", "%Y-%m-%d"]}
""",
    )
    loaded = load(tmp_path, mapping)
    assert [(a["account_id"], a["contract_start"]) for a in accounts(loaded)] == [
        ("A1", dt.date(2024, 12, 31)),
        ("A2", dt.date(2024, 12, 30)),
    ]
    [entry] = report(loaded)
    assert (entry["row"], entry["field"], entry["value"]) == (4, "start", "12/31/2024")
    assert "%d/%m/%Y or %Y-%m-%d" in entry["reason"]


def test_value_map_to_null_and_unlisted_values_pass_through(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,arr,start,tier\nA1,1,2025-01-01,Gold\nA2,1,2025-01-01,n/a\nA3,1,2025-01-01,silver\n",
        """
tables:
  accounts:
    file: crm.csv
    columns:
      account_id: id
      contract_start: start
      plan: {from: tier, values: {Gold: enterprise, "n/a": null}}
""",
    )
    plans = [a["plan"] for a in accounts(load(tmp_path, mapping))]
    assert plans == ["enterprise", None, "silver"]


def test_numeric_value_map_for_employee_bands(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,arr,start,size\nA1,1,2025-01-01,1-10\nA2,1,2025-01-01,50+\nA3,1,2025-01-01,huge\n",
        """
tables:
  accounts:
    file: crm.csv
    columns:
      account_id: id
      contract_start: start
      employees: {from: size, values: {"1-10": 5, "50+": 75}}
""",
    )
    loaded = load(tmp_path, mapping)
    assert [a["employees"] for a in accounts(loaded)] == [5, 75, None]
    [entry] = report(loaded)
    assert (entry["field"], entry["value"], entry["action"]) == (
        "size",
        "huge",
        "value set to null",
    )


def test_derived_fields_with_typed_sources_and_row_number(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "monthly,tenure,churn\n10.5,3,Yes\n20,0,No\n",
        """
tables:
  accounts:
    file: crm.csv
    types: {monthly: number, tenure: integer}
    columns:
      account_id: {expr: "'acct-' + text(row_number())"}
      arr: {expr: "monthly * 12"}
      contract_start: {expr: "add_months(as_of, -tenure)"}
      renewal_date: {expr: "add_months(contract_start, 12)"}
      churned_on: {expr: "as_of if churn == 'Yes' else null"}
      big: {expr: "arr > 200", type: bool}
""",
    )
    loaded = load(tmp_path, mapping)
    first, second = accounts(loaded)
    assert (first["account_id"], second["account_id"]) == ("acct-2", "acct-3")
    assert first["arr"] == 126.0
    assert first["contract_start"] == dt.date(2026, 8, 1)
    assert first["renewal_date"] == dt.date(2027, 8, 1)
    assert second["contract_start"] == AS_OF
    assert (first["churned_on"], second["churned_on"]) == (AS_OF, None)
    assert (first["big"], second["big"]) == (False, True)
    assert first["monthly"] == 10.5  # typed source columns pass through typed


def test_unreadable_typed_source_is_reported_against_its_column(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,monthly,start,total\nA1,ten,2025-01-01, \nA2,5,2025-01-01,7\n",
        """
tables:
  accounts:
    file: crm.csv
    types: {monthly: number, total: number}
    columns:
      account_id: id
      contract_start: start
      arr: {expr: "monthly * 12"}
      total_charges: {from: total}
""",
    )
    loaded = load(tmp_path, mapping)
    [kept] = accounts(loaded)
    assert (kept["account_id"], kept["arr"], kept["total_charges"]) == ("A2", 60.0, 7.0)
    [entry] = report(loaded)
    # The required ARR could not be computed: the row is rejected, and the
    # report names the source cell that caused it.
    assert (entry["row"], entry["field"], entry["value"], entry["action"]) == (
        2,
        "monthly",
        "ten",
        "row rejected",
    )
    assert entry["reason"].startswith("monthly: not a number")


def test_typed_extra_blank_is_nulled_not_rejected(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,arr,start,total\nA1,1,2025-01-01, \nA2,1,2025-01-01,7.5\n",
        """
tables:
  accounts:
    file: crm.csv
    types: {total: number}
    columns: {account_id: id, contract_start: start}
""",
    )
    loaded = load(tmp_path, mapping)
    assert [a["total"] for a in accounts(loaded)] == [None, 7.5]
    [entry] = report(loaded)
    assert (entry["field"], entry["value"], entry["action"]) == ("total", " ", "value set to null")


def test_extra_column_with_type_and_format(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,arr,start,seen\nA1,1,2025-01-01,03.10.2026\nA2,1,2025-01-01,yesterday\n",
        """
tables:
  accounts:
    file: crm.csv
    columns:
      account_id: id
      contract_start: start
      last_seen: {from: seen, type: date, format: "%d.%m.%Y"}
""",
    )
    loaded = load(tmp_path, mapping)
    assert [a["last_seen"] for a in accounts(loaded)] == [dt.date(2026, 10, 3), None]
    assert loaded.tables["accounts"].schema()["last_seen"] == ibis.dtype("date")
    assert report(loaded)[0]["field"] == "seen"


def test_child_table_mapping(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text("account_id,arr,contract_start\nA1,1,2025-01-01\n")
    mapping = setup(
        tmp_path,
        "Account,When,What,Count\nA1,2026-10-01 09:30,Login,2\nA1,2026-10-02 09:30,Export,\n",
        """
tables:
  usage_events:
    file: crm.csv
    columns:
      account_id: Account
      timestamp: When
      event: {from: What, values: {Login: session.start}}
      quantity: Count
""",
    )
    events = load(tmp_path, mapping).tables["usage_events"].to_pyarrow().to_pylist()
    assert [(e["event"], e["quantity"]) for e in events] == [
        ("session.start", 2.0),
        ("Export", 1.0),
    ]


# --- mapping file errors ---------------------------------------------------------


def test_shape_errors_name_file_path_value_and_expectation(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        """
max_reject_rate: 2
tables:
  acounts: {}
  accounts:
    file: 3
    types: {MRR: money}
    columns:
      arr: {from: MRR, expr: "MRR * 12"}
      name: {frm: Company}
""",
        encoding="utf-8",
    )
    with pytest.raises(MappingFileError) as err:
        load_mapping(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    problems = problems_of(err)
    assert any(p.startswith("max_reject_rate: found 2;") for p in problems)
    assert any(p.startswith("tables.accounts.file: found 3;") for p in problems)
    assert any(
        p.startswith("tables.accounts.types.MRR: found 'money'") and "'number'" in p
        for p in problems
    )
    assert any(p.startswith("tables.accounts.columns.arr: ") and "not both" in p for p in problems)
    assert any(
        p.startswith("tables.accounts.columns.name.frm: found 'Company'") and "from, expr" in p
        for p in problems
    )


def test_semantic_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        """
tables:
  acounts: {}
  accounts:
    columns:
      arr: {from: MRR, type: string}
      plan: {from: Tier, scale: 3}
      renewal_date: {from: R, format: "dd/mm/yyyy"}
      churned_on: {expr: "as_of if"}
""",
        encoding="utf-8",
    )
    with pytest.raises(MappingFileError) as err:
        load_mapping(path)
    problems = problems_of(err)
    expected = [
        "tables.acounts: found unknown table 'acounts'",
        "tables.accounts.columns.arr.type: found 'string'",
        "tables.accounts.columns.plan.scale: found 3.0",
        "tables.accounts.columns.renewal_date.format: found 'dd/mm/yyyy'",
        "tables.accounts.columns.churned_on.expr: found 'as_of if'",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(MappingFileError, match="not found"):
        load_mapping(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  accounts: [\n", encoding="utf-8")
    with pytest.raises(MappingFileError, match=r"(?s)bad.yaml: .*bad.yaml:\d+:\d+: not valid YAML"):
        load_mapping(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- accounts\n", encoding="utf-8")
    with pytest.raises(MappingFileError, match=r"\(top level\): found \['accounts'\]"):
        load_mapping(listy)
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_mapping(empty).tables == {}


def test_unknown_source_columns_name_the_path_and_the_columns_available(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,MRR,start\nA1,1,2025-01-01\n",
        """
tables:
  accounts:
    file: crm.csv
    types: {Seats: integer}
    columns:
      account_id: id
      arr: {from: MRRR}
      contract_start: {expr: "add_months(as_of, -tenure)"}
""",
    )
    with pytest.raises(MappingFileError) as err:
        load(tmp_path, mapping)
    assert str(err.value).startswith(str(tmp_path / "mapping.yaml"))
    problems = problems_of(err)
    assert len(problems) == 3
    assert problems[0].startswith("tables.accounts.types.Seats: found 'Seats'")
    assert problems[1] == (
        "tables.accounts.columns.arr.from: found 'MRRR' (did you mean 'MRR'?); expected a column of crm.csv "
        "(columns: id, MRR, start)"
    )
    assert problems[2].startswith("tables.accounts.columns.contract_start.expr: ")
    assert "'tenure'" in problems[2] and "id, MRR, start" in problems[2]


def test_expression_on_untyped_text_column_hints_at_types(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,monthly,start\nA1,1,2025-01-01\n",
        "tables: {accounts: {file: crm.csv, columns: {account_id: id, contract_start: start,"
        " arr: {expr: 'monthly * 12'}}}}",
    )
    with pytest.raises(MappingFileError) as err:
        load(tmp_path, mapping)
    [problem] = problems_of(err)
    assert problem.startswith("tables.accounts.columns.arr.expr: found 'monthly * 12'")
    assert "tables.accounts.types" in problem


def test_expressions_referring_to_each_other_in_a_circle(tmp_path: Path) -> None:
    mapping = setup(
        tmp_path,
        "id,start\nA1,2025-01-01\n",
        """
tables:
  accounts:
    file: crm.csv
    columns:
      account_id: id
      contract_start: start
      arr: {expr: "seats * 10"}
      seats: {expr: "arr / 10"}
""",
    )
    with pytest.raises(MappingFileError, match="circle"):
        load(tmp_path, mapping)
