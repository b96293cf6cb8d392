# Sourced by the benchmarks.
# Optional profile: with PERF_OUT set (a file), perf_start PID records call graphs of the process until perf_stop.
PERF_PID=""
perf_start() {
  [ -n "${PERF_OUT:-}" ] || return 0
  perf record -g -F "${PERF_FREQ:-499}" -o "$PERF_OUT" -p "$1" >/dev/null 2>&1 &
  PERF_PID=$!
}
perf_stop() {
  [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=""
}
