"""Core-feature abandonment: the one-pass bitmask and the grouped path agree.

``core_features_abandoned`` has two implementations in
:mod:`touchmodel.signals.build`: plain core event names on a backend with a
bitwise-OR aggregate (DuckDB) are tracked as bits in the usage pass; globs,
exclusions or other backends group events by (account, event). Both must give
the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import pytest

from tests.conftest import AS_OF
from touchmodel.demo.generator import generate
from touchmodel.engine import Engine
from touchmodel.model.loader import load_model
from touchmodel.model.schema import TouchModel
from touchmodel.signals.build import _exact_core_events


def _with_core(model: TouchModel, core: list[str]) -> TouchModel:
    return model.model_copy(update={"events": model.events.model_copy(update={"core": core})})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("core_fold") / "data"
    generate(out, accounts=400, as_of=AS_OF, seed=5)
    return out


def test_bitmask_and_grouped_paths_agree(demo: Path) -> None:
    standard = load_model("standard")
    core = list(standard.events.core)
    assert core and not any("*" in c for c in core)
    # The same features, one written as a glob: forces the grouped path.
    globbed = _with_core(standard, [*core[:-1], core[-1][:-1] + "*"])
    events = ibis.duckdb.connect().create_table("e", schema={"event": "string"})
    assert _exact_core_events(events, standard) == core
    assert _exact_core_events(events, globbed) is None

    fast = Engine(standard).run(demo, as_of=AS_OF).accounts
    slow = Engine(globbed).run(demo, as_of=AS_OF).accounts
    assert fast["account_id"].equals(slow["account_id"])
    assert fast["core_features_abandoned"].equals(slow["core_features_abandoned"])
    assert fast["premium_feature_max_30d"].equals(slow["premium_feature_max_30d"])
    assert max(fast["core_features_abandoned"].to_pylist()) > 0


def test_no_bitmask_without_bit_or(demo: Path) -> None:
    """A backend whose compiler lacks the bitwise-OR aggregate takes the grouped path."""
    standard = load_model("standard")
    events = ibis.duckdb.connect().create_table("e", schema={"event": "string"})
    backend = type(events.get_backend())
    original = backend.has_operation

    def without_bit_or(cls: type, operation: type) -> bool:
        return False if operation is ibis.expr.operations.BitOr else original(operation)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backend, "has_operation", classmethod(without_bit_or))
        assert _exact_core_events(events, standard) is None
