#!/usr/bin/env python3
"""Validates the deployment files without a container engine or a cluster.

    .venv/bin/python scripts/check-deploy.py [--strict-metrics]

Checks (each problem is printed as `file: where: what`; the exit status is 1 if there is any):
  - docker-compose.yml, every YAML under Deploy/ and every dashboard JSON parse;
  - compose: build contexts and Dockerfiles exist, images are pinned, bind-mounted files exist (and files that
    commands run through a mount), depends_on names services, every relay `command:` is a product of Package.swift,
    its --config is the mounted Deploy/relay.compose.yaml, its ports agree with the published ports, health checks,
    Prometheus targets and relay.compose.yaml, every `*_env` of relay.compose.yaml is given to every relay service,
    and the config's hosts are compose services;
  - the Dockerfile builds and installs every executable product and runs as a non-root user;
  - Kubernetes (Deploy/k8s): apiVersion, kind, metadata.name; kustomization resources and generator files exist;
    Deployments: selector matches labels, a Package.swift executable, liveness on /health/live and readiness on
    /health/ready on a declared container port, --metrics-port/--port equal to that port, resources, a grace period
    long enough to drain, Secret/ConfigMap/volume references resolve; Services select a Deployment and target its
    ports; KEDA ScaledObjects target existing consumer-group Deployments, their consumerGroup is the executable's
    group, topic and bootstrapServers agree with relay.yaml, maxReplicaCount <= the partition count; the edge has an
    HPA and a Service; relay-batch's --state-dir and relay-pixel-audit's state_dir are on ReadWriteMany claims
    (named volumes in compose); every `*_env` of relay.yaml is a key of the Secret;
  - JSON Schema checks (jsonschema) of the dashboard, Prometheus and Grafana provisioning files, Deployments,
    ScaledObjects, Services, the HPA, PDB, PVCs, Job, Secret and Namespace;
  - options that compose passes to a mounted script (scripts/demo_partner.py) are options the script knows;
  - the dashboard: unique panel ids, grid positions, queries, data source uid; metric names compared with the
    `Counter/Gauge/Timer/Recorder(label:` names in Sources (unknown names are warnings; errors with --strict-metrics);
  - `relayctl validate --skip-secrets` on both relay configurations, if relayctl is built ($RELAY_BIN_DIR or
    `swift build --show-bin-path`);
  - `docker-compose -f docker-compose.yml config -q`, if docker-compose is installed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent

try:
    import yaml
except ImportError:  # pragma: no cover - reported, not raised
    sys.exit("check-deploy: PyYAML is missing: run scripts/setup.sh (it installs pyyaml into .venv) and use "
             ".venv/bin/python")
try:
    import jsonschema
except ImportError:  # pragma: no cover
    sys.exit("check-deploy: jsonschema is missing: run scripts/setup.sh (it installs jsonschema into .venv) and use "
             ".venv/bin/python")

COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "Deploy"
COMPOSE_CONFIG = DEPLOY / "relay.compose.yaml"
K8S = DEPLOY / "k8s"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DOCKERFILE = DEPLOY / "Dockerfile"

# What each executable serves on, by default, and which topic its consumer group reads (SPEC §7).
DEFAULT_PORTS = {"relay-realtime": 9101, "relay-batch": 9102, "relay-pixel-audit": 9103, "relay-check": 9109,
                 "relay-edge": 8080}
GROUP_TOPIC = {"relay-realtime": "qualifications", "relay-batch": "qualifications",
               "relay-pixel-audit": "pixel_events", "relay-check": "qualifications"}
LONG_RUNNING = set(DEFAULT_PORTS)
DEFAULT_PARTITIONS = 8
MIN_GRACE_SECONDS = 60
DEFAULT_TOPICS = {"qualifications": "aam.qualifications", "pixel_events": "aam.pixel-events",
                  "pixel_audit": "aam.pixel-audit", "dead_letter": "aam.dead-letter"}


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.checked: list[str] = []

    def error(self, file: Path | str, where: str, message: str) -> None:
        self.errors.append(f"{rel(file)}: {where}: {message}" if where else f"{rel(file)}: {message}")

    def warn(self, file: Path | str, where: str, message: str) -> None:
        self.warnings.append(f"{rel(file)}: {where}: {message}" if where else f"{rel(file)}: {message}")


def rel(path: Path | str) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_yaml_documents(path: Path, report: Report) -> list:
    try:
        with path.open(encoding="utf-8") as handle:
            return [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    except FileNotFoundError:
        report.error(path, "", "missing")
    except yaml.YAMLError as error:
        report.error(path, "", f"invalid YAML: {error}")
    return []


def load_yaml(path: Path, report: Report):
    docs = load_yaml_documents(path, report)
    if len(docs) > 1:
        report.error(path, "", "expected one YAML document")
    return docs[0] if docs else None


def package_products(report: Report) -> set[str]:
    text = (ROOT / "Package.swift").read_text(encoding="utf-8")
    products = set(re.findall(r'\.executable\(\s*name:\s*"([^"]+)"', text))
    if not products:
        report.error(ROOT / "Package.swift", "products", "no executable products found")
    return products


# ---------------------------------------------------------------------------------------------------------------------
# relay.yaml files


def secret_env_vars(config, path: str = "") -> list[tuple[str, str]]:
    """(path in the file, variable) of every `*_env` key, plus the edge's default redirect key when it is needed."""
    found: list[tuple[str, str]] = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                    found.append((child, value))
                else:
                    walk(value, child)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    walk(config, path)
    edge = (config or {}).get("edge") or {}
    audited = any(isinstance(d, dict) and d.get("kind") == "url" and d.get("audit") == "redirect"
                  for d in (config or {}).get("destinations") or [])
    if audited and "redirect_key_env" not in edge and "redirect_key_file" not in edge:
        found.append(("edge.redirect_key_env (default)", "RELAY_REDIRECT_KEY"))
    return found


def config_brokers(config) -> list[str]:
    brokers = ((config or {}).get("kafka") or {}).get("brokers")
    if isinstance(brokers, str):
        return [b.strip() for b in brokers.split(",") if b.strip()]
    if isinstance(brokers, list):
        return [str(b).strip() for b in brokers]
    return []


def config_topics(config) -> dict[str, str]:
    topics = dict(DEFAULT_TOPICS)
    topics.update(((config or {}).get("kafka") or {}).get("topics") or {})
    return topics


def edge_port(config) -> int | None:
    listen = ((config or {}).get("edge") or {}).get("listen", "127.0.0.1:8080")
    try:
        return int(str(listen).rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def server_hosts(config) -> list[tuple[str, str]]:
    """(where, host) of every server a relay process connects to: brokers, partner URLs, S3 endpoints, token URLs."""
    hosts = [("kafka.brokers", b.rsplit(":", 1)[0]) for b in config_brokers(config)]
    for index, dest in enumerate((config or {}).get("destinations") or []):
        if not isinstance(dest, dict):
            continue
        where = f"destinations[{index}]"
        urls = []
        if dest.get("kind") == "realtime":
            urls.append(("url", dest.get("url")))
            urls.append(("oauth2.token_url", (dest.get("oauth2") or {}).get("token_url")))
        output = dest.get("output") or {}
        if dest.get("kind") == "batch" and output.get("type") in ("s3", "http"):
            urls.append(("output.endpoint" if output.get("type") == "s3" else "output.url",
                         output.get("endpoint") or output.get("url")))
        for key, url in urls:
            if url:
                hosts.append((f"{where}.{key}", urlparse(str(url)).hostname or ""))
    return hosts


def shared_state_dir(executable: str, args: list[str], config) -> str | None:
    """The directory that every process of the executable's group must share, if it has one."""
    if executable == "relay-batch":
        return option(args, "--state-dir") or "./state/batch"
    if executable == "relay-pixel-audit":
        return str(((config or {}).get("pixel_audit") or {}).get("state_dir", "./state/pixel-audit"))
    return None


def run_relayctl_validate(paths: list[Path], report: Report) -> None:
    binary = None
    bin_dir = os.environ.get("RELAY_BIN_DIR")
    if bin_dir and (Path(bin_dir) / "relayctl").exists():
        binary = Path(bin_dir) / "relayctl"
    elif shutil.which("swift"):
        try:
            out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True,
                                 timeout=120)
            candidate = Path(out.stdout.strip()) / "relayctl"
            if out.returncode == 0 and candidate.exists():
                binary = candidate
        except (OSError, subprocess.TimeoutExpired):
            pass
    if binary is None:
        report.warn("relayctl", "", "not built: `relayctl validate` skipped (swift build --product relayctl)")
        return
    env = dict(os.environ)
    local_lib = str(ROOT / ".local" / "lib")
    env["LD_LIBRARY_PATH"] = local_lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env.pop("RELAY_BROKERS", None)  # validate the file's own brokers
    for path in paths:
        try:
            result = subprocess.run([str(binary), "validate", "--skip-secrets", "--config", str(path)], cwd=ROOT,
                                    capture_output=True, text=True, timeout=60, env=env)
        except (OSError, subprocess.TimeoutExpired) as error:
            report.error(path, "relayctl validate", f"could not run: {error}")
            continue
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).replace("\n", "\n    ")
            report.error(path, "relayctl validate", f"exit {result.returncode}\n    {detail}")
        else:
            report.checked.append(f"relayctl validate --skip-secrets {rel(path)}")


# ---------------------------------------------------------------------------------------------------------------------
# docker-compose.yml


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def command_args(command) -> list[str]:
    if isinstance(command, str):
        return command.split()
    return [str(a) for a in as_list(command)]


def option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def environment_keys(service) -> set[str]:
    env = service.get("environment")
    if isinstance(env, dict):
        return {str(k) for k in env}
    return {str(e).split("=", 1)[0] for e in as_list(env)}


def bind_mounts(service) -> list[tuple[str, str]]:
    """(host path, container path) of the service's bind mounts (short syntax and long syntax)."""
    mounts = []
    for volume in as_list(service.get("volumes")):
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) >= 2 and (parts[0].startswith(".") or parts[0].startswith("/")):
                mounts.append((parts[0], parts[1]))
        elif isinstance(volume, dict) and volume.get("type") == "bind":
            mounts.append((volume.get("source", ""), volume.get("target", "")))
    return mounts


def host_path_of(container_path: str, mounts: list[tuple[str, str]]) -> Path | None:
    for source, target in mounts:
        target = target.rstrip("/")
        if container_path == target or container_path.startswith(target + "/"):
            return (ROOT / source / container_path[len(target):].lstrip("/")).resolve()
    return None


def container_ports(service) -> set[int]:
    ports = set()
    for port in as_list(service.get("ports")):
        text = str(port.get("target")) if isinstance(port, dict) else str(port)
        text = text.split("/")[0]
        try:
            ports.add(int(text.rsplit(":", 1)[-1]))
        except ValueError:
            pass
    for port in as_list(service.get("expose")):
        try:
            ports.add(int(str(port).split("/")[0]))
        except ValueError:
            pass
    return ports


IMAGE_PINNED = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9._-]+)*:[A-Za-z0-9._-]+$")


def check_compose(products: set[str], report: Report) -> dict:
    compose = load_yaml(COMPOSE_FILE, report)
    if not isinstance(compose, dict):
        report.error(COMPOSE_FILE, "", "not a compose file (a mapping with services)")
        return {}
    services = compose.get("services")
    if not isinstance(services, dict) or not services:
        report.error(COMPOSE_FILE, "services", "missing")
        return {}
    config = load_yaml(COMPOSE_CONFIG, report) or {}
    named_volumes = set((compose.get("volumes") or {}).keys())
    secret_vars = secret_env_vars(config)
    relay_services: dict[str, tuple[str, list[str]]] = {}  # service -> (executable, args)

    for name, service in services.items():
        where = f"services.{name}"
        if not isinstance(service, dict):
            report.error(COMPOSE_FILE, where, "must be a mapping")
            continue
        build = service.get("build")
        image = service.get("image")
        if build is None and image is None:
            report.error(COMPOSE_FILE, where, "neither image nor build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (ROOT / context).is_dir():
                report.error(COMPOSE_FILE, f"{where}.build.context", f"{context}: no such directory")
            elif not (ROOT / context / dockerfile).is_file():
                report.error(COMPOSE_FILE, f"{where}.build.dockerfile", f"{dockerfile}: no such file in {context}")
        elif image is not None and not IMAGE_PINNED.match(str(image)):
            report.error(COMPOSE_FILE, f"{where}.image", f"{image}: pin a tag (name:tag)")
        elif image is not None and str(image).endswith(":latest"):
            report.error(COMPOSE_FILE, f"{where}.image", f"{image}: pin a version, not latest")

        mounts = bind_mounts(service)
        for source, target in mounts:
            if not (ROOT / source).exists():
                report.error(COMPOSE_FILE, f"{where}.volumes", f"{source} (mounted at {target}): no such file")
        for volume in as_list(service.get("volumes")):
            if isinstance(volume, str):
                source = volume.split(":")[0]
                if ":" in volume and not source.startswith((".", "/")) and source not in named_volumes:
                    report.error(COMPOSE_FILE, f"{where}.volumes", f"named volume {source} not declared in volumes:")

        depends = service.get("depends_on") or []
        for dependency in (depends if isinstance(depends, list) else list(depends)):
            if dependency not in services:
                report.error(COMPOSE_FILE, f"{where}.depends_on", f"{dependency}: no such service")

        args = command_args(service.get("command"))
        # Files that a command runs through a bind mount (python /app/scripts/x.py) must exist in the repository.
        scripts = []
        for index, arg in enumerate(args):
            if arg.startswith("/") and re.search(r"\.(py|sh|yaml|yml|json)$", arg):
                host = host_path_of(arg, mounts)
                if host is not None and not host.exists():
                    report.error(COMPOSE_FILE, f"{where}.command", f"{arg} is {rel(host)}, which does not exist")
                elif host is not None and host.suffix in (".py", ".sh"):
                    scripts.append((index, host))
        if scripts:
            # The options after the last script are that script's: they must be options it knows.
            index, host = scripts[-1]
            text = host.read_text(encoding="utf-8", errors="replace")
            for flag in (a.split("=")[0] for a in args[index + 1:] if a.startswith("--")):
                if f'"{flag}"' not in text and f"'{flag}'" not in text and f"{flag} " not in text \
                        and f"{flag})" not in text:
                    report.error(COMPOSE_FILE, f"{where}.command", f"{flag}: {rel(host)} has no such option")

        if build is None or not args:
            continue
        executable = args[0]
        if executable not in products:
            report.error(COMPOSE_FILE, f"{where}.command", f"{executable} is not an executable product of "
                         f"Package.swift ({', '.join(sorted(products))})")
            continue
        relay_services[name] = (executable, args)
        config_arg = option(args, "--config") or "relay.yaml"
        config_container = config_arg if config_arg.startswith("/") else "/var/lib/relay/" + config_arg
        host_config = host_path_of(config_container, mounts)
        if host_config is None:
            report.error(COMPOSE_FILE, f"{where}.command", f"--config {config_arg} is not a mounted file")
        elif host_config != COMPOSE_CONFIG.resolve():
            report.error(COMPOSE_FILE, f"{where}.command", f"--config {config_arg} is {rel(host_config)}, expected "
                         f"{rel(COMPOSE_CONFIG)}")

        # Every secret of the configuration is given to every relay process (they refuse to start without them).
        provided = environment_keys(service)
        for path, variable in secret_vars:
            if variable not in provided:
                report.error(COMPOSE_FILE, f"{where}.environment",
                             f"{variable} (relay.compose.yaml {path}) is not provided")

        state = shared_state_dir(executable, args, config)
        if state is not None:
            # Snapshots/cut reports (batch), join checkpoints (pixel audit): kept across restarts, shared by the group.
            state = state if state.startswith("/") else "/var/lib/relay/" + state.removeprefix("./")
            if not any(isinstance(v, str) and v.split(":")[0] in named_volumes
                       and (state.rstrip("/") + "/").startswith(v.split(":")[1].rstrip("/") + "/")
                       for v in as_list(service.get("volumes"))):
                report.error(COMPOSE_FILE, f"{where}.volumes", f"{executable}'s state directory {state} is not on a "
                             "named volume: it must survive restarts and be shared by the group")
        if executable in LONG_RUNNING:
            if executable == "relay-edge":
                port_text = option(args, "--port")
                port = int(port_text) if port_text else edge_port(config)
                if port_text and edge_port(config) != port:
                    report.warn(COMPOSE_FILE, f"{where}.command",
                                f"--port {port} overrides edge.listen port {edge_port(config)}")
                host = str(((config.get("edge") or {}).get("listen") or "127.0.0.1:8080")).rsplit(":", 1)[0]
                if host in ("127.0.0.1", "localhost", "::1", "[::1]"):
                    report.error(COMPOSE_CONFIG, "edge.listen", f"{host} is unreachable from other containers: "
                                 "listen on 0.0.0.0")
            else:
                port_text = option(args, "--metrics-port")
                port = int(port_text) if port_text else DEFAULT_PORTS[executable]
            service["_relay_port"] = port
            published = container_ports(service)
            if published and port not in published:
                report.error(COMPOSE_FILE, f"{where}.ports", f"publishes {sorted(published)} but {executable} "
                             f"serves on {port}")
            health = service.get("healthcheck")
            if not isinstance(health, dict):
                report.error(COMPOSE_FILE, f"{where}.healthcheck", "missing (curl /health/ready)")
            else:
                test = " ".join(command_args(health.get("test")))
                match = re.search(r"https?://[^/\s:]+:(\d+)(/\S*)", test)
                if not match:
                    report.error(COMPOSE_FILE, f"{where}.healthcheck", "does not probe http://localhost:PORT/health/*")
                else:
                    if int(match.group(1)) != port:
                        report.error(COMPOSE_FILE, f"{where}.healthcheck", f"probes port {match.group(1)}, "
                                     f"{executable} serves on {port}")
                    if match.group(2) not in ("/health/ready", "/health/live"):
                        report.error(COMPOSE_FILE, f"{where}.healthcheck", f"probes {match.group(2)}, expected "
                                     "/health/ready or /health/live")
            grace = str(service.get("stop_grace_period", "10s"))
            if duration_seconds(grace) < MIN_GRACE_SECONDS:
                report.error(COMPOSE_FILE, f"{where}.stop_grace_period", f"{grace}: at least {MIN_GRACE_SECONDS}s "
                             "so that SIGTERM can drain")

    for executable in ("relay-realtime", "relay-batch", "relay-pixel-audit", "relay-edge"):
        if executable not in {e for e, _ in relay_services.values()}:
            report.error(COMPOSE_FILE, "services", f"no service runs {executable}")
    if not any(args[:3] == ["relayctl", "topics", "create"] for _, args in relay_services.values()):
        report.error(COMPOSE_FILE, "services", "no one-shot `relayctl topics create`")

    # Where the relay processes connect must be compose services (or a host they can resolve).
    for where, host in server_hosts(config):
        if host and host not in services and host not in ("localhost",) and "." not in host:
            report.error(COMPOSE_CONFIG, where, f"host {host} is not a compose service "
                         f"({', '.join(sorted(services))})")
        if host in ("localhost", "127.0.0.1"):
            report.error(COMPOSE_CONFIG, where, f"{host} inside a container is the container itself: use the compose "
                         "service name")
    check_prometheus(services, report)
    check_grafana_mounts(services, report)
    report.checked.append(f"{rel(COMPOSE_FILE)}: {len(services)} services, {len(relay_services)} from the relay image")
    return compose


def duration_seconds(text: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", text):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    return total


PROMETHEUS_SCHEMA = {
    "type": "object",
    "required": ["scrape_configs"],
    "properties": {
        "global": {"type": "object"},
        "scrape_configs": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "required": ["job_name", "static_configs"],
                "properties": {
                    "job_name": {"type": "string", "minLength": 1},
                    "metrics_path": {"type": "string", "pattern": "^/"},
                    "static_configs": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["targets"],
                        "properties": {"targets": {"type": "array", "minItems": 1,
                                                   "items": {"type": "string", "pattern": r"^[^:/\s]+:\d+$"}},
                                       "labels": {"type": "object",
                                                  "additionalProperties": {"type": "string"}}}}},
                },
            },
        },
    },
}


def schema_check(instance, schema, file: Path, where: str, report: Report) -> bool:
    validator = jsonschema.Draft202012Validator(schema)
    ok = True
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        path = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        report.error(file, path or "(root)", error.message)
        ok = False
    return ok


def check_prometheus(services: dict, report: Report) -> None:
    config = load_yaml(PROMETHEUS, report)
    if config is None or not schema_check(config, PROMETHEUS_SCHEMA, PROMETHEUS, "", report):
        return
    scraped: set[str] = set()
    jobs = set()
    for index, job in enumerate(config["scrape_configs"]):
        if job["job_name"] in jobs:
            report.error(PROMETHEUS, f"scrape_configs[{index}].job_name", f"duplicate {job['job_name']}")
        jobs.add(job["job_name"])
        if job.get("metrics_path", "/metrics") != "/metrics":
            report.error(PROMETHEUS, f"scrape_configs[{index}].metrics_path", "the workers serve /metrics")
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                service = services.get(host)
                if service is None:
                    report.error(PROMETHEUS, f"scrape_configs[{index}]", f"target {target}: no compose service {host}")
                    continue
                scraped.add(host)
                relay_port = service.get("_relay_port")
                if relay_port is not None and int(port) != relay_port:
                    report.error(PROMETHEUS, f"scrape_configs[{index}]",
                                 f"target {target}: {host} serves /metrics on {relay_port}")
    for name, service in services.items():
        if "_relay_port" in service and name not in scraped:
            report.error(PROMETHEUS, "scrape_configs", f"compose service {name} is not scraped")
    report.checked.append(f"{rel(PROMETHEUS)}: {len(jobs)} scrape jobs")


DATASOURCES_SCHEMA = {
    "type": "object", "required": ["apiVersion", "datasources"],
    "properties": {"apiVersion": {"const": 1}, "datasources": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name", "type", "url", "uid"],
        "properties": {"type": {"const": "prometheus"}, "url": {"type": "string", "pattern": "^https?://"},
                       "uid": {"type": "string"}}}}},
}
PROVIDERS_SCHEMA = {
    "type": "object", "required": ["apiVersion", "providers"],
    "properties": {"apiVersion": {"const": 1}, "providers": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name", "type", "options"],
        "properties": {"type": {"const": "file"}, "options": {
            "type": "object", "required": ["path"], "properties": {"path": {"type": "string", "pattern": "^/"}}}}}}},
}


def check_grafana_mounts(services: dict, report: Report) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    grafana = next((s for s in services.values() if "grafana" in str(s.get("image", ""))), None)
    if grafana is None:
        report.error(COMPOSE_FILE, "services", "no Grafana service")
        return
    mounts = bind_mounts(grafana)
    dashboards_target = next((t for s, t in mounts if (ROOT / s).resolve() == DASHBOARDS.resolve()), None)
    if dashboards_target is None:
        report.error(COMPOSE_FILE, "services.grafana.volumes", f"{rel(DASHBOARDS)} is not mounted")
    if not any((ROOT / s).resolve() == provisioning.resolve() for s, _ in mounts):
        report.error(COMPOSE_FILE, "services.grafana.volumes", f"{rel(provisioning)} is not mounted")
    for path in sorted((provisioning / "datasources").glob("*.y*ml")):
        doc = load_yaml(path, report)
        if doc is not None and schema_check(doc, DATASOURCES_SCHEMA, path, "", report):
            for index, source in enumerate(doc["datasources"]):
                host = urlparse(source["url"]).hostname
                if host not in services:
                    report.error(path, f"datasources[{index}].url", f"{host} is not a compose service")
    for path in sorted((provisioning / "dashboards").glob("*.y*ml")):
        doc = load_yaml(path, report)
        if doc is not None and schema_check(doc, PROVIDERS_SCHEMA, path, "", report):
            for index, provider in enumerate(doc["providers"]):
                if dashboards_target and provider["options"]["path"].rstrip("/") != dashboards_target.rstrip("/"):
                    report.error(path, f"providers[{index}].options.path", f"{provider['options']['path']} is not "
                                 f"where docker-compose.yml mounts the dashboards ({dashboards_target})")


# ---------------------------------------------------------------------------------------------------------------------
# Dockerfile


def check_dockerfile(products: set[str], report: Report) -> None:
    try:
        text = DOCKERFILE.read_text(encoding="utf-8")
    except FileNotFoundError:
        report.error(DOCKERFILE, "", "missing")
        return
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.MULTILINE | re.IGNORECASE)
    if len(stages) < 2:
        report.error(DOCKERFILE, "FROM", "expected a multi-stage build")
    for source in re.findall(r"COPY\s+--from=(\S+)", text):
        if source not in stages:
            report.error(DOCKERFILE, "COPY --from", f"{source}: no such stage ({', '.join(s for s in stages if s)})")
    final = text[text.rfind("\nFROM"):]
    if not re.search(r"^FROM\s+debian:bookworm-slim", final.strip(), re.MULTILINE):
        report.error(DOCKERFILE, "runtime stage", "expected debian:bookworm-slim")
    user = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    if not user or user[-1].split(":")[0] in ("root", "0"):
        report.error(DOCKERFILE, "USER", "the runtime stage must run as a non-root user")
    loops = [set(names.split()) for names in re.findall(r"for exe in ([^;]+);", text)]
    built = set.intersection(*loops) if loops else set()
    if not re.search(r'swift build [^\n]*--product "?\$exe"?', text):
        report.error(DOCKERFILE, "swift build", 'expected `swift build ... --product "$exe"` in a `for exe in` loop')
    for product in sorted(products):
        if product not in built:
            report.error(DOCKERFILE, "for exe in", f"the executable {product} is not built and copied into the image")
    report.checked.append(f"{rel(DOCKERFILE)}: {len(stages)} stages, {len(products)} executables")


# ---------------------------------------------------------------------------------------------------------------------
# Kubernetes


SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "spec": {
            "type": "object", "required": ["scaleTargetRef", "maxReplicaCount", "triggers"],
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"],
                                   "properties": {"name": {"type": "string"},
                                                  "kind": {"const": "Deployment"}}},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"],
                    "properties": {
                        "type": {"const": "kafka"},
                        "metadata": {
                            "type": "object",
                            "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                            "additionalProperties": {"type": "string"},
                            "properties": {"lagThreshold": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                                           "activationLagThreshold": {"type": "string", "pattern": "^[0-9]+$"},
                                           "offsetResetPolicy": {"enum": ["earliest", "latest"]},
                                           "allowIdleConsumers": {"enum": ["true", "false"]}}},
                    }}},
            },
        },
    },
}

PROBE_SCHEMA = {"type": "object", "required": ["httpGet"],
                "properties": {"httpGet": {"type": "object", "required": ["path", "port"]}}}
DEPLOYMENT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "apps/v1"},
        "spec": {"type": "object", "required": ["selector", "template"], "properties": {
            "selector": {"type": "object", "required": ["matchLabels"]},
            "template": {"type": "object", "required": ["metadata", "spec"], "properties": {
                "metadata": {"type": "object", "required": ["labels"]},
                "spec": {"type": "object", "required": ["containers", "terminationGracePeriodSeconds"], "properties": {
                    "terminationGracePeriodSeconds": {"type": "integer"},
                    "containers": {"type": "array", "minItems": 1, "items": {
                        "type": "object",
                        "required": ["name", "image", "command", "ports", "livenessProbe", "readinessProbe",
                                     "resources"],
                        "properties": {
                            "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                            "args": {"type": "array", "items": {"type": "string"}},
                            "ports": {"type": "array", "minItems": 1, "items": {
                                "type": "object", "required": ["containerPort"],
                                "properties": {"containerPort": {"type": "integer", "minimum": 1,
                                                                 "maximum": 65535}}}},
                            "livenessProbe": PROBE_SCHEMA,
                            "readinessProbe": PROBE_SCHEMA,
                            "startupProbe": PROBE_SCHEMA,
                            "resources": {"type": "object", "required": ["requests", "limits"], "properties": {
                                "requests": {"type": "object", "required": ["cpu", "memory"]},
                                "limits": {"type": "object", "required": ["memory"]}}},
                        }}},
                }},
            }},
        }},
    },
}


OTHER_SCHEMAS = {
    "Namespace": {"properties": {"apiVersion": {"const": "v1"}}},
    "Secret": {"required": ["type"], "properties": {
        "apiVersion": {"const": "v1"},
        "stringData": {"type": "object", "additionalProperties": {"type": "string"}},
        "data": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Service": {"required": ["spec"], "properties": {
        "apiVersion": {"const": "v1"},
        "spec": {"type": "object", "required": ["selector", "ports"], "properties": {
            "ports": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["port"],
                "properties": {"port": {"type": "integer", "minimum": 1, "maximum": 65535},
                               "targetPort": {"type": ["integer", "string"]}}}}}}}},
    "HorizontalPodAutoscaler": {"required": ["spec"], "properties": {
        "apiVersion": {"const": "autoscaling/v2"},
        "spec": {"type": "object", "required": ["scaleTargetRef", "maxReplicas", "metrics"], "properties": {
            "minReplicas": {"type": "integer", "minimum": 1},
            "maxReplicas": {"type": "integer", "minimum": 1},
            "scaleTargetRef": {"type": "object", "required": ["apiVersion", "kind", "name"]},
            "metrics": {"type": "array", "minItems": 1}}}}},
    "PodDisruptionBudget": {"required": ["spec"], "properties": {
        "apiVersion": {"const": "policy/v1"},
        "spec": {"type": "object", "required": ["selector"]}}},
    "PersistentVolumeClaim": {"required": ["spec"], "properties": {
        "apiVersion": {"const": "v1"},
        "spec": {"type": "object", "required": ["accessModes", "resources"], "properties": {
            "accessModes": {"type": "array", "minItems": 1, "items": {
                "enum": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]}},
            "resources": {"type": "object", "required": ["requests"], "properties": {
                "requests": {"type": "object", "required": ["storage"]}}}}}}},
    "Job": {"required": ["spec"], "properties": {
        "apiVersion": {"const": "batch/v1"},
        "spec": {"type": "object", "required": ["template"], "properties": {
            "template": {"type": "object", "required": ["spec"], "properties": {
                "spec": {"type": "object", "required": ["containers", "restartPolicy"], "properties": {
                    "restartPolicy": {"enum": ["OnFailure", "Never"]}}}}}}}}},
}


def k8s_documents(report: Report) -> list[tuple[Path, dict]]:
    documents = []
    for path in sorted(K8S.rglob("*.y*ml")):
        for index, doc in enumerate(load_yaml_documents(path, report)):
            if not isinstance(doc, dict):
                report.error(path, f"document {index}", "not a mapping")
                continue
            documents.append((path, doc))
    return documents


def check_k8s(products: set[str], report: Report) -> None:
    if not K8S.is_dir():
        report.error(K8S, "", "missing")
        return
    documents = k8s_documents(report)
    manifests: list[tuple[Path, dict]] = []
    relay_configs: dict[str, tuple[Path, dict]] = {}
    for path, doc in documents:
        if doc.get("kind") == "Kustomization":
            check_kustomization(path, doc, relay_configs, report)
            continue
        if "kafka" in doc and "destinations" in doc:  # a relay.yaml for a configMapGenerator
            continue
        where = f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"
        for field in ("apiVersion", "kind"):
            if not doc.get(field):
                report.error(path, where, f"{field} is required")
        if not (doc.get("metadata") or {}).get("name"):
            report.error(path, where, "metadata.name is required")
            continue
        manifests.append((path, doc))

    by_kind: dict[str, dict[str, tuple[Path, dict]]] = {}
    for path, doc in manifests:
        name = doc["metadata"]["name"]
        kinds = by_kind.setdefault(doc["kind"], {})
        if name in kinds:
            report.error(path, f"{doc['kind']}/{name}", f"also defined in {rel(kinds[name][0])}")
        kinds[name] = (path, doc)
    # ConfigMaps generated by kustomize count as defined.
    for name, (path, config) in relay_configs.items():
        by_kind.setdefault("ConfigMap", {})[name] = (path, {"kind": "ConfigMap", "metadata": {"name": name},
                                                           "_relay": config})
    for path, doc in manifests:
        schema = OTHER_SCHEMAS.get(doc["kind"])
        if schema is not None:
            schema_check(doc, {"type": "object", **schema}, path, f"{doc['kind']}/{doc['metadata']['name']}", report)
        elif doc["kind"] not in ("Deployment", "ScaledObject", "ConfigMap"):
            report.warn(path, f"{doc['kind']}/{doc['metadata']['name']}", "kind not schema-checked here")
    secrets = by_kind.get("Secret", {})
    config_maps = by_kind.get("ConfigMap", {})
    deployments = by_kind.get("Deployment", {})
    relay_config = next(iter(relay_configs.values()), (None, None))[1]
    for kind in ("Namespace", "Deployment", "Service", "Secret"):
        if kind not in by_kind:
            report.error(K8S, "", f"no {kind}")
    if not relay_configs and not config_maps:
        report.error(K8S, "", "no ConfigMap for relay.yaml")

    # Secret keys cover every *_env of relay.yaml.
    for config_name, (config_path, config) in relay_configs.items():
        keys = set()
        for _, secret in secrets.values():
            keys |= set((secret.get("stringData") or {}).keys()) | set((secret.get("data") or {}).keys())
        for where, variable in secret_env_vars(config):
            if variable not in keys:
                report.error(config_path, where, f"{variable} is not a key of any Secret "
                             f"({', '.join(sorted(secrets)) or 'none'})")

    partitions = DEFAULT_PARTITIONS
    for path, job in by_kind.get("Job", {}).values():
        for container in job["spec"]["template"]["spec"].get("containers", []):
            args = command_args(container.get("command")) + command_args(container.get("args"))
            if args[:3] == ["relayctl", "topics", "create"]:
                partitions = int(option(args, "--partitions") or DEFAULT_PARTITIONS)
                if container.get("command", [None])[0] not in products:
                    report.error(path, "Job/relayctl", "relayctl is not a product")

    deployment_group: dict[str, str] = {}
    deployment_ports: dict[str, dict] = {}
    for name, (path, deployment) in deployments.items():
        where = f"Deployment/{name}"
        try:  # known even when the schema check fails, so that ScaledObjects are not reported twice
            first = deployment["spec"]["template"]["spec"]["containers"][0]
            args = command_args(first.get("command")) + command_args(first.get("args"))
            if args and args[0] in GROUP_TOPIC:
                deployment_group[name] = option(args, "--group") or args[0]
        except (KeyError, IndexError, TypeError):
            pass
        if not schema_check(deployment, DEPLOYMENT_SCHEMA, path, where, report):
            continue
        spec = deployment["spec"]
        template = spec["template"]
        labels = template["metadata"]["labels"]
        for key, value in spec["selector"]["matchLabels"].items():
            if labels.get(key) != value:
                report.error(path, f"{where}.spec.selector", f"{key}={value} does not match the template labels")
        pod = template["spec"]
        grace = pod["terminationGracePeriodSeconds"]
        if grace < MIN_GRACE_SECONDS:
            report.error(path, f"{where}.terminationGracePeriodSeconds", f"{grace}: at least {MIN_GRACE_SECONDS} "
                         "so that SIGTERM can drain in-flight deliveries")
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for volume_name, volume in volumes.items():
            if "configMap" in volume and volume["configMap"].get("name") not in config_maps:
                report.error(path, f"{where}.volumes.{volume_name}",
                             f"ConfigMap {volume['configMap'].get('name')} is not defined or generated")
            if "secret" in volume and volume["secret"].get("secretName") not in secrets:
                report.error(path, f"{where}.volumes.{volume_name}", "Secret not defined")
            if "persistentVolumeClaim" in volume and volume["persistentVolumeClaim"].get("claimName") not in \
                    by_kind.get("PersistentVolumeClaim", {}):
                report.error(path, f"{where}.volumes.{volume_name}", "PersistentVolumeClaim not defined")
        for container in pod["containers"]:
            cwhere = f"{where}.containers.{container['name']}"
            if container["image"].split(":")[0] != "audience-relay":
                report.error(path, f"{cwhere}.image", "expected audience-relay (set by kustomization images:)")
            args = command_args(container["command"]) + command_args(container.get("args"))
            executable = args[0]
            if executable not in products:
                report.error(path, f"{cwhere}.command", f"{executable} is not an executable product of Package.swift")
                continue
            ports = {p["containerPort"]: p for p in container["ports"]}
            names = {p.get("name"): p["containerPort"] for p in container["ports"] if p.get("name")}
            if executable in LONG_RUNNING:
                flag = "--port" if executable == "relay-edge" else "--metrics-port"
                served = int(option(args, flag) or (edge_port(relay_config) if executable == "relay-edge"
                                                     else DEFAULT_PORTS[executable]))
                if served not in ports:
                    report.error(path, f"{cwhere}.ports", f"{executable} serves on {served} ({flag}), not declared")
                deployment_ports[name] = {"names": names, "ports": set(ports)}
            for probe, expected in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready"),
                                    ("startupProbe", "/health/")):
                if probe not in container:
                    continue
                get = container[probe]["httpGet"]
                if not str(get["path"]).startswith(expected):
                    report.error(path, f"{cwhere}.{probe}", f"path {get['path']}, expected {expected}")
                port = get["port"]
                number = names.get(port) if isinstance(port, str) else port
                if number is None or number not in ports:
                    report.error(path, f"{cwhere}.{probe}", f"port {port} is not a declared container port")
                elif executable in LONG_RUNNING and number != served:
                    report.error(path, f"{cwhere}.{probe}", f"port {port} is not where {executable} serves ({served})")
            for source in container.get("envFrom") or []:
                secret = (source.get("secretRef") or {}).get("name")
                if secret is not None and secret not in secrets:
                    report.error(path, f"{cwhere}.envFrom", f"Secret {secret} is not defined")
            if not any((s.get("secretRef") or {}).get("name") in secrets for s in container.get("envFrom") or []):
                report.error(path, f"{cwhere}.envFrom", "takes no Secret: the configuration's *_env are unset")
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    report.error(path, f"{cwhere}.volumeMounts", f"{mount.get('name')}: no such volume")
            state = shared_state_dir(executable, args, relay_config)
            if state is not None:
                mount = next((m for m in container.get("volumeMounts") or []
                              if (state.rstrip("/") + "/").startswith(m["mountPath"].rstrip("/") + "/")), None)
                claim = ((volumes.get(mount["name"]) or {}).get("persistentVolumeClaim") or {}).get("claimName") \
                    if mount else None
                pvc = by_kind.get("PersistentVolumeClaim", {}).get(claim, (None, {}))[1]
                if "ReadWriteMany" not in ((pvc.get("spec") or {}).get("accessModes") or []):
                    report.error(path, f"{cwhere}.volumeMounts", f"{executable}'s state directory {state} must be on "
                                 "a ReadWriteMany PersistentVolumeClaim: a partition's next owner, on any node, "
                                 "needs its predecessor's state")
            config_mount = next((m for m in container.get("volumeMounts") or []
                                 if "configMap" in volumes.get(m.get("name"), {})), None)
            config_arg = option(args, "--config") or "relay.yaml"
            if config_mount is None or not config_arg.startswith(config_mount["mountPath"].rstrip("/") + "/"):
                report.error(path, f"{cwhere}.args", f"--config {config_arg} is not in the mounted ConfigMap")
            if executable in GROUP_TOPIC:
                deployment_group[name] = option(args, "--group") or executable

    for name, (path, service) in by_kind.get("Service", {}).items():
        selector = (service.get("spec") or {}).get("selector") or {}
        targets = [d for d, (_, dep) in deployments.items()
                   if selector and all(dep["spec"]["template"]["metadata"]["labels"].get(k) == v
                                       for k, v in selector.items())]
        if not targets:
            report.error(path, f"Service/{name}.spec.selector", "selects no Deployment")
            continue
        for port in (service.get("spec") or {}).get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for deployment in targets:
                declared = deployment_ports.get(deployment)
                if declared and target not in declared["names"] and target not in declared["ports"]:
                    report.error(path, f"Service/{name}.ports", f"targetPort {target} is not a port of {deployment}")

    topics = config_topics(relay_config)
    brokers = ",".join(config_brokers(relay_config))
    scaled_targets = set()
    for name, (path, scaled) in by_kind.get("ScaledObject", {}).items():
        where = f"ScaledObject/{name}"
        if not schema_check(scaled, SCALED_OBJECT_SCHEMA, path, where, report):
            continue
        spec = scaled["spec"]
        target = spec["scaleTargetRef"]["name"]
        scaled_targets.add(target)
        if target not in deployments:
            report.error(path, f"{where}.scaleTargetRef", f"Deployment {target} does not exist")
            continue
        group = deployment_group.get(target)
        if group is None:
            report.error(path, f"{where}.scaleTargetRef", f"{target} is not a consumer-group worker (relay-edge "
                         "reads every partition: scale it on CPU)")
            continue
        if spec["maxReplicaCount"] > partitions:
            report.error(path, f"{where}.maxReplicaCount", f"{spec['maxReplicaCount']} > {partitions} partitions: "
                         "the extra members would idle")
        if spec.get("minReplicaCount", 0) > spec["maxReplicaCount"]:
            report.error(path, f"{where}.minReplicaCount", "above maxReplicaCount")
        executable = next((c.get("command") or ["?"])[0]
                          for c in deployments[target][1]["spec"]["template"]["spec"]["containers"])
        for index, trigger in enumerate(spec["triggers"]):
            meta = trigger["metadata"]
            twhere = f"{where}.triggers[{index}].metadata"
            if meta["consumerGroup"] != group:
                report.error(path, f"{twhere}.consumerGroup", f"{meta['consumerGroup']}, but {target} runs "
                             f"{executable} in group {group}")
            expected_topic = topics[GROUP_TOPIC[executable]]
            if meta["topic"] != expected_topic:
                report.error(path, f"{twhere}.topic", f"{meta['topic']}, but group {group} reads {expected_topic}")
            if relay_config is not None and meta["bootstrapServers"] != brokers:
                report.error(path, f"{twhere}.bootstrapServers", f"{meta['bootstrapServers']}, but relay.yaml "
                             f"kafka.brokers is {brokers}")
    for name in deployment_group:
        if name not in scaled_targets:
            report.error(K8S, f"Deployment/{name}", "no ScaledObject scales it on lag")
    for name, (path, hpa) in by_kind.get("HorizontalPodAutoscaler", {}).items():
        target = ((hpa.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
        if target not in deployments:
            report.error(path, f"HorizontalPodAutoscaler/{name}", f"Deployment {target} does not exist")
        if target in scaled_targets:
            report.error(path, f"HorizontalPodAutoscaler/{name}", f"{target} is also scaled by KEDA")
    edge = [d for d, (_, dep) in deployments.items()
            if any(c["command"][0] == "relay-edge" for c in dep["spec"]["template"]["spec"]["containers"])]
    for name in edge:
        if name not in {((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
                        for _, h in by_kind.get("HorizontalPodAutoscaler", {}).values()}:
            report.error(K8S, f"Deployment/{name}", "relay-edge has no HorizontalPodAutoscaler")
        if not any(d for d in by_kind.get("Service", {}).values()
                   if ((d[1].get("spec") or {}).get("selector") or {}).items() <=
                   deployments[name][1]["spec"]["template"]["metadata"]["labels"].items()):
            report.error(K8S, f"Deployment/{name}", "no Service exposes the edge")
    report.checked.append(f"{rel(K8S)}: {len(manifests)} manifests, {len(deployments)} Deployments, "
                          f"{len(by_kind.get('ScaledObject', {}))} ScaledObjects (max <= {partitions} partitions)")


def check_kustomization(path: Path, doc: dict, relay_configs: dict, report: Report) -> None:
    base = path.parent
    for resource in doc.get("resources") or []:
        if not (base / resource).exists():
            report.error(path, "resources", f"{resource}: no such file or directory")
    listed = {(base / r).resolve() for r in doc.get("resources") or []}
    for manifest in sorted(base.glob("*.y*ml")):
        if manifest.resolve() not in listed and manifest.name not in ("kustomization.yaml", "kustomization.yml"):
            generated = any(manifest.name in [str(f).split("=")[-1] for f in g.get("files") or []]
                            for g in doc.get("configMapGenerator") or [])
            if not generated:
                report.warn(path, "resources", f"{manifest.name} is not listed")
    for generator in doc.get("configMapGenerator") or []:
        for entry in generator.get("files") or []:
            file = base / str(entry).split("=")[-1]
            if not file.exists():
                report.error(path, f"configMapGenerator.{generator.get('name')}", f"{entry}: no such file")
                continue
            config = load_yaml(file, report)
            if isinstance(config, dict) and "kafka" in config:
                relay_configs[generator["name"]] = (file, config)


# ---------------------------------------------------------------------------------------------------------------------
# Grafana dashboard


DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "panels", "schemaVersion", "templating"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["type", "title", "id", "gridPos"],
            "properties": {
                "id": {"type": "integer"},
                "type": {"enum": ["row", "timeseries", "stat", "table", "gauge", "bargauge", "text", "heatmap"]},
                "gridPos": {"type": "object", "required": ["h", "w", "x", "y"],
                            "properties": {"w": {"type": "integer", "minimum": 1, "maximum": 24},
                                           "x": {"type": "integer", "minimum": 0, "maximum": 23},
                                           "h": {"type": "integer", "minimum": 1},
                                           "y": {"type": "integer", "minimum": 0}}},
                "targets": {"type": "array", "items": {
                    "type": "object", "required": ["expr", "refId"],
                    "properties": {"expr": {"type": "string", "minLength": 1}}}},
            },
            "if": {"properties": {"type": {"not": {"enum": ["row", "text"]}}}},
            "then": {"required": ["targets", "datasource"],
                     "properties": {"targets": {"minItems": 1}}},
        }},
    },
}

METRIC_DECLARATION = re.compile(
    r'\b(?:Counter|Gauge|Timer|Recorder|FloatingPointCounter|Meter)\(\s*label:\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
PROMQL_FUNCTIONS_AND_WORDS = {
    "sum", "by", "rate", "increase", "max", "min", "avg", "histogram_quantile", "or", "vector", "and", "le",
    "without", "on", "ignoring", "count", "irate", "delta", "topk", "bottomk", "label_values", "offset",
}


DESCRIPTOR_SCOPE = re.compile(r'namespace:\s*"(\w*)",\s*subsystem:\s*"(\w*)",\s*metricName:\s*("(\w+)"|\w+),'
                              r'\s*unitName:\s*("(\w*)"|\w+)')
DESCRIPTOR_HELPER_CALL = re.compile(r'\bname\(\s*"(\w+)",\s*"(\w*)"')


def source_metric_names() -> set[str]:
    """`Counter(label: "x")`-style names, and swift-prometheus `MetricNameDescriptor`s (namespace_subsystem_name_unit),
    also when a file builds them through a small `name("metric", "unit", ...)` helper."""
    names = set()
    for path in (ROOT / "Sources").rglob("*.swift"):
        text = path.read_text(encoding="utf-8", errors="replace")
        names |= set(METRIC_DECLARATION.findall(text))
        for namespace, subsystem, _, literal, _, unit in DESCRIPTOR_SCOPE.findall(text):
            join = lambda *parts: "_".join(p for p in parts if p)  # noqa: E731
            if literal:
                names.add(join(namespace, subsystem, literal, unit))
            else:
                for metric, helper_unit in DESCRIPTOR_HELPER_CALL.findall(text):
                    names.add(join(namespace, subsystem, metric, helper_unit))
    return names


def dashboard_metric_names(expr: str) -> set[str]:
    cleaned = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    cleaned = re.sub(r"\[[^\]]*\]", "", cleaned)  # ranges
    cleaned = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", cleaned)  # grouping labels
    cleaned = re.sub(r'"[^"]*"', "", cleaned)
    names = set()
    for token in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", cleaned):
        if token in PROMQL_FUNCTIONS_AND_WORDS or "_" not in token or token.startswith("__"):
            continue
        names.add(re.sub(r"_(bucket|sum|count)$", "", token))
    return names


def check_dashboards(strict_metrics: bool, report: Report) -> set[str]:
    used: set[str] = set()
    files = sorted(DASHBOARDS.glob("*.json"))
    if not files:
        report.error(DASHBOARDS, "", "no dashboard JSON")
    declared = source_metric_names()
    for path in files:
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            report.error(path, "", f"invalid JSON: {error}")
            continue
        if not schema_check(dashboard, DASHBOARD_SCHEMA, path, "", report):
            continue
        variables = {v.get("name") for v in dashboard["templating"].get("list", [])}
        ids = set()
        for index, panel in enumerate(dashboard["panels"]):
            where = f"panels[{index}] ({panel['title']})"
            if panel["id"] in ids:
                report.error(path, where, f"duplicate id {panel['id']}")
            ids.add(panel["id"])
            grid = panel["gridPos"]
            if grid["x"] + grid["w"] > 24:
                report.error(path, f"{where}.gridPos", "wider than 24 columns")
            datasource = panel.get("datasource")
            if isinstance(datasource, dict) and datasource.get("uid", "").startswith("$"):
                if datasource["uid"].strip("${}") not in variables:
                    report.error(path, f"{where}.datasource", f"{datasource['uid']}: no such template variable")
            for target in panel.get("targets", []):
                expr = target["expr"]
                if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                    report.error(path, f"{where}.targets[{target['refId']}]", f"unbalanced brackets: {expr}")
                for variable in re.findall(r"\$(\w+)", expr):
                    if variable not in variables and not variable.startswith("__"):
                        report.error(path, f"{where}.targets[{target['refId']}]", f"${variable}: no such variable")
                used |= dashboard_metric_names(expr)
        unknown = sorted(used - declared)
        if unknown:
            message = (f"{len(unknown)} metric(s) not declared in Sources yet: {', '.join(unknown)}")
            (report.error if strict_metrics else report.warn)(path, "metrics", message)
        report.checked.append(f"{rel(path)}: {len(dashboard['panels'])} panels, {len(used)} metrics "
                              f"({len(used & declared)} declared in Sources)")
    return used


# ---------------------------------------------------------------------------------------------------------------------


def check_every_yaml_parses(report: Report) -> None:
    count = 0
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        load_yaml_documents(path, report)
        count += 1
    report.checked.append(f"{count} YAML files under {rel(DEPLOY)} parse")


def run_docker_compose(report: Report) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        report.warn("docker-compose", "", "not installed: `docker-compose config -q` skipped")
        return
    result = subprocess.run([binary, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        report.error(COMPOSE_FILE, "docker-compose config", (result.stderr or result.stdout).strip())
    else:
        report.checked.append("docker-compose -f docker-compose.yml config -q")


def main(argv: list[str]) -> int:
    strict_metrics = "--strict-metrics" in argv
    unknown = [a for a in argv if a != "--strict-metrics"]
    if unknown:
        print(__doc__)
        return 2
    report = Report()
    products = package_products(report)
    check_every_yaml_parses(report)
    check_compose(products, report)
    check_dockerfile(products, report)
    check_k8s(products, report)
    check_dashboards(strict_metrics, report)
    run_relayctl_validate([COMPOSE_CONFIG, *sorted(K8S.rglob("relay.yaml"))], report)
    run_docker_compose(report)

    for line in report.checked:
        print(f"check-deploy: ok   {line}")
    for line in report.warnings:
        print(f"check-deploy: warn {line}")
    for line in report.errors:
        print(f"check-deploy: FAIL {line}", file=sys.stderr)
    if report.errors:
        print(f"check-deploy: {len(report.errors)} problem(s) in the deployment files", file=sys.stderr)
        return 1
    print("check-deploy: deployment files OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
