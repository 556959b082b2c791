"""Opening the state store: SQLite (WAL) by default, PostgreSQL by URL, always migrated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from touchmodel.errors import TouchmodelError


class StateError(TouchmodelError):
    """The state store cannot be opened or is not at the version this touchmodel needs."""


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path}"


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (the CLI, the dashboard) never block the daily run's writer.
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed chunk survives power loss, not only a killed process.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: nothing to hide
        return url


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url`` with touchmodel's connection settings."""
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = create_engine(url, future=True)
    except Exception as exc:  # bad URL, missing driver
        raise StateError(f"state database {safe_url(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    return engine


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("touchmodel.state") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def head_revision() -> str:
    """The newest migration this version of touchmodel knows."""
    script = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://")))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (creates it when empty)."""
    cfg = _alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except (OperationalError, ProgrammingError) as exc:
        raise StateError(f"state database {safe_url(str(engine.url))}: {exc.orig}") from exc


class Store:
    """An open, migrated state database."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            at = current_revision(self.engine)
        except OperationalError as exc:
            raise StateError(f"state database {safe_url(url)}: cannot open ({exc.orig})") from exc
        if at != head_revision():
            if not migrate:
                raise StateError(
                    f"state database {safe_url(url)} is at schema {at or 'none'}, expected "
                    f"{head_revision()} -- run `touchmodel db upgrade`"
                )
            upgrade(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Called with every new transaction's session (a run's journal watches them).
        self.on_session: list[Callable[[Session], None]] = []

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together or not at all."""
        with self.sessions.begin() as session:
            for hook in self.on_session:
                hook(session)
            yield session

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


class RolledBackStore(Store):
    """A store for a dry run: every transaction sees the ones before, none is kept.

    All transactions share one connection and one outer database transaction;
    a transaction's commit only flushes into it, and :meth:`close` rolls it all
    back. On SQLite the outer transaction holds the write lock from its first
    write until then, so other writers wait (for up to ``busy_timeout``).
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._conn = self.engine.connect()
        self._outer = self._conn.begin()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session on the shared connection; its commit is not a database commit."""
        with (
            Session(
                bind=self._conn, join_transaction_mode="rollback_only", expire_on_commit=False
            ) as session,
            session.begin(),
        ):
            for hook in self.on_session:
                hook(session)
            yield session

    def close(self) -> None:
        """Roll back everything written, then release the connection."""
        if self._outer.is_active:
            self._outer.rollback()
        self._conn.close()
        super().close()
