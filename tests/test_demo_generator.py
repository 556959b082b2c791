"""The seeded demo-data generator: contract layout and types, determinism, realism."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchmodel.demo.generator import DemoSummary, generate
from touchmodel.sources.contract import TABLES

AS_OF = dt.date(2026, 11, 1)
AS_OF_TS = pd.Timestamp(AS_OF)
CHILD_TABLES = ("usage_events", "tickets", "nps_responses", "payments", "contacts")
# Independent of the generator's own mapping, so a type drift there fails here.
EXPECTED_TYPES = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "bool": pa.bool_(),
}
# The usage group of presets/_common.yaml: everything but these prefixes.
NON_USAGE = ("pricing.", "seat.", "security_questionnaire.", "rfp.", "sales.", "milestone.")
CORE = ("report.created", "dashboard.viewed", "workflow.run", "record.updated")
EXEC_TITLE = re.compile(
    r"(?i)\b(chief|ceo|cfo|coo|cto|cio|cro|cmo|ciso|vp|vice president|president)\b"
)


def table_files(folder: Path, name: str) -> list[Path]:
    """The parquet files of one table, in either layout the loader accepts."""
    single = folder / f"{name}.parquet"
    if single.exists():
        return [single]
    return sorted((folder / name).glob("part-*.parquet"))


def read(folder: Path, name: str) -> pa.Table:
    files = table_files(folder, name)
    assert files, f"no files for table {name}"
    return pa.concat_tables([pq.read_table(f) for f in files])


def read_all(folder: Path) -> dict[str, pa.Table]:
    return {name: read(folder, name) for name in TABLES}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, dict[str, pa.Table]]:
    out = tmp_path_factory.mktemp("demo") / "data"
    summary = generate(out, accounts=5000, as_of=AS_OF, seed=11, chunk_accounts=2000)
    return summary, read_all(out)


@pytest.fixture(scope="module")
def frames(demo: tuple[DemoSummary, dict[str, pa.Table]]) -> dict[str, pd.DataFrame]:
    return {name: t.to_pandas() for name, t in demo[1].items()}


@pytest.fixture(scope="module")
def usage(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-account usage in the last 30 days and the 30 before, as the signals define them."""
    e = frames["usage_events"]
    age = (AS_OF_TS - e.timestamp.dt.normalize()).dt.days
    is_usage = ~e.event.str.startswith(NON_USAGE)
    last = e.quantity.where(is_usage & (age < 30), 0).groupby(e.account_id).sum()
    prev = e.quantity.where(is_usage & (age >= 30) & (age < 60), 0).groupby(e.account_id).sum()
    a = frames["accounts"].set_index("account_id")
    out = pd.DataFrame({"last": last, "prev": prev}).reindex(a.index, fill_value=0.0)
    out["tenure"] = (AS_OF_TS - pd.to_datetime(a.contract_start)).dt.days
    out["churned"] = a.churned_on.notna()
    out["plan_limit"] = a.plan_limit
    out["change"] = np.where(
        out.prev > 0, (out["last"] - out.prev) / out.prev.where(out.prev > 0), np.nan
    )
    return out


# --- layout, schema, counts -------------------------------------------------


def test_layout_and_row_counts_match_the_summary(
    demo: tuple[DemoSummary, dict[str, pa.Table]],
) -> None:
    summary, tables = demo
    folder = summary.folder
    assert summary.accounts == 5000
    assert set(summary.rows) == set(TABLES)
    parts = sorted(p.name for p in (folder / "usage_events").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    for name in ("accounts", "tickets", "nps_responses", "payments", "contacts"):
        assert (folder / f"{name}.parquet").is_file()
        assert not (folder / name).exists()
    for name, table in tables.items():
        assert summary.rows[name] == table.num_rows, name
        assert table.num_rows > 0, name
    assert summary.rows["accounts"] == 5000
    # ~100 usage events per account on average.
    assert 80 <= summary.rows["usage_events"] / 5000 <= 130


def test_schema_matches_the_contract(demo: tuple[DemoSummary, dict[str, pa.Table]]) -> None:
    summary, _ = demo
    for name, spec in TABLES.items():
        for path in table_files(summary.folder, name):
            schema = pq.read_schema(path)
            assert schema.names == [c.name for c in spec.columns], (name, path)
            for col in spec.columns:
                assert schema.field(col.name).type == EXPECTED_TYPES[col.type], (name, col.name)


def test_required_columns_have_no_nulls(demo: tuple[DemoSummary, dict[str, pa.Table]]) -> None:
    for name, table in demo[1].items():
        for col in TABLES[name].required_columns:
            assert table[col].null_count == 0, (name, col)


def test_keys_are_unique_and_children_reference_accounts(
    frames: dict[str, pd.DataFrame],
) -> None:
    accounts = frames["accounts"]
    assert accounts.account_id.is_unique
    assert accounts.account_id.iloc[0] == "ACC-000001"
    assert accounts.account_id.str.fullmatch(r"ACC-\d{6}").all()
    known = set(accounts.account_id)
    for name in CHILD_TABLES:
        assert set(frames[name].account_id) <= known, name
    assert frames["tickets"].ticket_id.is_unique
    assert frames["contacts"].contact_id.is_unique
    assert frames["payments"].invoice_id.is_unique
    # An NPS answer names a contact of the same account.
    owners = frames["contacts"].set_index("contact_id").account_id
    nps = frames["nps_responses"]
    assert (owners.reindex(nps.contact_id).to_numpy() == nps.account_id.to_numpy()).all()


# --- determinism and chunking ------------------------------------------------


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", accounts=300, as_of=AS_OF, seed=3, chunk_accounts=120)
    b = generate(tmp_path / "b", accounts=300, as_of=AS_OF, seed=3, chunk_accounts=120)
    c = generate(tmp_path / "c", accounts=300, as_of=AS_OF, seed=4, chunk_accounts=120)
    assert a.rows == b.rows
    first, second, other = _bytes(a.folder), _bytes(b.folder), _bytes(c.folder)
    assert len(first) == 3 + 5  # three event parts and five single-file tables
    assert first == second
    assert first.keys() == other.keys()
    assert all(first[k] != other[k] for k in first)


def test_chunk_size_changes_files_but_not_content(tmp_path: Path) -> None:
    # 2300 accounts cross two random-number blocks; 700 does not align with them.
    small = generate(tmp_path / "small", accounts=2300, as_of=AS_OF, seed=5, chunk_accounts=700)
    whole = generate(tmp_path / "whole", accounts=2300, as_of=AS_OF, seed=5, chunk_accounts=50_000)
    assert len(table_files(small.folder, "usage_events")) == 4
    assert len(table_files(whole.folder, "usage_events")) == 1
    assert small.rows == whole.rows
    for name in TABLES:
        assert read(small.folder, name).equals(read(whole.folder, name)), name
    # Each part holds whole accounts: no account is split across parts.
    seen: set[str] = set()
    for part in table_files(small.folder, "usage_events"):
        ids = set(pq.read_table(part, columns=["account_id"])["account_id"].to_pylist())
        assert not ids & seen
        seen |= ids


def test_progress_reports_accounts_per_chunk(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    generate(
        tmp_path / "p",
        accounts=250,
        as_of=AS_OF,
        chunk_accounts=100,
        progress=lambda step, done, total: calls.append((step, done, total)),
    )
    assert [c[1] for c in calls] == [0, 100, 200, 250]
    assert {c[2] for c in calls} == {250}
    assert len({c[0] for c in calls}) == 1


def test_rerun_into_the_same_folder_leaves_no_stale_parts(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    generate(out, accounts=300, as_of=AS_OF, chunk_accounts=100)
    summary = generate(out, accounts=120, as_of=AS_OF, chunk_accounts=100)
    assert len(table_files(out, "usage_events")) == 2
    assert read(out, "usage_events").num_rows == summary.rows["usage_events"]
    assert read(out, "accounts").num_rows == 120


@pytest.mark.parametrize(("accounts", "chunk", "seed"), [(0, 10, 1), (10, 0, 1), (10, 10, -1)])
def test_rejects_bad_arguments(tmp_path: Path, accounts: int, chunk: int, seed: int) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, accounts=accounts, as_of=AS_OF, seed=seed, chunk_accounts=chunk)


# --- realism -----------------------------------------------------------------


def test_arr_range_tiers_and_plans(frames: dict[str, pd.DataFrame]) -> None:
    a = frames["accounts"]
    assert a.arr.min() >= 1_000 and a.arr.max() <= 1_000_000
    assert 10_000 <= a.arr.median() <= 14_500
    tiers = pd.cut(a.arr, [0, 10_000, 25_000, 100_000, np.inf], right=False)
    share = tiers.value_counts(normalize=True).sort_index().to_numpy()
    assert 0.36 <= share[0] <= 0.52  # digital, < $10K
    assert 0.20 <= share[1] <= 0.35  # low, $10K-25K
    assert 0.17 <= share[2] <= 0.32  # medium, $25K-100K
    assert 0.03 <= share[3] <= 0.08  # high, $100K+
    for edge in (10_000, 25_000, 50_000, 100_000):
        assert (a.arr == edge).sum() >= 3, edge
    medians = a.groupby("plan").arr.median()
    assert list(medians.sort_values().index) == ["starter", "growth", "business", "enterprise"]
    assert a.groupby("plan").plan_limit.nunique().eq(1).all()
    # Bigger contracts come with bigger companies and more seats.
    assert np.corrcoef(np.log(a.arr), np.log(a.employees))[0, 1] > 0.6
    assert (a.seats >= 1).all() and (a.employees >= a.seats).all()
    assert 0.007 <= a.strategic.mean() <= 0.025
    assert set(a.industry) > {"Software", "Healthcare"}


def test_csm_coverage_leaves_gaps_above_50k(frames: dict[str, pd.DataFrame]) -> None:
    a = frames["accounts"]
    big = a[a.arr >= 25_000]
    assert big.csm.notna().mean() >= 0.8
    missing = a[(a.arr >= 50_000) & a.csm.isna()]
    assert 5 <= len(missing) <= 0.3 * (a.arr >= 50_000).sum()
    assert a[(a.arr < 25_000) & ~a.strategic].csm.isna().all()


def test_contract_dates_renewals_and_churn(frames: dict[str, pd.DataFrame]) -> None:
    a = frames["accounts"]
    start = pd.to_datetime(a.contract_start)
    tenure = (AS_OF_TS - start).dt.days
    assert tenure.between(0, 3 * 366).all()
    assert 0.06 <= (tenure < 90).mean() <= 0.105
    renewal = pd.to_datetime(a.renewal_date)
    assert 0.16 <= renewal.isna().mean() <= 0.24
    known = renewal.notna()
    # The next anniversary of the contract start on or after the as-of date.
    assert (renewal[known] >= AS_OF_TS).all()
    assert (renewal[known] < AS_OF_TS + pd.Timedelta(days=366)).all()
    same_day = (renewal.dt.month == start.dt.month) & (renewal.dt.day == start.dt.day)
    feb29 = (start.dt.month == 2) & (start.dt.day == 29)
    assert (same_day | feb29)[known].all()
    churned = pd.to_datetime(a.churned_on)
    assert 0.02 <= churned.notna().mean() <= 0.045
    assert (churned.dropna() < AS_OF_TS).all()
    assert (churned.dropna() > start[churned.notna()]).all()


def test_events_stay_in_the_90_day_window(frames: dict[str, pd.DataFrame]) -> None:
    e = frames["usage_events"]
    assert e.timestamp.min() >= AS_OF_TS - pd.Timedelta(days=89)
    assert e.timestamp.max() < AS_OF_TS + pd.Timedelta(days=1)
    starts = frames["accounts"].set_index("account_id").contract_start
    start = pd.to_datetime(starts.reindex(e.account_id)).to_numpy()
    assert (e.timestamp.dt.normalize().to_numpy() >= start).all()
    # Churned accounts went quiet before churning.
    churned = frames["accounts"].set_index("account_id").churned_on.dropna()
    last = e.groupby("account_id").timestamp.max().reindex(churned.index).dropna()
    assert (last.dt.normalize() < pd.to_datetime(churned.reindex(last.index))).all()
    assert e.user_id.notna().all()
    assert (e.quantity >= 1).all() and (e.quantity == 1).mean() > 0.95
    assert (e.quantity[e.event.str.startswith("seat.")] == 1).all()


def test_usage_archetypes_show_in_the_data(usage: pd.DataFrame) -> None:
    settled = usage[(usage.tenure >= 60) & ~usage.churned]
    n = len(settled)
    silent = ((settled["last"] == 0).sum()) / n
    declining = ((settled["last"] > 0) & (settled.change <= -0.4)).sum() / n
    growing = (settled.change >= 0.5).sum() / n
    steady = (settled.change.abs() < 0.25).sum() / n
    at_capacity = (usage["last"] >= 0.8 * usage.plan_limit).mean()
    assert 0.05 <= silent <= 0.10, silent  # inactive ~7%
    assert 0.08 <= declining <= 0.16, declining  # declining ~12%
    assert 0.09 <= growing <= 0.18, growing  # growing ~12%
    assert 0.48 <= steady <= 0.80, steady  # healthy ~60% (the rest of it has new users etc.)
    assert 0.05 <= at_capacity <= 0.15, at_capacity


def test_feature_abandonment_and_expansion_signals(frames: dict[str, pd.DataFrame]) -> None:
    e = frames["usage_events"]
    a = frames["accounts"].set_index("account_id")
    age = (AS_OF_TS - e.timestamp.dt.normalize()).dt.days
    last30 = age < 30
    core = e[e.event.isin(CORE) & (age < 60)]
    recent_uses = core.assign(recent=last30[core.index]).groupby(["account_id", "event"]).recent
    # Used in the 60-day window but not in the last 30 days: used only in the 30 before.
    abandoned = recent_uses.sum() == 0
    abandoning = abandoned.groupby(level="account_id").any().sum() / len(a)
    assert 0.04 <= abandoning <= 0.25, abandoning

    premium = e[e.event.str.startswith("premium.") & last30].groupby("account_id").size()
    assert 0.01 <= (premium >= 3).sum() / len(a) <= 0.08
    starter_premium = set(premium.index) & set(a.index[a.plan == "starter"])
    assert len(starter_premium) >= 20

    integration = e[e.event.str.startswith("integration.")]
    first_age = (
        (AS_OF_TS - integration.timestamp.dt.normalize())
        .dt.days.groupby(integration.account_id)
        .max()
    )
    assert 0.01 <= (first_age < 30).sum() / len(a) <= 0.10
    assert 0.2 <= len(first_age) / len(a) <= 0.5

    executive = e[
        e.event.isin(
            [
                "pricing.enterprise_viewed",
                "security_questionnaire.requested",
                "rfp.requested",
                "sales.procurement_contact",
            ]
        )
    ]
    assert 0.002 <= executive.account_id.nunique() / len(a) <= 0.06
    assert e.event.str.startswith("milestone.").sum() > 0
    added = e[(e.event == "seat.added") & last30].groupby("account_id").size()
    assert 0.03 <= len(added) / len(a) <= 0.3


def test_tickets_spike_and_follow_decline(
    frames: dict[str, pd.DataFrame], usage: pd.DataFrame
) -> None:
    t = frames["tickets"]
    assert set(t.priority) == {"low", "normal", "high", "urgent"}
    assert set(t.category) == {
        "how-to", "billing", "bug", "integration", "complaint", "downgrade", "cancellation"
    }  # fmt: skip
    sat = t.satisfaction.dropna()
    assert sat.between(1, 5).all() and (sat == sat.round()).all() and t.satisfaction.isna().any()
    closed = t.closed_at.notna()
    assert (t.closed_at[closed] >= t.opened_at[closed]).all()
    assert (t.opened_at < AS_OF_TS + pd.Timedelta(days=1)).all()
    age = (AS_OF_TS - t.opened_at.dt.normalize()).dt.days
    spikes = (t[age < 14].groupby("account_id").size() >= 3).sum()
    assert 0.003 * len(usage) <= spikes <= 0.04 * len(usage)
    recent = t[age < 30].groupby("account_id").size().reindex(usage.index, fill_value=0)
    declining = (usage["last"] > 0) & (usage.change <= -0.4)
    steady = usage.change.abs() < 0.25
    assert recent[declining].mean() > 1.5 * recent[steady].mean()


def test_nps_answers_and_detractors(frames: dict[str, pd.DataFrame], usage: pd.DataFrame) -> None:
    nps = frames["nps_responses"]
    assert nps.score.between(0, 10).all()
    age = (AS_OF_TS - nps.responded_at.dt.normalize()).dt.days
    assert age.between(0, 364).all()
    answered = nps.account_id.nunique() / len(frames["accounts"])
    assert 0.33 <= answered <= 0.47
    latest = nps.sort_values("responded_at").groupby("account_id").score.last()
    detractor = (latest <= 6).reindex(usage.index)
    declining = (usage.change <= -0.4) | (usage["last"] == 0)
    assert detractor[declining].mean() > 1.5 * detractor[~declining].mean()


def test_payments_statuses_and_failures(frames: dict[str, pd.DataFrame]) -> None:
    p = frames["payments"]
    assert set(p.status) == {"paid", "failed", "refunded"}
    assert 0.015 <= (p.status == "failed").mean() <= 0.04
    due = pd.to_datetime(p.due_date)
    age = (AS_OF_TS - due).dt.days
    assert age.between(0, 182).all()
    assert ((p.status == "failed") & (age < 30)).sum() >= 10
    assert (p.paid_at.isna() == (p.status == "failed")).all()
    paid = p.paid_at.notna()
    assert (p.paid_at[paid].dt.normalize() >= due[paid]).all()
    assert (p.paid_at[paid] < AS_OF_TS + pd.Timedelta(days=1)).all()
    assert (p.amount > 0).all()
    # Both billing rhythms: monthly (ARR / 12) and annual (the ARR).
    arr = frames["accounts"].set_index("account_id").arr.reindex(p.account_id).to_numpy()
    monthly = np.isclose(p.amount, np.round(arr / 12, 2))
    annual = np.isclose(p.amount, arr)
    assert (monthly | annual).all() and monthly.any() and annual.any()


def test_contacts_mix_executives_and_staff(frames: dict[str, pd.DataFrame]) -> None:
    c = frames["contacts"]
    per_account = c.groupby("account_id").size()
    assert per_account.between(1, 5).all()
    assert len(per_account) == len(frames["accounts"])
    is_exec = c.title.map(lambda title: EXEC_TITLE.search(title) is not None)
    assert 0.03 <= is_exec.mean() <= 0.2
    assert {"CEO", "Chief Revenue Officer", "VP Operations"} <= set(c.title)
    assert {"Operations Manager", "Analyst", "Director of Support"} <= set(c.title)
    emails = c.email.dropna()
    assert emails.str.fullmatch(r"[a-z]+\.[a-z]+@[a-z]+\.com").all()
    assert (c.created_at < AS_OF_TS + pd.Timedelta(days=1)).all()


# --- invariants over many small runs -------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    accounts=st.integers(1, 60),
    seed=st.integers(0, 2**32),
    chunk=st.integers(1, 70),
    as_of=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)),
)
def test_invariants_hold_for_small_runs(
    accounts: int, seed: int, chunk: int, as_of: dt.date
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        summary = generate(
            Path(tmp) / "d", accounts=accounts, as_of=as_of, seed=seed, chunk_accounts=chunk
        )
        tables = read_all(summary.folder)
        assert len(table_files(summary.folder, "usage_events")) == -(-accounts // chunk)
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    assert {n: t.num_rows for n, t in tables.items()} == summary.rows
    assert summary.rows["accounts"] == accounts
    for name, table in tables.items():
        for col in TABLES[name].required_columns:
            assert table[col].null_count == 0, (name, col)
    f = {name: t.to_pandas() for name, t in tables.items()}
    assert f["accounts"].account_id.is_unique
    assert (f["accounts"].arr.between(1_000, 1_000_000)).all()
    assert (pd.to_datetime(f["accounts"].contract_start) <= pd.Timestamp(as_of)).all()
    assert f["nps_responses"].score.between(0, 10).all()
    assert set(f["payments"].status) <= {"paid", "failed", "refunded"}
    assert set(f["tickets"].priority) <= {"low", "normal", "high", "urgent"}
    assert f["tickets"].satisfaction.dropna().between(1, 5).all()
    for name, col in (("usage_events", "timestamp"), ("tickets", "opened_at"),
                      ("nps_responses", "responded_at"), ("contacts", "created_at")):  # fmt: skip
        assert (f[name][col] < end).all(), name
    assert (pd.to_datetime(f["payments"].due_date) < end).all()
    assert (f["usage_events"].timestamp >= end - pd.Timedelta(days=90)).all()
    known = set(f["accounts"].account_id)
    for name in CHILD_TABLES:
        assert set(f[name].account_id) <= known
