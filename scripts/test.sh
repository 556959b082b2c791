#!/usr/bin/env bash
# Lint and type-check, then the whole test suite. Extra arguments go to pytest.
source "$(dirname "$0")/_setup.sh"
ruff check src tests benchmarks
ruff format --check src tests benchmarks
mypy src/touchmodel
python -m pytest -n 2 "$@"
