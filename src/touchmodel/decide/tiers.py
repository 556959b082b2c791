"""Tier placement: half-open bands on the tiering signal, and the strategic lift."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from touchmodel.model.schema import LEVELS, TouchModel


def level_rank(level: str) -> int:
    """Position of a touch level in ``tech < low < medium < high``."""
    return LEVELS.index(level)  # type: ignore[arg-type]


def band_tier(model: TouchModel, value: ir.NumericValue) -> ir.StringValue:
    """The tier whose band ``[min, max)`` holds ``value``; nulls count as 0."""
    v = value.cast("float64").fill_null(0)
    cases = []
    for tier in sorted(model.tiers, key=lambda t: t.band.min):
        cond = v >= tier.band.min
        if tier.band.max is not None:
            cond = cond & (v < tier.band.max)
        cases.append((cond, ibis.literal(tier.id)))
    lowest = min(model.tiers, key=lambda t: t.band.min).id
    return ibis.cases(*cases, else_=ibis.literal(lowest))


def tier_columns(model: TouchModel, table: ir.Table) -> dict[str, ir.Value]:
    """Columns ``band_tier``, ``tier``, ``tier_level``, ``tier_level_rank``, ``tier_reason``.

    A strategic account is lifted into ``tiering.strategic_tier`` when that tier's
    level is higher than its band's; the lift never lowers a tier.
    """
    signal = model.tiering.signal
    by_band = band_tier(model, table[signal])
    rank_of = {t.id: level_rank(t.level) for t in model.tiers}
    band_rank = by_band.cases(*[(tid, r) for tid, r in rank_of.items()], else_=0)
    tier = by_band
    lifted = ibis.literal(False)
    st = model.tiering.strategic_tier
    if st is not None and "strategic" in table.columns:
        lifted = table.strategic.fill_null(False) & (band_rank < rank_of[st])
        tier = ibis.ifelse(lifted, ibis.literal(st), by_band)
    levels = {t.id: t.level for t in model.tiers}
    tier_level = tier.cases(*list(levels.items()), else_=model.tiers[0].level)
    tier_rank = tier.cases(*[(tid, r) for tid, r in rank_of.items()], else_=0)
    bands = {
        t.id: f"{signal} in [{t.band.min:,.0f}, {'no limit' if t.band.max is None else f'{t.band.max:,.0f}'})"
        for t in model.tiers
    }
    band_text = by_band.cases(*list(bands.items()), else_="")
    reason = ibis.literal("tier '") + by_band + "' by " + band_text
    if st is not None:
        reason = ibis.ifelse(
            lifted, reason + ibis.literal(f"; strategic account lifted to tier '{st}'"), reason
        )
    return {
        "band_tier": by_band,
        "tier": tier,
        "tier_level": tier_level,
        "tier_level_rank": tier_rank,
        "tier_reason": reason,
    }


def assign_tiers(model: TouchModel, accounts: ir.Table) -> ir.Table:
    """``accounts`` with the tier columns added (see :func:`tier_columns`)."""
    return accounts.mutate(**tier_columns(model, accounts))
