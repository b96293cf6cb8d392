#!/usr/bin/env bash
# relay-pixel-audit (release build): ~2 M pixel events (1 M fired, ~85 % received) on 8 partitions, audited by one
# worker; its events/s next to kcat's raw consume rate on the same topic in the same run, the ratio, the peak
# memory while the windows are open, the bytes it wrote to its internal topics per input event, and the time a
# restarted worker takes to restore the state from them.    bench/pixel-audit.sh [FIRED]      (default 1000000; PERF_OUT=file profiles it)
source "$(dirname "$0")/lib.sh"
FIRED="${1:-1000000}"
bench_build relay-pixel-audit relayctl
bench_broker
cat >"$BENCH_DIR/pixel-audit.yaml" <<YAML
kafka:
  brokers: $RELAY_BROKERS
  topics: {qualifications: bench.qualifications, pixel_events: bench.pixel-events, pixel_audit: bench.pixel-audit, dead_letter: bench.dead-letter}
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}
pixel_audit: {audit_window: 10m, grace: 10s}
destinations:
  - {id: 7001, name: px-a, kind: url, url: "http://a.example/s?seg=%alias%", max_loss_rate: 0.20, mappings: [{segment: 1}]}
  - {id: 7002, name: px-b, kind: url, url: "http://b.example/s?seg=%alias%", max_loss_rate: 0.10, mappings: [{segment: 1}]}
  - {id: 7003, name: px-c, kind: url, url: "http://c.example/s?seg=%alias%", mappings: [{segment: 1}]}
  - {id: 7004, name: px-d, kind: url, url: "http://d.example/s?seg=%alias%", mappings: [{segment: 1}]}
YAML
cd "$BENCH_DIR"
# lib.sh's EXIT trap runs scripts/broker.sh relative to the repository: stop the broker from there.
trap 'cd "$RELAY_ROOT" && bash scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
"$BIN/relayctl" topics create --config pixel-audit.yaml --partitions 8 >/dev/null
echo "bench: producing $FIRED fired pixels and their receipts (keyed by pixel_id)"
# Fired ts spread over one hour (six 10-minute windows), receipts 1.5 s after their fired event.
python3 "$RELAY_ROOT/bench/pixel-events.py" "$FIRED" --span-ms 3600000 2>"$BENCH_DIR/pixel-gen.txt" \
  | kcat -P -b "$RELAY_BROKERS" -t bench.pixel-events -K $'\t' -X linger.ms=50 -X batch.num.messages=10000
cat "$BENCH_DIR/pixel-gen.txt"
EVENTS=$(awk '/generated/ { print $2 + $4 }' "$BENCH_DIR/pixel-gen.txt")

echo "bench: kcat raw consume"
KCAT=$(kcat_rate bench.pixel-events "$EVENTS")

echo "bench: relay-pixel-audit consume → decode → join → changelog → commit"
PORT=29103
"$BIN/relay-pixel-audit" --config pixel-audit.yaml --metrics-port $PORT --group bench-pixel-audit \
  2>"$BENCH_DIR/relay-pixel-audit.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; cd "$RELAY_ROOT" && bash scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
perf_start "$PID"  # PERF_OUT=/tmp/audit.perf.data profiles the run up to the last commit
until [ "$(metric_sum $PORT relay_pixel_audit_events_total)" -gt 0 ]; do sleep 0.02; done
START=$(now_ms)
until [ "$(metric_sum $PORT relay_pixel_audit_events_total)" -ge "$EVENTS" ]; do sleep 0.05; done
JOINED=$(now_ms)
PIXELS=$(metric_sum $PORT relay_pixel_audit_tracked_pixels)
until [ "$(metric_sum $PORT relay_committed_offset)" -ge "$EVENTS" ]; do sleep 0.05; done
END=$(now_ms)
perf_stop
RSS=$(peak_rss_kb $PID)
CPU=$(awk '{print ($14+$15)/100}' /proc/$PID/stat)
STATE_RECORDS=$(metric_sum $PORT relay_pixel_audit_state_records_total)
echo "bench: waiting for the idle partitions' windows to close (grace 10 s)"
until [ "$(metric_sum $PORT relay_pixel_audit_open_windows)" -eq 0 ]; do sleep 0.5; done
sleep 2
kill -TERM $PID; wait $PID || true

# Bytes of keys and values, as the broker stores them before compaction.
topic_bytes() { kcat -C -b "$RELAY_BROKERS" -t "$1" -e -q -f '%K%s' | wc -c; }
INPUT_BYTES=$(topic_bytes bench.pixel-events)
STATE_BYTES=$(topic_bytes bench-pixel-audit.state)
SHARES_BYTES=$(topic_bytes bench-pixel-audit.shares)

echo "bench: restart: restore every partition's state from bench-pixel-audit.state"
RESTART=$(now_ms)
"$BIN/relay-pixel-audit" --config pixel-audit.yaml --metrics-port $PORT --group bench-pixel-audit \
  2>"$BENCH_DIR/relay-pixel-audit-restart.log" &
PID=$!
until [ "$(grep -c 'pixel audit state restored' "$BENCH_DIR/relay-pixel-audit-restart.log")" -ge 8 ]; do sleep 0.05; done
RESTORED=$(now_ms)
kill -TERM $PID; wait $PID || true
RATE=$(( EVENTS * 1000 / (JOINED - START) ))
RATE_COMMITTED=$(( EVENTS * 1000 / (END - START) ))
"$BIN/relayctl" pixel report --config pixel-audit.yaml --limit 6 --chart --destination 7002
echo
echo "events:                   $EVENTS on 8 partitions ($FIRED fired)"
echo "kcat raw consume:         $KCAT events/s"
echo "relay-pixel-audit joined: $RATE events/s (first to last event applied: $((JOINED - START)) ms)"
echo "  ... and committed:      $RATE_COMMITTED events/s (first event to last commit: $((END - START)) ms)"
echo "ratio (joined / kcat):    $(awk -v a=$RATE -v b=$KCAT 'BEGIN { printf "%.2f", a / b }')"
echo "ratio (committed / kcat): $(awk -v a=$RATE_COMMITTED -v b=$KCAT 'BEGIN { printf "%.2f", a / b }')"
echo "pixels tracked at the end: $PIXELS (open and retained windows)"
echo "internal topics:          state $STATE_BYTES B ($STATE_RECORDS records), shares $SHARES_BYTES B; input $INPUT_BYTES B"
echo "  ... per input event:    $(awk -v s=$((STATE_BYTES + SHARES_BYTES)) -v e=$EVENTS 'BEGIN { printf "%.1f", s / e }') B, input event $(awk -v s=$INPUT_BYTES -v e=$EVENTS 'BEGIN { printf "%.1f", s / e }') B (ratio $(awk -v a=$((STATE_BYTES + SHARES_BYTES)) -v b=$INPUT_BYTES 'BEGIN { printf "%.2f", a / b }'))"
echo "restore of $PIXELS pixels: $((RESTORED - RESTART)) ms from process start to the 8th partition restored"
echo "cpu seconds:              $CPU; peak RSS $((RSS / 1024)) MiB"
bench_result relay-pixel-audit "$RATE" events/s "$KCAT" "kcat consume" "$(awk -v c="$CPU" -v n="$EVENTS" 'BEGIN{print c*1e6/n}')" "event" "$RSS" "$EVENTS" "$((JOINED - START))"
