#!/usr/bin/env python3
"""Runs scripts/demo_partner.py in a container (docker-compose.yml's `partner` service): the same partner, but
listening on every interface, since the script binds 127.0.0.1, which the other containers cannot reach.

    python demo-partner-container.py /app/scripts/demo_partner.py --port 8090 [its other options]
"""
import http.server
import runpy
import sys

Base = http.server.ThreadingHTTPServer


class EveryInterface(Base):
    def __init__(self, address, handler, *args, **kwargs):
        super().__init__(("0.0.0.0", address[1]), handler, *args, **kwargs)


if len(sys.argv) < 2:
    sys.exit(__doc__)
http.server.ThreadingHTTPServer = EveryInterface
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
