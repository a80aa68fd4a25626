#!/usr/bin/env bash
# Load benchmark on both backends: starts a throwaway PostgreSQL (default durability), then
# runs the release-mode harness in benches/load.rs. See benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/postgres.sh
source .ci/postgres.sh
trap stop_postgres EXIT
export COHERENCE_BENCH_PG="$COHERENCE_PG_URL"
cargo bench --bench load "$@"
cargo bench --bench results
