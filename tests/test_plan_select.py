"""Six-factor model choice: factor scores, bands and ties, complexity, zones and hybrid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from touchmodel.errors import TouchmodelError
from touchmodel.plan import (
    Answers,
    PlanningDefaults,
    acv_zones,
    as_portfolio,
    band_for,
    fill_from_portfolio,
    select_model,
)
from touchmodel.plan.defaults import Economics, SixFactor
from touchmodel.plan.select import FACTORS, load_answers, score_factor

LEVEL_RANK = {"tech": 0, "low": 1, "high": 2}


def scored(**scores: int) -> Answers:
    return Answers(scores={f: scores.get(f, 1) for f in FACTORS})


def split(total: int) -> dict[str, int]:
    """Six scores of 1-5 that sum to ``total``, complexity kept low."""
    scores = dict.fromkeys(FACTORS, 1)
    rest = total - 6
    for f in ("acv", "segment", "margin", "positioning", "ratio", "complexity"):
        add = min(4, rest)
        scores[f] += add
        rest -= add
    return scores


@pytest.mark.parametrize("total", range(6, 31))
def test_every_total_lands_in_its_band(total: int) -> None:
    scores = split(total)
    sel = select_model(Answers(scores=scores))
    assert sel.total == total
    expected = "high" if total >= 20 else "low" if total >= 12 else "tech"
    assert sel.band == expected


@pytest.mark.parametrize(
    ("total", "band"),
    [(11, "tech"), (12, "low"), (19, "low"), (20, "high"), (30, "high"), (6, "tech")],
)
def test_ties_go_to_the_more_human_model(total: int, band: str) -> None:
    assert band_for(total, SixFactor()) == band
    assert select_model(Answers(scores=split(total))).recommendation == f"{band} touch"


def test_high_complexity_never_yields_tech_touch() -> None:
    sel = select_model(scored(complexity=5))  # total 10: the tech band
    assert sel.band == "tech" and sel.model == "low" and sel.recommendation == "low touch"
    assert any("never pure tech touch" in r for r in sel.reasons)
    # Medium-high (4) is not "high" by default; the threshold is a default.
    assert select_model(scored(complexity=4)).model == "tech"
    d = PlanningDefaults(six_factor=SixFactor(complexity_blocks_tech=4))
    assert select_model(scored(complexity=4), defaults=d).model == "low"


@pytest.mark.parametrize(
    ("factor", "value", "score"),
    [
        ("acv", 100_000, 5), ("acv", 99_999, 3), ("acv", 10_000, 3), ("acv", 9_999, 1),
        ("acv", "$120,000", 5),
        ("segment", 1_000, 5), ("segment", 999, 3), ("segment", 100, 3), ("segment", 99, 1),
        ("segment", "enterprise", 5), ("segment", "mid-market", 3), ("segment", "SMB", 1),
        ("margin", 0.70, 5), ("margin", 0.6999, 3), ("margin", 0.50, 3), ("margin", 0.49, 1),
        ("margin", "80%", 5),
        ("complexity", "high", 5), ("complexity", "medium-high", 4), ("complexity", "low", 1),
        ("complexity", 2, 2),
        ("positioning", "premium", 5), ("positioning", "standard", 3), ("positioning", "value", 1),
        ("ratio", "1:10", 5), ("ratio", "1:50", 3), ("ratio", "1:500", 1), ("ratio", 25, 5),
        ("ratio", 26, 3), ("ratio", 100, 3), ("ratio", 101, 1), ("ratio", "1:500+", 1),
    ],
)  # fmt: skip
def test_factor_scores(factor: str, value: object, score: int) -> None:
    assert score_factor(factor, value, SixFactor(), Economics()).score == score  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factor", "value", "expected"),
    [
        ("margin", 1.2, "margin: value 1.2 -- expected a share"),
        ("complexity", "huge", "complexity: value 'huge' -- expected one of high"),
        ("complexity", 7, "complexity: value 7"),
        ("acv", "lots", "acv: value 'lots' -- expected one of high, mid, low or an amount in USD"),
        ("segment", -3, "segment: value -3"),
        ("ratio", 0, "ratio: value 0"),
    ],
)
def test_bad_answers_are_one_line(factor: str, value: object, expected: str) -> None:
    with pytest.raises(TouchmodelError) as exc:
        score_factor(factor, value, SixFactor(), Economics())  # type: ignore[arg-type]
    assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_missing_answers_are_named() -> None:
    with pytest.raises(TouchmodelError, match="missing answer\\(s\\): complexity, positioning"):
        select_model(Answers(acv=50_000, segment=200, margin=0.7, ratio=50))


def test_explicit_score_out_of_range() -> None:
    with pytest.raises(TouchmodelError, match="acv: value 6 -- expected a score from 1 to 5"):
        select_model(Answers(scores={**dict.fromkeys(FACTORS, 3), "acv": 6}))


def test_worked_profiles_recommend_their_models() -> None:
    enterprise = Answers(acv=120_000, complexity="high", segment="enterprise", margin=0.8,
                         positioning="premium", ratio="1:10")  # fmt: skip
    smb = Answers(acv=3_000, complexity="low", segment="smb", margin=0.65, positioning="value",
                  ratio=400)  # fmt: skip
    assert select_model(enterprise).total == 30
    assert select_model(enterprise).recommendation == "high touch"
    assert (select_model(smb).total, select_model(smb).recommendation) == (8, "tech touch")


def portfolio(arrs: list[float], employees: list[float] | None = None):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(
        {
            "account_id": [str(i) for i in range(len(arrs))],
            "arr": arrs,
            "tier": "x",
            "tier_level": "low",
        }
    )
    if employees is not None:
        frame["employees"] = employees
    return as_portfolio(frame)


def test_zones_report_shares_of_accounts_and_arr_with_half_open_edges() -> None:
    zones = acv_zones(portfolio([9_999, 10_000, 99_999, 100_000]), SixFactor())
    assert [z.accounts for z in zones] == [1, 2, 1]
    assert [z.touch for z in zones] == ["tech", "low", "high"]
    assert zones[2].share_arr == pytest.approx(100_000 / 219_998)
    assert sum(z.share_accounts for z in zones) == pytest.approx(1.0)


def test_spread_over_zones_is_hybrid_with_a_model_per_zone() -> None:
    # 85% of accounts are small but they hold little ARR: no zone dominates both.
    arrs = [5_000] * 85 + [50_000] * 10 + [300_000] * 5
    sel = select_model(scored(**split(16)), portfolio(arrs))
    assert sel.recommendation == "hybrid" and sel.hybrid_threshold == 0.80
    assert sel.zone_models == {"tech": "tech touch", "low": "low touch", "high": "high touch"}
    reason = sel.reasons[-1]
    assert "85% of accounts" in reason and ">= 80%" in reason


def test_one_dominant_zone_keeps_the_scored_model() -> None:
    arrs = [5_000] * 95 + [50_000] * 5
    sel = select_model(scored(**split(16)), portfolio(arrs))  # 95% accounts, 65.5% ARR
    assert sel.recommendation == "hybrid"
    arrs = [5_000] * 98 + [20_000] * 2  # 98% of accounts, 92% of ARR
    sel = select_model(scored(**split(16)), portfolio(arrs))
    assert sel.recommendation == "low touch" and sel.zone_models == {}
    # A lower threshold is a default the team file can set.
    d = PlanningDefaults(six_factor=SixFactor(hybrid_zone_share=0.6))
    assert (
        select_model(scored(**split(16)), portfolio([5_000] * 95 + [50_000] * 5), d).model == "low"
    )


def test_hybrid_tech_zone_of_a_complex_product_gets_low_touch() -> None:
    arrs = [5_000] * 50 + [200_000] * 50
    sel = select_model(scored(complexity=5, acv=5, segment=5, margin=5), portfolio(arrs))
    assert sel.zone_models["tech"] == "low touch"


def test_fill_from_portfolio_uses_medians_and_the_break_even_ratio() -> None:
    p = portfolio([10_000, 20_000, 30_000, 400_000], employees=[50, 150, np.nan, 5_000])
    answers, notes = fill_from_portfolio(Answers(complexity="low"), p)
    assert answers.acv == 25_000 and answers.segment == 150
    assert answers.ratio == pytest.approx(120_000 / 2_500)  # 1:48 -> "needs 1:50"
    assert answers.complexity == "low" and len(notes) == 3
    kept, _ = fill_from_portfolio(Answers(acv=90_000), p)
    assert kept.acv == 90_000


def test_answers_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("acv: 32000\ncomplexity: medium\nsegment: mid-market\nmargin: '78%'\n"
                    "positioning: standard\nratio: '1:50'\nscores: {complexity: 4}\n")  # fmt: skip
    sel = select_model(load_answers(path))
    assert [f.score for f in sel.factors] == [3, 4, 3, 5, 3, 3]
    path.write_text("acv: 1\ncomplexty: high\n")
    with pytest.raises(TouchmodelError) as exc:
        load_answers(path)
    assert str(exc.value).startswith(f"{path}: complexty: unknown key -- expected one of acv")


@given(st.lists(st.integers(1, 5), min_size=6, max_size=6), st.sampled_from(FACTORS))
def test_total_is_six_to_thirty_and_raising_a_score_never_lowers_the_touch(
    scores: list[int], bump: str
) -> None:
    answers = Answers(scores=dict(zip(FACTORS, scores, strict=True)))
    sel = select_model(answers)
    assert 6 <= sel.total <= 30 and sel.total == sum(scores)
    raised = dict(zip(FACTORS, scores, strict=True))
    raised[bump] = min(5, raised[bump] + 1)
    higher = select_model(Answers(scores=raised))
    assert LEVEL_RANK[higher.model] >= LEVEL_RANK[sel.model]
    if raised["complexity"] == 5:
        assert higher.model != "tech"
