"""Contract tables read from a database instead of a data folder (``--data URL``).

``duckdb:///path/file.db``: the file is attached read-only to the loader's
DuckDB connection; its tables are views named after them (like a data
folder's files), so a table named after a contract table is read by name and
a mapping's ``sql:`` runs on DuckDB against the file's tables.

``postgresql://user@host:port/db`` (or ``postgres://``): a table is read by
its contract name from the schema given as ``warehouse.schema`` in the
mapping file (default ``public``), or is the mapping's ``sql:`` (PostgreSQL's
SQL, ``$as_of`` replaced by the date), run in PostgreSQL; what PostgreSQL
returns is streamed into the loader as Arrow batches and checked like any
table. The password comes from the environment variable named by
``warehouse.password_env`` (or libpq's ``PGPASSWORD``), never from the URL:
URLs are recorded in run records and messages.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import ibis

from touchmodel.errors import DataError
from touchmodel.sources._discovery import FoundTable
from touchmodel.sources._reading import _quote as quote
from touchmodel.sources._reading import _sql_str as sql_str
from touchmodel.sources._reading import scratch_kind
from touchmodel.sources.mapping import Mapping, TableMapping, mapping_error

_SCHEMES = ("duckdb", "postgresql", "postgres")
_AS_OF = re.compile(r"\$as_of\b")


def is_url(data: str | Path) -> bool:
    """Whether ``--data`` names a database (``scheme://...``) rather than a folder."""
    return isinstance(data, str) and "://" in data


@dataclass
class Warehouse:
    """An opened database source: finds each contract table in it."""

    url: str
    scheme: str
    con: ibis.BaseBackend  # the loader's DuckDB connection
    tables: set[str]  # tables the source has (by name)
    pg: Callable[[], ibis.BaseBackend] | None = None  # opens a new PostgreSQL connection
    schema: str | None = None

    def find(
        self, name: str, tmap: TableMapping, mapping: Mapping, as_of: dt.date, token: str
    ) -> FoundTable | None:
        """The table ``name`` as a query on the loader's connection, or None if the source lacks it."""
        if tmap.file is not None:
            raise mapping_error(
                mapping.source,
                [f"tables.{name}.file: found {tmap.file!r}; expected 'sql' (or nothing: the table "
                 f"named {name!r}) with a database source ({self.url})"],
            )  # fmt: skip
        if self.pg is None:
            if tmap.sql is not None:
                return FoundTable([], "sql", f"tables.{name}.sql", sql=tmap.sql)
            if name not in self.tables:
                return None
            return FoundTable(
                [], "sql", f"{self.url} table {name}", sql=f"select * from {quote(name)}"
            )
        return self._from_postgres(name, tmap, mapping, as_of, token)

    def _from_postgres(
        self, name: str, tmap: TableMapping, mapping: Mapping, as_of: dt.date, token: str
    ) -> FoundTable | None:
        assert self.pg is not None
        if tmap.sql is None and name not in self.tables:
            return None
        label = (
            f"tables.{name}.sql"
            if tmap.sql is not None
            else f"{self.url} table {self.schema}.{name}"
        )
        local = f"__tm_pg_{name}_{token}"
        raw = self.con.con  # type: ignore[attr-defined]
        pg = self.pg()
        try:
            if tmap.sql is not None:
                query = _AS_OF.sub(f"DATE '{as_of.isoformat()}'", tmap.sql.rstrip().rstrip(";"))
                table = pg.sql(query)
            else:
                table = pg.table(name, database=self.schema)
            # Into the loader's DuckDB, batch by batch (never as Python rows).
            raw.register(f"{local}_batches", table.to_pyarrow_batches())
            raw.execute(
                f"CREATE {scratch_kind(self.con)} TABLE {quote(local)} AS "
                f"SELECT * FROM {quote(local + '_batches')}"
            )
            raw.unregister(f"{local}_batches")
        except Exception as exc:  # psycopg / ibis errors carry PostgreSQL's message
            text = " ".join(str(exc).split())
            raise mapping_error(mapping.source, [f"{label}: PostgreSQL: {text}"]) from None
        finally:
            pg.disconnect()
        return FoundTable([], "sql", label, sql=f"select * from {quote(local)}")


def _password(mapping: Mapping, url: str) -> str | None:
    env = mapping.warehouse.password_env
    if env is None:
        return None
    value = os.environ.get(env)
    if value is None:
        raise DataError(
            f"{url}: the environment variable {env} (warehouse.password_env) is not set"
        )
    return value


def open_warehouse(con: ibis.BaseBackend, url: str, mapping: Mapping) -> Warehouse:
    """Connect to the database ``url`` for one load. Raises DataError for a bad URL or connection."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise DataError(
            f"--data: found {url!r}; expected a folder, duckdb:///file.db or postgresql://user@host/db"
        )
    if parts.password is not None:
        raise DataError(
            "--data: the URL holds a password; remove it and name an environment variable that holds "
            "it as warehouse.password_env in the mapping file (URLs are written to run records)"
        )
    raw = con.con  # type: ignore[attr-defined]
    if scheme == "duckdb":
        path = Path(unquote(parts.netloc + parts.path))
        if not path.is_file():
            raise DataError(f"{url}: no DuckDB database file {path}")
        alias = "__tm_source"
        raw.execute(f"ATTACH IF NOT EXISTS {sql_str(str(path.resolve()))} AS {alias} (READ_ONLY)")
        listed = raw.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
            "UNION SELECT view_name FROM duckdb_views() WHERE database_name = ? AND schema_name = 'main'",
            [alias, alias],
        ).fetchall()
        names = {r[0] for r in listed}
        for n in names:
            raw.execute(
                f"CREATE OR REPLACE TEMP VIEW {quote(n)} AS SELECT * FROM {alias}.main.{quote(n)}"
            )
        return Warehouse(url, scheme, con, names)
    schema = mapping.warehouse.schema_ or "public"
    password = _password(mapping, url)

    def connect() -> ibis.BaseBackend:
        return ibis.postgres.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            user=unquote(parts.username or "") or None,
            password=password,
            database=unquote(parts.path.lstrip("/")) or None,
        )

    try:
        pg = connect()
    except Exception as exc:
        raise DataError(f"{url}: cannot connect: {' '.join(str(exc).split())}") from None
    try:
        names = set(pg.list_tables(database=schema))
    finally:
        pg.disconnect()
    return Warehouse(url, scheme, con, names, pg=connect, schema=schema)
