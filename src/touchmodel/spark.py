"""Running the decision query on Spark (``touchmodel run --engine spark``).

What runs where: the driver (this process) finds, reads, maps, types and
checks the input tables with DuckDB, exactly as a DuckDB run does, so the
rejected-rows report is the same; it writes the checked tables as Parquet
to a staging folder. Spark reads them there and runs the one decision
query (signals, tiers, health, triggers, routes) on its executors; the
decisions come back to the driver, which writes the same files as a
DuckDB run. On a cluster the staging folder must be one the executors can
read (``--spark-staging``: a shared or mounted file system, e.g. ``/dbfs``).
docs/spark.md says how to run it with spark-submit, on Databricks or EMR.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from touchmodel.errors import TouchmodelError

ENGINES = ("duckdb", "spark")


class SparkUnavailable(TouchmodelError):
    """PySpark (or Java) is not there: the spark engine cannot start."""


@dataclass(frozen=True)
class SparkOptions:
    """Run the decision query on Spark: the master URL and the staging folder (None: defaults)."""

    master: str | None = None
    staging: Path | None = None


def engine_options(
    engine: str | None,
    master: str | None = None,
    staging: Path | None = None,
    defaults: tuple[str, str | None, str | None] = ("duckdb", None, None),
) -> SparkOptions | None:
    """Flags over ``defaults`` (a workspace's ``engine``, ``spark_master``, ``spark_staging``).

    None means DuckDB. Raises TouchmodelError for an unknown engine, or for
    Spark options without the spark engine.
    """
    chosen = engine or defaults[0]
    if chosen not in ENGINES:
        raise TouchmodelError(f"--engine: found {chosen!r}; expected one of: {', '.join(ENGINES)}")
    if chosen == "duckdb":
        if master is not None or staging is not None:
            flag = "--spark-master" if master is not None else "--spark-staging"
            raise TouchmodelError(f"{flag}: only with --engine spark")
        return None
    return SparkOptions(
        master=master or defaults[1],
        staging=staging or (Path(defaults[2]) if defaults[2] else None),
    )


def spark_session(master: str | None = None) -> Any:
    """The active SparkSession, or a new one on ``master`` (default ``local[*]``).

    Timestamps are read and compared in UTC, like DuckDB's, so both engines
    see the same days.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            "--engine spark needs PySpark: pip install 'touchmodel[spark]' (and Java 17+)"
        ) from None
    builder = SparkSession.builder.appName("touchmodel")
    try:
        if master is not None:
            builder = builder.master(master)
        elif SparkSession.getActiveSession() is None and not _master_configured():
            # Under spark-submit the master is already set; a plain
            # `touchmodel run` gets all local cores.
            builder = builder.master("local[*]")
        session = (
            builder.config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    except Exception as exc:  # py4j/Java errors: no Java, bad master URL
        raise SparkUnavailable(
            f"cannot start Spark (master {master or 'local[*]'}): {exc}"
        ) from None
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


def _master_configured() -> bool:
    # spark-submit starts the Python driver with a gateway of its own, and
    # its --master (or spark-defaults.conf) already set.
    return "PYSPARK_GATEWAY_PORT" in os.environ


@contextmanager
def staging_folder(staging: Path | None) -> Iterator[Path]:
    """A fresh folder for the checked tables, removed afterwards.

    It is made inside ``staging`` (a folder the executors can read too: a
    shared or mounted file system such as NFS or ``/dbfs``), or in the
    local temporary folder, which only a local master can read.
    """
    if staging is not None:
        staging.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="touchmodel-spark-", dir=staging))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def to_spark(tables: Mapping[str, ir.Table], session: Any, folder: Path) -> dict[str, ir.Table]:
    """The checked DuckDB ``tables`` as Ibis tables on Spark, through Parquet in ``folder``."""
    con = ibis.pyspark.connect(session)
    out: dict[str, ir.Table] = {}
    for name, table in tables.items():
        path = folder / f"{name}.parquet"
        table.to_parquet(path)
        out[name] = con.read_parquet(
            str(path.resolve()), table_name=f"tm_{name}_{uuid.uuid4().hex[:8]}"
        )
    return out
