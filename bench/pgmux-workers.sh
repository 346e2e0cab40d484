#!/bin/sh
# bench/pgmux-workers.sh N INI: runs pgmux with `workers = N` added to INI (see pgmux-set.sh), so
# that ../shared/bench/compare.sh can compare worker counts side by side:
#   compare.sh --target pgmux:build-rel/pgmux --target 'pgmux-w2:bench/pgmux-workers.sh 2 {ini}'
set -eu
[ $# -eq 2 ] || { echo "usage: $0 WORKERS INI" >&2; exit 2; }
exec "$(dirname "$0")/pgmux-set.sh" "workers=$1" "$2"
