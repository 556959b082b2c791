"""The data contract (docs/data-contract.md): canonical tables, columns and their types.

Column names here are the public contract; users' mapping files rename their
own columns onto these. Unknown extra columns are kept and usable by rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "number", "integer", "date", "timestamp", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    # Allowed values (after value maps), e.g. payment status.
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    required: bool = False
    # Rows must name an account that exists in `accounts`.
    references_accounts: bool = True
    defaults: dict[str, object] = field(default_factory=dict)

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


ACCOUNTS = TableSpec(
    name="accounts",
    required=True,
    references_accounts=False,
    key=("account_id",),
    columns=(
        Column("account_id", "string", required=True),
        Column("name", "string"),
        Column("arr", "number", required=True, min=0),
        Column("contract_start", "date", required=True),
        Column("renewal_date", "date"),
        Column("employees", "integer", min=0),
        Column("plan", "string"),
        Column("plan_limit", "number", min=0),
        Column("seats", "integer", min=0),
        Column("industry", "string"),
        Column("strategic", "bool"),
        Column("csm", "string"),
        Column("churned_on", "date"),
    ),
    defaults={"strategic": False},
)

USAGE_EVENTS = TableSpec(
    name="usage_events",
    columns=(
        Column("account_id", "string", required=True),
        Column("timestamp", "timestamp", required=True),
        Column("event", "string", required=True),
        Column("user_id", "string"),
        Column("quantity", "number"),
    ),
    defaults={"quantity": 1},
)

TICKETS = TableSpec(
    name="tickets",
    key=("ticket_id",),
    columns=(
        Column("ticket_id", "string", required=True),
        Column("account_id", "string", required=True),
        Column("opened_at", "timestamp", required=True),
        Column("closed_at", "timestamp"),
        Column("priority", "string"),
        Column("category", "string"),
        Column("satisfaction", "number"),
    ),
)

NPS_RESPONSES = TableSpec(
    name="nps_responses",
    columns=(
        Column("account_id", "string", required=True),
        Column("responded_at", "timestamp", required=True),
        Column("score", "integer", required=True, min=0, max=10),
        Column("contact_id", "string"),
        Column("comment", "string"),
    ),
)

PAYMENTS = TableSpec(
    name="payments",
    columns=(
        Column("account_id", "string", required=True),
        Column("invoice_id", "string", required=True),
        Column("due_date", "date", required=True),
        Column("amount", "number", required=True),
        Column("status", "string", required=True, choices=("paid", "failed", "refunded")),
        Column("paid_at", "timestamp"),
    ),
)

CONTACTS = TableSpec(
    name="contacts",
    key=("contact_id",),
    columns=(
        Column("contact_id", "string", required=True),
        Column("account_id", "string", required=True),
        Column("email", "string"),
        Column("title", "string"),
        Column("created_at", "timestamp"),
    ),
)

TABLES: dict[str, TableSpec] = {
    t.name: t for t in (ACCOUNTS, USAGE_EVENTS, TICKETS, NPS_RESPONSES, PAYMENTS, CONTACTS)
}

# Contract column type -> Ibis type of the loaded (validated) column.
IBIS_TYPES: dict[str, str] = {
    "string": "string",
    "number": "float64",
    "integer": "int64",
    "date": "date",
    "timestamp": "timestamp",
    "bool": "boolean",
}
