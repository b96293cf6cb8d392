#!/usr/bin/env python3
"""Writes N qualification events as `key<TAB>json` lines for kcat -P -K '\t': user i (a 38-digit uuid) once each,
so that N events hold N distinct users; segments 4532 and 99 (mapped by the benchmark's destinations) plus a tail
segment, and a partner id for DPID 20914 on 9 users in 10."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ts = 1_795_982_000_000
out = sys.stdout
buf = []
for i in range(n):
    uuid = "%038d" % (7955261652886032950143702505894272138 + i * 7919)
    segs = '{"id":4532,"status":1}' + (',{"id":99,"status":1}' if i % 3 else ',{"id":99,"status":0}')
    segs += ',{"id":%d,"status":1}' % (1000 + i % 1000)
    pids = ',"partner_ids":{"20914":"P%08X"}' % i if i % 10 else ""
    buf.append('%s\t{"event_id":"ev-%d","uuid":"%s","ts":%d,"segments":[%s]%s}\n' % (uuid, i, uuid, ts + i, segs, pids))
    if len(buf) >= 10000:
        out.write("".join(buf))
        buf = []
out.write("".join(buf))
