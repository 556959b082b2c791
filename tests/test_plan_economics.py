"""Unit economics: the SPEC §7 worked table, verdicts, the 5-15% band and the 10x rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from touchmodel.errors import TouchmodelError
from touchmodel.model.schema import Range
from touchmodel.plan import share_verdict, share_verdict_text, unit_economics, worked_economics
from touchmodel.plan.defaults import Economics, ShareBand
from touchmodel.plan.economics import arr_per_csm_ok, margin_after_cs, parse_share, range_verdict


def test_worked_table_enterprise_row() -> None:
    e = worked_economics()[0]
    assert (e.case, e.acv, e.gross_margin) == ("enterprise", 120_000, 0.80)
    assert e.gross_profit == 96_000
    assert e.cs_budget == 12_000
    assert (e.csm_cost, e.accounts_per_csm) == (150_000, 12)
    assert e.cost_per_account == 12_500
    assert e.verdict == "high touch supported"


def test_worked_table_mid_market_row() -> None:
    m = worked_economics()[1]
    assert (m.case, m.acv, m.gross_margin) == ("mid-market", 25_000, 0.70)
    assert m.gross_profit == 17_500
    assert m.cs_budget == 2_500
    assert (m.csm_cost, m.accounts_per_csm) == (120_000, 50)
    assert m.cost_per_account == 2_400
    assert m.verdict == "low touch works"


def test_worked_table_smb_row() -> None:
    s = worked_economics()[2]
    assert (s.case, s.acv, s.gross_margin) == ("SMB", 3_000, 0.65)
    assert s.gross_profit == pytest.approx(1_950)
    assert s.cs_budget == pytest.approx(300)
    assert s.accounts_per_csm is None and s.cost_per_account is None
    assert s.verdict == "no CSM ratio works: tech touch only"
    # $120K / $300 per account: a CSM would need 400 accounts, more than any relationship.
    assert s.breakeven_ratio == pytest.approx(400)


def test_over_budget_ratio_is_named_with_the_ratio_that_fits() -> None:
    e = unit_economics(20_000, 0.8, csm_cost=120_000, accounts_per_csm=20)
    # $6,000 per account is 30% of a $20K ACV, above 15%; 40 accounts per CSM fits.
    assert e.verdict == "over budget"
    assert "needs at least 40 accounts per CSM" in e.reason


def test_ratio_above_a_relationship_is_tech_touch_even_when_cheap() -> None:
    e = unit_economics(3_000, 0.65, csm_cost=120_000, accounts_per_csm=400)
    assert e.verdict == "no CSM ratio works: tech touch only"


def test_a_ten_k_plan_needing_two_k_of_service_keeps_eighty_percent() -> None:
    # SPEC §6: a $10K plan that needs $2K of service keeps an 80% margin after service.
    assert margin_after_cs(10_000, 1.0, 2_000) == pytest.approx(0.80)
    e = unit_economics(10_000, 1.0, csm_cost=120_000, accounts_per_csm=60)
    assert e.margin_after_cs == pytest.approx(0.80)


@pytest.mark.parametrize(
    ("share", "verdict"),
    [(0.0499, "under"), (0.05, "within"), (0.10, "within"), (0.15, "within"), (0.1501, "over")],
)
def test_cost_share_band_edges_are_inside(share: float, verdict: str) -> None:
    assert share_verdict(share, ShareBand()) == verdict


def test_cost_share_verdict_texts() -> None:
    band = ShareBand()
    assert share_verdict_text(0.04, band).startswith("under-investment: below 5%")
    assert share_verdict_text(0.05, band) == "within 5%-15%"
    assert share_verdict_text(0.16, band) == "above 15%: burns cash unless margins are exceptional"
    assert share_verdict(0.16, ShareBand(max=0.2)) == "within"


def test_ten_x_rule() -> None:
    econ = Economics()
    assert arr_per_csm_ok(1_200_000, 1, 120_000, econ) is True
    assert arr_per_csm_ok(1_199_999, 1, 120_000, econ) is False
    assert arr_per_csm_ok(1_000_000, 0, 120_000, econ) is None
    assert arr_per_csm_ok(1_000_000, 1, 120_000, Economics(arr_per_csm_multiple=8)) is True


def test_cost_range_verdict() -> None:
    r = Range(min=2_000, max=5_000)
    assert [range_verdict(v, r) for v in (1_999, 2_000, 5_000, 5_001)] == [
        "below", "within", "within", "above",
    ]  # fmt: skip
    assert range_verdict(10**9, Range(min=20, max=None)) == "within"


@pytest.mark.parametrize("bad", [1.2, -0.1])
def test_margin_over_one_hundred_percent_is_one_line_error(bad: float) -> None:
    with pytest.raises(TouchmodelError) as exc:
        unit_economics(10_000, bad)
    assert str(exc.value).startswith("--margin: value") and "\n" not in str(exc.value)


def test_parse_share_accepts_percent() -> None:
    assert parse_share("m", "80%") == pytest.approx(0.8)
    assert parse_share("m", "0.8") == 0.8
    with pytest.raises(TouchmodelError, match="expected a share"):
        parse_share("m", "120%")
    with pytest.raises(TouchmodelError, match="expected a share like"):
        parse_share("m", "lots")


def test_other_bad_inputs() -> None:
    with pytest.raises(TouchmodelError, match="--acv"):
        unit_economics(0, 0.8)
    with pytest.raises(TouchmodelError, match="--accounts-per-csm"):
        unit_economics(10_000, 0.8, accounts_per_csm=0)
    with pytest.raises(TouchmodelError, match="--cs-share"):
        unit_economics(10_000, 0.8, budget_share=0)


def test_defaults_change_the_verdict() -> None:
    # A team that calls 1:30 high touch: the mid-market row would not change, 1:30 would.
    e = unit_economics(
        120_000, 0.8, accounts_per_csm=30, figures=Economics(high_touch_max_ratio=30)
    )
    assert e.verdict == "high touch supported"
    assert unit_economics(120_000, 0.8, accounts_per_csm=30).verdict == "low touch works"


@given(
    acv=st.floats(1_000, 1_000_000),
    ratio=st.floats(1, 1_000),
)
def test_verdict_is_one_of_four_and_tech_above_a_relationship(acv: float, ratio: float) -> None:
    e = unit_economics(acv, 0.7, accounts_per_csm=ratio)
    assert e.verdict in {
        "high touch supported", "low touch works", "no CSM ratio works: tech touch only",
        "over budget",
    }  # fmt: skip
    if ratio > 100:
        assert e.verdict == "no CSM ratio works: tech touch only"
    assert e.cost_per_account == pytest.approx(120_000 / ratio)
