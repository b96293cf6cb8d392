#!/usr/bin/env bash
# Local Kafka-protocol broker (Tansu, in-memory: everything is lost when it stops).
#   scripts/broker.sh start|stop|status   (listens on 127.0.0.1:${RELAY_BROKER_PORT:-9092})
set -euo pipefail
source "$(dirname "$0")/env.sh"
PORT="${RELAY_BROKER_PORT:-9092}"
RUN="$RELAY_ROOT/.local/run"; mkdir -p "$RUN"
PIDFILE="$RUN/tansu-$PORT.pid"
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "${1:-start}" in
  start)
    if running; then echo "broker: already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; exit 0; fi
    nohup tansu broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
      --storage-engine memory://tansu/ >"$RUN/tansu-$PORT.log" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
      if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then echo "broker: up on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; exit 0; fi
      sleep 0.1
    done
    echo "broker: did not start, see $RUN/tansu-$PORT.log" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE"; echo "broker: stopped"; else echo "broker: not running"; fi ;;
  status)
    if running; then echo "broker: running on 127.0.0.1:$PORT"; else echo "broker: not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
