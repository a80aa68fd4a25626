# Sourced by .ci/run and benches/run.sh: start a throwaway PostgreSQL cluster on a free port,
# as the postgres user, and export COHERENCE_PG_URL. Exits non-zero if it cannot start.
# The caller's EXIT trap must call stop_postgres.

PG_BIN=""
for dir in /usr/lib/postgresql/*/bin; do
  [ -x "$dir/initdb" ] && PG_BIN="$dir"
done
if [ -z "$PG_BIN" ]; then
  echo "== installing PostgreSQL server binaries"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql-15 >/dev/null
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && PG_BIN="$dir"; done
fi
[ -n "$PG_BIN" ] || { echo "FAIL: no PostgreSQL server binaries (initdb) found or installable" >&2; exit 1; }

PG_DIR=$(mktemp -d /tmp/coherence-pg.XXXXXX)
chown postgres:postgres "$PG_DIR"
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop_postgres() {
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}

echo "== starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT ${PG_EXTRA_OPTS:+(with $PG_EXTRA_OPTS)}"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -l "$PG_DIR/log" \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=300 ${PG_EXTRA_OPTS:-}" \
  start >/dev/null || { echo "FAIL: PostgreSQL did not start:" >&2; cat "$PG_DIR/log" >&2; exit 1; }
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SELECT 1' >/dev/null \
  || { echo "FAIL: PostgreSQL does not answer" >&2; exit 1; }
export COHERENCE_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"
