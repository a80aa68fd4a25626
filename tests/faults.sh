#!/usr/bin/env bash
# Faults, against the real `coherence serve` process (tests/it/faults.rs holds the tests):
#   1. SIGKILL at random moments under 24 concurrent savers, restarted on the same port and
#      database each time, on SQLite and on PostgreSQL: every acknowledged save is stored;
#   2. PostgreSQL restarted, then stopped for 7 s, under savers and readers: 503 pages (never a
#      500), /healthz 503 then 200, recovery without restarting the service, nothing lost;
#   3. SQLite's file system (a 16 MB tmpfs) filled under savers: 503 pages, no panic, saves stored
#      again once space is freed, nothing lost, `PRAGMA integrity_check` ok;
#   4. the 503 page on both backends (the suite's own test, run here too).
# SMTP down, slow or refusing is tested by the main suite (tests/it/admin.rs, tests/smtp_server.py).
#
#   bash tests/faults.sh          release build, 15 kills per backend (3-4 minutes once built)
#   bash tests/faults.sh --quick  the debug build `cargo test` makes, 5 kills, without (4):
#                                 for .ci/run, after the suite
#
# As root (it mounts a tmpfs and runs PostgreSQL as the postgres user); it starts what it
# needs and cleans up. Prints a summary; a property that does not hold prints FAIL: and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: bash tests/faults.sh [--quick]" >&2; exit 2 ;;
esac
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root: the script mounts a tmpfs and runs PostgreSQL as postgres"
began=$(date +%s)

WORK=$(mktemp -d /tmp/coherence-faults.XXXXXX)
TMPFS="$WORK/tmpfs"
cleanup() {
  if mountpoint -q "$TMPFS" 2>/dev/null; then umount "$TMPFS" || umount -l "$TMPFS" || true; fi
  if declare -F stop_postgres >/dev/null; then stop_postgres; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL's own durability is not under test (its restarts here are clean): skip fsync.
PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
# shellcheck source=../.ci/postgres.sh
source .ci/postgres.sh

mkdir "$TMPFS"
mount -t tmpfs -o size=16m,mode=0700 coherence-faults "$TMPFS" \
  || fail "cannot mount a tmpfs on $TMPFS (needs root with CAP_SYS_ADMIN)"

export COHERENCE_TEST_PG="$COHERENCE_PG_URL"
export COHERENCE_FAULTS_PG_BIN="$PG_BIN"
export COHERENCE_FAULTS_PG_DATA="$PG_DIR/data"
export COHERENCE_FAULTS_TMPFS="$TMPFS"
if [ "$quick" = 1 ]; then
  # The binary `cargo test` builds (target/debug/coherence), no release build.
  export COHERENCE_FAULTS_KILLS=5
  unset COHERENCE_FAULTS_BIN
  which_tests=(--ignored)
  profile=debug
else
  echo "== cargo build --release"
  cargo build --release --locked --bin coherence
  export COHERENCE_FAULTS_BIN="$PWD/target/release/coherence"
  export COHERENCE_FAULTS_KILLS=15
  which_tests=(--include-ignored)
  profile=release
fi

echo "== fault tests ($profile binary, $COHERENCE_FAULTS_KILLS kills per backend)"
LOG="$WORK/faults.log"
tests_began=$(date +%s)
set +e
# Every test stops by itself within 150 s; this bounds the whole run in any case.
timeout 900 cargo test --locked --test it faults:: -- "${which_tests[@]}" --nocapture \
  --test-threads=1 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
tests_took=$(( $(date +%s) - tests_began ))

# The disk-full test leaves its database on the tmpfs: check it with another SQLite too.
py_integrity=$(python3 - "$TMPFS/faults.db" <<'PY' 2>&1 || true
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print("; ".join(r[0] for r in db.execute("PRAGMA integrity_check")))
PY
)

# One figure of a FAULTS line: f TAG KEY.
f() { sed -n "s/.*FAULTS $1:.* $2=\([^ ]*\).*/\1/p" "$LOG" | head -n1; }
fig() { local v; v=$(f "$1" "$2"); echo "${v:-?}"; }

expected=(
  "faults::sigkill_under_concurrent_savers_sqlite"
  "faults::sigkill_under_concurrent_savers_postgres"
  "faults::postgres_restart_under_load"
  "faults::sqlite_disk_full"
)
if [ "$quick" = 0 ]; then
  expected+=(
    "faults::database_unavailable_gets_the_503_page::sqlite"
    "faults::database_unavailable_gets_the_503_page::postgres"
  )
fi
passed=0
failed=0
failures=()
# With --nocapture a test's own lines come between "test NAME ... " and its "ok": a test passed
# if it ran and is not in the list of failures libtest prints at the end.
for t in "${expected[@]}"; do
  if grep -qE "^test $t \.\.\. " "$LOG" && ! grep -qxF "    $t" "$LOG"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$t")
  fi
done
if [ "$py_integrity" != ok ]; then
  failed=$((failed + 1))
  failures+=("python3 integrity_check of the disk-full database: $py_integrity")
fi

echo
echo "== summary (faults, $profile binary)"
for b in Sqlite Postgres; do
  echo "SIGKILL under 24 savers, $b: $(fig "sigkill $b" kills) kills at random moments," \
    "$(fig "sigkill $b" saves_sent) saves sent, $(fig "sigkill $b" acknowledged) acknowledged," \
    "$(fig "sigkill $b" verified) verified in the database, $(fig "sigkill $b" lost) lost;" \
    "$(fig "sigkill $b" unanswered_saves) saves unanswered by a killed server;" \
    "restart to ready at most $(fig "sigkill $b" restart_ms_max) ms"
done
echo "PostgreSQL restarted ($(fig pg-restart pg_restart_ms) ms) then down $(fig pg-restart down_s) s" \
  "under 24 savers and 4 readers: $(fig pg-restart clear_503) requests got the 503 page," \
  "$(fig pg-restart status_500) got a 500, $(fig pg-restart unexpected) other surprises;" \
  "/healthz 503 while down ($(fig pg-restart healthz_503_while_down) times, the slowest" \
  "answered in $(fig pg-restart healthz_slowest_while_down_ms) ms)," \
  "200 again $(fig pg-restart healthz_200_after_ms) ms after PostgreSQL was back;" \
  "first save acknowledged $(fig pg-restart first_save_after_up_ms) ms after;" \
  "service restarted: $(fig pg-restart server_restarted);" \
  "$(fig pg-restart acknowledged) acknowledged, $(fig pg-restart verified) verified," \
  "$(fig pg-restart lost) lost"
echo "SQLite disk full (16 MB tmpfs, $(fig sqlite-disk-full filled_mb) MB filler, full" \
  "$(fig sqlite-disk-full full_s) s) under 24 savers: $(fig sqlite-disk-full clear_503) saves" \
  "refused with the 503 page, $(fig sqlite-disk-full status_500) 500s," \
  "$(fig sqlite-disk-full panics) panics, $(fig sqlite-disk-full acks_while_full) saves still stored while full;" \
  "stored again $(fig sqlite-disk-full first_save_after_free_ms) ms after space was freed" \
  "(service restarted: $(fig sqlite-disk-full server_restarted));" \
  "$(fig sqlite-disk-full acknowledged) acknowledged, $(fig sqlite-disk-full verified) verified," \
  "$(fig sqlite-disk-full lost) lost; integrity_check: $(fig sqlite-disk-full integrity_check)" \
  "(python3's sqlite3: $py_integrity)"
if [ "$quick" = 0 ]; then
  echo "503 page with Retry-After on both backends, and recovery without restart (suite test): see above"
fi
echo "SMTP down, slow and refusing: tested by the main suite (tests/it/admin.rs with tests/smtp_server.py), which .ci/run runs"
echo "tests took ${tests_took} s; whole run $(( $(date +%s) - began )) s"
for x in "${failures[@]}"; do echo "FAIL: $x" >&2; done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
  echo "FAIL: cargo test exited with $status" >&2
fi
echo "faults: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
