#!/bin/sh
# bench/pgmux-set.sh KEY=VALUE... INI: runs pgmux with the settings added to INI (a copy in /tmp),
# so that ../shared/bench/compare.sh, which starts every pooler from one generated ini, can
# compare settings side by side:
#   compare.sh --target pgmux:build-rel/pgmux \
#              --target 'pgmux-fwd:bench/pgmux-set.sh local_reset_query=0 {ini}'
# The binary is $PGMUX_BIN, else build-rel/pgmux next to this script. pgmux is exec'd: the PID
# the caller measures is pgmux's.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 KEY=VALUE... INI" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${PGMUX_BIN:-$here/build-rel/pgmux}
eval "src=\${$#}"
settings=""
tag=""
while [ $# -gt 1 ]; do
  case "$1" in
    *=*) ;;
    *) echo "$0: not KEY=VALUE: $1" >&2; exit 2 ;;
  esac
  settings="$settings${1%%=*} = ${1#*=}
"
  tag="$tag-$(printf '%s' "$1" | tr -c 'A-Za-z0-9_' '_')"
  shift
done
ini=/tmp/pgmux-set$tag-$(id -u).ini  # one per set of settings and user, rewritten each run
{ cat "$src"; printf '\n[pgbouncer]\n%s' "$settings"; } >"$ini"
exec "$bin" "$ini"
