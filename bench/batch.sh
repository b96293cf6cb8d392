#!/usr/bin/env bash
# relay-batch (release build): N events (default 1,000,000, one per user, so N distinct users) on 8 partitions into
# two batch destinations, iter (partner ids, gzip) and full (uuids, gzip), delivered to a local folder.
#   bash bench/batch.sh [N]        (PERF_OUT=file: perf record -g of the worker during the accumulation)
# Prints:
# - accumulation: events/s from the first record read until all N are read, and until all N are committed (the
#   state they changed is in the changelog <group>.state), next to kcat's raw consume rate of the same topic in the
#   same run, with the ratios; how long the commit trailed the last read;
# - bytes written to the internal topics (key + value) per input event, against the input event's own size;
# - the cut: time to write (and deliver) the full file for N users (sum of the partitions' cut durations, they are
#   written one after another) and the worker's peak memory (VmHWM) per user held;
# - restore: the worker is SIGKILLed and a new one restores every partition from the changelog: seconds, records
#   read, and seconds per million users.
# Kafka timestamps are the produce time, so the run waits for the next minute's cut (every: 1m, grace: 5s): up to
# about a minute of idle time is part of the run, not of the figures.
export BENCH_BROKER_PORT="${BENCH_BROKER_PORT:-29292}"
source "$(dirname "$0")/lib.sh"
N="${1:-1000000}"
PARTITIONS=8
METRICS_PORT="${METRICS_PORT:-19192}"
bench_build relay-batch relayctl
bench_broker
WORK="$BENCH_DIR/batch"
rm -rf "$WORK"
mkdir -p "$WORK/outbound"
cat >"$WORK/relay.yaml" <<YAML
kafka:
  brokers: $RELAY_BROKERS
  topics: {qualifications: bench.qualifications, pixel_events: bench.pixel-events, pixel_audit: bench.pixel-audit, dead_letter: bench.dead-letter}
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}
destinations:
  - {id: 6001, name: files-iter, kind: batch, every: 1m, grace: 5s, mode: iter, master_dpid: 20914, pid_alias: iter,
     gzip: true, output: {type: dir, path: ./outbound}, mappings: [{segment: 4532, alias: a4532}, {segment: 99}]}
  - {id: 6002, name: files-full, kind: batch, every: 1m, grace: 5s, mode: full, master_dpid: 0, pid_alias: full,
     gzip: true, output: {type: dir, path: ./outbound}, mappings: [{segment: 4532, alias: a4532}, {segment: 99}]}
YAML
cd "$WORK"
"$BIN/relayctl" topics create --config relay.yaml --partitions "$PARTITIONS" >/dev/null
echo "bench: producing $N events (one per user) to bench.qualifications ($PARTITIONS partitions)"
python3 "$RELAY_ROOT/bench/batch-events.py" "$N" >"$WORK/events.tsv"
kcat -P -b "$RELAY_BROKERS" -t bench.qualifications -K $'\t' -X linger.ms=50 -X batch.num.messages=10000 \
  <"$WORK/events.tsv"
INPUT_BYTES=$(( $(wc -c <"$WORK/events.tsv") - 2 * N ))  # key + value, without the tab and newline
rm -f "$WORK/events.tsv"
KCAT=$(kcat_rate bench.qualifications "$N")
echo "bench: kcat raw consume: $KCAT events/s"

"$BIN/relay-batch" --config relay.yaml --metrics-port "$METRICS_PORT" 2>"$WORK/worker.log" &
WORKER=$!
trap 'kill $WORKER ${RESTORER:-} 2>/dev/null || true; bash "$RELAY_ROOT/scripts/broker.sh" stop >/dev/null 2>&1 || true' EXIT
perf_start "$WORKER"  # PERF_OUT=/tmp/batch.perf.data profiles the accumulation
FIRST=""
while :; do
  got=$(metric_sum "$METRICS_PORT" relay_records_consumed_total 2>/dev/null || true)
  got=${got:-0}
  [ -z "$FIRST" ] && [ "$got" -gt 0 ] && FIRST=$(now_ms) && FIRST_COUNT=$got
  [ "$got" -ge "$N" ] && break
  kill -0 $WORKER 2>/dev/null || { echo "bench: relay-batch exited"; tail -5 "$WORK/worker.log"; exit 1; }
  sleep 0.05
done
LAST=$(now_ms)
while [ "$(metric_sum "$METRICS_PORT" relay_committed_offset)" -lt "$N" ]; do
  kill -0 $WORKER 2>/dev/null || { echo "bench: relay-batch exited"; tail -5 "$WORK/worker.log"; exit 1; }
  sleep 0.05
done
COMMITTED=$(now_ms)
perf_stop
CPU=$(awk '{print ($14+$15)/100}' /proc/$WORKER/stat)
READ_KB=$(peak_rss_kb $WORKER)
RATE=$(( (N - FIRST_COUNT) * 1000 / (LAST - FIRST > 0 ? LAST - FIRST : 1) ))
CRATE=$(( (N - FIRST_COUNT) * 1000 / (COMMITTED - FIRST > 0 ? COMMITTED - FIRST : 1) ))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "bench: relay-batch accumulation: read $RATE events/s ($(ratio "$RATE" "$KCAT") of kcat), committed $CRATE events/s ($(ratio "$CRATE" "$KCAT") of kcat); the commit trailed the last read by $((COMMITTED - LAST)) ms"
bench_result relay-batch "$RATE" events/s "$KCAT" "kcat consume" "$(awk -v c="$CPU" -v n="$N" 'BEGIN{print c*1e6/n}')" "event" "$READ_KB" "$N" "$((LAST - FIRST))"
WRITTEN=$(metric_sum "$METRICS_PORT" relay_batch_state_bytes_written_total)
WRITTEN_RECORDS=$(metric_sum "$METRICS_PORT" relay_batch_state_records_written_total)
echo "bench: changelog: $WRITTEN_RECORDS records, $WRITTEN bytes: $(( WRITTEN / N )) bytes per input event against $(( INPUT_BYTES / N )) bytes of input event ($(ratio "$WRITTEN" "$INPUT_BYTES")x)"
echo "bench: waiting for the cut (next minute + 5 s grace)"
while [ "$(grep -c '"cut complete".*"destination":"6002"' "$WORK/worker.log" || true)" -lt 1 ]; do
  kill -0 $WORKER 2>/dev/null || { echo "bench: relay-batch exited"; tail -5 "$WORK/worker.log"; exit 1; }
  sleep 0.5
done
while [ "$(grep -c '"cut complete".*"destination":"6001"' "$WORK/worker.log" || true)" -lt 1 ]; do sleep 0.5; done
PEAK_KB=$(peak_rss_kb $WORKER)
FULL_MS=$(grep '"cut delivered"' "$WORK/worker.log" | grep '"destination":"6002"' \
  | sed -E 's/.*"duration_ms":"([0-9]+)".*/\1/' | awk '{s+=$1} END {print s+0}')
ITER_MS=$(grep '"cut delivered"' "$WORK/worker.log" | grep '"destination":"6001"' \
  | sed -E 's/.*"duration_ms":"([0-9]+)".*/\1/' | awk '{s+=$1} END {print s+0}')
FULL_LINES=$(grep '"cut delivered"' "$WORK/worker.log" | grep '"destination":"6002"' \
  | sed -E 's/.*"lines":"([0-9]+)".*/\1/' | awk '{s+=$1} END {print s+0}')
FULL_BYTES=$(cat outbound/dir_6002_*.sync.gz | wc -c)
echo "bench: full file: $FULL_LINES users written in $FULL_MS ms ($(ls outbound | grep -c '^dir_6002_.*sync.gz$') parts, $FULL_BYTES bytes gzip); iter file: $ITER_MS ms"
echo "bench: peak memory (VmHWM) $((PEAK_KB / 1024)) MiB for $N users in each of 2 destinations: $(( PEAK_KB * 1024 / (2 * N) )) bytes per user-destination (whole process)"
STATE_BYTES=$(metric_sum "$METRICS_PORT" relay_batch_state_bytes || echo 0)
STATE_USERS=$(metric_sum "$METRICS_PORT" relay_batch_state_users || echo 0)
[ "$STATE_USERS" -gt 0 ] && echo "bench: user state: $STATE_USERS users held, $STATE_BYTES bytes: $(( STATE_BYTES / STATE_USERS )) bytes per user"
ls outbound | grep '\.info$'

# Restore: a new process takes every partition (the first one is SIGKILLed) and reads the changelog.
kill -9 $WORKER
wait $WORKER 2>/dev/null || true
"$BIN/relay-batch" --config relay.yaml --metrics-port "$METRICS_PORT" 2>"$WORK/restore.log" &
RESTORER=$!
while [ "$(grep -c '"batch state restored"' "$WORK/restore.log" || true)" -lt "$PARTITIONS" ]; do
  kill -0 $RESTORER 2>/dev/null || { echo "bench: relay-batch exited"; tail -5 "$WORK/restore.log"; exit 1; }
  sleep 0.2
done
RESTORE_S=$(grep '"batch state restored"' "$WORK/restore.log" | sed -E 's/.*"seconds":"([0-9.]+)[^"]*".*/\1/' \
  | awk '{s+=$1} END {printf "%.2f", s}')
RESTORED=$(grep '"batch state restored"' "$WORK/restore.log" | sed -E 's/.*"changelog_records":"([0-9]+)".*/\1/' \
  | awk '{s+=$1} END {print s+0}')
RUSERS=$(grep '"batch state restored"' "$WORK/restore.log" | sed -E 's/.*"users":"([0-9]+)".*/\1/' \
  | awk '{s+=$1} END {print s+0}')
echo "bench: restore: $PARTITIONS partitions, $RESTORED changelog records, $RUSERS user-destinations in $RESTORE_S s: $(awk -v s="$RESTORE_S" -v n="$N" 'BEGIN{printf "%.2f", s * 1000000 / n}') s per million users ($(awk -v s="$RESTORE_S" -v n="$RUSERS" 'BEGIN{printf "%.2f", s * 1000000 / n}') s per million user-destinations)"
