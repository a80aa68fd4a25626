#!/usr/bin/env bash
# Load benchmark on both backends: starts a throwaway PostgreSQL (default durability), then
# runs the release-mode harnesses in benches/load.rs and benches/results.rs
# (`run.sh results`: the results benchmark only). See benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/postgres.sh
source .ci/postgres.sh
trap stop_postgres EXIT
export COHERENCE_BENCH_PG="$COHERENCE_PG_URL"
if [ "${1:-}" = "results" ]; then
    shift
else
    cargo bench --bench load "$@"
fi
cargo bench --bench results
cargo bench --bench mail
