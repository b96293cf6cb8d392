#!/usr/bin/env bash
# Every benchmark in one go, each at its default size and the consuming ones again at a quarter of it (how time and
# peak memory grow), then one table: worker, rate, ceiling measured in the same run, ratio, CPU per unit, peak RSS,
# load average. The figures go to bench/results/<UTC time>.json; compare two runs with bench/compare.sh A B.
#   bash bench/all.sh            (about 15 minutes on 2 cores; each benchmark's own output in .local/bench/all/)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results .local/bench/all
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
export BENCH_RESULTS="$PWD/.local/bench/all/$STAMP.jsonl"
: >"$BENCH_RESULTS"
run() {  # run LABEL COMMAND...: one benchmark, its output kept, a failure reported and the rest still run
  local label=$1; shift
  echo "bench/all: $label" >&2
  if ! "$@" >".local/bench/all/$label.log" 2>&1; then
    echo "bench/all: $label failed (see .local/bench/all/$label.log)" >&2
  fi
}
run runtime bash bench/runtime.sh 1000000
run runtime-quarter bash bench/runtime.sh 250000
run batch bash bench/batch.sh 1000000
run batch-quarter bash bench/batch.sh 250000
run pixel-audit bash bench/pixel-audit.sh 1000000
run pixel-audit-quarter bash bench/pixel-audit.sh 250000
run realtime bash bench/realtime.sh
run edge env SKIP_10M=1 bash bench/edge.sh
python3 - "$BENCH_RESULTS" "bench/results/$STAMP.json" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
json.dump({"machine": open("/proc/cpuinfo").read().count("processor\t"), "results": rows},
          open(sys.argv[2], "w"), indent=2)
print(f"{'worker':<19} {'size':>9} {'rate':>11} {'unit':<10} {'ceiling':>11} {'ratio':>6} {'CPU us':>7} "
      f"{'per':<15} {'peak RSS':>9} {'load':>5}  ceiling of")
for r in rows:
    cpu = "-" if r["cpu_us"] is None else f'{r["cpu_us"]:.1f}'
    ratio = "-" if r["ratio"] is None else f'{r["ratio"]:.2f}'
    print(f'{r["worker"]:<19} {r["size"]:>9} {r["rate"]:>11,} {r["unit"]:<10} {r["ceiling"]:>11,} {ratio:>6} '
          f'{cpu:>7} {r["cpu_per"]:<15} {r["peak_rss_mib"]:>5} MiB {r["load1"]:>5.2f}  {r["ceiling_of"]}')
# Cost growth: the full size against its quarter (4x the input: linear is 4x the time).
by = {(r["worker"], r["size"]): r for r in rows}
for (worker, size), full in by.items():
    quarter = by.get((worker, size // 4))
    if quarter and quarter["elapsed_ms"] > 0:
        print(f'growth {worker}: 4x the input took {full["elapsed_ms"] / quarter["elapsed_ms"]:.2f}x the time, '
              f'{full["peak_rss_mib"] / max(quarter["peak_rss_mib"], 1):.2f}x the peak RSS')
print(f"written: {sys.argv[2]}")
PY
