"""The accounts table the planning functions read, as plain numpy columns.

Planning never loads data: callers pass a pyarrow Table or a pandas DataFrame
with ``account_id, arr, tier, tier_level, strategic`` (and optionally
``employees``), e.g. ``RunResult.accounts`` from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from touchmodel.errors import DataError
from touchmodel.model.schema import TouchModel

REQUIRED = ("account_id", "arr", "tier", "tier_level")


@dataclass(frozen=True)
class Portfolio:
    """One entry per account; arrays share one order."""

    account_id: np.ndarray
    arr: np.ndarray  # float64, nulls as 0
    tier: np.ndarray  # str
    tier_level: np.ndarray  # str
    strategic: np.ndarray  # bool, nulls as False
    employees: np.ndarray | None  # float64 with NaN, or None when the column is absent

    def __len__(self) -> int:
        return int(self.arr.shape[0])

    @property
    def total_arr(self) -> float:
        """Sum of ARR over all accounts."""
        return float(self.arr.sum())


def as_portfolio(table: Any) -> Portfolio:
    """Read the planning columns from a pyarrow Table or pandas DataFrame."""
    if isinstance(table, pa.Table):
        cols = [c for c in (*REQUIRED, "strategic", "employees") if c in table.column_names]
        frame = table.select(cols).to_pandas()
    elif isinstance(table, pd.DataFrame):
        frame = table
    else:
        raise DataError(
            f"portfolio: value {type(table).__name__} -- expected a pyarrow Table or pandas DataFrame"
        )
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(
            f"portfolio: missing column(s) {', '.join(missing)} -- expected {', '.join(REQUIRED)} "
            "(run the engine first: it adds tier and tier_level)"
        )
    arr = pd.to_numeric(frame["arr"], errors="coerce").fillna(0.0).to_numpy(dtype="float64")
    if (arr < 0).any():
        raise DataError("portfolio: column arr has negative values -- expected ARR >= 0")
    n = len(frame)
    strategic = (
        frame["strategic"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if "strategic" in frame.columns
        else np.zeros(n, dtype=bool)
    )
    employees = (
        pd.to_numeric(frame["employees"], errors="coerce").to_numpy(dtype="float64")
        if "employees" in frame.columns
        else None
    )
    return Portfolio(
        account_id=frame["account_id"].astype(str).to_numpy(),
        arr=arr,
        tier=frame["tier"].astype(str).to_numpy(),
        tier_level=frame["tier_level"].astype(str).to_numpy(),
        strategic=strategic,
        employees=employees,
    )


def band_tier(model: TouchModel, arr: np.ndarray) -> np.ndarray:
    """The tier each ARR falls in by band alone (no strategic lift), vectorized."""
    ordered = sorted(model.tiers, key=lambda t: t.band.min)
    edges = np.array([t.band.min for t in ordered[1:]], dtype="float64")
    # side="right": an ARR equal to an edge belongs to the band that starts there.
    idx = np.searchsorted(edges, arr, side="right")
    return np.array([t.id for t in ordered], dtype=object)[idx]
