#!/usr/bin/env bash
# Fuzz check, called by .ci/run: every fuzz target (fuzz/fuzz_targets/) replays its whole
# committed corpus (fuzz/corpus/TARGET/), then fuzzes new inputs for a few seconds. Any
# crash, panic, timeout or out-of-memory fails the run with a FAIL: line naming the target;
# the input that failed is kept in fuzz/artifacts/TARGET/ (ignored by git).
#
# One fuzzer process at a time (the machine is shared). New inputs go to a temporary
# directory: the committed corpus is only read. COHERENCE_FUZZ_SECONDS sets the length of
# each target's new-input run (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${COHERENCE_FUZZ_SECONDS:-20}"
# The release build with AddressSanitizer, as `cargo fuzz run` makes by default, built once.
BUILD_FLAGS=(--release --sanitizer address)

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

cargo +nightly --version >/dev/null 2>&1 || fail "the nightly Rust toolchain is missing (rustup toolchain install nightly)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || fail "cannot install cargo-fuzz"
fi

cd fuzz
echo "== building the fuzz targets"
cargo +nightly fuzz build "${BUILD_FLAGS[@]}" || fail "the fuzz targets do not build"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The longest input each target is given when fuzzing (a survey file can be long).
max_len() {
  case "$1" in
    show_if) echo 4096 ;;
    *) echo 65536 ;;
  esac
}

targets="$(cargo +nightly fuzz list)"
[ -n "$targets" ] || fail "no fuzz targets found"
for target in $targets; do
  corpus="corpus/$target"
  [ -d "$corpus" ] || fail "$target has no committed corpus in fuzz/$corpus"
  count="$(find "$corpus" -type f | wc -l)"
  mkdir -p "$work/$target"

  echo "== $target: replaying the $count committed inputs"
  # -runs=0: only the corpus is run; the empty temporary directory comes first, so it is the
  # one libFuzzer would write to.
  cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "$work/$target" "$corpus" -- \
    -runs=0 -timeout=10 2>&1 | tail -n 40 >"$work/$target.replay.log" \
    || { cat "$work/$target.replay.log" >&2; fail "$target: a committed input in fuzz/$corpus fails (input in fuzz/artifacts/$target/)"; }
  grep -E '^Done [0-9]+ runs' "$work/$target.replay.log" || fail "$target: the replay did not finish"

  echo "== $target: ${SECONDS_PER_TARGET}s of new inputs"
  cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "$work/$target" "$corpus" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$target")" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$work/$target.fuzz.log" 2>&1 \
    || { tail -n 60 "$work/$target.fuzz.log" >&2; fail "$target: fuzzing found a failing input (kept in fuzz/artifacts/$target/)"; }
  grep -E '^Done [0-9]+ runs|^stat::number_of_executed_units|^#[0-9]+ +DONE' "$work/$target.fuzz.log" || true
done
echo "== fuzzing: every target replayed its corpus and ran ${SECONDS_PER_TARGET}s without a failure"
