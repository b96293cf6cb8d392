# Sourced by the scripts: puts the project's broker, tools and runtime librdkafka first.
RELAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$RELAY_ROOT/.local/bin:$PATH"
export LD_LIBRARY_PATH="$RELAY_ROOT/.local/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# port_owner PORT: "pid N (command)" of the listener when ss can tell, else "another process".
port_owner() {
  local who
  who=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n1 |
        sed -E 's/users:\(\("([^"]*)",pid=([0-9]*)/pid \2 (\1)/')
  echo "${who:-another process}"
}
