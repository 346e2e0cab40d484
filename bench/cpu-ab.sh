#!/usr/bin/env bash
# bench/cpu-ab.sh - two or more pooler builds (or settings) in alternation, under the same
# pgbench load, for what compare.sh's 15-second runs are too noisy to show: the pooler's user
# and system CPU per transaction and how often its threads are switched out per transaction.
#
# Usage: bench/cpu-ab.sh [options] INI NAME=COMMAND [NAME=COMMAND...]
#   INI                 a pooler ini (compare.sh writes one: --print-ini, or OUT/ini/pooler.ini):
#                       its listen_port and its first database are used
#   NAME=COMMAND        a pooler to start with the ini appended, e.g. new=build-rel/pgmux
#   --pairs N           rounds; each runs every target once, in order (default 5)
#   --duration S        seconds of each measured pgbench run (default 8), after a 3 s warm-up
#   --clients N         pgbench clients (default 50)
#   --mode M            pgbench -M: simple, extended or prepared (default simple)
#
# The client is `pgbench -S -j 2` as $PGUSER (default md5user) with $PGPASSWORD over TCP to
# 127.0.0.1; PostgreSQL must be running (pgenv.sh start). Run it as the user the poolers may
# run as (PgBouncer refuses root: as root, pgbouncer targets are started as postgres).
#
# Prints one line per run and the median of each target: TPS; user and system CPU µs per
# transaction (utime and stime of all the pooler's threads from /proc/PID/stat); voluntary
# context switches per transaction (the threads slept: epoll_wait with nothing to do) and
# involuntary ones (preempted, mostly by a process its own write woke), both summed over
# /proc/PID/task/*/status; and read and write system calls per transaction (syscr and syscw of
# /proc/PID/io: read/readv and write/writev, which libuv uses; recv and send, which PgBouncer
# uses, are not counted there, so its columns show 0).
set -uo pipefail

PAIRS=5 DURATION=8 CLIENTS=50 MODE=simple
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --pairs) PAIRS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --mode) MODE=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage 2 ;;
    *) break ;;
  esac
done
[[ $# -ge 2 ]] || usage 2
INI=$1; shift
[[ -r $INI ]] || { echo "cannot read $INI" >&2; exit 2; }
PORT=$(sed -n 's/^[[:space:]]*listen_port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$INI" | head -n 1)
DB=$(sed -n '/^\[databases\]/,/^\[/{s/^[[:space:]]*\([A-Za-z0-9_]*\)[[:space:]]*=.*/\1/p}' "$INI" | head -n 1)
[[ -n $PORT && -n $DB ]] || { echo "no listen_port or database in $INI" >&2; exit 2; }
PGBENCH=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
export PGUSER=${PGUSER:-md5user}

names=() cmds=()
for t in "$@"; do
  [[ $t == *=* ]] || { echo "not NAME=COMMAND: $t" >&2; exit 2; }
  names+=("${t%%=*}") cmds+=("${t#*=}")
done

POOLER_PID=""
cleanup() { [[ -n $POOLER_PID ]] && kill "$POOLER_PID" 2>/dev/null && wait "$POOLER_PID" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# user ticks, system ticks, voluntary and involuntary switches of every thread of PID, its read
# and write system calls
sample() {
  local pid=$1 u s v n r w
  read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
  read -r v n < <(cat /proc/"$pid"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v, n}')
  read -r r w < <(awk '/^syscr/ {r = $2} /^syscw/ {w = $2} END {print r + 0, w + 0}' "/proc/$pid/io" 2>/dev/null)
  echo "$u $s $v $n $r $w"
}

run_one() {
  local name=$1 cmd=$2 out tx tps before after
  local -a run_as=()
  if [[ $(id -u) -eq 0 && $cmd == *pgbouncer* ]]; then
    run_as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  # shellcheck disable=SC2086 # the command is split into words on purpose
  "${run_as[@]}" $cmd "$INI" >"/tmp/cpu-ab-$name.log" 2>&1 &
  POOLER_PID=$!
  for _ in $(seq 50); do
    "$PGBENCH" -h 127.0.0.1 -p "$PORT" -S -t 1 -n "$DB" >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$PGBENCH" -h 127.0.0.1 -p "$PORT" -S -M "$MODE" -c "$CLIENTS" -j 2 -T 3 -n "$DB" >/dev/null 2>&1
  before=$(sample "$POOLER_PID")
  out=$("$PGBENCH" -h 127.0.0.1 -p "$PORT" -S -M "$MODE" -c "$CLIENTS" -j 2 -T "$DURATION" -n "$DB" 2>&1)
  after=$(sample "$POOLER_PID")
  kill "$POOLER_PID"; wait "$POOLER_PID" 2>/dev/null; POOLER_PID=""
  tx=$(awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}' <<<"$out")
  tps=$(awk '/^tps/ {print $3}' <<<"$out")
  if [[ -z $tx || $tx -eq 0 ]]; then
    echo "$name: no transactions: $(tail -n 2 <<<"$out" | tr '\n' ' ')" >&2
    return
  fi
  read -r u0 s0 v0 n0 r0 w0 <<<"$before"
  read -r u1 s1 v1 n1 r1 w1 <<<"$after"
  local hz
  hz=$(getconf CLK_TCK)
  awk -v n="$name" -v tps="$tps" -v tx="$tx" -v hz="$hz" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
      -v v=$((v1 - v0)) -v i=$((n1 - n0)) -v r=$((${r1:-0} - ${r0:-0})) -v w=$((${w1:-0} - ${w0:-0})) 'BEGIN {
    printf "%s\t%.0f\t%.2f\t%.2f\t%.3f\t%.3f\t%.3f\t%.3f\n", n, tps, u * 1e6 / hz / tx, s * 1e6 / hz / tx,
      v / tx, i / tx, r / tx, w / tx }'
}

results=$(mktemp)
printf 'target\ttps\tuser_us_tx\tsys_us_tx\tvol_tx\tinvol_tx\treads_tx\twrites_tx\n'
for ((p = 1; p <= PAIRS; p++)); do
  for i in "${!names[@]}"; do
    run_one "${names[$i]}" "${cmds[$i]}" | tee -a "$results"
  done
done
echo
echo "medians over $PAIRS rounds (-S -M $MODE -c $CLIENTS, ${DURATION} s):"
for n in "${names[@]}"; do
  awk -F'\t' -v n="$n" '$1 == n' "$results" | sort -t$'\t' -k1,1 | python3 -c '
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip()]
if rows:
    m = [statistics.median(float(r[i]) for r in rows) for i in range(1, 8)]
    print(f"{rows[0][0]}\ttps {m[0]:.0f}\tuser {m[1]:.2f} us/tx\tsys {m[2]:.2f} us/tx\t"
          f"cpu {statistics.median(float(r[2]) + float(r[3]) for r in rows):.1f} us/tx\t"
          f"voluntary {m[3]:.3f}/tx\tinvoluntary {m[4]:.3f}/tx\treads {m[5]:.2f}/tx\twrites {m[6]:.2f}/tx")
'
done
rm -f "$results"
