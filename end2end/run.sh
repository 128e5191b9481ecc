#!/usr/bin/env bash
# Runs the browser test against a freshly started server, the way CI does (`make e2e`).
#
# - starts the already-built target/debug/server (override with SERVER_BIN) on a free 127.0.0.1 port,
#   in a clean environment: a fresh temporary DATA_DIR (SQLite), DEV_MODE unset, a test JWT_SECRET;
# - waits (at most HEALTH_TIMEOUT seconds) until GET /api/health answers;
# - runs Playwright with BASE_URL pointing at it (extra arguments are passed to `playwright test`);
# - always stops the server and removes the temporary directory, and exits with Playwright's code.
#
# The server's log is copied to end2end/test-results/server.log next to Playwright's artifacts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E="$ROOT/end2end"
SERVER_BIN="${SERVER_BIN:-$ROOT/target/debug/server}"
SITE_ROOT="${LEPTOS_SITE_ROOT:-$ROOT/target/site}"
OUTPUT_NAME="racky-videos"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-60}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

die() { echo "e2e: $*" >&2; exit 1; }

[ -x "$SERVER_BIN" ] || die "$SERVER_BIN not found: run 'make build' (cargo leptos build) first"
# The site's files carry a content hash in their names (racky-videos.<hash>.js, ...).
for ext in js wasm css; do
  compgen -G "$SITE_ROOT/pkg/$OUTPUT_NAME*.$ext" >/dev/null || die "$SITE_ROOT/pkg/$OUTPUT_NAME*.$ext not found: run 'make build' (cargo leptos build) first"
done
[ -x "$CHROMIUM" ] || die "$CHROMIUM not found: run 'make setup' or install Debian's chromium"
[ -d "$E2E/node_modules/@playwright/test" ] || die "end2end/node_modules missing: run 'make setup'"
command -v curl >/dev/null || die "curl not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/racky-e2e.XXXXXX")"
LOG="$WORK/server.log"
SERVER_PID=""
SIM_PID=""
ADMIN_EMAIL="e2e-admin@racky.test"
ADMIN_PASSWORD="e2e-admin-password"
# Shared with the tests, which sign their callbacks (Standard Webhooks) the way RCK would.
WEBHOOK_SECRET="whsec_ZTJlLXdlYmhvb2stc2VjcmV0LWUyZS13ZWJob29r"

cleanup() {
  local rc=$?
  if [ -n "$SIM_PID" ]; then
    kill -TERM "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    # Give it up to 10 s to shut down cleanly, then force it.
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -f "$LOG" ]; then
    mkdir -p "$E2E/test-results"
    cp "$LOG" "$E2E/test-results/server.log" || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e 'const s = require("net").createServer();
           s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# The server runs from the temporary directory with only the variables it needs, so neither a
# developer's .env nor stray MONGODB_URI / RCK_* / DEV_MODE variables change what is tested.
start_server() {
  PORT="$(free_port)"
  mkdir -p "$WORK/data"
  (
    cd "$WORK"
    exec env -i \
      PATH="$PATH" HOME="${HOME:-/root}" \
      RUST_LOG="${RUST_LOG:-info,tower_http=warn,leptos=warn}" RUST_BACKTRACE=1 \
      DATA_DIR="$WORK/data" \
      JWT_SECRET="e2e-test-secret-e2e-test-secret-e2e-test" \
      LEPTOS_SITE_ADDR="127.0.0.1:$PORT" \
      LEPTOS_OUTPUT_NAME="$OUTPUT_NAME" \
      LEPTOS_SITE_ROOT="$SITE_ROOT" \
      LEPTOS_SITE_PKG_DIR="pkg" \
      LEPTOS_ENV="DEV" \
      SUPERADMIN_EMAIL="$ADMIN_EMAIL" SUPERADMIN_PASSWORD="$ADMIN_PASSWORD" \
      RCK_WEBHOOK_SECRET="$WEBHOOK_SECRET" \
      NOTIFY_ALLOW_PRIVATE_URLS=1 NOTIFY_RETRY_BASE_SECONDS=0.2 \
      RCK_DESCRIPTION_SERVER_URL="http://127.0.0.1:$SIM_PORT" \
      "$SERVER_BIN"
  ) >"$LOG" 2>&1 &
  SERVER_PID=$!
}

# The RCK simulator as its own process: it accepts batches and would call back only after an hour, so
# the tests send the callbacks themselves and see exactly what they sent.
SIM_PORT="$(free_port)"
"$SERVER_BIN" rck-sim --listen "127.0.0.1:$SIM_PORT" --min-delay-ms 3600000 --max-delay-ms 3600000 \
  --failure-rate 0 >"$WORK/rck-sim.log" 2>&1 &
SIM_PID=$!

# Wait for /api/health. Returns 0 when it answers, 1 if the server died, 2 on time-out.
wait_healthy() {
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  local tries=$((HEALTH_TIMEOUT * 4))
  for _ in $(seq 1 "$tries"); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      return 1
    fi
    if curl -fsS --max-time 2 "http://127.0.0.1:$PORT/api/health" >/dev/null 2>&1; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 2
    sleep 0.25
  done
  return 2
}

# A port picked as free can be taken before the server binds it: retry a couple of times.
healthy=""
for attempt in 1 2 3; do
  start_server
  echo "e2e: started $SERVER_BIN (pid $SERVER_PID) on 127.0.0.1:$PORT, attempt $attempt"
  status=0
  wait_healthy || status=$?
  if [ "$status" = 0 ]; then
    healthy=1
    break
  fi
  if [ "$status" = 2 ]; then
    echo "e2e: server did not answer /api/health within ${HEALTH_TIMEOUT}s; its log:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  echo "e2e: server exited before answering; its log:" >&2
  cat "$LOG" >&2
  grep -qi "address already in use" "$LOG" || exit 1
done
[ -n "$healthy" ] || die "could not start the server"

echo "e2e: server healthy at http://127.0.0.1:$PORT; running Playwright"
set +e
(
  cd "$E2E"
  BASE_URL="http://127.0.0.1:$PORT" CHROMIUM="$CHROMIUM" \
    E2E_ADMIN_EMAIL="$ADMIN_EMAIL" E2E_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    E2E_WEBHOOK_SECRET="$WEBHOOK_SECRET" \
    npx --no-install playwright test "$@"
)
rc=$?
set -e
if [ "$rc" != 0 ]; then
  echo "e2e: Playwright failed (exit $rc); server log follows" >&2
  cat "$LOG" >&2
fi
exit "$rc"
