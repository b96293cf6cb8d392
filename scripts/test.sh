#!/usr/bin/env bash
# Runs every test: installs what is missing, builds (debug, the one configuration), starts a broker of its own on
# 127.0.0.1:19092 (apart from the demo's), runs `swift test`, stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
export RELAY_BROKER_PORT="${RELAY_TEST_BROKER_PORT:-19092}"
export RELAY_BROKERS="127.0.0.1:$RELAY_BROKER_PORT"
echo "test: building"
swift build --build-tests 2>&1 | grep -Ev "^\[[0-9]+/[0-9]+\]" || true
test "${PIPESTATUS[0]}" -eq 0
export RELAY_BIN_DIR="$(swift build --show-bin-path)"
bash scripts/broker.sh stop >/dev/null 2>&1 || true
bash scripts/broker.sh start
trap 'bash scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
swift test --skip-build "$@"
