#!/usr/bin/env bash
# The whole pipeline on this machine: a broker, the topics, every worker, a demo partner, sample traffic, and a
# summary of what each integration delivered.
#   scripts/demo.sh         run (again) from scratch; leaves everything running
#   scripts/demo.sh stop    stop everything it started
# Exits non-zero when an integration delivered nothing (CI runs it and relies on that), and exits 3 without
# producing anything when a port it needs is taken by a process it did not start (a broker of the user's own, say).
# DEMO_BROKER_PORT (default 9092) moves the demo's broker.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
DEMO_BROKER_PORT="${DEMO_BROKER_PORT:-9092}"
export RELAY_BROKERS="127.0.0.1:$DEMO_BROKER_PORT" RELAY_BROKER_PORT="$DEMO_BROKER_PORT"
RUN="$RELAY_ROOT/.local/run"
mkdir -p "$RUN"
export ACME_HMAC_KEY="${ACME_HMAC_KEY:-demo-hmac-key-not-for-production}"
export RELAY_REDIRECT_KEY="${RELAY_REDIRECT_KEY:-demo-redirect-key-not-for-production}"
EVENTS="${DEMO_EVENTS:-5000}"
DEMO_USER=07955261652886032950143702505894272138

stop_all() {
  for pidfile in "$RUN"/demo-*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  done
  bash scripts/broker.sh stop >/dev/null 2>&1 || true
}

if [ "${1:-}" = "stop" ]; then stop_all; echo "demo: stopped"; exit 0; fi

# What an earlier demo left is ours to stop; whatever still listens after that is not, and is never written into.
stop_all
if port_in_use "$DEMO_BROKER_PORT"; then
  echo "demo: 127.0.0.1:$DEMO_BROKER_PORT is already in use by $(port_owner "$DEMO_BROKER_PORT"), which this demo" \
       "did not start; refusing to produce sample events into it. Stop it, or run the demo on another port:" \
       "DEMO_BROKER_PORT=19093 scripts/demo.sh" >&2
  exit 3
fi
for port in 8090 9101 9102 9103 9109 8080; do
  if port_in_use "$port"; then
    echo "demo: 127.0.0.1:$port (a demo worker's port) is already in use by $(port_owner "$port"); stop it first" >&2
    exit 3
  fi
done

bash scripts/setup.sh
echo "demo: building (debug)"
swift build >"$RUN/demo-build.log" 2>&1 || { grep -E "error:" "$RUN/demo-build.log" | head -20; exit 1; }
BIN="$(swift build --show-bin-path)"
ctl() { "$BIN/relayctl" "$@"; }

rm -rf state outbound "$RUN"/demo-*
mkdir -p outbound
bash scripts/broker.sh start
ctl validate
ctl topics create --partitions 8

start() {  # start NAME COMMAND...: in the background; JSON logs in .local/run/demo-NAME.log
  local name=$1; shift
  nohup "$@" >"$RUN/demo-$name.out" 2>"$RUN/demo-$name.log" &
  echo $! >"$RUN/demo-$name.pid"
}
wait_ready() {  # wait_ready NAME URL
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && { echo "demo: $1 ready"; return 0; }
    sleep 0.2
  done
  echo "demo: $1 did not become ready; see $RUN/demo-$1.log" >&2
  tail -5 "$RUN/demo-$1.log" >&2
  return 1
}

start partner python3 scripts/demo_partner.py --port 8090 --out "$RUN/demo-partner.jsonl"
start realtime "$BIN/relay-realtime"
start batch "$BIN/relay-batch"
start edge "$BIN/relay-edge"
start pixel-audit "$BIN/relay-pixel-audit"
start check "$BIN/relay-check"
wait_ready relay-realtime http://127.0.0.1:9101/health/ready
wait_ready relay-batch http://127.0.0.1:9102/health/ready
wait_ready relay-pixel-audit http://127.0.0.1:9103/health/ready
wait_ready relay-check http://127.0.0.1:9109/health/ready
wait_ready relay-edge http://127.0.0.1:8080/health/ready

echo "demo: producing $EVENTS sample events, one known user, and 2 malformed events"
ctl produce --sample "$EVENTS"
now=$(date +%s%3N)
printf '%s\n' \
  "{\"event_id\":\"demo-1\",\"uuid\":\"$DEMO_USER\",\"ts\":$now,\"region\":7,\"segments\":[{\"id\":4532,\"status\":1},{\"id\":99,\"status\":1}],\"partner_ids\":{\"20915\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\",\"20914\":\"acme-user-1\"}}" \
  '{"event_id":"bad-1","uuid":"no spaces allowed","ts":1,"segments":[]}' \
  '{"truncated": ' \
  | ctl produce --file -

echo "demo: waiting for the workers to catch up"
for _ in $(seq 1 120); do
  lag=$(ctl lag | awk '/^total lag relay-(realtime|batch|check):/ {s += $NF} END {print s + 0}')
  [ "$lag" = "0" ] && break
  sleep 0.5
done

echo "demo: the edge answers a page for $DEMO_USER; pixels fire and ~85% of them arrive"
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:8080/health/ready" && break; sleep 0.2; done
EDGE_JSON=$(curl -fsS "http://127.0.0.1:8080/event?d_uuid=$DEMO_USER&d_rtbd=json&d_dst=1")
# 200 page views, each handing out pixel URLs; the browser "loads" 17 in 20 of them (the others are lost).
fired=0 received=0
for i in $(seq 1 200); do
  urls=$(curl -fsS "http://127.0.0.1:8080/event?d_uuid=$DEMO_USER&d_rtbd=json&d_dst=1" \
    | python3 -c 'import json,sys; print("\n".join(d["c"] for d in json.load(sys.stdin)["dests"]))')
  for url in $urls; do
    fired=$((fired + 1))
    if [ $((i % 20)) -ge 3 ]; then
      curl -s -o /dev/null "$url" && received=$((received + 1))
    fi
  done
done
echo "demo: $fired pixels fired, $received loaded; waiting for the audit window to close"
sleep 16

echo "demo: waiting for a batch cut"
for _ in $(seq 1 60); do ls outbound/*.info >/dev/null 2>&1 && break; sleep 0.5; done

partner_messages=$(wc -l <"$RUN/demo-partner.jsonl" 2>/dev/null || echo 0)
partner_users=$(python3 -c 'import json,sys; print(sum(len(json.loads(l)["Users"]) for l in open(sys.argv[1])))' \
  "$RUN/demo-partner.jsonl" 2>/dev/null || echo 0)
bad_signatures=$(grep -c "signature BAD" "$RUN/demo-partner.out" 2>/dev/null || true)
batch_files=$(ls outbound/*.sync* 2>/dev/null | wc -l)
batch_lines=$(cat outbound/*.sync 2>/dev/null | wc -l)
edge_segments=$(echo "$EDGE_JSON" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["stuff"]) + len(d["dests"]))')
letters=$(ctl dead-letter list --limit 0 | awk '/dead letters in total/ {print $1}')

echo
echo "================================ AudienceRelay demo ================================"
echo "real-time server-to-server  $partner_messages signed messages, $partner_users users delivered to acme-dsp"
echo "                            (partner: http://127.0.0.1:8090, bodies in $RUN/demo-partner.jsonl)"
echo "batch server-to-server      $batch_files files, $batch_lines lines in ./outbound:"
ls -1 outbound | head -6 | sed 's/^/                              /'
echo "real-time call (edge)       curl 'http://127.0.0.1:8080/event?d_uuid=$DEMO_USER&d_rtbd=json&d_dst=1'"
echo "$EDGE_JSON" | python3 -m json.tool | sed 's/^/                              /' | head -24
echo "pixel syncs                 $fired fired, $received loaded by the 'browser' (15% dropped on purpose):"
ctl pixel report | sed 's/^/                              /' | head -12
echo "dead letters                ${letters:-0} (malformed input kept with its reason):"
ctl dead-letter list --limit 2 | sed 's/^/                              /' | head -8
echo "consumer lag"
ctl lag | grep "^total" | sed 's/^/                              /'
echo "===================================================================================="
echo "Everything is still running. Look further with:"
echo "  $BIN/relayctl status | lag | dead-letter list | pixel report --chart | batch status"
echo "  curl -s localhost:9101/metrics | grep relay_realtime     (9102 batch, 9103 pixel audit, 8080 edge)"
echo "  tail -f $RUN/demo-*.log                                  the workers' JSON logs"
echo "Stop everything with: scripts/demo.sh stop"

failed=0
check() { if [ "$2" -gt 0 ] 2>/dev/null; then :; else echo "demo: FAILED: $1 delivered nothing" >&2; failed=1; fi; }
check "real-time server-to-server" "$partner_users"
check "batch server-to-server" "$batch_files"
check "real-time calls" "$edge_segments"
check "pixel syncs" "$fired"
check "dead letters" "${letters:-0}"
[ "${bad_signatures:-0}" = "0" ] || { echo "demo: FAILED: $bad_signatures messages with a bad signature" >&2; failed=1; }
exit $failed
