"""The mapping file: how a user's own export maps onto the data contract.

A mapping file is YAML. Every part is optional; without a mapping the
canonical column names of the data contract (docs/data-contract.md) are used
directly. The user reference, with an example of every key, is
docs/mapping.md::

    max_reject_rate: 0.05            # default threshold for the run
    tables:
      accounts:
        file: crm-export.csv         # relative to the data folder; globs allowed
        delimiter: ";"               # CSV only; default ","
        encoding: latin-1            # CSV only; default utf-8
        types:                       # source column types (CSV is read as text)
          MRR: number
        columns:
          account_id: Customer ID                      # rename
          arr: {from: MRR, scale: 12}                  # ARR = MRR x 12
          contract_start: {from: Start, format: "%d/%m/%Y"}
          employees: {from: Staff, format: money}      # reads "1,200" or "$1,200.50"
          strategic: {from: Key, values: {"Yes": true, "No": false}}
          churned_on: {expr: "as_of if Status == 'Churned' else null"}
          region: {from: Region}                       # an extra column for rules
      usage_events:                  # a table defined by a query over the folder's files
        sql: "select s.account_id, u.* from usage u join subscriptions s using (subscription_id)
              where u.timestamp <= $as_of"

Reading rules: CSV columns are text until ``types`` (or the contract type of
the column they fill) says otherwise; an empty value is missing, a blank or
unreadable one is a problem. Value maps match the source text with
surrounding spaces ignored; values not listed pass through unchanged.

Expressions (``expr``) use the language of :mod:`touchmodel.expr` and may
refer to source columns (typed as declared under ``types``), to other output
columns of the table, and to ``as_of`` (the run's as-of date). Besides the
built-in functions there are ``row_number()`` (the record's row in its file,
the header being row 1; for Parquet the 1-based row within each file) and
``file_name()``. A source value that cannot be read counts as a problem of
the column computed from it, if that column comes out empty.

Source columns that no rename consumes pass through under their own names,
so rules can still use them. ``load_mapping`` checks the file's shape; the
loader checks that the source columns it names exist (it needs the data for
that). Both report problems as ``file: dotted.path: found ...; expected ...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from touchmodel.errors import ExpressionError, MappingFileError, did_you_mean
from touchmodel.expr import parse
from touchmodel.sources._casting import MONEY
from touchmodel.sources.contract import TABLES
from touchmodel.yaml_errors import yaml_error_text

SourceType = Literal["string", "number", "integer", "date", "timestamp", "bool"]

_TEMPORAL = ("date", "timestamp")
_NUMERIC = ("number", "integer")


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


class ColumnMapping(BaseModel):
    """Where one output column comes from, and how its values are read.

    A plain string in the file (``account_id: customerID``) is shorthand for
    ``{from: customerID}``. With neither ``from`` nor ``expr`` the column of
    the same name is read (useful to add ``values`` or ``format`` only).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    source: str | None = Field(default=None, alias="from")
    expr: str | None = None
    # Source value (as text, surrounding whitespace ignored) -> output value.
    # Values not listed pass through unchanged.
    values: dict[str, str | int | float | bool | None] | None = None
    # strptime formats for dates/timestamps written other than ISO 8601;
    # several formats are tried in order. On a number column, 'money' reads
    # "$1,200.50" (currency signs, spaces and thousands separators dropped).
    format: str | list[str] | None = None
    # Multiplier for numbers, e.g. 12 to turn MRR into ARR.
    scale: float | None = None
    # Type of an extra (non-contract) column; contract columns have fixed types.
    type: SourceType | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `account_id: customerID` means `account_id: {from: customerID}`.
        if isinstance(data, str):
            return {"from": data}
        if isinstance(data, dict) and isinstance(data.get("values"), dict):
            # YAML reads `1: true` with an int key; source values are matched as text.
            data = {**data, "values": {_key_text(k): v for k, v in data["values"].items()}}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> ColumnMapping:
        if self.source is not None and self.expr is not None:
            raise ValueError("give either 'from' or 'expr', not both")
        if self.source is not None and not self.source.strip():
            raise ValueError("'from' must name a source column")
        return self

    @property
    def formats(self) -> list[str]:
        """The strptime formats to try, in order (empty: ISO 8601)."""
        if self.format is None:
            return []
        return [self.format] if isinstance(self.format, str) else list(self.format)


class TableMapping(BaseModel):
    """How one contract table is found and read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = None
    # A DuckDB SELECT over the data folder's files (each a view named after
    # it), with $as_of; instead of ``file`` (see sources/_sql_tables.py).
    sql: str | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    types: dict[str, SourceType] = Field(default_factory=dict)
    columns: dict[str, ColumnMapping] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _file_or_sql(self) -> TableMapping:
        if self.file is not None and self.sql is not None:
            raise ValueError("give either 'file' or 'sql', not both")
        if self.sql is not None and not self.sql.strip():
            raise ValueError("'sql' must hold a SELECT query")
        return self


class WarehouseMapping(BaseModel):
    """How to reach a database given as ``--data URL`` (sources/_warehouse.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Name of the environment variable holding the password (never the password).
    password_env: str | None = Field(default=None, min_length=1)
    # PostgreSQL schema the contract tables are read from by name (default: public).
    schema_: str | None = Field(default=None, alias="schema", min_length=1)


class Mapping(BaseModel):
    """A whole mapping file. ``source`` is the file it was read from (for messages)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_reject_rate: float | None = Field(default=None, ge=0, le=1)
    tables: dict[str, TableMapping] = Field(default_factory=dict)
    warehouse: WarehouseMapping = Field(default_factory=WarehouseMapping)

    _source: str = PrivateAttr(default="<mapping>")

    @property
    def source(self) -> str:
        """The mapping file's path as given, or ``<mapping>`` for one built in code."""
        return self._source

    def table(self, name: str) -> TableMapping:
        """The mapping of table ``name`` (an empty one if the file does not mention it)."""
        return self.tables.get(name) or TableMapping()


# --- YAML reading ---------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans.

    With YAML 1.1 rules an unquoted ``Yes``/``No``/``on`` becomes a boolean,
    which silently breaks value maps like ``{Yes: true, No: false}``.
    """


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def mapping_error(mapping_file: str, problems: list[str]) -> MappingFileError:
    """A MappingFileError listing ``problems`` (each ``dotted.path: ...``) for the file."""
    head = f"{mapping_file}: {len(problems)} problem(s) in the mapping file"
    err = MappingFileError(head + "\n" + "\n".join(f"  - {p}" for p in problems))
    err.file = mapping_file  # type: ignore[attr-defined]
    err.problems = problems  # type: ignore[attr-defined]
    return err


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    # Which model an unknown key sits in follows from its depth in the file.
    if len(loc) == 1:
        model: type[BaseModel] = Mapping
    elif len(loc) == 3 and loc[0] == "tables":
        model = TableMapping
    else:
        model = ColumnMapping
    return [f.alias or name for name, f in model.model_fields.items()]


def _pydantic_problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc)
            hint = did_you_mean(str(loc[-1]), allowed)
            msg = f"unknown key{hint}; expected one of the keys: {', '.join(allowed)}"
        elif msg.startswith("Value error, "):
            msg = "expected: " + msg[len("Value error, ") :]
        elif msg.startswith("Input should be "):
            msg = "expected " + msg[len("Input should be ") :]
        else:
            msg = "expected: " + msg
        found = "nothing" if err["type"] == "missing" else _describe(err.get("input"))
        out.append(f"{_dotted(loc)}: found {found}; {msg}")
    return out


def mapping_problems(mapping: Mapping) -> list[str]:
    """Checks pydantic cannot express: table names, types of contract columns, exprs."""
    problems: list[str] = []
    for tname, tmap in mapping.tables.items():
        base = f"tables.{tname}"
        spec = TABLES.get(tname)
        if spec is None:
            known = ", ".join(TABLES)
            problems.append(
                f"{base}: found unknown table {tname!r}{did_you_mean(tname, TABLES)}; "
                f"expected one of: {known}"
            )
            continue
        for cname, cmap in tmap.columns.items():
            path = f"{base}.columns.{cname}"
            contract_col = spec.column(cname)
            if (
                contract_col is not None
                and cmap.type is not None
                and cmap.type != contract_col.type
            ):
                problems.append(
                    f"{path}.type: found {cmap.type!r}; expected nothing: the contract fixes "
                    f"{tname}.{cname} as {contract_col.type}"
                )
            target = contract_col.type if contract_col is not None else cmap.type
            if cmap.format == MONEY and target not in _NUMERIC:
                problems.append(
                    f"{path}.format: found 'money'; expected it only for number columns "
                    f"(this column is {target or 'untyped'}; add 'type: number' for an "
                    "extra column)"
                )
            elif cmap.format is not None and cmap.format != MONEY and target not in _TEMPORAL:
                problems.append(
                    f"{path}.format: found {_describe(cmap.format)}; expected a format only for "
                    f"date or timestamp columns, or 'money' for number columns (this column is "
                    f"{target or 'untyped'}; add 'type: date' for an extra column)"
                )
            if cmap.scale is not None and target not in _NUMERIC:
                problems.append(
                    f"{path}.scale: found {cmap.scale!r}; expected a scale only for number "
                    f"columns (this column is {target or 'untyped'})"
                )
            for fmt in cmap.formats:
                if "%" not in fmt and cmap.format != MONEY:
                    problems.append(
                        f"{path}.format: found {fmt!r}; expected a strptime format such as '%d/%m/%Y'"
                    )
            if cmap.expr is not None:
                try:
                    parse(cmap.expr)
                except ExpressionError as exc:
                    problems.append(
                        f"{path}.expr: found {cmap.expr!r}; expected a valid expression: {exc.reason}"
                    )
    return problems


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file.

    Raises MappingFileError naming the file, the dotted path of each problem,
    the value found and what was expected.
    """
    path = Path(path)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise mapping_error(label, ["(file): not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise mapping_error(label, [f"(file): cannot be read: {exc}"]) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise mapping_error(label, [yaml_error_text(label, exc)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise mapping_error(
            label, [f"(top level): found {_describe(data)}; expected a mapping of keys"]
        )
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        raise mapping_error(label, _pydantic_problems(exc)) from None
    problems = mapping_problems(mapping)
    if problems:
        raise mapping_error(label, problems)
    mapping._source = label
    return mapping
