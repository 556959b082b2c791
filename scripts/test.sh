#!/usr/bin/env bash
# Lint, then the whole test suite. Extra arguments go to pytest.
source "$(dirname "$0")/_setup.sh"
ruff check src tests benchmarks
ruff format --check src tests benchmarks
python -m pytest -n 2 "$@"
