#!/usr/bin/env python3
"""A partner's real-time endpoint for the demo: receives relay-realtime's messages, checks their signature and
prints one line per message.

    ACME_HMAC_KEY=... python3 scripts/demo_partner.py [--port 8090] [--out demo-partner.jsonl]

Listens on 127.0.0.1 (POST any path, e.g. /aam). Verifies the Base64 HMAC-SHA256 in X-Signature over the exact body
bytes received (gzip bodies are verified before being decompressed), answers 200 (401 when the signature is wrong),
and appends each correctly signed body as one JSON line to the output file. Standard library only.
"""
import argparse
import base64
import gzip
import hashlib
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--out", default="demo-partner.jsonl")
    parser.add_argument("--header", default="X-Signature")
    args = parser.parse_args()
    key = os.environ.get("ACME_HMAC_KEY")
    if not key:
        sys.exit("demo_partner: set ACME_HMAC_KEY (the key relay-realtime signs with)")
    out = open(args.out, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
            signature_ok = hmac.compare_digest(expected, self.headers.get(args.header, ""))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                message = json.loads(body)
                users = message.get("Users", [])
                segments = sorted({f'{s["Segment_ID"]}:{s["Status"]}' for u in users for s in u.get("Segments", [])})
                print(f'{self.path} destination {message.get("AAM_Destination_Id")} '
                      f'id {self.headers.get("X-Relay-Message-Id", "-")} users {len(users)} '
                      f'segments {",".join(segments)} signature {"ok" if signature_ok else "BAD"}', flush=True)
                if signature_ok:
                    out.write(json.dumps(message, separators=(",", ":")) + "\n")
            except (ValueError, KeyError, AttributeError) as error:
                print(f"{self.path}: not a realtime message ({error})", flush=True)
            status = 200 if signature_ok else 401
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"demo partner listening on http://127.0.0.1:{args.port}/ (appending bodies to {args.out})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
