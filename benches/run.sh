#!/usr/bin/env bash
# Every benchmark on both backends: the release-mode harnesses in benches/load.rs,
# benches/results.rs and benches/mail.rs (`run.sh results`: the results benchmark only).
# PostgreSQL: the server named by COHERENCE_BENCH_PG if set (with COHERENCE_BENCH_KEEP, the
# results' generated sets then outlive the run), else a throwaway cluster with PostgreSQL's
# default durability. See benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${COHERENCE_BENCH_PG:-}" ]; then
    # shellcheck source=.ci/postgres.sh
    source .ci/postgres.sh
    trap stop_postgres EXIT
    export COHERENCE_BENCH_PG="$COHERENCE_PG_URL"
fi
if [ "${1:-}" = "results" ]; then
    shift
else
    cargo bench --bench load "$@"
fi
cargo bench --bench results
# The invitation benchmark delivers to aiosmtpd on loopback: a venv with it unless a Python
# that has it is named (without one, it stopped at its first step).
if [ -z "${COHERENCE_TEST_PYTHON:-}" ]; then
    # shellcheck source=.ci/python.sh
    source .ci/python.sh
fi
cargo bench --bench mail
