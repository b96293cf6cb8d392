# bench_result: one benchmark's figures as a JSON line, appended to $BENCH_RESULTS when bench/all.sh collects them.
#   bench_result NAME RATE UNIT CEILING CEILING_WHAT CPU_US CPU_PER PEAK_RSS_KB [SIZE] [ELAPSED_MS]
# CPU_US is CPU microseconds per CPU_PER (an event, a partner request); "-" when not measured. The load average is read here, at the end of the measured part.
bench_result() {
  local name=$1 rate=$2 unit=$3 ceiling=$4 what=$5 cpu=$6 per=$7 rss=$8 size=${9:-0} elapsed=${10:-0}
  [ -n "${BENCH_RESULTS:-}" ] || return 0
  python3 - "$name" "$rate" "$unit" "$ceiling" "$what" "$cpu" "$per" "$rss" "$size" "$elapsed" >>"$BENCH_RESULTS" <<'PY'
import json, sys
name, rate, unit, ceiling, what, cpu, per, rss, size, elapsed = sys.argv[1:]
rate, ceiling = float(rate), float(ceiling)
print(json.dumps({
    "worker": name, "rate": round(rate), "unit": unit, "ceiling": round(ceiling), "ceiling_of": what,
    "ratio": round(rate / ceiling, 3) if ceiling > 0 else None,
    "cpu_us": None if cpu == "-" else round(float(cpu), 1), "cpu_per": per,
    "peak_rss_mib": round(int(rss) / 1024), "size": int(size), "elapsed_ms": int(elapsed),
    "load1": float(open("/proc/loadavg").read().split()[0]),
}))
PY
}
