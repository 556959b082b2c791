"""The state store opens, migrates, and matches its models on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from touchmodel.state.db import Store, current_revision, head_revision
from touchmodel.state.tables import Base


def test_a_new_store_is_migrated_to_head(state_url: str) -> None:
    store = Store(state_url)
    try:
        assert current_revision(store.engine) == head_revision()
        names = set(inspect(store.engine).get_table_names())
        assert set(Base.metadata.tables) <= names
    finally:
        store.close()


def test_migrations_match_the_models(state_url: str) -> None:
    """A model change without its migration fails here, not in a user's database."""
    store = Store(state_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.close()
