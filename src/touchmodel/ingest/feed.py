"""Turning stored messages into run input: ``usage_events`` rows and account traits.

A daily run as of D reads every track/page/screen message stamped on or
before D as a ``usage_events`` row, and the group calls of each account (on
or before D) as that account's traits: merged key by key, the latest call
that sets a trait giving its value, as Segment merges them (a later call with
``{seats}`` alone keeps the ``plan`` an earlier call set). The rows are text, like
a CSV file's, so the loader types and checks them with the same rules as the
data folder's (see ``load_folder(ingested=...)``); problems land in the
rejected-rows report under :data:`USAGE_LABEL` / :data:`GROUPS_LABEL`.

The export is the only Python over messages; the account mapping (a user's
latest group call) and the trait extraction run in DuckDB.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from sqlalchemy import Text, cast, select

from touchmodel.sources.contract import TABLES
from touchmodel.sources.loader import (
    GROUPS_LABEL,
    INGESTED_EVENTS,
    INGESTED_GROUPS,
    MESSAGE_ID_COL,
    USAGE_LABEL,
)
from touchmodel.state.db import Store
from touchmodel.state.tables import IngestedMessage

__all__ = ["GROUPS_LABEL", "USAGE_LABEL", "IngestedInput", "ingest_warnings", "ingested_input"]
USAGE_TYPES = ("track", "page", "screen")
# Contract accounts columns a group trait may set; the id is the groupId itself.
TRAIT_COLUMNS = tuple(c.name for c in TABLES["accounts"].columns if c.name != "account_id")
ID_COL = MESSAGE_ID_COL  # the message's row id in ingested_messages (the report's "row")


@dataclass
class IngestedInput:
    """Ingested messages as loader input: text columns plus the message row id."""

    usage: pa.Table  # account_id, timestamp, event, user_id, quantity, ID_COL
    groups: pa.Table  # account_id, one column per trait found, ID_COL
    messages: int = 0  # track/page/screen messages up to the as-of date
    unmapped: int = 0  # of those, how many no groupId or group call maps to an account

    @property
    def empty(self) -> bool:
        return self.usage.num_rows == 0 and self.groups.num_rows == 0


def _export(store: Store, cutoff: dt.datetime) -> pa.Table:
    """Stored track/page/screen/group messages stamped before ``cutoff``, as Arrow."""
    cols: dict[str, list[object]] = {
        k: [] for k in ("id", "type", "user_id", "group_id", "event", "ts", "payload")
    }
    query = (
        select(
            IngestedMessage.id, IngestedMessage.type, IngestedMessage.user_id,
            IngestedMessage.anonymous_id, IngestedMessage.group_id, IngestedMessage.event,
            IngestedMessage.timestamp,
            # As text: DuckDB reads the JSON; parsing it in Python and dumping it
            # again was most of the export's time.
            cast(IngestedMessage.payload, Text),
        )
        .where(IngestedMessage.type.in_((*USAGE_TYPES, "group")))
        .where(IngestedMessage.timestamp < cutoff)
        .execution_options(yield_per=10_000)
    )  # fmt: skip
    with store.transaction() as session:
        for row in session.execute(query):
            ts = row.timestamp
            ts = ts.replace(tzinfo=None) if ts.tzinfo is None else ts.astimezone(dt.UTC)
            cols["id"].append(row.id)
            cols["type"].append(row.type)
            cols["user_id"].append(row.user_id or row.anonymous_id)
            cols["group_id"].append(row.group_id)
            cols["event"].append(row.event)
            cols["ts"].append(ts.replace(tzinfo=None))
            cols["payload"].append(row[-1])
    return pa.table(
        {
            "id": pa.array(cols["id"], pa.int64()),
            "type": pa.array(cols["type"], pa.string()),
            "user_id": pa.array(cols["user_id"], pa.string()),
            "group_id": pa.array(cols["group_id"], pa.string()),
            "event": pa.array(cols["event"], pa.string()),
            "ts": pa.array(cols["ts"], pa.timestamp("us")),
            "payload": pa.array(cols["payload"], pa.string()),
        }
    )


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    table = con.sql(sql).to_arrow_table()
    assert table is not None  # a SELECT always has a result
    return table


def ingested_input(store: Store, as_of: dt.date) -> IngestedInput:
    """The run input of every message stamped on or before ``as_of`` (UTC)."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    messages = _export(store, cutoff)
    con = duckdb.connect()
    try:
        con.register("messages", messages)
        # A track without a groupId belongs to the account of its user's latest
        # group call as of the run date.
        usage = _arrow(
            con,
            f"""
            WITH member AS (
                SELECT user_id, group_id FROM messages
                WHERE type = 'group' AND user_id IS NOT NULL
                QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, id DESC) = 1
            )
            SELECT
                coalesce(m.group_id, member.group_id) AS account_id,
                strftime(m.ts, '%Y-%m-%d %H:%M:%S.%f') AS timestamp,
                CASE WHEN m.type = 'track' THEN m.event ELSE coalesce(m.event, m.type) END
                    AS event,
                m.user_id AS user_id,
                CASE WHEN json_type(m.payload, '$.properties.quantity') IN ('BIGINT',
                    'UBIGINT', 'DOUBLE') THEN json_extract_string(m.payload,
                    '$.properties.quantity') ELSE '1' END AS quantity,
                m.id AS {ID_COL}
            FROM messages m LEFT JOIN member ON member.user_id = m.user_id
            WHERE m.type IN {USAGE_TYPES}
            ORDER BY m.id
            """,
        )
        # Which contract columns any group call sets (one pass, one row of counts).
        counted = _arrow(
            con,
            "SELECT "
            + ", ".join(
                f"count(*) FILTER (WHERE json_type(payload, '$.traits.{c}') "
                f"NOT IN ('NULL')) AS {_sql_name(c)}"
                for c in TRAIT_COLUMNS
            )
            + " FROM messages WHERE type = 'group'",
        ).to_pylist()[0]
        present = [c for c in TRAIT_COLUMNS if counted[c]]
        # Per trait, the value of the latest call that sets it (a null sets nothing).
        # The report's row is the account's latest group call.
        trait_cols = "".join(
            f", last(json_extract_string(payload, '$.traits.{c}') ORDER BY ts, id) "
            f"FILTER (WHERE json_type(payload, '$.traits.{c}') NOT IN ('NULL')) "
            f"AS {_sql_name(c)}"
            for c in present
        )
        groups = _arrow(
            con,
            f"""
            SELECT group_id AS account_id{trait_cols}, last(id ORDER BY ts, id) AS {ID_COL}
            FROM messages WHERE type = 'group'
            GROUP BY group_id
            ORDER BY {ID_COL}
            """,
        )
    finally:
        con.close()
    if not present:
        groups = groups.slice(0, 0)  # group calls without contract traits change nothing
    return IngestedInput(
        usage=usage,
        groups=groups,
        messages=usage.num_rows,
        unmapped=usage["account_id"].null_count,
    )


def ingest_warnings(ingested: IngestedInput, rejects: dict[str, dict[str, int]]) -> list[str]:
    """What a user should know about the ingested input of a run (for the run's warnings)."""
    notes = []
    if ingested.unmapped:
        notes.append(
            f"{ingested.unmapped:,} of {ingested.messages:,} ingested events belong to no account "
            "(no groupId, and their user made no group call); they are in rejected_rows.csv "
            f"as '{USAGE_LABEL}'"
        )
    events = rejects.get(INGESTED_EVENTS, {})
    unknown = events.get("rejected", 0) - ingested.unmapped
    if unknown > 0:
        notes.append(
            f"{unknown:,} ingested events were rejected (unknown account or a bad value); "
            f"see rejected_rows.csv, file '{USAGE_LABEL}'"
        )
    groups = rejects.get(INGESTED_GROUPS, {})
    if groups.get("rejected") or groups.get("values_nulled"):
        notes.append(
            f"group traits: {groups.get('rejected', 0):,} accounts not in the data were "
            f"ignored, and {groups.get('values_nulled', 0):,} trait values that are not the "
            "contract type were set to null (the account's value from the data folder is "
            f"not used either); see rejected_rows.csv, file '{GROUPS_LABEL}'"
        )
    return notes
