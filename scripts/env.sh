# Sourced by the scripts: puts the project's broker, tools and runtime librdkafka first.
RELAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$RELAY_ROOT/.local/bin:$PATH"
export LD_LIBRARY_PATH="$RELAY_ROOT/.local/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
