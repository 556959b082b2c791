"""Planning: capacity, hiring, unit economics, projections and the six-factor model choice.

Pure functions over a touch model, a team and a portfolio table (pyarrow or
pandas with ``account_id, arr, tier, tier_level, strategic``); nothing here
loads data. Every figure is a default in :class:`PlanningDefaults`.

Typical use::

    from touchmodel.plan import as_portfolio, load_team, project

    portfolio = as_portfolio(result.accounts)          # from Engine.run
    team, defaults = load_team(Path("team.yaml"), model)
    today, in_12, in_24 = project(model, portfolio, team, growth=0.4, defaults=defaults)
"""

from touchmodel.plan.advice import (
    Advice,
    Mistake,
    Stage,
    advise,
    customer_stage,
    detect_mistakes,
    org_phase,
)
from touchmodel.plan.capacity import (
    BandFix,
    CapacityPlan,
    Feasibility,
    HiringCheck,
    TierPlan,
    band_fixes,
    hiring_checks,
    plan_capacity,
    ratios,
)
from touchmodel.plan.defaults import PlanningDefaults
from touchmodel.plan.economics import (
    UnitEconomics,
    parse_share,
    share_verdict,
    share_verdict_text,
    unit_economics,
    worked_economics,
)
from touchmodel.plan.portfolio import Portfolio, as_portfolio
from touchmodel.plan.projection import growth_factor, parse_growth, project
from touchmodel.plan.select import (
    Answers,
    Selection,
    acv_zones,
    band_for,
    fill_from_portfolio,
    select_model,
)
from touchmodel.plan.team import (
    Team,
    TeamFile,
    TeamFileError,
    build_team,
    load_team,
    read_team_file,
)

__all__ = [
    "Advice",
    "Answers",
    "BandFix",
    "CapacityPlan",
    "Feasibility",
    "HiringCheck",
    "Mistake",
    "PlanningDefaults",
    "Portfolio",
    "Selection",
    "Stage",
    "Team",
    "TeamFile",
    "TeamFileError",
    "TierPlan",
    "UnitEconomics",
    "acv_zones",
    "advise",
    "as_portfolio",
    "band_fixes",
    "band_for",
    "build_team",
    "customer_stage",
    "detect_mistakes",
    "fill_from_portfolio",
    "growth_factor",
    "hiring_checks",
    "load_team",
    "org_phase",
    "parse_growth",
    "parse_share",
    "plan_capacity",
    "project",
    "ratios",
    "read_team_file",
    "select_model",
    "share_verdict",
    "share_verdict_text",
    "unit_economics",
    "worked_economics",
]
