#!/usr/bin/env bash
# relay-edge (release build) against nginx on the same machine, in the same run.
#   bash bench/edge.sh [N]            N users loaded (default 1,000,000)
# 1. N qualification events (one per user) on 8 partitions; relay-edge catches up (load rate and time printed).
# 2. wrk against GET /event?d_uuid=<known user>&d_rtbd=json&d_dst=1 (cookie + URL destinations, redirect-audited
#    pixel URLs, a fired event per dest produced to Kafka) and, next to it, nginx (its own instance and temporary
#    config on another port) serving a static body of the same size. Max rate: wrk -t2 -c64 for 10 s each.
#    Latency "at half the max rate": wrk cannot pace requests (wrk2 is not available), so each server is also run
#    with 1, 2, 4 and 8 connections (one thread) and the run whose rate is closest to half of its own max is
#    reported with its p50/p99 (closed-loop load: fewer connections = lower offered rate). The same max-rate pair
#    again without d_dst (the segments as JSON only) against nginx serving that body.
# 3. Memory: the edge's resident memory with N users loaded, and the store's own accounting for 1 M and 10 M users
#    (relay-edge --measure-store).
# Environment: EDGE_PORT (default 18480), NGINX_PORT (18481), WRK_SECONDS (10), SKIP_10M=1 to skip the 10 M store.
source "$(dirname "$0")/lib.sh"
N="${1:-1000000}"
PARTITIONS=8
EDGE_PORT="${EDGE_PORT:-18480}"
NGINX_PORT="${NGINX_PORT:-18481}"
WRK_SECONDS="${WRK_SECONDS:-10}"
bench_build relay-edge relayctl
bench_broker
WORK="$BENCH_DIR/edge"
rm -rf "$WORK"
mkdir -p "$WORK/nginx/html" "$WORK/nginx/tmp"
cat >"$WORK/relay.yaml" <<YAML
kafka:
  brokers: $RELAY_BROKERS
  topics: {qualifications: bench.qualifications, pixel_events: bench.pixel-events, pixel_audit: bench.pixel-audit, dead_letter: bench.dead-letter}
edge:
  listen: 127.0.0.1:$EDGE_PORT
  snapshot_dir: ./state
destinations:
  - id: 7001
    name: px-partner
    kind: url
    url: "http://px.partner.example/sync?seg=%alias%&uid=%did%&r=%rnd%"
    secure_url: "https://px.partner.example/sync?seg=%alias%&uid=%did%&r=%rnd%"
    audit: redirect
    mappings: [{segment: 4532, alias: p4532}]
  - id: 7002
    name: px-serialized
    kind: url
    url: "http://px2.partner.example/s?segs=%alias%&uid=%did%"
    serialize: {delimiter: ","}
    mappings: [{segment: 4532, alias: a}, {segment: 99, alias: b}]
  - id: 8001
    name: ad-server
    kind: cookie
    cookie_name: aam_seg
    key: segID
    max_bytes: 2048
    ttl_days: 10
    domain: .publisher.example
    mappings: [{segment: 4532}, {segment: 99}]
YAML
cd "$WORK"
export RELAY_REDIRECT_KEY="bench-redirect-key"
"$BIN/relayctl" topics create --config relay.yaml --partitions "$PARTITIONS" >/dev/null
echo "bench: producing $N events (one per user) to bench.qualifications ($PARTITIONS partitions)"
python3 "$RELAY_ROOT/bench/batch-events.py" "$N" \
  | kcat -P -b "$RELAY_BROKERS" -t bench.qualifications -K $'\t' -X linger.ms=50 -X batch.num.messages=10000
KCAT=$(kcat_rate bench.qualifications "$N")
echo "bench: kcat raw consume: $KCAT events/s"

START=$(now_ms)
"$BIN/relay-edge" --config relay.yaml --snapshot-interval 1h 2>"$WORK/edge.log" &
EDGE=$!
NGINX_PID=""
cleanup() {
  kill $EDGE 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  bash "$RELAY_ROOT/scripts/broker.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
until curl -fsS "http://127.0.0.1:$EDGE_PORT/health/ready" >/dev/null 2>&1; do
  kill -0 $EDGE 2>/dev/null || { echo "bench: relay-edge exited"; tail -5 "$WORK/edge.log"; exit 1; }
  sleep 0.05
done
READY=$(now_ms)
USERS=$(metric_sum "$EDGE_PORT" relay_edge_users)
LOAD_RATE=$(( N * 1000 / (READY - START > 0 ? READY - START : 1) ))
echo "bench: relay-edge ready with $USERS users after $(( READY - START )) ms: $LOAD_RATE events/s" \
  "(ratio $(awk -v a="$LOAD_RATE" -v b="$KCAT" 'BEGIN{printf "%.2f", a/b}') of kcat, start-up included)"
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$EDGE/status")
STORE_BYTES=$(metric_sum "$EDGE_PORT" relay_edge_store_bytes)

# Users the wrk script cycles through (ids as batch-events.py makes them: spread over the whole population).
python3 - "$N" >"$WORK/users.txt" <<'PY'
import sys
n = int(sys.argv[1])
for k in range(1000):
    i = (k * 7_919_993) % n
    print("%038d" % (7955261652886032950143702505894272138 + i * 7919))
PY
cat >"$WORK/event.lua" <<'LUA'
local users = {}
for line in io.lines("users.txt") do users[#users + 1] = line end
local i = 0
request = function()
  i = i % #users + 1
  return wrk.format("GET", "/event?d_uuid=" .. users[i] .. "&d_rtbd=json&d_dst=1")
end
LUA
SAMPLE=$(curl -fsS "http://127.0.0.1:$EDGE_PORT/event?d_uuid=$(head -1 "$WORK/users.txt")&d_rtbd=json&d_dst=1")
echo "bench: sample answer (${#SAMPLE} bytes): $SAMPLE"
printf '%s' "$SAMPLE" >"$WORK/nginx/html/event.json"
# The same calls without destinations (only the segments as JSON): no URLs signed, no pixel events produced.
sed 's/&d_dst=1//' "$WORK/event.lua" >"$WORK/event-nodst.lua"
curl -fsS "http://127.0.0.1:$EDGE_PORT/event?d_uuid=$(head -1 "$WORK/users.txt")&d_rtbd=json" \
  >"$WORK/nginx/html/event-nodst.json"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp; fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { root $WORK/nginx/html; default_type application/json; try_files /event.json =404; }
    location /nodst { root $WORK/nginx/html; default_type application/json; try_files /event-nodst.json =404; }
  }
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
until curl -fsS "http://127.0.0.1:$NGINX_PORT/event" >/dev/null 2>&1; do sleep 0.05; done

# wrk_run URL SCRIPT THREADS CONNECTIONS -> "rate p50_ms p99_ms"
wrk_run() {
  local url=$1 script=$2 threads=$3 conns=$4 out
  if [ -n "$script" ]; then
    out=$(wrk -t"$threads" -c"$conns" -d"${WRK_SECONDS}s" --latency -s "$script" "$url")
  else
    out=$(wrk -t"$threads" -c"$conns" -d"${WRK_SECONDS}s" --latency "$url")
  fi
  echo "$out" >>"$WORK/wrk.log"
  local rate p50 p99
  rate=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  echo "$rate $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() {  # wrk prints 812.00us, 1.23ms, 1.02s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
# half_load URL SCRIPT MAX -> the 1-thread run whose rate is closest to MAX/2: "conns rate p50 p99"
half_load() {
  local url=$1 script=$2 max=$3 best="" bestdiff=-1
  for c in 1 2 4 8; do
    read -r rate p50 p99 < <(wrk_run "$url" "$script" 1 "$c")
    local diff=$(( rate > max / 2 ? rate - max / 2 : max / 2 - rate ))
    if [ "$bestdiff" -lt 0 ] || [ "$diff" -lt "$bestdiff" ]; then best="$c $rate $p50 $p99"; bestdiff=$diff; fi
  done
  echo "$best"
}

: >"$WORK/wrk.log"
echo "bench: wrk max rate (-t2 -c64, ${WRK_SECONDS}s each)"
read -r EDGE_MAX EDGE_MAX_P50 EDGE_MAX_P99 < <(wrk_run "http://127.0.0.1:$EDGE_PORT/" "$WORK/event.lua" 2 64)
read -r NGINX_MAX NGINX_MAX_P50 NGINX_MAX_P99 < <(wrk_run "http://127.0.0.1:$NGINX_PORT/event" "" 2 64)
echo "bench:   relay-edge /event  $EDGE_MAX req/s (p50 $EDGE_MAX_P50 ms, p99 $EDGE_MAX_P99 ms)"
echo "bench:   nginx static       $NGINX_MAX req/s (p50 $NGINX_MAX_P50 ms, p99 $NGINX_MAX_P99 ms)"
echo "bench:   ratio relay-edge / nginx: $(awk -v a="$EDGE_MAX" -v b="$NGINX_MAX" 'BEGIN{printf "%.2f", a/b}')"
bench_result relay-edge "$EDGE_MAX" requests/s "$NGINX_MAX" "nginx same body" - request "$(peak_rss_kb $EDGE)" "$USERS"
read -r BARE_MAX _ _ < <(wrk_run "http://127.0.0.1:$EDGE_PORT/" "$WORK/event-nodst.lua" 2 64)
read -r NGINX_BARE _ _ < <(wrk_run "http://127.0.0.1:$NGINX_PORT/nodst" "" 2 64)
echo "bench:   without destinations: relay-edge $BARE_MAX req/s, nginx $NGINX_BARE req/s," \
  "ratio $(awk -v a="$BARE_MAX" -v b="$NGINX_BARE" 'BEGIN{printf "%.2f", a/b}')"
bench_result relay-edge-nodst "$BARE_MAX" requests/s "$NGINX_BARE" "nginx same body" - request "$(peak_rss_kb $EDGE)" "$USERS"
echo "bench: latency near half of each server's max rate (1 thread; 1/2/4/8 connections, closest to max/2 kept)"
read -r EC ER E50 E99 < <(half_load "http://127.0.0.1:$EDGE_PORT/" "$WORK/event.lua" "$EDGE_MAX")
read -r NC NR N50 N99 < <(half_load "http://127.0.0.1:$NGINX_PORT/event" "" "$NGINX_MAX")
echo "bench:   relay-edge: $ER req/s with $EC connections: p50 $E50 ms, p99 $E99 ms"
echo "bench:   nginx:      $NR req/s with $NC connections: p50 $N50 ms, p99 $N99 ms"
FIRED=$(metric_sum "$EDGE_PORT" relay_edge_pixels_fired_total)
FAILED=$(metric_sum "$EDGE_PORT" relay_edge_pixel_produce_failures_total)
echo "bench: pixels fired during the run: $FIRED (produce failures: $FAILED)"
echo "bench: memory with $USERS users loaded: relay-edge RSS $(( RSS_KB / 1024 )) MiB" \
  "($(awk -v k="$RSS_KB" -v u="$USERS" 'BEGIN{printf "%.0f", k*1024/u}') bytes/user, process included);" \
  "store $(( STORE_BYTES / 1024 / 1024 )) MiB ($(awk -v s="$STORE_BYTES" -v u="$USERS" 'BEGIN{printf "%.1f", s/u}') bytes/user)"
kill $EDGE 2>/dev/null || true
kill "$NGINX_PID" 2>/dev/null || true
wait $EDGE 2>/dev/null || true
echo "bench: store accounting (relay-edge --measure-store):"
echo "bench:   1M:  $("$BIN/relay-edge" --measure-store 1000000)"
if [ "${SKIP_10M:-0}" != 1 ]; then
  echo "bench:   10M: $("$BIN/relay-edge" --measure-store 10000000)"
fi
