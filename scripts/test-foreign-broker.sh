#!/usr/bin/env bash
# scripts/demo.sh and scripts/broker.sh must never write into a broker they did not start. A plain TCP listener
# stands in for the user's own Kafka on the demo's port; both scripts must refuse it with a clear message and a
# non-zero exit, and the listener must receive not a single byte.
#   scripts/test-foreign-broker.sh        (run by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
WORK=$(mktemp -d)
listener_pid=
cleanup() { [ -z "$listener_pid" ] || kill "$listener_pid" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# Binds a free loopback port, prints it, and counts every byte any client sends until SIGTERM.
python3 - "$WORK" <<'PY' &
import os, signal, socket, sys, threading
work = sys.argv[1]
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(16)
received = 0
lock = threading.Lock()
def serve(conn):
    global received
    with conn:
        while data := conn.recv(65536):
            with lock: received += len(data)
def stop(*_):
    with lock: open(os.path.join(work, "received"), "w").write(str(received))
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
open(os.path.join(work, "port.tmp"), "w").write(str(server.getsockname()[1]))
os.rename(os.path.join(work, "port.tmp"), os.path.join(work, "port"))
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
PY
listener_pid=$!
for _ in $(seq 1 50); do [ -f "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")

passed=0 failed=0
expect() {  # expect NAME EXPECTED_RC WANTED_TEXT COMMAND...
  local name=$1 want_rc=$2 text=$3; shift 3
  local rc=0
  timeout 120 "$@" >"$WORK/out" 2>&1 || rc=$?
  if [ "$rc" = "$want_rc" ] && grep -q -- "$text" "$WORK/out"; then
    echo "ok: $name"; passed=$((passed + 1))
  else
    echo "FAILED: $name (exit $rc, wanted $want_rc and \"$text\"):"; sed 's/^/    /' "$WORK/out"
    failed=$((failed + 1))
  fi
}

expect "broker.sh refuses a port it did not start a broker on" 3 "refusing to use it" \
  env RELAY_BROKER_PORT="$PORT" bash scripts/broker.sh start
expect "demo.sh refuses to produce into a broker it did not start" 3 "refusing to produce sample events" \
  env DEMO_BROKER_PORT="$PORT" bash scripts/demo.sh
expect "broker.sh stop leaves a process it did not start alone" 0 "not running" \
  env RELAY_BROKER_PORT="$PORT" bash scripts/broker.sh stop

kill -0 "$listener_pid" 2>/dev/null && { echo "ok: the foreign listener is still running"; passed=$((passed + 1)); } ||
  { echo "FAILED: the foreign listener was stopped"; failed=$((failed + 1)); }
kill "$listener_pid"; wait "$listener_pid" 2>/dev/null || true; listener_pid=
received=$(cat "$WORK/received" 2>/dev/null || echo missing)
if [ "$received" = "0" ]; then echo "ok: nothing was written to the foreign listener"; passed=$((passed + 1))
else echo "FAILED: the foreign listener received $received bytes"; failed=$((failed + 1)); fi

echo "foreign broker: $passed passed, $failed failed"
[ "$failed" = 0 ]
