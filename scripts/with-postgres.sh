#!/usr/bin/env bash
# Run a command with TEST_DATABASE_URL pointing at a PostgreSQL server: the one answering on
# 127.0.0.1:5432 (user postgres, trust) when there is one, otherwise a throwaway cluster started
# here in a temporary directory and removed afterwards.
set -euo pipefail
if [ -n "${TEST_DATABASE_URL:-}" ]; then exec "$@"; fi
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && \
   psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
  exec "$@"
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
base=$(mktemp -d -t clinic-portal-pg.XXXXXX)
port=${PGTEST_PORT:-55432}
run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$base"
cleanup() { (cd "$base" && run_pg "$pgbin/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null 2>&1) || true; rm -rf "$base"; }
trap cleanup EXIT
echo "No PostgreSQL on 127.0.0.1:5432: starting a throwaway server on port $port"
(cd "$base" && run_pg "$pgbin/initdb" -D "$base/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null)
(cd "$base" && run_pg "$pgbin/pg_ctl" -D "$base/data" -l "$base/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $base -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null)
export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
"$@"
