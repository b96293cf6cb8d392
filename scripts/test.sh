#!/usr/bin/env bash
# Runs every test: installs what is missing, builds (debug, the one configuration), checks the deployment files,
# checks that the demo refuses a foreign broker, runs the demo end to end and checks its summary, fuzzes each
# libFuzzer target for a few seconds (RELAY_TEST_FUZZ_SECONDS, default 10), then starts a
# broker of its own on 127.0.0.1:19092 (apart from the demo's), checks the live edge and audit against
# docs/openapi.yaml and runs `swift test`.
#   scripts/test.sh [swift test options, e.g. --filter RelayCoreTests]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "test: building"
if ! swift build --build-tests >.local/build.log 2>&1; then grep -E "error:" .local/build.log | head -40; exit 1; fi
export RELAY_BIN_DIR="$(swift build --show-bin-path)"

if [ $# -eq 0 ]; then
  echo "test: deployment files"
  .venv/bin/python scripts/check-deploy.py --strict-metrics
  echo "test: the demo and the broker script refuse a broker they did not start"
  bash scripts/test-foreign-broker.sh
  echo "test: the demo, end to end"
  trap 'bash scripts/demo.sh stop >/dev/null 2>&1 || true' EXIT
  if ! bash scripts/demo.sh >.local/demo.log 2>&1; then
    cat .local/demo.log; echo "test: the demo failed"; exit 1
  fi
  sed -n '/==== AudienceRelay demo/,/^=====/p' .local/demo.log
  bash scripts/demo.sh stop
  # Each libFuzzer target briefly (bench/fuzz.sh runs them for longer): a crash fails the run.
  echo "test: fuzzing each target for ${RELAY_TEST_FUZZ_SECONDS:-10} s"
  bash bench/fuzz.sh "${RELAY_TEST_FUZZ_SECONDS:-10}"
fi

export RELAY_BROKER_PORT="${RELAY_TEST_BROKER_PORT:-19092}"
export RELAY_BROKERS="127.0.0.1:$RELAY_BROKER_PORT"
bash scripts/broker.sh stop >/dev/null 2>&1 || true
bash scripts/broker.sh start
trap 'bash scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
if [ $# -eq 0 ]; then
  echo "test: docs/openapi.yaml against the live edge and audit"
  .venv/bin/python scripts/test_openapi.py
fi
swift test --skip-build "$@"
