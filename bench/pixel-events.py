#!/usr/bin/env python3
"""Pixel event generator for bench/pixel-audit.sh: writes `pixel_id<TAB>json` lines (SPEC §6 pixel events) for
`kcat -P -K '\t'`. N fired events over several audit windows, and a receipt for a fixed ~85% of them (chosen by a
hash of the pixel number), each receipt shortly after its fired event in the stream.

usage: pixel-events.py FIRED [--received-share 0.85] [--start-ms T] [--span-ms S] [--destinations 7001,7002]
"""
import argparse
import sys

p = argparse.ArgumentParser()
p.add_argument("fired", type=int)
p.add_argument("--received-share", type=float, default=0.85)
p.add_argument("--start-ms", type=int, default=1_790_000_000_000)
p.add_argument("--span-ms", type=int, default=3_600_000, help="fired ts spread over this span")
p.add_argument("--destinations", default="7001,7002,7003,7004")
p.add_argument("--delay", type=int, default=500, help="receipts follow their fired event this many events later")
a = p.parse_args()

dests = [int(d) for d in a.destinations.split(",")]
threshold = int(a.received_share * 10_000)
out = sys.stdout
write = out.write
pending = []
step = a.span_ms / max(1, a.fired)
received = 0
for i in range(a.fired):
    ts = a.start_ms + int(i * step)
    d = dests[i % len(dests)]
    pid = "px-%010d" % i
    write('%s\t{"type":"fired","pixel_id":"%s","destination_id":%d,"uuid":"%038d","ts":%d,"aliases":["p4532"],'
          '"url":"http://px.partner.example/sync?seg=p4532&uid=%038d","source":"edge"}\n' % (pid, pid, d, i, ts, i))
    if (i * 2654435761) % 10_000 < threshold:
        pending.append((pid, d, ts + 1500, i))
    while pending and (len(pending) > a.delay or i == a.fired - 1):
        rid, rd, rts, ri = pending.pop(0)
        write('%s\t{"type":"received","pixel_id":"%s","destination_id":%d,"uuid":"%038d","ts":%d,'
              '"aliases":["p4532"],"source":"redirect"}\n' % (rid, rid, rd, ri, rts))
        received += 1
sys.stderr.write("generated %d fired, %d received\n" % (a.fired, received))
