#!/bin/sh
# bench/tcp-relay.sh [THREADS] INI: runs tcp_relay (bench/tcp_relay.cpp) on the listen address of
# a pooler INI, relaying to its first database's host and port, so that ../shared/bench/compare.sh
# measures a proxy hop with nothing in it beside pgmux and PgBouncer:
#   compare.sh --target 'relay:bench/tcp-relay.sh 2 {ini}' --scenarios a,b,c ...
# One server connection per client: scenarios with more clients than max_connections fail.
# The binary is $TCP_RELAY_BIN, else build-rel/tcp_relay next to this script; it is exec'd, so
# the PID the caller measures is the relay's.
set -eu
threads=$(nproc)  # one loop per CPU, as pgmux's default workers
if [ $# -eq 2 ]; then threads=$1; shift; fi
[ $# -eq 1 ] || { echo "usage: $0 [THREADS] INI" >&2; exit 2; }
ini=$1
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${TCP_RELAY_BIN:-$here/build-rel/tcp_relay}
value() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\\([^[:space:]]*\\).*/\\1/p" "$ini" | head -n 1; }
db=$(sed -n '/^\[databases\]/,/^\[/{/=.*host=/p}' "$ini" | head -n 1)
host=$(printf '%s\n' "$db" | sed -n 's/.*host=\([^[:space:]]*\).*/\1/p')
port=$(printf '%s\n' "$db" | sed -n 's/.*port=\([0-9]*\).*/\1/p')
laddr=$(value listen_addr)
lport=$(value listen_port)
[ -n "$host" ] && [ -n "$port" ] && [ -n "$lport" ] || { echo "$0: no host, port or listen_port in $ini" >&2; exit 2; }
[ "$laddr" = "*" ] || [ -z "$laddr" ] && laddr=0.0.0.0
exec "$bin" "$laddr" "$lport" "$host" "$port" "$threads"
