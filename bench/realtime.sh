#!/usr/bin/env bash
# relay-realtime benchmark (one command: bash bench/realtime.sh).
#
# 1. Throughput: N events (default 1,000,000) on 8 partitions, produced with `relayctl produce --sample`, read by
#    one release relay-realtime process pushing to 3 realtime destinations that map different segment sets, all
#    posting to a fast local sink (nginx answering 200). Reports events/s and users pushed/s from the first record
#    read until every offset is committed, next to kcat's raw consume rate of the same topic in the same run, the
#    ratio, CPU seconds per million events and peak memory (/usr/bin/time -v).
#    Also the issue's ceiling C = 1 / (1/K + m/H): K is kcat's rate, m messages per event in the run, H the rate at
#    which wrk POSTs a body of the worker's median message size (from the sink's log of Content-Length, same headers)
#    to the same sink with as many connections as the worker may hold (3 x max_in_flight); the ratio to C, CPU us per
#    partner request and the load average (uptime) next to the figures.
# 2. Latency: a fresh topic fed at half the measured rate for LATENCY_SECONDS by a generator stamping each event's
#    `ts` with the current time; p50/p99 of event ts -> partner 2xx from relay_realtime_latency_seconds.
#
# Uses its own in-memory broker on BENCH_BROKER_PORT (default 19095), stopped at the end. Environment: N, PARTITIONS,
# BENCH_BROKER_PORT, SINK_PORT, LATENCY_SECONDS, MAX_USERS (max_users_per_message, default 10), WRK_CONNECTIONS
# (default 24), PERF_OUT (a file: perf record -g of the worker during the throughput run), LATENCY_RATE (events/s
# for the latency run instead of half the measured rate), WARMUP (seconds of the latency feed left out, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source bench/perf.sh

N="${N:-1000000}"
PARTITIONS="${PARTITIONS:-8}"
BROKER_PORT="${BENCH_BROKER_PORT:-19095}"
SINK_PORT="${SINK_PORT:-18090}"
METRICS_PORT="${METRICS_PORT:-19191}"
LATENCY_SECONDS="${LATENCY_SECONDS:-20}"
MAX_USERS="${MAX_USERS:-10}"
FLUSH_MS="${FLUSH_MS:-1000}"
export RELAY_BROKERS="127.0.0.1:$BROKER_PORT"
WORK="$(mktemp -d /tmp/bench-realtime.XXXXXX)"
WORKER_PID=""; SINK_PID=""

cleanup() {
  # The worker runs under /usr/bin/time, which does not pass signals on: stop the worker itself first.
  [ -n "$WORKER_PID" ] && { pkill -P "$WORKER_PID" 2>/dev/null; kill "$WORKER_PID" 2>/dev/null; } || true
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
  RELAY_BROKER_PORT="$BROKER_PORT" bash scripts/broker.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== building (release)"
swift build -c release --product relay-realtime 2>&1 | tail -1
swift build -c release --product relayctl 2>&1 | tail -1
BIN="$(swift build -c release --show-bin-path)"

RELAY_BROKER_PORT="$BROKER_PORT" bash scripts/broker.sh start

# The sink: nginx answering 200 to every POST, one worker process.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
daemon off;
events { worker_connections 4096; }
http {
  log_format sizes '\$content_length';
  access_log $WORK/nginx/sizes.log sizes buffer=256k flush=1s;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  client_body_buffer_size 1m;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server { listen 127.0.0.1:$SINK_PORT; location / { return 200; } }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
SINK_PID=$!
sleep 0.5

# relay.yaml with 3 realtime destinations mapping different segment sets (topics prefixed $1).
write_config() {
  local prefix="$1" file="$2"
  local d2 d3
  d2="$(seq 1000 1499 | sed 's/.*/{segment: &, alias: t&}/' | paste -sd, -)"
  d3="$(seq 1500 1999 | sed 's/.*/{segment: &, alias: u&}/' | paste -sd, -)"
  cat >"$file" <<EOF
kafka:
  brokers: $RELAY_BROKERS
  topics: {qualifications: $prefix.qualifications, pixel_events: $prefix.pixel-events, pixel_audit: $prefix.pixel-audit, dead_letter: $prefix.dead-letter}
  # Tansu holds a fetch for all of fetch.wait.max.ms (500 ms by default) when it finds nothing new, where Kafka answers
  # as soon as a record arrives: a short wait keeps the latency run about the relay, not the test broker.
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500", fetch.wait.max.ms: "20"}
destinations:
EOF
  local id dpid maps path
  for spec in "5101|0|[{segment: 4532, alias: a4532}, {segment: 99, alias: a99}]|/d1" \
              "5102|20915|[$d2]|/d2" \
              "5103|20914|[{segment: 4532, alias: c4532}, $d3]|/d3"; do
    IFS='|' read -r id dpid maps path <<<"$spec"
    cat >>"$file" <<EOF
  - id: $id
    name: bench-$id
    kind: realtime
    url: http://127.0.0.1:$SINK_PORT$path
    client_id: bench
    user_dpid: $dpid
    unsegment: true
    max_users_per_message: $MAX_USERS
    flush_interval_ms: $FLUSH_MS
    timeout_ms: 3000
    max_in_flight: 8
    signing: {algorithm: sha256, header: X-Signature, key_env: BENCH_HMAC_KEY}
    mappings: $maps
EOF
  done
}
export BENCH_HMAC_KEY="bench-key"

metric_sum() {  # sum of a metric's samples on the worker's /metrics (0 when absent)
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v name="$1" '
    $1 == name || index($1, name "{") == 1 { sum += $NF } END { printf "%.0f\n", sum + 0 }'
}

now() { date +%s.%N; }

start_worker() {  # config, group
  /usr/bin/time -v -o "$WORK/time-$2.txt" "$BIN/relay-realtime" --config "$1" --metrics-port "$METRICS_PORT" \
    --group "$2" --log-level warning 2>"$WORK/worker-$2.log" &
  WORKER_PID=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$METRICS_PORT/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "relay-realtime did not become ready:"; cat "$WORK/worker-$2.log"; exit 1
}

stop_worker() {
  local child
  child="$(pgrep -P "$WORKER_PID" || true)"
  [ -n "$child" ] && kill -TERM "$child"
  wait "$WORKER_PID" || true
  WORKER_PID=""
}

# ---- 1. throughput -------------------------------------------------------------------------------------------------
CONFIG="$WORK/relay.yaml"
write_config "bench" "$CONFIG"
"$BIN/relayctl" topics create --partitions "$PARTITIONS" --config "$CONFIG" >/dev/null
echo "== producing $N sample events on $PARTITIONS partitions"
"$BIN/relayctl" produce --sample "$N" --config "$CONFIG"

echo "== kcat raw consume"
T0=$(now)
COUNT=$(kcat -C -b "$RELAY_BROKERS" -t bench.qualifications -o beginning -e -q -f '\n' | wc -l)
T1=$(now)
KCAT_RATE=$(echo "$COUNT / ($T1 - $T0)" | bc -l)
printf "kcat: %d records in %.2f s = %.0f records/s\n" "$COUNT" "$(echo "$T1 - $T0" | bc -l)" "$KCAT_RATE"

echo "== relay-realtime"
start_worker "$CONFIG" "bench-$$"
perf_start "$(pgrep -P "$WORKER_PID")"  # PERF_OUT=/tmp/rt.perf.data profiles the throughput run
while [ "$(metric_sum relay_records_consumed_total)" -eq 0 ]; do sleep 0.05; done
T0=$(now)
while [ "$(metric_sum relay_committed_offset)" -lt "$N" ]; do sleep 0.1; done
T1=$(now)
perf_stop
USERS=$(metric_sum relay_realtime_users_sent_total)
MESSAGES=$(metric_sum relay_realtime_messages_total)
SKIPPED=$(metric_sum relay_realtime_users_skipped_total)
DEAD=$(metric_sum relay_realtime_dead_lettered_total)
stop_worker
ELAPSED=$(echo "$T1 - $T0" | bc -l)
RATE=$(echo "$N / $ELAPSED" | bc -l)
CPU=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$WORK/time-bench-$$.txt")
RSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time-bench-$$.txt")
printf "relay-realtime: %d events in %.2f s = %.0f events/s; %d users pushed (%.0f users/s) in %d messages; %d skipped (no partner id); %d dead-lettered\n" \
  "$N" "$ELAPSED" "$RATE" "$USERS" "$(echo "$USERS / $ELAPSED" | bc -l)" "$MESSAGES" "$SKIPPED" "$DEAD"
echo "load: $(uptime)"
printf "ratio to kcat: %.2f\n" "$(echo "$RATE / $KCAT_RATE" | bc -l)"
printf "CPU: %.1f s for the run = %.1f CPU s per million events = %.1f CPU us per partner request; peak RSS %d MiB\n" \
  "$CPU" "$(echo "$CPU * 1000000 / $N" | bc -l)" "$(echo "$CPU * 1000000 / $MESSAGES" | bc -l)" "$((RSS / 1024))"

# ---- 1b. the HTTP ceiling: wrk POSTing a body of the worker's median message size ---------------------------------
sleep 1.5  # the sink's buffered log flushes every second
MEDIAN=$(grep -v '^-$' "$WORK/nginx/sizes.log" | sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }')
: >"$WORK/nginx/sizes.log"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-24}"
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = string.rep("x", $MEDIAN)
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Relay-Message-Id"] = "00000000-0000-0000-0000-000000000000"
wrk.headers["X-Signature"] = string.rep("0", 64)
EOF
echo "== wrk: POST $MEDIAN-byte bodies, $WRK_CONNECTIONS connections, 1 thread, 5 s"
H=$(wrk -t1 -c"$WRK_CONNECTIONS" -d5s -s "$WORK/post.lua" "http://127.0.0.1:$SINK_PORT/d1" | awk '/^Requests\/sec:/ { print $2 }')
echo "load: $(uptime)"
M=$(echo "$MESSAGES / $N" | bc -l)
C=$(echo "1 / (1 / $KCAT_RATE + $M / $H)" | bc -l)
printf "K %.0f records/s; H %.0f requests/s (median body %d bytes); m %.4f messages/event; C = 1/(1/K + m/H) = %.0f events/s\n" \
  "$KCAT_RATE" "$H" "$MEDIAN" "$M" "$C"
printf "ratio to C: %.2f (target >= 0.5)\n" "$(echo "$RATE / $C" | bc -l)"
source "$RELAY_ROOT/bench/result.sh"
bench_result relay-realtime "$RATE" events/s "$C" "C = 1/(1/K + m/H)" "$(echo "$CPU * 1000000 / $MESSAGES" | bc -l)" "partner request" "$RSS" "$N" "$(echo "$ELAPSED * 1000 / 1" | bc)"

# ---- 2. latency at half the rate -----------------------------------------------------------------------------------
HALF="${LATENCY_RATE:-$(printf "%.0f" "$(echo "$RATE / 2" | bc -l)")}"
echo "== latency at half the rate: $HALF events/s for $LATENCY_SECONDS s"
CONFIG2="$WORK/relay-latency.yaml"
write_config "latency" "$CONFIG2"
"$BIN/relayctl" topics create --partitions "$PARTITIONS" --config "$CONFIG2" >/dev/null
start_worker "$CONFIG2" "latency-$$"
sleep 6  # group join
# Steady state only: the histogram as it stands WARMUP seconds into the feed (relayctl's own start-up, the first
# fetches) is subtracted from the final one.
( sleep "${WARMUP:-3}"; curl -s "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/latency-warmup.txt" ) &
python3 - "$HALF" "$LATENCY_SECONDS" <<'PY' | "$BIN/relayctl" produce --file - --config "$CONFIG2" >/dev/null
import json, random, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
rng = random.Random(7)
users = [str(10**37 + i * 7919) for i in range(10000)]
start = time.time(); sent = 0; out = sys.stdout
while True:
    now = time.time()
    if now - start >= seconds: break
    due = int((now - start) * rate)
    lines = []
    ts = int(now * 1000)
    while sent < due:
        u = rng.randrange(len(users))
        segs = [{"id": 4532, "status": 1}] if u % 2 else [{"id": 99, "status": 1}]
        segs += [{"id": 1000 + (u * 7 + k) % 1000, "status": 1} for k in range(1 + u % 3)]
        lines.append(json.dumps({"event_id": f"lat-{sent}", "uuid": users[u], "ts": ts, "region": u % 9,
                                 "segments": segs, "partner_ids": {"20915": f"p{u}", "20914": f"q{u:x}"}}))
        sent += 1
    if lines:
        out.write("\n".join(lines) + "\n"); out.flush()
    time.sleep(0.005)
PY
sleep $((FLUSH_MS * 2 / 1000 + 2))
curl -s "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/latency-metrics.txt"
stop_worker
python3 - "$WORK/latency-metrics.txt" "$FLUSH_MS" "$WORK/latency-warmup.txt" <<'PY'
import re, sys
buckets = {}
def add(path, sign):
    for line in open(path):
        m = re.match(r'relay_realtime_latency_seconds_bucket\{.*le="([^"]+)".*\}\s+(\S+)', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0) + sign * float(m.group(2))
add(sys.argv[1], 1)
add(sys.argv[3], -1)
bounds = sorted(buckets)
total = buckets.get(float("inf"), 0)
def quantile(q):
    rank, prev_le, prev_count = q * total, 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if le == float("inf"): return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(1e-9, buckets[le] - prev_count)
        prev_le, prev_count = le, buckets[le]
    return prev_le
flush = float(sys.argv[2]) / 1000
if total == 0:
    print("latency: no deliveries recorded")
else:
    p50, p99 = quantile(0.5), quantile(0.99)
    print(f"latency event ts -> partner 2xx over {int(total)} users after the warm-up: p50 {p50*1000:.0f} ms, p99 {p99*1000:.0f} ms "
          f"(flush interval {flush*1000:.0f} ms; p99 / flush = {p99/flush:.2f}; histogram buckets interpolated)")
PY
echo "work directory: $WORK"
