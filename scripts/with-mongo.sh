#!/usr/bin/env bash
# Runs a command with a throwaway MongoDB-compatible server: SecantusDB (from PyPI, in .venv-mongo)
# on a free loopback port with its own temporary data dir. The same venv holds the tests' other
# Python tools (openapi-spec-validator, and aiosmtpd: the SMTP server of the email tests). Exports
#   MONGODB_TEST_URI=mongodb://127.0.0.1:PORT/?directConnection=true
#   SECANTUSD_BIN=.venv-mongo/bin/secantusd-py (for tests that start and stop a server of their own)
#   OPENAPI_SPEC_VALIDATOR=.venv-mongo/bin/openapi-spec-validator
#   AIOSMTPD_PYTHON=.venv-mongo/bin/python (with aiosmtpd installed)
# runs the command, stops the server (also on failure or Ctrl-C) and exits with the command's code.
#
#   scripts/with-mongo.sh cargo test -p app --features ssr --test store_conformance
#
# SecantusDB answers as a one-node replica set, so transactions and change streams work. When
# MONGODB_TEST_URI is already set, that server is used and nothing is started.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 COMMAND [ARGS...]" >&2
	exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-mongo"
SECANTUS_VERSION="0.7.0b3"
VALIDATOR_VERSION="0.7.2"
AIOSMTPD_VERSION="1.4.6"
WAIT_SECS="${WITH_MONGO_WAIT_SECS:-60}"

# --- the venv (idempotent: only installs what is missing or of another version)
if [ ! -x "$VENV/bin/python" ]; then
	echo "with-mongo: creating $VENV" >&2
	python3 -m venv "$VENV" || {
		echo "with-mongo: 'python3 -m venv' failed; install Python's venv module (apt-get install python3-venv)" >&2
		exit 1
	}
fi
installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("secantusdb"))' 2>/dev/null || true)"
if [ "$installed" != "$SECANTUS_VERSION" ] || [ ! -x "$VENV/bin/secantusd-py" ]; then
	echo "with-mongo: installing secantusdb==$SECANTUS_VERSION into $VENV" >&2
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "secantusdb==$SECANTUS_VERSION"
fi
installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))' 2>/dev/null || true)"
if [ "$installed" != "$VALIDATOR_VERSION" ]; then
	echo "with-mongo: installing openapi-spec-validator==$VALIDATOR_VERSION into $VENV" >&2
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION"
fi
export OPENAPI_SPEC_VALIDATOR="$VENV/bin/openapi-spec-validator"
installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null || true)"
if [ "$installed" != "$AIOSMTPD_VERSION" ]; then
	echo "with-mongo: installing aiosmtpd==$AIOSMTPD_VERSION into $VENV" >&2
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi
export AIOSMTPD_PYTHON="$VENV/bin/python"

if [ -n "${MONGODB_TEST_URI:-}" ]; then
	echo "with-mongo: using MONGODB_TEST_URI from the environment" >&2
	exec "$@"
fi

# --- a free loopback port and a data dir of our own
PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/with-mongo.XXXXXX")"
LOG="$DATA/secantusd.log"
mkdir -p "$DATA/db"

# --enable-test-commands: the change-stream resume test injects failures with configureFailPoint
# (filtered by appName, so other tests are untouched). Safe here: loopback only, a throwaway server.
"$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$PORT" --storage-path "$DATA/db" --log-level WARNING \
	--enable-test-commands >"$LOG" 2>&1 &
PID=$!

stop() {
	if kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$DATA"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- wait (bounded) until it accepts connections
deadline=$((SECONDS + WAIT_SECS))
until "$VENV/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), timeout=1).close()" 2>/dev/null; do
	if ! kill -0 "$PID" 2>/dev/null; then
		echo "with-mongo: secantusd-py exited before accepting connections; its log:" >&2
		cat "$LOG" >&2 || true
		exit 1
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "with-mongo: secantusd-py did not accept connections on 127.0.0.1:$PORT within ${WAIT_SECS}s; its log:" >&2
		cat "$LOG" >&2 || true
		exit 1
	fi
	sleep 0.3
done

export MONGODB_TEST_URI="mongodb://127.0.0.1:$PORT/?directConnection=true"
# Tests that stop and restart a MongoDB server start their own from this binary, never the one above.
export SECANTUSD_BIN="$VENV/bin/secantusd-py"
export MONGODB_TEST_FAILPOINTS=1
echo "with-mongo: SecantusDB $SECANTUS_VERSION on 127.0.0.1:$PORT (pid $PID)" >&2

set +e
"$@"
code=$?
set -e
if [ "$code" -ne 0 ] && [ -s "$LOG" ]; then
	echo "with-mongo: the command failed ($code); last lines of the SecantusDB log:" >&2
	tail -n 20 "$LOG" >&2 || true
fi
exit "$code"
