"""CSM books: which CSM owns which account, kept stable from run to run.

Pure functions, no database: the caller passes this run's accounts (with their
tier from the engine), the previous run's assignments and the team's named
CSMs (:func:`touchmodel.plan.team.book_owners`), and stores the result.

Rules (issue 4, "CSM books"):

- **Sticky.** An account whose CSM is still on the team and covers the
  account's tier stays with that CSM, even over cap: a full book is reported
  as a warning (and :func:`propose_rebalance` suggests moves), never reshuffled.
- **Automation tiers** have no CSM; an account moving into one leaves its book.
- **New or moved accounts** (new to the base, tier changed to one their CSM does
  not cover, CSM left the team, or a migration rule with ``reassign``) are
  placed in account-id order: in a dedicated tier the CRM's CSM when that person
  is on the team, covers the tier and has room; otherwise, and always in pooled
  tiers, the least-loaded CSM covering the tier. *Least loaded* is the lowest
  load ratio (accounts of the tier in the book / the book's capacity for the
  tier), ties by name, CSMs with room before CSMs at cap. When every CSM is at
  cap the least-loaded one still gets the account, with a warning.
- **Tier migrations** (tier differs from the previous run) create a task for
  every matching rule of the model's ``migrations`` (in file order).

Only the accounts to place go through a heap; the sticky pass is dict look-ups,
so 100k accounts and 20 CSMs take a fraction of a second.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa

from touchmodel.errors import DataError
from touchmodel.model.migrations import NEW_CSM, PREVIOUS_CSM, MigrationRule
from touchmodel.model.schema import Tier, TouchModel
from touchmodel.plan.team import BookOwner

# Assignments, changes, tasks and moves are NamedTuples, not frozen dataclasses:
# there is one per account and a frozen dataclass costs ~3x more to build, which
# is most of the time for 100k accounts.

# Capacities are fractional (a CSM on 3 tiers holds 1/3 of each ratio); the
# tolerance keeps 3 x (50/3) from reading as "over 50" through rounding.
_EPS = 1e-9


class Assignment(NamedTuple):
    """Who owns an account in this run (``csm`` None: no CSM), and why."""

    csm: str | None
    tier: str
    reason: str


class Change(NamedTuple):
    """An account whose CSM or tier differs from the previous run.

    ``from_*`` are None for an account new to the base; ``to_*`` are None for
    an account that left it (in ``current`` but not in this run's accounts).
    """

    account_id: str
    from_csm: str | None
    to_csm: str | None
    from_tier: str | None
    to_tier: str | None
    reason: str


class MigrationTask(NamedTuple):
    """A task created by a migration rule for an account that changed tier.

    ``owner`` is the person doing it (the new or the previous CSM, per the
    rule's ``team``) or None for a team queue; ``team`` is ``"csm"`` for both
    CSM kinds, else the rule's team.
    """

    account_id: str
    rule_id: str
    task: str
    owner: str | None
    team: str
    sla_days: int
    from_tier: str
    to_tier: str


@dataclass(frozen=True)
class BookLoad:
    """The size of one CSM's book in one tier against its cap."""

    csm: str
    tier: str
    accounts: int
    cap: float

    @property
    def over_cap(self) -> bool:
        """Whether the book holds more accounts than its cap."""
        return self.accounts > self.cap + _EPS


@dataclass(frozen=True)
class BookPlan:
    """The result of :func:`assign_books`; every list is in a deterministic order."""

    assignments: dict[str, Assignment]
    changes: list[Change]
    migrations: list[MigrationTask]
    warnings: list[str]
    loads: list[BookLoad]


class Move(NamedTuple):
    """A proposed move of one account from an over-cap book to a book with room."""

    account_id: str
    from_csm: str
    to_csm: str
    tier: str
    reason: str


def _num(x: float) -> str:
    """A cap as people read it: 50, 16.7."""
    return f"{x:g}" if float(x).is_integer() else f"{x:.1f}"


def _clean(value: object) -> str | None:
    """A CRM owner cell as a name, or None when empty (None, NaN, blank)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _read_accounts(accounts: Any) -> tuple[list[str], list[str], list[str | None]]:
    """account_id, tier and CRM owner columns from a table or an iterable of rows.

    The CRM owner is read from ``crm_csm``, else from ``csm`` (the accounts
    column of the data contract); without either, every CRM owner is None.
    """
    ids: list[str]
    tiers: list[str]
    crm: list[str | None]
    if isinstance(accounts, pa.Table):
        accounts = accounts.to_pandas()
    if isinstance(accounts, pd.DataFrame):
        missing = [c for c in ("account_id", "tier") if c not in accounts.columns]
        if missing:
            raise DataError(
                f"accounts: missing column(s) {', '.join(missing)} -- expected account_id, tier "
                "and optionally crm_csm"
            )
        crm_col = next((c for c in ("crm_csm", "csm") if c in accounts.columns), None)
        ids = accounts["account_id"].astype(str).tolist()
        tiers = accounts["tier"].astype(str).tolist()
        crm = [_clean(v) for v in accounts[crm_col].tolist()] if crm_col else [None] * len(ids)
        return ids, tiers, crm
    ids, tiers, crm = [], [], []
    for row in accounts:
        ids.append(str(row["account_id"]))
        tiers.append(str(row["tier"]))
        crm.append(_clean(row.get("crm_csm", row.get("csm"))))
    return ids, tiers, crm


class _Books:
    """Loads per (CSM, tier) and, per tier, a heap that yields the least-loaded CSM.

    Heap entries are ``(full, ratio, name, load_when_pushed)``; a CRM placement
    changes a load behind the heap's back, so a popped entry whose load is stale
    is re-keyed and pushed again (lazy invalidation) instead of rebuilding heaps.
    """

    def __init__(self, owners: Sequence[BookOwner]) -> None:
        self.cap = {(o.name, t): c for o in owners for t, c in o.capacity.items()}
        self.load: Counter[tuple[str, str]] = Counter()
        self.covering: dict[str, list[str]] = {}
        for o in owners:
            for t in o.capacity:
                self.covering.setdefault(t, []).append(o.name)
        self._heaps: dict[str, list[tuple[bool, float, str, int]]] = {}

    def has_room(self, name: str, tier: str) -> bool:
        return self.load[name, tier] + 1 <= self.cap[name, tier] + _EPS

    def _key(self, name: str, tier: str) -> tuple[bool, float, str, int]:
        load, cap = self.load[name, tier], self.cap[name, tier]
        ratio = load / cap if cap > 0 else math.inf
        return (not self.has_room(name, tier), ratio, name, load)

    def least_loaded(self, tier: str) -> str:
        """The CSM covering ``tier`` to place the next account with (tier must be covered)."""
        heap = self._heaps.get(tier)
        if heap is None:
            # Built on first use, after the sticky pass has set every load.
            heap = self._heaps[tier] = [self._key(n, tier) for n in self.covering[tier]]
            heapq.heapify(heap)
        while True:
            entry = heap[0]
            fresh = self._key(entry[2], tier)
            if fresh == entry:
                return entry[2]
            heapq.heapreplace(heap, fresh)

    def add(self, name: str, tier: str) -> None:
        self.load[name, tier] += 1


def _matching_rules(
    model: TouchModel, tiers: Mapping[str, Tier], old: str, new: str
) -> list[MigrationRule]:
    return [r for r in model.migrations if r.matches(tiers.get(old), tiers[new])]


def assign_books(
    accounts: Any,
    current: Mapping[str, tuple[str | None, str]],
    owners: Sequence[BookOwner],
    model: TouchModel,
) -> BookPlan:
    """Assign every account a CSM (or none), keeping previous assignments where possible.

    ``accounts``: a pyarrow Table, pandas DataFrame or iterable of mappings with
    ``account_id``, ``tier`` and optionally ``crm_csm`` (or ``csm``), the CRM's
    owner name. ``current``: the previous run, account_id -> (csm or None, tier).
    ``owners``: the team's named CSMs with their capacities.

    Deterministic: accounts are processed in account-id order. See the module
    docstring for the rules; every assignment and change carries its reason.
    Raises :class:`DataError` for a duplicate account id or a tier the model
    does not have.
    """
    ids, tiers, crm = _read_accounts(accounts)
    order = sorted(range(len(ids)), key=ids.__getitem__)
    for a, b in pairwise(order):
        if ids[a] == ids[b]:
            raise DataError(f"accounts: account_id {ids[a]!r} appears twice -- expected one row")
    by_tier = {t.id: t for t in model.tiers}
    unknown = sorted(set(tiers) - set(by_tier))
    if unknown:
        raise DataError(
            f"accounts: tier(s) {', '.join(unknown)} -- expected tier ids of model "
            f"'{model.name}' ({', '.join(by_tier)})"
        )
    by_name = {o.name: o for o in owners}
    books = _Books(owners)
    # Rules matching each (old tier, new tier) pair, and the first that reassigns.
    rules_for: dict[tuple[str, str], tuple[list[MigrationRule], str | None]] = {}
    assignments: dict[str, Assignment] = {}
    rules_of: dict[str, list[MigrationRule]] = {}
    pending: list[tuple[int, str]] = []  # (row, why it needs placing)

    # Pass 1: automation tiers and sticky accounts, so that placement sees every kept load.
    # Unchanged accounts share one Assignment per book (and per automation tier):
    # they are most of a run and need no reason of their own.
    automation = {t.id for t in model.tiers if t.owner == "automation"}
    shared: dict[tuple[str | None, str, str | None], Assignment] = {}
    for i in order:
        aid, tier = ids[i], tiers[i]
        prev = current.get(aid)
        prev_csm, prev_tier = prev if prev is not None else (None, None)
        moved = prev_tier is not None and prev_tier != tier
        reassign = None
        if moved:
            pair = (str(prev_tier), tier)
            if pair not in rules_for:
                rules = _matching_rules(model, by_tier, *pair)
                rules_for[pair] = (rules, next((r.id for r in rules if r.reassign), None))
            rules, reassign = rules_for[pair]
            if rules:
                rules_of[aid] = rules
        if tier in automation:
            key: tuple[str | None, str, str | None] = (None, tier, prev_csm)
            if key not in shared:
                was = f" (was in {prev_csm}'s book)" if prev_csm else ""
                shared[key] = Assignment(None, tier, f"tier {tier} is automation: no CSM{was}")
            assignments[aid] = shared[key]
            continue
        owner = by_name.get(prev_csm)  # type: ignore[arg-type]  # None is never a key
        if owner is not None and owner.covers(tier) and reassign is None:
            books.add(owner.name, tier)
            if moved:
                why = f"tier changed {prev_tier}→{tier}: {owner.name} covers {tier}, kept (sticky)"
                assignments[aid] = Assignment(owner.name, tier, why)
                continue
            key = (owner.name, tier, None)
            if key not in shared:
                why = f"sticky: in {owner.name}'s book since an earlier run"
                shared[key] = Assignment(owner.name, tier, why)
            assignments[aid] = shared[key]
            continue
        step = f"tier changed {prev_tier}→{tier}"
        if prev is None:
            why = f"new account in tier {tier}"
        elif prev_csm is not None and owner is None:
            why = f"{prev_csm} is no longer on the team"
        elif reassign is not None:
            why = f"{step}: rule {reassign} reassigns"
        elif moved:
            why = f"{step}: {prev_csm} does not cover {tier}" if prev_csm else step
        elif prev_csm is not None:
            why = f"{prev_csm} no longer covers tier {tier}"
        else:
            why = f"no CSM in tier {tier} last run"
        pending.append((i, why))

    # Pass 2: place new and moved accounts, in account-id order.
    uncovered: Counter[str] = Counter()
    forced: Counter[tuple[str, str]] = Counter()
    for i, why in pending:
        aid, tier = ids[i], tiers[i]
        if tier not in books.covering:
            uncovered[tier] += 1
            assignments[aid] = Assignment(None, tier, f"{why}: no CSM on the team covers {tier}")
            continue
        note = ""
        who = crm[i]
        if by_tier[tier].owner == "dedicated_csm" and who is not None:
            crm_owner = by_name.get(who)
            if crm_owner is None:
                note = f"CRM owner {who} is not on the team; "
            elif not crm_owner.covers(tier):
                note = f"CRM owner {who} does not cover {tier}; "
            elif not books.has_room(who, tier):
                load, cap = books.load[who, tier], books.cap[who, tier]
                note = f"CRM owner {who} is at cap ({load}/{_num(cap)}); "
            else:
                books.add(who, tier)
                assignments[aid] = Assignment(who, tier, f"{why}: CRM owner {who}")
                continue
        name = books.least_loaded(tier)
        load, cap = books.load[name, tier], books.cap[name, tier]
        text = f"{why}: {note}least-loaded CSM {name} ({load}/{_num(cap)})"
        if not books.has_room(name, tier):
            forced[name, tier] += 1
            text += f"; over cap: every CSM covering {tier} is at cap"
        books.add(name, tier)
        assignments[aid] = Assignment(name, tier, text)

    loads = [
        BookLoad(o.name, t, books.load[o.name, t], o.capacity[t])
        for o in sorted(owners, key=lambda o: o.name)
        for t in by_tier
        if o.covers(t) and by_tier[t].owner != "automation"
    ]
    warnings = [
        f"tier {t}: no CSM on the team covers it; {n} account(s) left without a CSM"
        for t, n in sorted(uncovered.items(), key=lambda kv: list(by_tier).index(kv[0]))
    ]
    for bl in sorted(loads, key=lambda b: (list(by_tier).index(b.tier), b.csm)):
        if not bl.over_cap:
            continue
        head = (
            f"tier {bl.tier}: {bl.csm} holds {bl.accounts} accounts, over the cap of {_num(bl.cap)}"
        )
        n = forced[bl.csm, bl.tier]
        if n:
            warnings.append(
                f"{head} -- every CSM covering {bl.tier} was at cap, {n} new account(s) placed "
                "over it; hire or raise the tier's accounts_per_csm"
            )
        else:
            warnings.append(
                f"{head} -- kept because books are sticky; `touchmodel rebalance` proposes moves"
            )

    return BookPlan(
        assignments=assignments,
        changes=_changes(ids, order, assignments, current),
        migrations=_tasks(ids, order, assignments, current, rules_of),
        warnings=warnings,
        loads=loads,
    )


def _changes(
    ids: list[str],
    order: list[int],
    assignments: Mapping[str, Assignment],
    current: Mapping[str, tuple[str | None, str]],
) -> list[Change]:
    out: list[Change] = []
    for i in order:
        aid = ids[i]
        a = assignments[aid]
        prev = current.get(aid)
        if prev is None:
            out.append(Change(aid, None, a.csm, None, a.tier, a.reason))
        elif prev != (a.csm, a.tier):
            out.append(Change(aid, prev[0], a.csm, prev[1], a.tier, a.reason))
    for aid in sorted(set(current) - set(assignments)):
        csm, tier = current[aid]
        out.append(Change(aid, csm, None, tier, None, "left the base: not in this run's accounts"))
    return out


def _tasks(
    ids: list[str],
    order: list[int],
    assignments: Mapping[str, Assignment],
    current: Mapping[str, tuple[str | None, str]],
    rules_of: Mapping[str, list[MigrationRule]],
) -> list[MigrationTask]:
    out: list[MigrationTask] = []
    for i in order:
        aid = ids[i]
        rules = rules_of.get(aid)
        if not rules:
            continue
        prev_csm, prev_tier = current[aid]
        new = assignments[aid]
        for r in rules:
            if r.team == NEW_CSM:
                owner, team = new.csm, NEW_CSM
            elif r.team == PREVIOUS_CSM:
                owner, team = prev_csm, NEW_CSM
            else:
                owner, team = None, r.team
            out.append(
                MigrationTask(aid, r.id, r.task, owner, team, r.sla_days, prev_tier, new.tier)
            )
    return out


def propose_rebalance(
    assignments: Mapping[str, Assignment],
    owners: Sequence[BookOwner],
    model: TouchModel,
    *,
    assigned_at: Mapping[str, Any] | None = None,
) -> list[Move]:
    """Moves that bring over-cap books under cap, using spare room in the same tier.

    For each tier (model order) and each over-cap book (fullest first, then by
    name), accounts move out most recently assigned first: they have the
    shortest relationship to lose. ``assigned_at`` maps account ids to when
    they were assigned (any comparable values, e.g. timestamps); accounts
    without a value count as the newest, and ties go by account id, highest
    first. (To move the lowest-ARR accounts first instead, pass ``-arr``.)

    Each account goes to the least-loaded other CSM covering the tier who has
    room (load + 1 <= cap), so a destination never ends over cap; moves stop
    when the book is under cap or no CSM has room. Pure: nothing is applied.
    """
    since = assigned_at or {}
    books = _Books(owners)
    members: dict[tuple[str, str], list[str]] = {}
    for aid, a in assignments.items():
        if a.csm is not None and (a.csm, a.tier) in books.cap:
            books.add(a.csm, a.tier)
            members.setdefault((a.csm, a.tier), []).append(aid)
    moves: list[Move] = []
    for tier in (t.id for t in model.tiers if t.owner != "automation"):
        names = books.covering.get(tier, [])

        def ratio(name: str, tier: str = tier) -> float:
            cap = books.cap[name, tier]
            return books.load[name, tier] / cap if cap > 0 else math.inf

        over = [n for n in names if books.load[n, tier] > books.cap[n, tier] + _EPS]
        for name in sorted(over, key=lambda n: (-ratio(n), n)):
            book = members[name, tier]
            undated = sorted((a for a in book if a not in since), reverse=True)
            dated = sorted((a for a in book if a in since), key=lambda a: (since[a], a))
            for aid in undated + dated[::-1]:
                load, cap = books.load[name, tier], books.cap[name, tier]
                if load <= cap + _EPS:
                    break
                room = [n for n in names if n != name and books.has_room(n, tier)]
                if not room:
                    break
                dest = min(room, key=lambda n: (ratio(n), n))
                dload, dcap = books.load[dest, tier], books.cap[dest, tier]
                moves.append(
                    Move(
                        aid,
                        name,
                        dest,
                        tier,
                        f"{name} is over cap in {tier} ({load}/{_num(cap)}): move to "
                        f"least-loaded {dest} ({dload}/{_num(dcap)})",
                    )
                )
                books.load[name, tier] -= 1
                books.add(dest, tier)
    return moves


def current_from_plan(plan: BookPlan) -> dict[str, tuple[str | None, str]]:
    """A plan's assignments in the shape :func:`assign_books` takes as ``current``."""
    return {aid: (a.csm, a.tier) for aid, a in plan.assignments.items()}
