#!/usr/bin/env bash
# Generate a demo customer base, run the default touch model on it, print a summary.
# Extra arguments go to `touchmodel demo` (e.g. --accounts 50000 --as-of 2026-11-01).
source "$(dirname "$0")/_setup.sh"
touchmodel demo "$@"
