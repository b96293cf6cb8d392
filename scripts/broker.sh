#!/usr/bin/env bash
# Local Kafka-protocol broker (Tansu, in-memory: everything is lost when it stops).
#   scripts/broker.sh start|stop|status   (listens on 127.0.0.1:${RELAY_BROKER_PORT:-9092})
set -euo pipefail
source "$(dirname "$0")/env.sh"
PORT="${RELAY_BROKER_PORT:-9092}"
RUN="$RELAY_ROOT/.local/run"; mkdir -p "$RUN"
PIDFILE="$RUN/tansu-$PORT.pid"
# Ours only while the recorded pid is alive and is the tansu started for this port (pids are reused).
running() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "tansu.*127.0.0.1:$PORT"
}
case "${1:-start}" in
  start)
    if running; then echo "broker: already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; exit 0; fi
    rm -f "$PIDFILE"
    # Never hand out a port that some other Kafka (or anything else) answers on: we would write into it.
    if port_in_use "$PORT"; then
      echo "broker: 127.0.0.1:$PORT is already in use by $(port_owner "$PORT"), not by a broker this script" \
           "started; refusing to use it. Stop that process or choose another port with RELAY_BROKER_PORT." >&2
      exit 3
    fi
    nohup tansu broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
      --storage-engine memory://tansu/ >"$RUN/tansu-$PORT.log" 2>&1 &
    pid=$!; echo "$pid" >"$PIDFILE"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; echo "broker: exited at start, see $RUN/tansu-$PORT.log" >&2; exit 1; }
      if port_in_use "$PORT"; then echo "broker: up on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; exit 0; fi
      sleep 0.1
    done
    echo "broker: did not start, see $RUN/tansu-$PORT.log" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE"; echo "broker: stopped"; else echo "broker: not running"; fi ;;
  status)
    if running; then echo "broker: running on 127.0.0.1:$PORT"; else echo "broker: not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
