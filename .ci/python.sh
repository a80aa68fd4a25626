# Sourced: a Python with aiosmtpd (the SMTP server that the tests and the invitation benchmark
# start on loopback, tests/smtp_server.py) and openpyxl (the questionnaire tests read workbooks
# with it), in a venv from PyPI, installed unless already there; exports COHERENCE_TEST_PYTHON.
# Fails the caller when it cannot.
VENV="${TMPDIR:-/tmp}/coherence-ci-venv"
if ! "$VENV/bin/python" -c 'import aiosmtpd, openpyxl' 2>/dev/null; then
  echo "== installing aiosmtpd and openpyxl into $VENV"
  python3 -m venv "$VENV" || { echo "FAIL: cannot create a Python venv for the SMTP server" >&2; exit 1; }
  "$VENV/bin/pip" install -q --disable-pip-version-check aiosmtpd openpyxl \
    || { echo "FAIL: cannot install aiosmtpd and openpyxl" >&2; exit 1; }
  "$VENV/bin/python" -c 'import aiosmtpd, openpyxl' \
    || { echo "FAIL: aiosmtpd or openpyxl does not import" >&2; exit 1; }
fi
export COHERENCE_TEST_PYTHON="$VENV/bin/python"
