# Shared by the benchmarks: a broker of their own, release binaries, and kcat's raw consume rate as the ceiling.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
source scripts/env.sh
export RELAY_BROKER_PORT="${BENCH_BROKER_PORT:-29092}"
export RELAY_BROKERS="127.0.0.1:$RELAY_BROKER_PORT"
BENCH_DIR="$RELAY_ROOT/.local/bench"
source "$RELAY_ROOT/bench/result.sh"
mkdir -p "$BENCH_DIR"

bench_build() {  # bench_build PRODUCT...: release build of the products, BIN points at them
  echo "bench: release build of $*" >&2
  local scratch=()
  [ -n "${BENCH_SCRATCH:-}" ] && scratch=(--scratch-path "$BENCH_SCRATCH")  # a build folder of its own, if wanted
  for p in "$@"; do  # one product per call: SwiftPM honours only the last --product
    if ! swift build -c release "${scratch[@]}" --product "$p" >"$BENCH_DIR/build-$p.log" 2>&1; then
      grep -E "error:" "$BENCH_DIR/build-$p.log" | head -20 >&2
      echo "bench: release build of $p failed (see $BENCH_DIR/build-$p.log)" >&2
      exit 1
    fi
  done
  BIN="$(swift build -c release "${scratch[@]}" --show-bin-path)"
  for p in "$@"; do [ -x "$BIN/$p" ] || { echo "bench: $p did not build" >&2; exit 1; }; done
}

bench_broker() {  # a fresh in-memory broker for this run
  bash "$RELAY_ROOT/scripts/broker.sh" stop >/dev/null 2>&1 || true
  bash "$RELAY_ROOT/scripts/broker.sh" start >&2
  trap 'bash "$RELAY_ROOT/scripts/broker.sh" stop >/dev/null 2>&1 || true' EXIT
}

now_ms() { date +%s%3N; }

# kcat_rate TOPIC COUNT: reads the whole topic (every partition, no group) and prints records per second.
kcat_rate() {
  local topic=$1 count=$2 start end got
  start=$(now_ms)
  got=$(kcat -C -b "$RELAY_BROKERS" -t "$topic" -o beginning -e -q -f '\n' 2>/dev/null | wc -l)
  end=$(now_ms)
  [ "$got" -ge "$count" ] || echo "bench: kcat read $got of $count records" >&2
  echo $(( got * 1000 / (end - start) ))
}

# metric_sum PORT NAME: the sum of a Prometheus metric's samples on localhost:PORT/metrics (0 if absent).
metric_sum() {
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null \
    | awk -v name="$2" '$1 ~ "^"name"({|$)" { s += $NF } END { printf "%d\n", s }'
}

# peak_rss_kb PID: the process's peak resident memory (VmHWM) in KiB.
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

source "$(dirname "${BASH_SOURCE[0]}")/perf.sh"
