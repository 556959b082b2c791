"""A generated *normalized* export: the shape many billing and product databases have.

Unlike the demo folder (one file per contract table), nothing here is keyed
the way the data contract wants:

* ``customers.csv``: one row per customer (``customer_id``, company, size,
  industry, owner, ``key_account`` as yes/no);
* ``subscriptions.csv``: several per customer (``mrr``, seats, monthly quota,
  ``started_on``, ``ended_on``): ARR is 12 x the MRR of the subscriptions
  active on the as-of date, and some start after it or have ended;
* ``feature_usage.parquet``: product events keyed by ``subscription_id``;
* ``support_tickets.csv``: tickets with a CSAT score (1-5, often empty);
* ``survey_responses.csv``: NPS and CSAT answers in one table, some skipped
  (no score);
* ``churn_events.csv``: ``churned`` and ``reactivated`` events per customer.

``src/touchmodel/examples/normalized-mapping.yaml`` maps it onto the
contract with SQL (docs/mapping.md explains it). Write one with
``python -m touchmodel.demo.normalized OUT_FOLDER [--customers N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_AS_OF = dt.date(2026, 11, 1)

_PLANS = [("starter", 150, 2_000), ("growth", 900, 10_000), ("business", 3_000, 40_000),
          ("enterprise", 12_000, 150_000)]  # fmt: skip
_CORE = ["report.created", "dashboard.viewed", "workflow.run", "record.updated"]
_OTHER = ["premium.forecasting", "integration.salesforce", "milestone.first_workflow", "seat.added",
          "pricing.enterprise_viewed", "export.csv"]  # fmt: skip
_INDUSTRIES = ["software", "retail", "finance", "health", "logistics"]
_OWNERS = ["Dana Reyes", "Jo Kim", "Sam Patel", ""]
_CATEGORIES = ["how-to", "billing", "bug", "integration", "complaint", "downgrade"]


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(["" if v is None else v for v in row] for row in rows)


def write_normalized(
    folder: Path, *, customers: int = 200, seed: int = 7, as_of: dt.date = DEFAULT_AS_OF
) -> dict[str, int]:
    """Write a normalized export of ``customers`` customers into ``folder``; rows per file."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cust: list[list[object]] = []
    subs: list[list[object]] = []
    tickets: list[list[object]] = []
    surveys: list[list[object]] = []
    churn: list[list[object]] = []
    usage_cols: dict[str, list[object]] = {"subscription_id": [], "used_at": [], "feature": [],
                                           "user_email": [], "count": []}  # fmt: skip
    sub_no = ticket_no = 0
    for i in range(1, customers + 1):
        cid = f"CUS-{i:05d}"
        cust.append([cid, f"Company {i}", int(rng.integers(5, 3000)),
                     _INDUSTRIES[int(rng.integers(len(_INDUSTRIES)))],
                     _OWNERS[int(rng.integers(len(_OWNERS)))],
                     "yes" if rng.random() < 0.05 else "no"])  # fmt: skip
        # Customer since 1 to 1,000 days before the as-of date; a few start after it.
        since = as_of - dt.timedelta(days=int(rng.integers(-20, 1000)))
        plan, mrr, quota = _PLANS[int(rng.choice(4, p=[0.45, 0.3, 0.18, 0.07]))]
        sub_ids = []
        if rng.random() < 0.3 and since < as_of - dt.timedelta(days=60):
            # An earlier subscription, ended on an upgrade: not in today's ARR.
            sub_no += 1
            switch = since + dt.timedelta(days=int(rng.integers(1, (as_of - since).days - 30)))
            subs.append([f"SUB-{sub_no:06d}", cid, "starter", 150, 3, 2_000, since, switch])
            sub_ids.append(f"SUB-{sub_no:06d}")
            start = switch
        else:
            start = since
        sub_no += 1
        seats = int(rng.integers(3, 60))
        subs.append([f"SUB-{sub_no:06d}", cid, plan, round(mrr * float(rng.uniform(0.8, 1.3)), 2),
                     seats, quota, start, None])  # fmt: skip
        sub_ids.append(f"SUB-{sub_no:06d}")
        if rng.random() < 0.15:
            # An add-on subscription, sometimes starting after the as-of date.
            sub_no += 1
            addon_start = as_of + dt.timedelta(days=int(rng.integers(-200, 15)))
            subs.append(
                [f"SUB-{sub_no:06d}", cid, "addon", 200.0, 5, 1_000, max(addon_start, start), None]
            )
            sub_ids.append(f"SUB-{sub_no:06d}")
        churned = None
        if rng.random() < 0.08:
            churned = as_of - dt.timedelta(days=int(rng.integers(1, 200)))
            if churned > since:
                churn.append([cid, "churned", churned])
                if rng.random() < 0.3:  # came back later: a later reactivation, then churned again
                    churn.append([cid, "reactivated", churned + dt.timedelta(days=5)])
            else:
                churned = None
        # Usage over the last 120 days; some accounts decline or stop.
        level = float(rng.uniform(0.2, 6.0))
        decline = rng.random() < 0.2
        stop = int(rng.integers(20, 60)) if rng.random() < 0.08 else 0
        for age in range(120, stop - 1, -1):
            day = as_of - dt.timedelta(days=age)
            if day < since:
                continue
            rate = level * (0.3 if decline and age < 30 else 1.0)
            for _ in range(int(rng.poisson(rate))):
                feature = (_CORE[int(rng.integers(4))] if rng.random() < 0.85
                           else _OTHER[int(rng.integers(len(_OTHER)))])  # fmt: skip
                at = dt.datetime.combine(day, dt.time()) + dt.timedelta(
                    seconds=int(rng.integers(86_400))
                )
                usage_cols["subscription_id"].append(sub_ids[int(rng.integers(len(sub_ids)))])
                usage_cols["used_at"].append(at)
                usage_cols["feature"].append(feature)
                usage_cols["user_email"].append(
                    f"user{int(rng.integers(1, 8))}@{cid.lower()}.example"
                )
                usage_cols["count"].append(int(rng.integers(1, 4)))
        for _ in range(int(rng.poisson(1.5))):
            ticket_no += 1
            opened = dt.datetime.combine(as_of, dt.time(9)) - dt.timedelta(
                hours=int(rng.integers(1, 24 * 90))
            )
            closed = (
                opened + dt.timedelta(hours=int(rng.integers(1, 96)))
                if rng.random() < 0.8
                else None
            )
            csat = int(rng.integers(1, 6)) if closed is not None and rng.random() < 0.5 else None
            tickets.append([f"T-{ticket_no:06d}", cid, opened, closed,
                            ["low", "normal", "high"][int(rng.integers(3))],
                            _CATEGORIES[int(rng.integers(len(_CATEGORIES)))], csat])  # fmt: skip
        for question in ("nps", "csat"):
            if rng.random() < 0.5:
                answered = dt.datetime.combine(as_of, dt.time(12)) - dt.timedelta(
                    days=int(rng.integers(1, 170))
                )
                top = 10 if question == "nps" else 5
                score = int(rng.integers(0, top + 1)) if rng.random() < 0.8 else None
                surveys.append([f"R-{len(surveys) + 1:06d}", cid, answered, question, score])
    _write_csv(
        folder / "customers.csv",
        ["customer_id", "company_name", "employee_count", "industry", "owner", "key_account"],
        cust,
    )
    _write_csv(
        folder / "subscriptions.csv",
        [
            "subscription_id",
            "customer_id",
            "plan_name",
            "mrr",
            "seats",
            "monthly_quota",
            "started_on",
            "ended_on",
        ],
        subs,
    )
    _write_csv(
        folder / "support_tickets.csv",
        ["ticket_id", "customer_id", "opened", "closed", "priority", "category", "csat"],
        tickets,
    )
    _write_csv(
        folder / "survey_responses.csv",
        ["response_id", "customer_id", "submitted_at", "question", "score"],
        surveys,
    )
    _write_csv(folder / "churn_events.csv", ["customer_id", "event_type", "effective_date"], churn)
    usage_table = pa.table(usage_cols)
    pq.write_table(usage_table, folder / "feature_usage.parquet")  # fmt: skip
    return {
        "customers": len(cust),
        "subscriptions": len(subs),
        "feature_usage": usage_table.num_rows,
        "support_tickets": len(tickets),
        "survey_responses": len(surveys),
        "churn_events": len(churn),
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m touchmodel.demo.normalized OUT``: write the example export and say what."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="folder to write the files into")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=DEFAULT_AS_OF)
    args = parser.parse_args(argv)
    rows = write_normalized(args.out, customers=args.customers, seed=args.seed, as_of=args.as_of)
    print(f"Wrote a normalized export to {args.out}: "
          + ", ".join(f"{n:,} {name}" for name, n in rows.items()))  # fmt: skip


if __name__ == "__main__":
    main()
