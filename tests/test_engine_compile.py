"""The decision query is compiled without Ibis' select fusion on DuckDB only, and the option is restored."""

from __future__ import annotations

import ibis
import pytest

from touchmodel.engine import _unfused_selects


def test_unfused_on_duckdb_and_restored() -> None:
    t = ibis.duckdb.connect().create_table("t", schema={"a": "int64"})
    before = ibis.options.sql.fuse_selects
    with _unfused_selects(t):
        assert ibis.options.sql.fuse_selects is False
    assert ibis.options.sql.fuse_selects == before
    with pytest.raises(RuntimeError), _unfused_selects(t):
        raise RuntimeError("a failing query")
    assert ibis.options.sql.fuse_selects == before


def test_other_backends_keep_the_default() -> None:
    unbound = ibis.table({"a": "int64"}, name="t")
    before = ibis.options.sql.fuse_selects
    with _unfused_selects(unbound):
        assert ibis.options.sql.fuse_selects == before
    assert ibis.options.sql.fuse_selects == before
