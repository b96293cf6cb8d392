#!/usr/bin/env bash
# The runtime's consume → decode → commit loop (relay-check, release build) against kcat's raw consume rate on the
# same topic in the same run.      bench/runtime.sh [EVENTS]      (default 1000000 events on 8 partitions)
source "$(dirname "$0")/lib.sh"
EVENTS="${1:-1000000}"
bench_build relay-check relayctl
bench_broker
cat >"$BENCH_DIR/runtime.yaml" <<YAML
kafka:
  brokers: $RELAY_BROKERS
  topics: {qualifications: bench.qualifications, pixel_events: bench.pixel-events, pixel_audit: bench.pixel-audit, dead_letter: bench.dead-letter}
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}
destinations: []
YAML
cd "$BENCH_DIR"
"$BIN/relayctl" topics create --config runtime.yaml --partitions 8 >/dev/null
echo "bench: producing $EVENTS events"
"$BIN/relayctl" produce --config runtime.yaml --sample "$EVENTS" --users 200000

echo "bench: kcat raw consume"
KCAT=$(kcat_rate bench.qualifications "$EVENTS")

echo "bench: relay-check consume → decode → commit"
PORT=29109
"$BIN/relay-check" --config runtime.yaml --metrics-port $PORT --group bench-check 2>"$BENCH_DIR/relay-check.log" &
PID=$!
until [ "$(metric_sum $PORT relay_records_consumed_total)" -gt 0 ]; do sleep 0.02; done
START=$(now_ms)
until [ "$(metric_sum $PORT relay_records_consumed_total)" -ge "$EVENTS" ]; do sleep 0.02; done
PROCESSED=$(now_ms)
# Commits run once a second; the last one shows that every offset was committed.
until [ "$(metric_sum $PORT relay_committed_offset)" -ge "$EVENTS" ]; do sleep 0.02; done
END=$(now_ms)
RSS=$(peak_rss_kb $PID)
BATCHES=$(metric_sum $PORT relay_record_batches_total)
CPU=$(awk '{print ($14+$15)/100}' /proc/$PID/stat)
kill -TERM $PID; wait $PID || true
RATE=$(( EVENTS * 1000 / (PROCESSED - START) ))
echo
echo "events:                 $EVENTS on 8 partitions"
echo "kcat raw consume:       $KCAT events/s"
echo "relay-check:            $RATE events/s decoded and final (first to last record: $((PROCESSED - START)) ms;"
echo "                        every offset committed $((END - PROCESSED)) ms later, at the next 1 s commit)"
echo "ratio:                  $(awk -v a=$RATE -v b=$KCAT 'BEGIN { printf "%.2f", a / b }')"
echo "cpu seconds:            $CPU; peak RSS $((RSS / 1024)) MiB; $BATCHES batches"
bench_result relay-check "$RATE" events/s "$KCAT" "kcat consume" "$(awk -v c="$CPU" -v n="$EVENTS" 'BEGIN{print c*1e6/n}')" "event" "$RSS" "$EVENTS" "$((PROCESSED - START))"
