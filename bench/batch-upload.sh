#!/usr/bin/env bash
# relay-batch (release build) uploading one ~500 MB part over `output: {type: http, auth: {bearer_env}}`: the part
# is streamed from disk, so the worker's resident memory while it writes and uploads the part must stay within
# 64 MiB of what it held just before the cut.
#   bash bench/batch-upload.sh [USERS]
# USERS (default 50,000) users, each in 100 mapped segments with 100-character aliases: about 10 KB per line, one
# partition, gzip off, so one part of USERS x 10 KB. A local HTTP partner (Python) checks the bearer token and
# Content-MD5 while it reads the body in 1 MiB pieces and keeps only the .info. Prints the part's size, the upload's
# duration and throughput, the baseline and peak VmRSS (sampled every 20 ms) and the difference; exits 1 above
# 64 MiB or if the partner saw a wrong token, digest or size. Kafka timestamps are the produce time: the run waits
# for the next minute's cut (every: 1m, grace: 5s).
export BENCH_BROKER_PORT="${BENCH_BROKER_PORT:-29392}"
source "$(dirname "$0")/lib.sh"
USERS="${1:-50000}"
METRICS_PORT="${METRICS_PORT:-19193}"
PARTNER_PORT="${PARTNER_PORT:-19194}"
LIMIT_MIB=64
bench_build relay-batch relayctl
bench_broker
WORK="$BENCH_DIR/batch-upload"
rm -rf "$WORK"
mkdir -p "$WORK/received"
cd "$WORK"

MAPPINGS=$(python3 -c 'print(", ".join("{segment: %d, alias: s%03d-%s}" % (5000 + i, i, "a" * 95) for i in range(100)))')
cat >relay.yaml <<YAML
kafka:
  brokers: $RELAY_BROKERS
  topics: {qualifications: bench.qualifications, pixel_events: bench.pixel-events, pixel_audit: bench.pixel-audit, dead_letter: bench.dead-letter}
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}
destinations:
  - {id: 6101, name: upload, kind: batch, every: 1m, grace: 5s, mode: full, pid_alias: up, gzip: false,
     output: {type: http, url: "http://127.0.0.1:$PARTNER_PORT/in", auth: {bearer_env: BENCH_UPLOAD_TOKEN}},
     mappings: [$MAPPINGS]}
YAML
export BENCH_UPLOAD_TOKEN="bench-$(date +%s)"

cat >partner.py <<'PY'
import base64, hashlib, http.server, sys, time
port, token, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        start, left, md5 = time.time(), int(self.headers["Content-Length"]), hashlib.md5()
        size, name, kept = left, self.path.rsplit("/", 1)[-1], []
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk: break
            left -= len(chunk); md5.update(chunk)
            if name.endswith(".info"): kept.append(chunk)  # only the small control file is kept
        if kept:
            with open(log.rsplit("/", 1)[0] + "/" + name, "wb") as f: f.write(b"".join(kept))
        ok = self.headers.get("Authorization") == "Bearer " + token
        ok = ok and self.headers.get("Content-MD5") == base64.b64encode(md5.digest()).decode() and left == 0
        with open(log, "a") as f:
            f.write("%s %d %s %.3f %s\n" % ("ok" if ok else "BAD", size, md5.hexdigest(), time.time() - start, name))
        self.send_response(201 if ok else 401); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
python3 partner.py "$PARTNER_PORT" "$BENCH_UPLOAD_TOKEN" "$WORK/received/log.txt" &
PARTNER=$!
trap 'kill $PARTNER 2>/dev/null || true; bash "$RELAY_ROOT/scripts/broker.sh" stop >/dev/null 2>&1 || true' EXIT

"$BIN/relayctl" topics create --config relay.yaml --partitions 1 >/dev/null
echo "bench: producing $USERS events of 100 mapped segments each"
python3 - "$USERS" <<'PY' | kcat -P -b "$RELAY_BROKERS" -t bench.qualifications -K $'\t' -X linger.ms=50
import sys
n = int(sys.argv[1])
segs = ",".join('{"id":%d,"status":1}' % (5000 + i) for i in range(100))
out = []
for i in range(n):
    uuid = "u%012d" % i
    out.append('%s\t{"event_id":"ev-%d","uuid":"%s","ts":1795982000000,"segments":[%s]}\n' % (uuid, i, uuid, segs))
    if len(out) >= 2000:
        sys.stdout.write("".join(out)); out = []
sys.stdout.write("".join(out))
PY

"$BIN/relay-batch" --config relay.yaml --metrics-port "$METRICS_PORT" --state-dir ./state 2>"$WORK/worker.log" &
WORKER=$!
trap 'kill $WORKER $PARTNER 2>/dev/null || true; bash "$RELAY_ROOT/scripts/broker.sh" stop >/dev/null 2>&1 || true' EXIT
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
while :; do
  got=$(metric_sum "$METRICS_PORT" relay_records_consumed_total 2>/dev/null || true)
  [ "${got:-0}" -ge "$USERS" ] && break
  kill -0 $WORKER 2>/dev/null || { echo "bench: relay-batch exited"; tail -5 "$WORK/worker.log"; exit 1; }
  sleep 0.1
done
sleep 1  # the last records handled, not only read
BASE_KB=$(rss_kb $WORKER)
echo "bench: all $USERS events read; baseline VmRSS $((BASE_KB / 1024)) MiB; waiting for the cut (next minute + 5 s)"
PEAK_KB=$BASE_KB
until grep -q '\.info$' "$WORK/received/log.txt" 2>/dev/null; do
  kill -0 $WORKER 2>/dev/null || { echo "bench: relay-batch exited"; tail -5 "$WORK/worker.log"; exit 1; }
  now=$(rss_kb $WORKER)
  [ "$now" -gt "$PEAK_KB" ] && PEAK_KB=$now
  sleep 0.02
done
cat "$WORK/received/log.txt"
read -r STATUS SIZE MD5 SECONDS_UP NAME < <(grep '\.sync$' "$WORK/received/log.txt" | head -1 || true)
[ "${STATUS:-}" = ok ] || { echo "bench: the partner refused the part"; exit 1; }
grep -q "\"MD5\": \"$MD5\"" "$WORK"/received/*.info || { echo "bench: the .info does not list the part's MD5"; exit 1; }
echo "bench: part $NAME: $((SIZE / 1048576)) MiB uploaded in ${SECONDS_UP}s ($(awk -v s="$SIZE" -v t="$SECONDS_UP" 'BEGIN{printf "%.0f", s/1048576/(t>0?t:1)}') MiB/s)"
DELTA_KB=$((PEAK_KB - BASE_KB))
echo "bench: VmRSS baseline $((BASE_KB / 1024)) MiB, peak during the cut and upload $((PEAK_KB / 1024)) MiB: +$((DELTA_KB / 1024)) MiB (limit +$LIMIT_MIB MiB)"
[ "$DELTA_KB" -le $((LIMIT_MIB * 1024)) ] || { echo "bench: FAIL: more than $LIMIT_MIB MiB above the baseline"; exit 1; }
echo "bench: OK"
