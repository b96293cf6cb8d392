#!/usr/bin/env bash
# The whole pipeline on this machine: broker, topics, every worker, a demo partner, sample traffic, and a summary of
# what each integration delivered.    scripts/demo.sh          run (again) from scratch
#                                       scripts/demo.sh stop     stop everything it started
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
RUN="$RELAY_ROOT/.local/run"
mkdir -p "$RUN"
export ACME_HMAC_KEY="${ACME_HMAC_KEY:-demo-hmac-key-not-for-production}"
export RELAY_REDIRECT_KEY="${RELAY_REDIRECT_KEY:-demo-redirect-key-not-for-production}"
EVENTS="${DEMO_EVENTS:-5000}"

stop_all() {
  for pidfile in "$RUN"/demo-*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
  done
  sleep 1
  bash scripts/broker.sh stop >/dev/null 2>&1 || true
}

if [ "${1:-}" = "stop" ]; then stop_all; echo "demo: stopped"; exit 0; fi

bash scripts/setup.sh
echo "demo: building (debug)"
swift build 2>&1 | grep -Ev "^\[[0-9]+/[0-9]+\]|^Building|^Compiling|^Write|^Linking" || true
test "${PIPESTATUS[0]}" -eq 0
BIN="$(swift build --show-bin-path)"

stop_all
rm -rf state outbound "$RUN"/demo-*.log
mkdir -p outbound
bash scripts/broker.sh start
"$BIN/relayctl" validate
"$BIN/relayctl" topics create --partitions 8

start() {  # start NAME COMMAND...: runs in the background, logs to .local/run/demo-NAME.log
  local name=$1; shift
  nohup "$@" >"$RUN/demo-$name.out" 2>"$RUN/demo-$name.log" &
  echo $! >"$RUN/demo-$name.pid"
}

wait_ready() {  # wait_ready NAME URL
  for _ in $(seq 1 300); do
    if curl -fsS "$2" >/dev/null 2>&1; then echo "demo: $1 ready"; return 0; fi
    sleep 0.2
  done
  echo "demo: $1 did not become ready; see $RUN/demo-$1.log" >&2; return 1
}

start check "$BIN/relay-check"
wait_ready relay-check http://127.0.0.1:9109/health/ready

echo "demo: producing $EVENTS sample events and 2 malformed ones"
"$BIN/relayctl" produce --sample "$EVENTS"
printf '%s\n' '{"event_id":"bad-1","uuid":"no spaces allowed","ts":1,"segments":[]}' '{"truncated": ' \
  | "$BIN/relayctl" produce --file -

echo "demo: waiting for the workers to catch up"
for _ in $(seq 1 120); do
  lag=$("$BIN/relayctl" lag --group relay-check | awk '/^total lag relay-check/ {print $NF}')
  [ "${lag:-1}" = "0" ] && break
  sleep 0.5
done

echo
echo "================ AudienceRelay demo summary ================"
"$BIN/relayctl" lag
echo
"$BIN/relayctl" dead-letter list --limit 5
echo
echo "Everything is still running. Look further with:"
echo "  $BIN/relayctl lag                       consumer lag per group"
echo "  $BIN/relayctl dead-letter list          dead letters with their reasons"
echo "  curl -s localhost:9109/metrics | head   a worker's metrics"
echo "  tail -f $RUN/demo-*.log                 the workers' JSON logs"
echo "Stop everything with: scripts/demo.sh stop"
