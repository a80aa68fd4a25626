# Sourced by .ci/run (and .ci/run-nodes): Debian's nginx for the several-nodes test
# (tests/it/nodes.rs), which starts its own nginx on loopback with a generated configuration.
# Exports COHERENCE_TEST_NGINX; exits non-zero if nginx is missing and cannot be installed.

NGINX_BIN=$(command -v nginx || true)
if [ -z "$NGINX_BIN" ] && [ -x /usr/sbin/nginx ]; then NGINX_BIN=/usr/sbin/nginx; fi
if [ -z "$NGINX_BIN" ]; then
  echo "== installing nginx"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nginx >/dev/null \
    || { echo "FAIL: cannot install nginx" >&2; exit 1; }
  NGINX_BIN=/usr/sbin/nginx
fi
"$NGINX_BIN" -v 2>/dev/null || { echo "FAIL: $NGINX_BIN does not run" >&2; exit 1; }
export COHERENCE_TEST_NGINX="$NGINX_BIN"
