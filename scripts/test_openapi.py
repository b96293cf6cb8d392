#!/usr/bin/env python3
"""docs/openapi.yaml against the live servers: a real relay-edge and relay-pixel-audit on loopback, on a real
broker, exercised by schemathesis (examples, coverage and fuzzing phases), plus the rules of SPEC §6 that a schema
cannot state (CORS "*" never with credentials; receipts only with the destination's credential).

    RELAY_BROKERS=127.0.0.1:19092 .venv/bin/python scripts/test_openapi.py     (run by scripts/test.sh)

Needs the debug binaries ($RELAY_BIN_DIR or `swift build --show-bin-path`) and a broker; topics and the group are
unique to the run, so a shared test broker is fine. Checks left out, and why (everything else schemathesis has
runs):
  - positive_data_acceptance: a /px query is valid only with the edge's own signature and a receipt only with a
    pixel id the edge issued, which no schema can generate; both answer 403 by design.
  - unsupported_method: SPEC does not say what a method a path does not take answers; the servers answer 404
    where schemathesis wants 405.
Prints "N passed, N failed" and exits non-zero on any failure.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "docs" / "openapi.yaml"
USER = "07955261652886032950143702505894272138"
CHECKS_LEFT_OUT = ["positive_data_acceptance", "unsupported_method"]

results: list[tuple[str, bool, str]] = []


def record(name: str, ok: bool, detail: str = "") -> None:
    results.append((name, ok, detail))
    print(f"{'ok' if ok else 'FAILED'}: {name}{'' if ok or not detail else chr(10) + detail}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A pixel's 302 points at the partner, off this machine: the answer itself is what is checked."""

    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_ready(name: str, url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"test_openapi: {name} exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if http("GET", url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"test_openapi: {name} not ready after 60 s:\n{log.read_text()[-2000:]}")


def config_text(brokers: str, run: str, edge_port: int, state: Path, with_receipts_token: bool) -> str:
    receipts = "    receipts_token_env: RELAY_TEST_RECEIPTS_TOKEN\n" if with_receipts_token else ""
    return f"""kafka:
  brokers: {brokers}
  topics: {{qualifications: {run}.qualifications, pixel_events: {run}.pixel-events,
           pixel_audit: {run}.pixel-audit, dead_letter: {run}.dead-letter}}
  properties: {{session.timeout.ms: "6000", heartbeat.interval.ms: "500"}}
edge:
  listen: 127.0.0.1:{edge_port}
  cors_origins: ["*"]
  redirect_key_env: RELAY_REDIRECT_KEY
pixel_audit: {{audit_window: 10s, grace: 2s}}
destinations:
  - id: 7001
    name: px-partner
    kind: url
    url: "http://px.partner.example/sync?seg=%alias%&uid=%did%"
    secure_url: "https://px.partner.example/sync?seg=%alias%&uid=%did%"
    audit: redirect
{receipts}    mappings: [{{segment: 4532, alias: p4532}}]
  - id: 8001
    name: ad-server
    kind: cookie
    cookie_name: aam_seg
    key: segID
    format: single_key
    mappings: [{{segment: 4532}}]
"""


def schemathesis(base_url: str, include: str, headers: list[str], report: Path) -> None:
    args = [str(ROOT / ".venv" / "bin" / "schemathesis"), "run", str(SCHEMA), "--url", base_url,
            "--include-path-regex", include, "--checks", "all", "--exclude-checks", ",".join(CHECKS_LEFT_OUT),
            "--phases", "examples,coverage,fuzzing", "--max-examples", "15", "--workers", "1", "--seed", "7",
            "--request-timeout", "5", "--max-redirects", "0", "--max-time", "45", "--suppress-health-check", "all"]
    for header in headers:
        args += ["--header", header]
    # Run in the report directory: schemathesis keeps a .schemathesis/ of its own in its working directory.
    result = subprocess.run(args, cwd=report.parent, capture_output=True, text=True, timeout=300)
    report.write_text(result.stdout + result.stderr)
    tail = "\n".join(line[:300] for line in (result.stdout + result.stderr).strip().splitlines()[-40:])
    record(f"schemathesis: {base_url} {include}", result.returncode == 0, tail)


def main() -> int:
    brokers = os.environ.get("RELAY_BROKERS")
    if not brokers:
        sys.exit("test_openapi: set RELAY_BROKERS (scripts/test.sh starts a test broker)")
    bin_dir = Path(os.environ.get("RELAY_BIN_DIR") or subprocess.run(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True).stdout.strip())
    env = dict(os.environ, LD_LIBRARY_PATH=f"{ROOT / '.local' / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}",
               RELAY_REDIRECT_KEY=secrets.token_hex(16), RELAY_TEST_RECEIPTS_TOKEN=secrets.token_hex(16))
    run_id = f"openapi-{os.getpid()}-{int(time.time())}"
    edge_port, audit_port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="relay-openapi-"))
    config = work / "relay.yaml"
    ctl = [str(bin_dir / "relayctl")]

    # Receipts credentials (receipts_token_env) are SPEC §6; a build whose loader does not know the key yet is
    # tested without them, and the two SPEC rules that depend on them are reported as not checked.
    config.write_text(config_text(brokers, run_id, edge_port, work, with_receipts_token=True))
    credentials = subprocess.run(ctl + ["validate", "--config", str(config)], env=env, capture_output=True).returncode == 0
    if not credentials:
        config.write_text(config_text(brokers, run_id, edge_port, work, with_receipts_token=False))
        print("test_openapi: NOT CHECKED: receipts credentials and CORS without credentials (SPEC §6): this build's "
              "relay.yaml has no receipts_token_env yet; /px/receipts is left out", flush=True)
    for command in (["topics", "create", "--partitions", "2"], ["produce", "--file", "-"]):
        event = json.dumps({"event_id": "openapi-1", "uuid": USER, "ts": int(time.time() * 1000), "region": 7,
                            "segments": [{"id": 4532, "status": 1}]}) + "\n"
        subprocess.run(ctl + command + ["--config", str(config)], env=env, input=event.encode(), check=True,
                       capture_output=True, timeout=60)

    processes = []
    try:
        for name, args, port in (
                ("relay-edge", ["--port", str(edge_port)], edge_port),
                ("relay-pixel-audit", ["--metrics-port", str(audit_port), "--group", run_id], audit_port)):
            log = work / f"{name}.log"
            process = subprocess.Popen([str(bin_dir / name), "--config", str(config), *args], env=env, cwd=work,
                                       stdout=subprocess.DEVNULL, stderr=log.open("w"))
            processes.append(process)
            wait_ready(name, f"http://127.0.0.1:{port}/health/ready", process, log)
        edge, audit = f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{audit_port}"

        # The known user gets its pixel and cookie, so the answers schemathesis checks are not all empty.
        status, _, body = http("GET", f"{edge}/event?d_uuid={USER}&d_rtbd=json&d_dst=1")
        answer = json.loads(body) if status == 200 else {}
        record("the known user's /event has a cookie and a pixel", len(answer.get("stuff", [])) == 1
               and len(answer.get("dests", [])) == 1, f"{status} {body[:300]!r}")
        pixel_url = answer.get("dests", [{}])[0].get("c", "")
        if pixel_url:
            status, headers, _ = http("GET", pixel_url)
            record("a pixel URL the edge issued redirects to the partner", status == 302
                   and headers.get("Location", "").startswith("http://px.partner.example/sync"), f"{status}")

        edge_paths = "^/(event|px/.*|health/.*|metrics)$" if credentials else "^/(event|px/\\{pixel_id\\}|health/.*|metrics)$"
        schemathesis(edge, edge_paths, [f"Authorization: Bearer {env['RELAY_TEST_RECEIPTS_TOKEN']}"],
                     work / "schemathesis-edge.txt")
        # The pixel fired and received above closes with its 10 s window, so /report has a row to check.
        deadline, reports = time.monotonic() + 60, []
        while time.monotonic() < deadline and not reports:
            status, _, body = http("GET", f"{audit}/report?destination=7001")
            reports = [r for r in (json.loads(body) if status == 200 else []) if r.get("received", 0) >= 1]
            time.sleep(1)
        record("/report counts the pixel fired and received", bool(reports) and reports[0]["fired"] >= 1,
               f"{status} {body[:300]!r}")
        schemathesis(audit, "^/(report|health/.*|metrics)$", [], work / "schemathesis-audit.txt")

        if credentials:
            status, headers, _ = http("GET", f"{edge}/event?d_uuid={USER}&d_rtbd=json",
                                      headers={"Origin": "https://any.example"})
            record('cors_origins "*" answers * and never allows credentials',
                   headers.get("Access-Control-Allow-Origin") == "*"
                   and "Access-Control-Allow-Credentials" not in headers, f"{status} {headers}")
            body = json.dumps({"destination_id": 7001, "pixel_ids": ["7001-abc"]}).encode()
            status, _, _ = http("POST", f"{edge}/px/receipts", body, {"Content-Type": "application/json"})
            record("receipts without the destination's credential are refused (401)", status == 401, f"{status}")
            status, _, _ = http("POST", f"{edge}/px/receipts", body, {
                "Content-Type": "application/json", "Authorization": "Bearer not-the-token"})
            record("receipts with another credential are refused (403)", status == 403, f"{status}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    failed = sum(1 for _, ok, _ in results if not ok)
    if failed:
        print(f"test_openapi: logs and schemathesis reports kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"openapi: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
