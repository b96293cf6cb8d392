#!/usr/bin/env python3
"""Page traffic for docker-compose.yml, so that the dashboard's edge and pixel panels and /report have something to
show: real-time calls to the edge for a set of known users, and most of the pixel URLs it hands out loaded the way
a browser would (the rest are dropped, so the audit measures a loss).

    python loadgen.py [--edge URL] [--audit URL] [--users N] [--rate R] [--load P] [--duration S]

The users are uuid 1..N written as 38 digits (00000000000000000000000000000000000001, ...), the ones the compose
service `loadgen-users` qualifies for segments 4532 and 99. Standard library only; stops by itself after
--duration seconds (default 24 h) and prints one line a minute (docker compose logs -f loadgen).
"""
import argparse
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A pixel's 302 leads to the partner, outside the compose network: loading the edge's /px is the receipt."""

    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def get(url: str) -> tuple[int, bytes]:
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:  # 3xx (not followed) and 4xx/5xx answers
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_ready(url: str) -> None:
    while get(url)[0] != 200:
        print(f"loadgen: waiting for {url}", flush=True)
        time.sleep(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edge", default="http://relay-edge:8080")
    parser.add_argument("--audit", default="http://relay-pixel-audit:9103")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10, help="page views a second")
    parser.add_argument("--load", type=float, default=0.85, help="share of pixels the 'browser' loads")
    parser.add_argument("--duration", type=float, default=86400, help="seconds before it stops")
    args = parser.parse_args()

    wait_ready(f"{args.edge}/health/ready")
    rng = random.Random(7)
    start = time.monotonic()
    views = fired = loaded = refused = 0
    next_summary = start + 60
    while time.monotonic() - start < args.duration:
        uuid = f"{rng.randint(1, args.users):038d}"
        status, body = get(f"{args.edge}/event?d_uuid={uuid}&d_rtbd=json&d_dst=1")
        views += 1
        if status == 200:
            for dest in json.loads(body).get("dests", []):
                fired += 1
                if rng.random() < args.load and get(dest["c"])[0] in (200, 302):
                    loaded += 1
        # Now and then what a page also sends: the GIF form, and a malformed call the edge refuses.
        if views % 20 == 0:
            get(f"{args.edge}/event?d_uuid={uuid}")
        if views % 50 == 0 and get(f"{args.edge}/event?d_uuid=not%20a%20uuid&d_rtbd=json")[0] == 400:
            refused += 1
        if time.monotonic() >= next_summary:
            next_summary += 60
            status, body = get(f"{args.audit}/report")
            report = body.decode(errors="replace")[:300] if status == 200 else f"/report answered {status}"
            print(f"loadgen: {views} page views, {fired} pixels fired, {loaded} loaded, {refused} refused; "
                  f"report: {report}", flush=True)
        time.sleep(1 / args.rate)
    print(f"loadgen: done after {args.duration:.0f} s: {views} page views, {fired} pixels fired, {loaded} loaded")


if __name__ == "__main__":
    main()
