#!/bin/sh
# bench/pgmux-workers.sh N INI: runs pgmux with `workers = N` added to INI (a copy in /tmp), so
# that ../shared/bench/compare.sh, which starts every pooler from one generated ini, can compare
# worker counts side by side:
#   compare.sh --target pgmux:build-rel/pgmux --target 'pgmux-w2:bench/pgmux-workers.sh 2 {ini}'
# The binary is $PGMUX_BIN, else build-rel/pgmux next to this script. pgmux is exec'd: the PID
# the caller measures is pgmux's.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 WORKERS INI" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${PGMUX_BIN:-$here/build-rel/pgmux}
ini=/tmp/pgmux-workers-$1-$(id -u).ini  # one per worker count and user, rewritten each run
{ cat "$2"; printf '\n[pgbouncer]\nworkers = %s\n' "$1"; } >"$ini"
exec "$bin" "$ini"
