"""Choosing the post-sale model: the six factors (docs/touch-model.md), ties, zones and hybrid.

Each factor scores 1-5 (2 and 4 for in-between answers) and the total (6-30)
falls in a band: high touch from 20, low touch from 12, tech touch below.
A total on a shared edge gets the more human model. High product complexity
never yields pure tech touch. When the accounts' ACV spreads over several
zones (< $10K, $10K-100K, $100K+) and no zone holds 80% of both accounts and
ARR, the recommendation is hybrid: a model per tier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import dotted
from touchmodel.plan.defaults import Economics, PlanningDefaults, SixFactor
from touchmodel.plan.economics import parse_share
from touchmodel.plan.portfolio import Portfolio
from touchmodel.yaml_errors import yaml_error_text

Factor = Literal["acv", "complexity", "segment", "margin", "positioning", "ratio"]
FACTORS: tuple[Factor, ...] = ("acv", "complexity", "segment", "margin", "positioning", "ratio")
Touch = Literal["high", "low", "tech"]
TOUCH_NAME = {"high": "high touch", "low": "low touch", "tech": "tech touch"}

# Words a user may answer with; in-between words carry the 2 and 4 scores.
CATEGORIES: dict[Factor, dict[str, int]] = {
    "acv": {"high": 5, "mid": 3, "low": 1},
    "complexity": {"high": 5, "medium-high": 4, "medium": 3, "low-medium": 2, "low": 1},
    "segment": {"enterprise": 5, "mid-market": 3, "smb": 1},
    "margin": {},
    "positioning": {"premium": 5, "standard": 3, "value": 1},
    "ratio": {"1:10": 5, "1:50": 3, "1:500": 1},
}

QUESTIONS: dict[Factor, str] = {
    "acv": "Average annual contract value per customer, in USD (e.g. 25000)",
    "complexity": "Product complexity: high (weeks-months to implement), medium (days-weeks), low "
    "(hours-days); or medium-high / low-medium",
    "segment": "Customer segment: enterprise (1,000+ employees), mid-market (100-1,000), smb "
    "(< 100); or a typical employee count",
    "margin": "Gross margin, e.g. 0.75 or 75%",
    "positioning": "Competitive positioning: premium, standard or value",
    "ratio": "Accounts per CSM your economics support: 1:10, 1:50, 1:500, or a number",
}


class SelectError(TouchmodelError):
    """An answer to the six questions is invalid."""


class Answers(BaseModel):
    """Answers to the six questions; ``scores`` gives any factor an explicit 1-5 score."""

    model_config = ConfigDict(extra="forbid")

    acv: float | str | None = None
    complexity: str | int | None = None
    segment: str | float | None = None
    margin: float | str | None = None
    positioning: str | int | None = None
    ratio: str | float | None = None
    scores: dict[Factor, int] = Field(default_factory=dict)

    def missing(self) -> list[Factor]:
        """Factors with neither an answer nor a score."""
        return [f for f in FACTORS if getattr(self, f) is None and f not in self.scores]


@dataclass(frozen=True)
class FactorScore:
    factor: Factor
    answer: str
    score: int
    basis: str


@dataclass(frozen=True)
class Zone:
    """An ACV zone and the share of accounts and ARR in it."""

    touch: Touch
    min: float
    max: float | None
    accounts: int
    share_accounts: float
    arr: float
    share_arr: float


@dataclass(frozen=True)
class Selection:
    factors: list[FactorScore]
    total: int
    band: Touch  # the score band
    model: Touch  # after the complexity rule
    recommendation: str  # "high touch", "low touch", "tech touch" or "hybrid"
    reasons: list[str]
    zones: list[Zone] = field(default_factory=list)
    hybrid_threshold: float | None = None
    zone_models: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)


def _money(x: float) -> str:
    return f"${x:,.0f}"


def _number(factor: Factor, value: float | str) -> float | None:
    """A numeric answer as float (accepting '$25,000', '1:50'); None when it is a word."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower().replace(",", "").replace("$", "").replace("_", "")
    if factor == "ratio" and text.startswith("1:"):
        text = text[2:].rstrip("+")
    try:
        return float(text)
    except ValueError:
        return None


def _bad(factor: Factor, value: object, expected: str) -> SelectError:
    return SelectError(f"{factor}: value {value!r} -- expected {expected}")


def score_factor(factor: Factor, value: float | str, sf: SixFactor, econ: Economics) -> FactorScore:
    """Score one answer 1-5 with the arithmetic that decided it."""
    words = CATEGORIES[factor]
    if isinstance(value, str) and value.strip().lower() in words:
        word = value.strip().lower()
        return FactorScore(factor, word, words[word], f"answer '{word}'")
    if factor == "margin":
        m = parse_share("margin", value)
        score = 5 if m >= sf.high_margin else 3 if m >= sf.low_margin else 1
        cut = (
            f">= {sf.high_margin:.0%}" if score == 5 else
            f"{sf.low_margin:.0%}-{sf.high_margin:.0%}" if score == 3 else f"< {sf.low_margin:.0%}"
        )  # fmt: skip
        return FactorScore(factor, f"{m:.0%}", score, f"{m:.0%} is {cut}")
    if factor in ("complexity", "positioning"):
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
            return FactorScore(factor, str(value), value, "score given")
        raise _bad(factor, value, f"one of {', '.join(words)} (or a score 1-5)")
    n = _number(factor, value)
    if n is None or n < 0 or n != n:
        names = f"one of {', '.join(words)} or " if words else ""
        unit = {
            "acv": "an amount in USD",
            "segment": "an employee count",
            "ratio": "accounts per CSM",
        }
        raise _bad(factor, value, f"{names}{unit[factor]}")
    if factor == "acv":
        score = 5 if n >= sf.high_acv else 3 if n >= sf.low_acv else 1
        cut = (
            f">= {_money(sf.high_acv)}" if score == 5 else
            f"{_money(sf.low_acv)}-{_money(sf.high_acv)}" if score == 3 else f"< {_money(sf.low_acv)}"
        )  # fmt: skip
        return FactorScore(factor, _money(n), score, f"{_money(n)} is {cut}")
    if factor == "segment":
        ent, mid = sf.enterprise_employees, sf.mid_market_employees
        score = 5 if n >= ent else 3 if n >= mid else 1
        name = {5: "enterprise", 3: "mid-market", 1: "SMB"}[score]
        return FactorScore(factor, f"{n:,.0f} employees", score, f"{name} ({mid:,}/{ent:,} cuts)")
    if n == 0:
        raise _bad(factor, value, "accounts per CSM above 0")
    score = 5 if n <= econ.high_touch_max_ratio else 3 if n <= econ.human_max_ratio else 1
    cut = (
        f"<= {econ.high_touch_max_ratio:g}" if score == 5 else
        f"<= {econ.human_max_ratio:g}" if score == 3 else f"> {econ.human_max_ratio:g}"
    )  # fmt: skip
    return FactorScore(factor, f"1:{n:,.0f}", score, f"1:{n:,.0f} accounts per CSM is {cut}")


def score_answers(answers: Answers, defaults: PlanningDefaults | None = None) -> list[FactorScore]:
    """Score all six factors; a missing answer is an error naming every missing factor."""
    d = defaults or PlanningDefaults()
    missing = answers.missing()
    if missing:
        raise SelectError(
            f"missing answer(s): {', '.join(missing)} -- give them as flags (--complexity high), "
            "in an answers file (--answers), or with --ask to be prompted"
        )
    out = []
    for f in FACTORS:
        if f in answers.scores:
            s = answers.scores[f]
            if not 1 <= s <= 5:
                raise _bad(f, s, "a score from 1 to 5")
            out.append(FactorScore(f, f"score {s}", s, "score given"))
        else:
            value = getattr(answers, f)
            out.append(score_factor(f, value, d.six_factor, d.economics))
    return out


def band_for(total: int, sf: SixFactor) -> Touch:
    """The result band; a total on an edge gets the more human model."""
    if total >= sf.high_touch_min:
        return "high"
    if total >= sf.low_touch_min:
        return "low"
    return "tech"


def acv_zones(portfolio: Portfolio, sf: SixFactor) -> list[Zone]:
    """Accounts and ARR in each ACV zone: tech < low_acv <= low < high_acv <= high."""
    arr = portfolio.arr
    n, total = len(portfolio), portfolio.total_arr
    idx = np.searchsorted(np.array([sf.low_acv, sf.high_acv]), arr, side="right")
    bounds: list[tuple[Touch, float, float | None]] = [
        ("tech", 0.0, sf.low_acv), ("low", sf.low_acv, sf.high_acv), ("high", sf.high_acv, None),
    ]  # fmt: skip
    zones = []
    for i, (touch, lo, hi) in enumerate(bounds):
        mask = idx == i
        k, a = int(mask.sum()), float(arr[mask].sum())
        zones.append(Zone(touch, lo, hi, k, k / n if n else 0.0, a, a / total if total else 0.0))
    return zones


def fill_from_portfolio(
    answers: Answers, portfolio: Portfolio, defaults: PlanningDefaults | None = None
) -> tuple[Answers, list[str]]:
    """Answer ACV, segment and ratio from the data where the user did not; say how."""
    d = defaults or PlanningDefaults()
    update: dict[str, Any] = {}
    notes = []
    if len(portfolio) and answers.acv is None and "acv" not in answers.scores:
        update["acv"] = float(np.median(portfolio.arr))
        notes.append(f"acv: median ARR of {len(portfolio):,} accounts = {_money(update['acv'])}")
    emp = portfolio.employees
    if emp is not None and answers.segment is None and "segment" not in answers.scores:
        known = emp[~np.isnan(emp)]
        if known.size:
            update["segment"] = float(np.median(known))
            notes.append(
                f"segment: median employees of {known.size:,} accounts = {update['segment']:,.0f}"
            )
    acv = update.get("acv", answers.acv)
    if answers.ratio is None and "ratio" not in answers.scores and acv is not None:
        value = _number("acv", acv)
        if value:
            econ = d.economics
            update["ratio"] = econ.csm_cost / (value * econ.budget_share)
            notes.append(
                f"ratio: {_money(econ.csm_cost)} per CSM / ({_money(value)} x "
                f"{econ.budget_share:.0%} CS budget) = 1:{update['ratio']:,.0f}"
            )
    return answers.model_copy(update=update), notes


def select_model(
    answers: Answers, portfolio: Portfolio | None = None, defaults: PlanningDefaults | None = None
) -> Selection:
    """Score the six factors and recommend a model (hybrid when ACV spreads over zones)."""
    d = defaults or PlanningDefaults()
    sf = d.six_factor
    factors = score_answers(answers, d)
    total = sum(f.score for f in factors)
    band = band_for(total, sf)
    reasons = [
        f"total {total} is in the {TOUCH_NAME[band]} band (high >= {sf.high_touch_min}, "
        f"low >= {sf.low_touch_min}, tech below; a total on an edge gets the more human model)"
    ]
    complexity = next(f.score for f in factors if f.factor == "complexity")
    model: Touch = band
    if band == "tech" and complexity >= sf.complexity_blocks_tech:
        model = "low"
        reasons.append(
            f"complexity scores {complexity}: a complex product is never pure tech touch, "
            "so low touch (removing needed human support causes churn)"
        )
    zones: list[Zone] = []
    zone_models: dict[str, str] = {}
    recommendation = TOUCH_NAME[model]
    if portfolio is not None and len(portfolio):
        zones = acv_zones(portfolio, sf)
        t = sf.hybrid_zone_share
        dominant = [z for z in zones if z.share_accounts >= t and z.share_arr >= t]
        if dominant:
            z = dominant[0]
            reasons.append(
                f"the {TOUCH_NAME[z.touch]} ACV zone holds {z.share_accounts:.0%} of accounts and "
                f"{z.share_arr:.0%} of ARR (>= {t:.0%} of both): one model fits"
            )
        else:
            recommendation = "hybrid"
            for z in zones:
                if z.accounts:
                    touch = z.touch
                    if touch == "tech" and complexity >= sf.complexity_blocks_tech:
                        touch = "low"
                    zone_models[z.touch] = TOUCH_NAME[touch]
            spread = ", ".join(
                f"{TOUCH_NAME[z.touch]} zone {z.share_accounts:.0%} of accounts / "
                f"{z.share_arr:.0%} of ARR"
                for z in zones
            )
            reasons.append(
                f"no ACV zone holds >= {t:.0%} of both accounts and ARR ({spread}): hybrid, "
                f"segment by ACV and strategic value with a model per tier; base model "
                f"{TOUCH_NAME[model]}"
            )
    return Selection(
        factors=factors,
        total=total,
        band=band,
        model=model,
        recommendation=recommendation,
        reasons=reasons,
        zones=zones,
        hybrid_threshold=sf.hybrid_zone_share if zones else None,
        zone_models=zone_models,
    )


def load_answers(path: Path) -> Answers:
    """Read a YAML answers file; errors name the file, key, value and expectation."""
    if not path.exists():
        raise SelectError(f"{path}: (file): not found -- expected a YAML answers file")
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SelectError(yaml_error_text(str(path), exc)) from None
    if not isinstance(data, dict):
        raise SelectError(f"{path}: (top level): value {type(data).__name__} -- expected a mapping")
    try:
        return Answers.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = dotted(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            expected = f"one of {', '.join((*FACTORS, 'scores'))}"
            raise SelectError(f"{path}: {where}: unknown key -- expected {expected}") from None
        raise SelectError(f"{path}: {where}: value {err.get('input')!r} -- {err['msg']}") from None
