"""The ``contacts`` table: people at each account, executives likelier at small companies."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.demo._accounts import ARR_MIN, NAME_FIRST, NAME_SECOND
from touchmodel.demo._common import (
    BlockInputs,
    contract_table,
    numbered_ids,
    pick,
    repeat_index,
    timestamp_array,
    words,
)

_FIRST_NAMES = words(
    "James Mary Robert Linda Michael Sarah David Laura Daniel Anna Paul Julia Mark Nina "
    "Peter Elena Kevin Sophie Brian Clara Steven Rosa Andrew Maria Thomas Lisa Chris Eva "
    "Ahmed Fatima Wei Mei Raj Anita Carlos Lucia Ivan Olga Kofi Amara"
)
_LAST_NAMES = words(
    "Smith Johnson Miller Davis Garcia Wilson Moore Taylor Anderson Thomas Jackson White "
    "Harris Martin Thompson Clark Lewis Walker Young Allen King Wright Scott Green Baker "
    "Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Torres "
    "Parker Collins Edwards Stewart"
)
EXECUTIVE_TITLES = (
    "CEO",
    "COO",
    "CFO",
    "CTO",
    "Chief Revenue Officer",
    "Chief Customer Officer",
    "VP Operations",
    "VP Sales",
    "VP Engineering",
    "VP Customer Success",
    "VP Finance",
    "Vice President, Marketing",
)
STAFF_TITLES = (
    "Operations Manager",
    "Analyst",
    "Director of Support",
    "Senior Analyst",
    "Project Manager",
    "IT Administrator",
    "Sales Operations Manager",
    "Head of Data",
    "Customer Success Lead",
    "Office Manager",
    "Software Engineer",
    "Director of Marketing",
    "Product Manager",
    "Finance Manager",
    "Business Analyst",
    "Team Lead",
)


def draw_contacts(block: BlockInputs) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The contacts of a block, each row's account (block index) and contacts per account."""
    rng, days, acc, ids = block.rng, block.days, block.acc, block.ids
    counters = block.counters
    size = np.clip((np.log(acc["arr"]) - np.log(ARR_MIN)) / np.log(1000), 0, 1)
    count = 1 + rng.binomial(4, 0.1 + 0.6 * size)
    acct = repeat_index(count)
    m = acct.size
    # Founders answer for small companies, so execs are likelier there.
    exec_p = np.where(acc["employees"][acct] < 50, 0.12, 0.05)
    is_exec = rng.random(m) < exec_p
    title = pc.if_else(
        pa.array(is_exec),
        pick(EXECUTIVE_TITLES, rng.integers(0, len(EXECUTIVE_TITLES), m)),
        pick(STAFF_TITLES, rng.integers(0, len(STAFF_TITLES), m)),
    )
    first = pick(_FIRST_NAMES, rng.integers(0, len(_FIRST_NAMES), m))
    last = pick(_LAST_NAMES, rng.integers(0, len(_LAST_NAMES), m))
    domain = pc.binary_join_element_wise(
        pick(NAME_FIRST, acc["name_first"][acct]),
        pick(NAME_SECOND, acc["name_second"][acct]),
        ".com",
        "",
    )
    email = pc.utf8_lower(
        pc.binary_join_element_wise(pc.binary_join_element_wise(first, last, "."), domain, "@")
    )
    email = pc.if_else(pa.array(rng.random(m) < 0.05), pa.scalar(None, pa.string()), email)
    age = days.ages(np.zeros(m), acc["tenure"][acct] + 30)
    table = contract_table(
        "contacts",
        {
            "contact_id": numbered_ids("CON-", counters.contacts + 1 + np.arange(m), 8),
            "account_id": ids.take(pa.array(acct)),
            "email": email,
            "title": title,
            "created_at": timestamp_array(days.timestamps(age)),
        },
    )
    return table, acct, count
