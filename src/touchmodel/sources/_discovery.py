"""Finding each contract table's file(s) in a data folder."""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path

from touchmodel.errors import DataError
from touchmodel.sources.mapping import Mapping, TableMapping, mapping_error

_PARQUET_EXT = (".parquet", ".pq")


@dataclass
class FoundTable:
    """The file(s) that hold one contract table."""

    paths: list[Path]
    kind: str  # "csv", "parquet" or "sql" (a query in the mapping file; no paths)
    label: str  # how messages name the file(s), relative to the data folder
    sql: str | None = None  # the query, for kind "sql"


def file_label(path: Path, folder: Path) -> str:
    """How messages name ``path``: relative to the data folder when it is inside it."""
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def _kind_of(paths: list[Path]) -> str | None:
    kinds = {"parquet" if p.suffix.lower() in _PARQUET_EXT else "csv" for p in paths}
    return kinds.pop() if len(kinds) == 1 else None


def _parts(directory: Path) -> list[Path]:
    parquet = sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in _PARQUET_EXT
    )
    csvs = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if parquet and csvs:
        raise DataError(
            f"{directory}: holds both .parquet and .csv parts; keep one format per table folder"
        )
    return parquet or csvs


def discover_table(
    folder: Path, name: str, tmap: TableMapping, mapping: Mapping
) -> FoundTable | None:
    """The file(s) of table ``name``, or None if the folder has none.

    A mapping's ``sql`` (a query over the folder's files) or ``file`` (a
    path or glob) wins; otherwise ``name.csv``, ``name.parquet`` or a folder
    ``name/`` of parts, and only one of them.
    """
    if tmap.sql is not None:
        return FoundTable([], "sql", f"tables.{name}.sql", sql=tmap.sql)
    if tmap.file is not None:
        pattern = str(folder / tmap.file)
        matches = sorted(Path(p) for p in globlib.glob(pattern, recursive=True))
        paths: list[Path] = []
        for m in matches:
            paths.extend(_parts(m) if m.is_dir() else [m])
        if not paths:
            raise mapping_error(
                mapping.source,
                [
                    f"tables.{name}.file: found {tmap.file!r}; expected a file (or glob) that "
                    f"matches files in {folder}, but nothing matches"
                ],
            )
        kind = _kind_of(paths)
        if kind is None:
            raise mapping_error(
                mapping.source,
                [
                    f"tables.{name}.file: found {tmap.file!r}; expected files of one format, but it "
                    f"matches both Parquet and CSV: {', '.join(file_label(p, folder) for p in paths)}"
                ],
            )
        return FoundTable(paths, kind, tmap.file)

    candidates = [folder / f"{name}.csv", folder / f"{name}.parquet", folder / name]
    present = [c for c in candidates if c.exists()]
    if len(present) > 1:
        shown = ", ".join(file_label(p, folder) + ("/" if p.is_dir() else "") for p in present)
        raise DataError(
            f"{folder}: table '{name}' is there more than once ({shown}); keep one, "
            f"or name the file in a mapping file (tables.{name}.file)"
        )
    if not present:
        return None
    hit = present[0]
    if hit.is_dir():
        parts = _parts(hit)
        if not parts:
            return None
        return FoundTable(parts, _kind_of(parts) or "csv", f"{name}/")
    return FoundTable([hit], _kind_of([hit]) or "csv", hit.name)
