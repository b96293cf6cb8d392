#!/usr/bin/env bash
# libFuzzer over what the relay parses from outside: the edge's query/form/cookie/Host parsing, the /px signature
# verifier, /px/receipts, the qualification decoder, the pixel event and audit report decoders and the relay.yaml
# loader. Targets in Fuzz/Targets, seed
# corpora in Fuzz/Corpus.
#   bash bench/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target (default 60);
#                                                targets: edge-request qualification pixel config
# Reports executions and crashes per target; exits non-zero if any target crashed. Crash inputs are kept under
# .local/fuzz/<target>/ (copy one into Fuzz/Corpus/<target>/ once fixed, so it is replayed as a regression).
#
# The targets are built with separate swiftc calls (-sanitize=fuzzer,address): the relay's own code that they
# exercise is compiled again with coverage; the packages under it (Crypto, HTTPTypes, Yams) are linked from the
# ordinary debug build, which this script runs first if needed. CI's `swift build` is untouched.
# Environment: FUZZ_MAX_LEN (longest input tried, default 4096).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(edge-request qualification pixel config)
MAX_LEN="${FUZZ_MAX_LEN:-4096}"
OUT=.local/fuzz
mkdir -p "$OUT/build"

echo "fuzz: debug build (dependencies to link)" >&2
swift build --target RelayEdge >"$OUT/build/swift-build.log" 2>&1 || {
  grep -E "error:" "$OUT/build/swift-build.log" | head -20 >&2
  echo "fuzz: swift build failed (see $OUT/build/swift-build.log)" >&2
  exit 1
}
DEBUG="$(swift build --show-bin-path)"

objects() {  # objects MODULE...: the object files of these modules in the debug build
  for m in "$@"; do [ -d "$DEBUG/$m.build" ] && find "$DEBUG/$m.build" -name '*.o'; done
}
ROOT="$PWD"
# The instrumented relay modules come first, the debug build's (for the packages) after.
SWIFTC=(swiftc -sanitize=fuzzer,address -parse-as-library -O -g -I "$ROOT/$OUT/build" -I "$DEBUG/Modules")
CRYPTO=(Crypto CCryptoBoringSSL CCryptoBoringSSLShims CryptoBoringWrapper CXKCP CXKCPShims)

# An instrumented module of the relay's own: $OUT/build/NAME.swiftmodule, its objects in $OUT/build/NAME/.
relay_module() {  # relay_module NAME SOURCES...
  local name=$1 sources=()
  shift
  for f in "$@"; do sources+=("$ROOT/$f"); done
  rm -rf "$OUT/build/$name" && mkdir -p "$OUT/build/$name"
  (cd "$OUT/build/$name" && "${SWIFTC[@]}" -enable-testing -module-name "$name" -wmo -c \
    -emit-module -emit-module-path "../$name.swiftmodule" "${sources[@]}" 2>&1 | grep -v "Cannot export local symbol" || true)
  [ -f "$OUT/build/$name.swiftmodule" ] || { echo "fuzz: $name did not build" >&2; exit 1; }
}

# RelayCore and RelayEncoding under it, instrumented.
relay_module RelayEncoding $(find Sources/RelayEncoding -name '*.swift')
relay_module RelayCore $(find Sources/RelayCore -name '*.swift')
mapfile -t RELAY_OBJECTS < <(find "$OUT/build" -mindepth 2 -name '*.o')
mapfile -t DEPENDENCIES < <(objects Yams CYaml HTTPTypes "${CRYPTO[@]}")

build_target() {  # build_target TARGET: $OUT/build/<target>
  local target=$1 sources=()
  case "$target" in
    edge-request)
      # The edge files that parse and check what callers send; one module with the harness.
      sources=(Fuzz/Targets/EdgeRequest.swift)
      for f in EventParameters PixelSigner PixelReceipts CORSPolicy; do
        [ -f "Sources/RelayEdge/$f.swift" ] && sources+=("Sources/RelayEdge/$f.swift")
      done
      "${SWIFTC[@]}" -module-name RelayEdgeFuzz "${sources[@]}" "${RELAY_OBJECTS[@]}" "${DEPENDENCIES[@]}" \
        -o "$OUT/build/$target" 2>&1 | grep -v "Cannot export local symbol" || true ;;
    qualification)
      "${SWIFTC[@]}" -module-name QualificationFuzz Fuzz/Targets/Qualification.swift "${RELAY_OBJECTS[@]}" \
        "${DEPENDENCIES[@]}" -o "$OUT/build/$target" 2>&1 | grep -v "Cannot export local symbol" || true ;;
    pixel)
      "${SWIFTC[@]}" -module-name PixelFuzz Fuzz/Targets/Pixel.swift "${RELAY_OBJECTS[@]}" \
        "${DEPENDENCIES[@]}" -o "$OUT/build/$target" 2>&1 | grep -v "Cannot export local symbol" || true ;;
    config)
      "${SWIFTC[@]}" -module-name ConfigFuzz Fuzz/Targets/ConfigLoader.swift "${RELAY_OBJECTS[@]}" \
        "${DEPENDENCIES[@]}" -o "$OUT/build/$target" 2>&1 | grep -v "Cannot export local symbol" || true ;;
    *) echo "fuzz: unknown target $target (edge-request, qualification, pixel, config)" >&2; exit 2 ;;
  esac
  [ -x "$OUT/build/$target" ] || { echo "fuzz: $target did not build" >&2; exit 1; }
}

failed=0
printf '%-16s %12s %10s %8s %s\n' target executions exec/s crashes corpus
for target in "${TARGETS[@]}"; do
  echo "fuzz: building $target" >&2
  build_target "$target"
  work="$OUT/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  # Seeds stay untouched in the repository; new inputs go to the working corpus.
  log="$work/fuzz.log"
  set +e
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$OUT/build/$target" \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_LEN" -print_final_stats=1 \
    -artifact_prefix="$work/crashes/" \
    "$work/corpus" "Fuzz/Corpus/$target" >"$log" 2>&1
  set -e
  runs=$(awk '/stat::number_of_executed_units/ {s+=$2} END {print s+0}' "$log")
  rate=$(( runs / (SECONDS_PER_TARGET > 0 ? SECONDS_PER_TARGET : 1) ))
  crashes=$(find "$work/crashes" -type f | wc -l)
  corpus=$(find "$work/corpus" -type f | wc -l)
  printf '%-16s %12s %10s %8s %s\n' "$target" "$runs" "$rate" "$crashes" "$corpus"
  if [ "$crashes" -gt 0 ]; then
    failed=1
    echo "fuzz: $target crashed; inputs in $work/crashes, log $log" >&2
    grep -m3 -E "Fatal error|ERROR: AddressSanitizer|SUMMARY" "$log" >&2 || true
  fi
done
exit $failed
