#!/usr/bin/env bash
# Start a local PostgreSQL for the state-store tests and print its URL.
# Needs Debian's postgresql package (CI installs it) and root or the postgres user.
set -euo pipefail
ver=$(pg_lsclusters -h | awk 'NR==1{print $1}')
if [ -z "$ver" ]; then
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  pg_createcluster "$ver" main >/dev/null
fi
pg_ctlcluster "$ver" main start >/dev/null 2>&1 || true
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
for _ in $(seq 30); do as_pg "pg_isready -q" && break; sleep 1; done
as_pg "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='touchmodel'\" | grep -q 1 \
  || psql -qc \"CREATE ROLE touchmodel LOGIN SUPERUSER PASSWORD 'touchmodel'\""
as_pg "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='touchmodel_test'\" | grep -q 1 \
  || createdb -O touchmodel touchmodel_test"
port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main"{print $3}')
echo "postgresql://touchmodel:touchmodel@127.0.0.1:${port}/touchmodel_test"
