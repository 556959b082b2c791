"""The foreign datasets load through the example mapping files shipped in the package."""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources
from pathlib import Path

import ibis
import pytest

from touchmodel.sources import LoadedData, load_folder, load_mapping

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
AS_OF = dt.date(2026, 11, 1)
ENGINE_LIMIT = 0.05  # the engine's default max reject rate

pytestmark = pytest.mark.skipif(
    not (DATASETS / "telco-customer-churn.csv").exists(),
    reason=f"foreign datasets not found at {DATASETS} (they live next to the repository)",
)


def example(name: str) -> Path:
    return Path(str(resources.files("touchmodel").joinpath("examples", name)))


def source_rows(name: str) -> list[dict[str, str]]:
    with (DATASETS / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def telco() -> LoadedData:
    mapping = load_mapping(example("telco-mapping.yaml"))
    return load_folder(ibis.duckdb.connect(), DATASETS, mapping=mapping, as_of=AS_OF)


@pytest.fixture(scope="module")
def saas() -> LoadedData:
    mapping = load_mapping(example("saas-smb-mapping.yaml"))
    return load_folder(ibis.duckdb.connect(), DATASETS, mapping=mapping, as_of=AS_OF)


def test_examples_ship_inside_the_package() -> None:
    for name in ("telco-mapping.yaml", "saas-smb-mapping.yaml"):
        mapping = load_mapping(example(name))
        assert mapping.max_reject_rate == ENGINE_LIMIT
        assert "accounts" in mapping.tables


def test_telco_loads_and_reports_the_blank_total_charges(telco: LoadedData) -> None:
    assert telco.counts == {"accounts": 7043}
    telco.rejects.check_rate(ENGINE_LIMIT)
    assert telco.rejects.summary()["accounts"] == {
        "rows_read": 7043,
        "rejected": 0,
        "values_nulled": 11,
    }
    entries = telco.rejects.to_pyarrow().to_pylist()
    blanks = [
        i + 2
        for i, r in enumerate(source_rows("telco-customer-churn.csv"))
        if not r["TotalCharges"].strip()
    ]
    assert [e["row"] for e in entries] == blanks
    assert {(e["field"], e["value"], e["action"]) for e in entries} == {
        ("TotalCharges", " ", "value set to null")
    }


def test_telco_derived_fields(telco: LoadedData) -> None:
    source = {r["customerID"]: r for r in source_rows("telco-customer-churn.csv")}
    accounts = {a["account_id"]: a for a in telco.tables["accounts"].to_pyarrow().to_pylist()}
    assert len(accounts) == len(source) == 7043
    for cid in ("7590-VHVEG", "3668-QPYBK", "4472-LVYGI"):
        src, acc = source[cid], accounts[cid]
        assert acc["arr"] == pytest.approx(float(src["MonthlyCharges"]) * 12)
        months = int(src["tenure"])
        year, month = divmod(AS_OF.year * 12 + AS_OF.month - 1 - months, 12)
        assert acc["contract_start"] == dt.date(year, month + 1, AS_OF.day)
        # The outcome is a label of its own: churners are customers on the as-of date.
        assert acc["churned_on"] is None
        assert acc["churn_label"] == (src["Churn"] == "Yes")
        assert acc["plan"] == {"Month-to-month": "month-to-month", "One year": "one-year",
                               "Two year": "two-year"}[src["Contract"]]  # fmt: skip
    churned = sum(1 for a in accounts.values() if a["churn_label"])
    assert churned == sum(1 for r in source.values() if r["Churn"] == "Yes")
    assert accounts["4472-LVYGI"]["total_charges"] is None
    assert accounts["7590-VHVEG"]["InternetService"] == "DSL"  # extra column kept


def test_saas_smb_loads_with_derived_ids_and_bands(saas: LoadedData) -> None:
    assert saas.counts == {"accounts": 2000}
    saas.rejects.check_rate(ENGINE_LIMIT)
    assert saas.rejects.summary()["accounts"]["rejected"] == 0
    source = source_rows("saas-smb-churn.csv")
    # The ids come from the file's rows (header = row 1); the table is kept in id order.
    by_id = {a["account_id"]: a for a in saas.tables["accounts"].to_pyarrow().to_pylist()}
    accounts = [by_id[f"smb-{i + 2}"] for i in range(2000)]
    assert len(by_id) == 2000
    bands = {"self-employed": 1, "1-10": 5, "10-50": 30, "50-100": 75, "100-250": 175}
    for src, acc in zip(source, accounts, strict=True):
        assert acc["employees"] == bands[src["company_size"]]
        assert acc["churned_on"] is None
        assert acc["churn_label"] == (src["churned"] == "1.0")
        assert acc["arr"] > 0
    first = accounts[0]
    # 2,048 GB ($20/month) + payroll active ($30/month), x 12.
    assert first["arr"] == pytest.approx(12 * (20 + 30))
    assert first["plan"] == "business"
    assert first["contract_start"] == dt.date(2026, 8, 1)
    assert first["csat_score"] == 9 and first["us_region"] == "West North Central"
