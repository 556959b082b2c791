"""Unit economics (docs/touch-model.md) and the worked economics table (docs/touch-model.md).

Verdict rule (the SPEC gives the three verdicts, not the rule; this is ours):
the CSM ratio decides the model and the CS cost share decides whether it is
affordable. A ratio above ``human_max_ratio`` (100, the top of low touch) is not
a relationship any more, so no CSM ratio works; a ratio up to
``high_touch_max_ratio`` (25) is high touch; in between is low touch. The cost
per account must stay within the 5-15% band's ceiling: the enterprise row
spends $12,500 on a $12,000 budget (10.4% of revenue) and is still supported.
Without a ratio, the break-even ratio (CSM cost / CS budget) takes its place.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from touchmodel.errors import TouchmodelError
from touchmodel.model.schema import Range
from touchmodel.plan.defaults import Economics, ShareBand

HIGH = "high touch supported"
LOW = "low touch works"
TECH = "no CSM ratio works: tech touch only"
OVER = "over budget"

ShareVerdict = Literal["under", "within", "over"]
RangeVerdict = Literal["below", "within", "above"]


def check_share(name: str, value: float, *, allow_zero: bool = True) -> float:
    """A share from 0 to 1 (accepts '80%' via :func:`parse_share`); else a one-line error."""
    if math.isnan(value) or value < 0 or value > 1 or (not allow_zero and value == 0):
        shown = f"{value:g}"
        low = "0" if allow_zero else "more than 0"
        raise TouchmodelError(
            f"{name}: value {shown} -- expected a share from {low} to 1 (e.g. 0.8 for 80%)"
        )
    return value


def parse_rate(name: str, text: str | float, example: str) -> float:
    """``'40%'``, ``'0.4'`` or ``0.4`` as 0.4; ``example`` goes in the error message."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        raw = text.strip()
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            value = math.nan
    if math.isnan(value):
        raise TouchmodelError(f"{name}: value {text!r} -- expected {example}")
    return value


def parse_share(name: str, text: str | float) -> float:
    """``'80%'``, ``'0.8'`` or ``0.8`` as 0.8, checked to lie in [0, 1]."""
    return check_share(name, parse_rate(name, text, "a share like 0.8 or 80%"))


@dataclass(frozen=True)
class UnitEconomics:
    """One row of the worked economics table, with the arithmetic behind the verdict."""

    case: str
    acv: float
    gross_margin: float
    gross_profit: float
    budget_share: float
    cs_budget: float
    csm_cost: float
    accounts_per_csm: float | None
    cost_per_account: float | None
    cost_share: float | None  # cost per account / ACV
    margin_after_cs: float | None  # (gross profit - CS cost) / ACV
    breakeven_ratio: float  # accounts a CSM must carry for its cost to fit the budget
    verdict: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)


def unit_economics(
    acv: float,
    gross_margin: float,
    *,
    budget_share: float | None = None,
    csm_cost: float | None = None,
    accounts_per_csm: float | None = None,
    figures: Economics | None = None,
    case: str = "",
) -> UnitEconomics:
    """Gross profit, CS budget, cost per account and the verdict for one ACV."""
    fig = figures or Economics()
    if not acv > 0:
        raise TouchmodelError(f"--acv: value {acv:g} -- expected an annual contract value above 0")
    check_share("--margin", gross_margin)
    share = check_share(
        "--cs-share", fig.budget_share if budget_share is None else budget_share, allow_zero=False
    )
    cost = fig.csm_cost if csm_cost is None else csm_cost
    if not cost > 0:
        raise TouchmodelError(f"--csm-cost: value {cost:g} -- expected a yearly cost above 0")
    if accounts_per_csm is not None and not accounts_per_csm > 0:
        raise TouchmodelError(
            f"--accounts-per-csm: value {accounts_per_csm:g} -- expected a number of accounts above 0"
        )
    profit = acv * gross_margin
    budget = acv * share
    breakeven = cost / budget
    per_account = cost_share = after = None
    if accounts_per_csm is None:
        ratio = breakeven
        basis = (
            f"${cost:,.0f} per CSM / ${budget:,.0f} budget per account = "
            f"{breakeven:,.0f} accounts per CSM to break even"
        )
    else:
        ratio = accounts_per_csm
        per_account = cost / accounts_per_csm
        cost_share = per_account / acv
        after = (profit - per_account) / acv
        basis = f"${cost:,.0f} / {accounts_per_csm:g} accounts = ${per_account:,.0f} per account"
    if ratio > fig.human_max_ratio:
        verdict = TECH
        reason = (
            f"{basis}; above {fig.human_max_ratio:g}, the most a CSM can carry as a relationship"
        )
    elif cost_share is not None and cost_share > fig.cs_share.max:
        fits = math.ceil(cost / (acv * fig.cs_share.max))
        verdict = OVER
        reason = (
            f"{basis} = {cost_share:.1%} of revenue, above {fig.cs_share.max:.0%}; "
            f"needs at least {fits} accounts per CSM"
        )
    elif ratio <= fig.high_touch_max_ratio:
        verdict = HIGH
        reason = f"{basis}; at most {fig.high_touch_max_ratio:g} accounts per CSM is high touch"
    else:
        verdict = LOW
        reason = (
            f"{basis}; {fig.high_touch_max_ratio:g}-{fig.human_max_ratio:g} accounts per CSM "
            "is low touch"
        )
    if cost_share is not None and verdict in (HIGH, LOW):
        reason += f"; CS cost {cost_share:.1%} of revenue"
    return UnitEconomics(
        case=case,
        acv=acv,
        gross_margin=gross_margin,
        gross_profit=profit,
        budget_share=share,
        cs_budget=budget,
        csm_cost=cost,
        accounts_per_csm=accounts_per_csm,
        cost_per_account=per_account,
        cost_share=cost_share,
        margin_after_cs=after,
        breakeven_ratio=breakeven,
        verdict=verdict,
        reason=reason,
    )


# docs/touch-model.md worked economics: (case, ACV, gross margin, CSM cost, accounts per CSM).
WORKED_CASES: tuple[tuple[str, float, float, float | None, float | None], ...] = (
    ("enterprise", 120_000, 0.80, 150_000, 12),
    ("mid-market", 25_000, 0.70, 120_000, 50),
    ("SMB", 3_000, 0.65, None, None),
)


def worked_economics(figures: Economics | None = None) -> list[UnitEconomics]:
    """The three rows of the worked economics table."""
    return [
        unit_economics(acv, margin, csm_cost=cost, accounts_per_csm=n, figures=figures, case=case)
        for case, acv, margin, cost, n in WORKED_CASES
    ]


def share_verdict(share: float, band: ShareBand) -> ShareVerdict:
    """CS cost as a share of revenue against the band; both edges are inside it."""
    if share < band.min:
        return "under"
    if share > band.max:
        return "over"
    return "within"


def share_verdict_text(share: float, band: ShareBand) -> str:
    """The reading of a CS cost share."""
    verdict = share_verdict(share, band)
    if verdict == "under":
        return f"under-investment: below {band.min:.0%} (it shows in retention)"
    if verdict == "over":
        return f"above {band.max:.0%}: burns cash unless margins are exceptional"
    return f"within {band.min:.0%}-{band.max:.0%}"


def range_verdict(value: float, expected: Range) -> RangeVerdict:
    """``value`` against an inclusive range (open-ended when ``max`` is None)."""
    if value < expected.min:
        return "below"
    if expected.max is not None and value > expected.max:
        return "above"
    return "within"


def arr_per_csm_ok(arr: float, csms: float, csm_cost: float, figures: Economics) -> bool | None:
    """The 10x rule: ARR per CSM at least ``arr_per_csm_multiple`` x CSM cost; None without CSMs."""
    if csms <= 0:
        return None
    return arr / csms >= figures.arr_per_csm_multiple * csm_cost


def margin_after_cs(arr: float, gross_margin: float, cs_cost: float) -> float | None:
    """Gross margin left after CS cost, as a share of ARR; None when there is no ARR."""
    if arr <= 0:
        return None
    return (arr * gross_margin - cs_cost) / arr
