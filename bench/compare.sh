#!/usr/bin/env bash
# The differences between two runs of bench/all.sh:   bash bench/compare.sh bench/results/A.json bench/results/B.json
set -euo pipefail
python3 - "$1" "$2" <<'PY'
import json, sys
a, b = ({(r["worker"], r["size"]): r for r in json.load(open(p))["results"]} for p in sys.argv[1:3])
print(f"{'worker':<19} {'size':>9} {'rate A':>11} {'rate B':>11} {'change':>7} {'ratio A':>7} {'ratio B':>7} "
      f"{'RSS A':>6} {'RSS B':>6} {'load A':>6} {'load B':>6}")
for key in sorted(set(a) | set(b)):
    ra, rb = a.get(key), b.get(key)
    def f(r, k, fmt):
        return "-" if r is None or r.get(k) is None else format(r[k], fmt)
    change = f'{(rb["rate"] / ra["rate"] - 1) * 100:+.0f}%' if ra and rb and ra["rate"] else "-"
    print(f'{key[0]:<19} {key[1]:>9} {f(ra, "rate", ","):>11} {f(rb, "rate", ","):>11} {change:>7} '
          f'{f(ra, "ratio", ".2f"):>7} {f(rb, "ratio", ".2f"):>7} {f(ra, "peak_rss_mib", "d"):>6} '
          f'{f(rb, "peak_rss_mib", "d"):>6} {f(ra, "load1", ".2f"):>6} {f(rb, "load1", ".2f"):>6}')
PY
