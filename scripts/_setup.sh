# Sourced by demo.sh and test.sh: make sure .venv exists and has this package
# and its dev tools installed. Re-installs only when pyproject.toml changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "touchmodel needs Python 3.11 or newer (found: $("$py" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..." >&2
  "$py" -m venv .venv
fi
stamp=.venv/.touchmodel-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing touchmodel and its dependencies into .venv (first run takes a minute) ..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  touch "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
# The dashboard's front-end packages: pinned in web/package-lock.json, from the npm registry.
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is needed for the dashboard's front-end packages (apt-get install npm)" >&2
    exit 1
  fi
  echo "Installing the dashboard's front-end packages into web/node_modules ..." >&2
  npm ci --prefix web --no-audit --no-fund --loglevel=error >/dev/null
fi
