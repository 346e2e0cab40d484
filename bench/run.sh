#!/usr/bin/env bash
# bench/run.sh - pgmux side by side with PgBouncer and with PostgreSQL itself, on one throwaway
# PostgreSQL 15 cluster, in one run.
#
# Usage: bench/run.sh [options]
#   --scenarios LIST      comma list (default: all)
#                           simple    pgbench -S -M simple, 50 clients
#                           extended  pgbench -S -M extended, 50 clients
#                           prepared  pgbench -S -M prepared, 50 clients
#                           tpcb      pgbench TPC-B-like (the default script), 50 clients
#                           c1000     pgbench -S -M simple, 1000 clients
#                           connect   pgbench -S -M simple -C (a new md5 login per
#                                     transaction), 50 clients
#                           idle      N idle clients (--idle-clients): pooler RSS per client
#                           http      bench/app.py (aiohttp + asyncpg pool of 10, statement
#                                     cache on) behind wrk -c 1000
#                           sweep     pgbench -S -M simple at each --clients-sweep count
#                                     (the plots)
#   --targets LIST        comma list of pgmux, pgmux-wN (pgmux with workers = N), pgmux-pipeN
#                         (pgmux with server_pipelining = N; pipe1 and pipe2 are plotted), pgbouncer,
#                         direct, relay (bench/tcp_relay.cpp: a TCP hop with nothing in it,
#                         one server connection per client, one thread per CPU; what the hop
#                         alone costs) (default: pgmux, pgbouncer, direct)
#   --duration S          seconds per pgbench or wrk run (default 15)
#   --repeat N            run the whole list N times; the table shows medians (default 1)
#   --clients-sweep LIST  client counts of the sweep (default 10,50,200,1000)
#   --idle-clients N      clients of the idle scenario (default 10000)
#   --wrk-connections N   HTTP connections of the http scenario (default 1000)
#   --pool-size N         default_pool_size of both poolers (default 20)
#   --scale N             pgbench scale factor (default 10)
#   --pg-max-connections N  PostgreSQL's max_connections (default 1100, so that direct runs
#                         with 1000 clients too)
#   --pgmux PATH          the pgmux binary (default: build-rel/pgmux, built with
#                         cmake -DCMAKE_BUILD_TYPE=Release -DPGMUX_TESTS=OFF when missing)
#   --perf                profile the pooler of every pgbench run with perf record (kernel
#                         included): runs/*/perf.txt; it costs the pooler some CPU, so profile
#                         in a run of its own
#   --out DIR             results directory (default /tmp/pgmux-bench/<date-time>)
#   --report DIR          print the table and redraw the plots of an earlier run, then exit
#   -h, --help
#
# Output in --out: results.tsv and results.json (one row per run), table.md (what is printed),
# sweep-tps.png and sweep-p99.png (with sweep.gp, the gnuplot script that drew them), meta.txt
# (command, date, machine, versions), config/ (the generated pooler.ini and userlist.txt) and
# runs/<scenario>-c<clients>-r<rep>-<target>/ with every log.
#
# Environment: PYTHON (/usr/bin/python3: Debian's, with asyncpg and aiohttp), PG_BIN
# (/usr/lib/postgresql/15/bin), PGBOUNCER_BIN (/usr/sbin/pgbouncer), PGBENCH_JOBS (2).
#
# Needs: PostgreSQL 15 server and client, pgbouncer, wrk, python3-asyncpg, python3-aiohttp,
# gnuplot-nox (plots are skipped without it), iproute2 (ss), util-linux (setpriv, runuser).
# As root, PostgreSQL and both poolers run as the OS user postgres.
#
# What each scenario and column means, and the numbers of one run: docs/performance.md.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
PYTHON=${PYTHON:-/usr/bin/python3}
PGBENCH_JOBS=${PGBENCH_JOBS:-2}

SCENARIOS=all
TARGETS=pgmux,pgbouncer,direct
DURATION=15
REPEAT=1
CLIENTS_SWEEP=10,50,200,1000
IDLE_CLIENTS=10000
WRK_CONNECTIONS=1000
POOL_SIZE=20
SCALE=10
PG_MAX_CONNECTIONS=1100
PGMUX_BIN=""
PERF=""
OUT=""
APP_PID=""
ALL_SCENARIOS=(simple extended prepared tpcb c1000 connect idle http sweep)

# pgbench arguments and client count of each pgbench scenario; the sweep's count varies.
declare -A PGBENCH_ARGS=(
  [simple]="-S -M simple" [extended]="-S -M extended" [prepared]="-S -M prepared"
  [tpcb]="-M simple" [c1000]="-S -M simple" [connect]="-S -M simple -C" [sweep]="-S -M simple"
)
declare -A PGBENCH_CLIENTS=(
  [simple]=50 [extended]=50 [prepared]=50 [tpcb]=50 [c1000]=1000 [connect]=50
)

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
usage() { sed -n '2,/^set -uo/p' "$0" | grep -v '^# shellcheck' | sed '$d; s/^# \{0,1\}//'; }

# shellcheck source=lib/cluster.sh
source "$BENCH_DIR/lib/cluster.sh"
# shellcheck source=lib/targets.sh
source "$BENCH_DIR/lib/targets.sh"

# ------------------------------------------------------------------------------------ runs

# new_run SCENARIO CLIENTS REP TARGET KIND: makes the run's directory (RUN_DIR) and its meta.env,
# settles PostgreSQL and starts the target. Returns 1 (the failure recorded) if it cannot start.
new_run() {
  local scenario=$1 clients=$2 rep=$3 target=$4 kind=$5
  RUN_DIR=$OUT/runs/$scenario-c$clients-r$rep-$target
  mkdir -p "$RUN_DIR"
  cat >"$RUN_DIR/meta.env" <<ENV
scenario=$scenario
clients=$clients
rep=$rep
target=$target
kind=$kind
duration=$DURATION
ENV
  cluster_settle
  if [[ $scenario == tpcb ]]; then pg_sql -c 'TRUNCATE pgbench_history' >/dev/null; fi
  if ! start_target "$target" "$RUN_DIR"; then
    echo "start_error=$START_ERROR" >>"$RUN_DIR/meta.env"
    log "  $target: cannot start: $START_ERROR"
    return 1
  fi
}

# run_pgbench SCENARIO CLIENTS REP TARGET
run_pgbench() {
  local scenario=$1 clients=$2 rep=$3 target=$4
  new_run "$scenario" "$clients" "$rep" "$target" pgbench || return 0
  # pgbench logs a sample of transactions (one line each, with its latency): percentiles without
  # a log write per transaction at 50,000 transactions a second.
  local rate=0.1
  [[ $scenario == tpcb || $scenario == connect ]] && rate=1
  # shellcheck disable=SC2206
  local args=(-h "$TARGET_HOST" -p "$TARGET_PORT" -U "$BENCH_USER" -n -T "$DURATION"
              -j "$PGBENCH_JOBS" -c "$clients" ${PGBENCH_ARGS[$scenario]}
              -l --log-prefix="$RUN_DIR/txlog" --sampling-rate="$rate" "$BENCH_DB")
  echo "pgbench ${args[*]}" >"$RUN_DIR/client.cmd"
  measure_begin "$RUN_DIR"
  local perf_pid=""
  if [[ -n $PERF && -n $POOLER_PID ]]; then
    # Samples the pooler's stacks, kernel included, for the middle of the run.
    perf record -q -F 499 -g -p "$POOLER_PID" -o "$RUN_DIR/perf.data" -- sleep $((DURATION > 4 ? DURATION - 2 : 2)) \
      >"$RUN_DIR/perf.log" 2>&1 &
    perf_pid=$!
  fi
  PGPASSWORD=$BENCH_PASSWORD timeout -k 10 $((DURATION + 180)) "$PG_BIN/pgbench" "${args[@]}" \
    >"$RUN_DIR/client.log" 2>&1
  echo "rc=$?" >>"$RUN_DIR/meta.env"
  measure_end "$RUN_DIR"
  if [[ -n $perf_pid ]]; then
    wait "$perf_pid"
    perf_summary "$RUN_DIR"
  fi
  stop_target
  measure_pg_end "$RUN_DIR"
  log "  $target: $(sed -n 's/^tps = \([0-9.]*\).*/\1 TPS/p' "$RUN_DIR/client.log" | head -n1)"
}

# perf_summary DIR: DIR/perf.txt from DIR/perf.data: the pooler's samples split between user
# space and the kernel, then the symbols (self time) above 1 %.
perf_summary() {
  local dir=$1
  {
    echo "# perf record -F 499 -g -p <pooler> during the run; self time per symbol"
    perf report -i "$dir/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^$'
    perf report -i "$dir/perf.data" --stdio --no-children --sort sym -g none --percent-limit 0.5 \
      2>/dev/null | grep -v '^$'
  } >"$dir/perf.txt"
}

# run_http REP TARGET: bench/app.py through the target, driven by wrk.
run_http() {
  local rep=$1 target=$2
  new_run http "$WRK_CONNECTIONS" "$rep" "$target" wrk || return 0
  local port i
  port=$(free_port)
  "$PYTHON" "$BENCH_DIR/app.py" --port "$port" --pool-size 10 \
    --dsn "postgresql://$BENCH_USER:$BENCH_PASSWORD@$TARGET_HOST:$TARGET_PORT/$BENCH_DB" \
    >"$RUN_DIR/app.log" 2>&1 </dev/null &
  APP_PID=$!
  for ((i = 0; i < 300; i++)); do
    grep -q '^READY' "$RUN_DIR/app.log" && break
    kill -0 "$APP_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^READY' "$RUN_DIR/app.log"; then
    echo "start_error=app: $(tail -n 1 "$RUN_DIR/app.log" | tr '\n\t' '  ')" >>"$RUN_DIR/meta.env"
    log "  $target: the app did not start: $(tail -n 1 "$RUN_DIR/app.log")"
    stop_app
    stop_target
    return 0
  fi
  local args=(-t 2 -c "$WRK_CONNECTIONS" -d "${DURATION}s" --timeout 5s --latency
              -s "$BENCH_DIR/entries.lua" "http://127.0.0.1:$port")
  echo "wrk ${args[*]}" >"$RUN_DIR/client.cmd"
  measure_begin "$RUN_DIR" "$APP_PID"
  timeout -k 10 $((DURATION + 60)) wrk "${args[@]}" >"$RUN_DIR/client.log" 2>&1
  echo "rc=$?" >>"$RUN_DIR/meta.env"
  measure_end "$RUN_DIR" "$APP_PID"
  stop_app
  stop_target
  measure_pg_end "$RUN_DIR"
  log "  $target: $(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1 requests\/s/p' "$RUN_DIR/client.log")"
}

# run_idle REP TARGET: IDLE_CLIENTS logged-in clients that ran one query each, then idle.
run_idle() {
  local rep=$1 target=$2
  new_run idle "$IDLE_CLIENTS" "$rep" "$target" idle || return 0
  local args=(--host "$TARGET_HOST" --port "$TARGET_PORT" --user "$BENCH_USER"
              --dbname "$BENCH_DB" --count "$IDLE_CLIENTS" --pid "$POOLER_PID"
              --out "$RUN_DIR/idle.json")
  echo "idle_clients.py ${args[*]}" >"$RUN_DIR/client.cmd"
  measure_begin "$RUN_DIR"
  PGPASSWORD=$BENCH_PASSWORD timeout -k 10 300 "$PYTHON" "$BENCH_DIR/idle_clients.py" "${args[@]}" \
    >"$RUN_DIR/client.log" 2>&1
  echo "rc=$?" >>"$RUN_DIR/meta.env"
  measure_end "$RUN_DIR"
  stop_target
  measure_pg_end "$RUN_DIR"
  log "  $target: $(tail -n 1 "$RUN_DIR/client.log")"
}

# Stops the app started by run_http: SIGTERM, then SIGKILL after 10 s.
stop_app() {
  [[ -n $APP_PID ]] || return 0
  local i
  kill -TERM "$APP_PID" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$APP_PID" 2>/dev/null
  wait "$APP_PID" 2>/dev/null
  APP_PID=""
}

# ------------------------------------------------------------------------------------ setup

ensure_pgmux() {
  if [[ -z $PGMUX_BIN ]]; then
    PGMUX_BIN=$REPO/build-rel/pgmux
    if [[ ! -x $PGMUX_BIN ]]; then
      log "building pgmux (Release) in $REPO/build-rel"
      if ! { cmake -S "$REPO" -B "$REPO/build-rel" -DCMAKE_BUILD_TYPE=Release -DPGMUX_TESTS=OFF &&
             cmake --build "$REPO/build-rel" --target pgmux -j2; } >"$OUT/build.log" 2>&1; then
        die "building pgmux failed (see $OUT/build.log)"
      fi
    fi
  fi
  [[ -x $PGMUX_BIN ]] || die "no pgmux binary at $PGMUX_BIN"
  PGMUX_BIN=$(realpath "$PGMUX_BIN")
}

# The relay binary: $TCP_RELAY_BIN (read by bench/tcp-relay.sh too), else build-rel/tcp_relay,
# built when missing.
ensure_relay() {
  [[ -n ${TCP_RELAY_BIN:-} ]] && { [[ -x $TCP_RELAY_BIN ]] || die "no tcp_relay at $TCP_RELAY_BIN"; return; }
  local RELAY_BIN=$REPO/build-rel/tcp_relay
  [[ -x $RELAY_BIN ]] && return
  log "building tcp_relay (Release) in $REPO/build-rel"
  if ! { cmake -S "$REPO" -B "$REPO/build-rel" -DCMAKE_BUILD_TYPE=Release -DPGMUX_TESTS=OFF &&
         cmake --build "$REPO/build-rel" --target tcp_relay -j2; } >>"$OUT/build.log" 2>&1; then
    die "building tcp_relay failed (see $OUT/build.log)"
  fi
}

write_meta() {
  {
    echo "command: bench/run.sh $ORIG_ARGS"
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(uname -sr)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "pgmux: $PGMUX_BIN ($("$PGMUX_BIN" --version 2>&1 | head -n1)), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD -- src include 2>/dev/null || echo ' + uncommitted changes')"
    echo "pgbouncer: $("$PGBOUNCER_BIN" --version 2>&1 | head -n1)"
    echo "postgresql: $("$PG_BIN/postgres" --version), max_connections=$PG_MAX_CONNECTIONS, shared_buffers=256MB, synchronous_commit=off"
    echo "pgbench: $("$PG_BIN/pgbench" --version), -j $PGBENCH_JOBS, scale $SCALE"
    echo "wrk: $(wrk -v 2>&1 | head -n1)"
    echo "python: $("$PYTHON" -c 'import sys, asyncpg, aiohttp; print(sys.version.split()[0], "asyncpg", asyncpg.__version__, "aiohttp", aiohttp.__version__)' 2>&1)"
    echo "settings: duration=${DURATION}s repeat=$REPEAT pool_size=$POOL_SIZE sweep=$CLIENTS_SWEEP idle_clients=$IDLE_CLIENTS wrk_connections=$WRK_CONNECTIONS"
    echo "targets: $TARGETS"
    echo "scenarios: $SCENARIOS"
  } >"$OUT/meta.txt"
}

cleanup() {
  stop_app
  stop_target
  cluster_stop
}

main() {
  ORIG_ARGS="$*"
  local report_only=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --scenarios) SCENARIOS=$2; shift 2 ;;
      --targets) TARGETS=$2; shift 2 ;;
      --duration) DURATION=$2; shift 2 ;;
      --repeat) REPEAT=$2; shift 2 ;;
      --clients-sweep) CLIENTS_SWEEP=$2; shift 2 ;;
      --idle-clients) IDLE_CLIENTS=$2; shift 2 ;;
      --wrk-connections) WRK_CONNECTIONS=$2; shift 2 ;;
      --pool-size) POOL_SIZE=$2; shift 2 ;;
      --scale) SCALE=$2; shift 2 ;;
      --pg-max-connections) PG_MAX_CONNECTIONS=$2; shift 2 ;;
      --pgmux) PGMUX_BIN=$2; shift 2 ;;
      --perf) PERF=1; shift ;;
      --out) OUT=$2; shift 2 ;;
      --report) report_only=$2; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option $1 (see --help)" ;;
    esac
  done
  if [[ -n $report_only ]]; then exec "$PYTHON" "$BENCH_DIR/report.py" "$report_only"; fi

  [[ $SCENARIOS == all ]] && SCENARIOS=$(IFS=,; echo "${ALL_SCENARIOS[*]}")
  local scenario target
  IFS=, read -ra scenario_list <<<"$SCENARIOS"
  IFS=, read -ra target_list <<<"$TARGETS"
  IFS=, read -ra sweep_list <<<"$CLIENTS_SWEEP"
  for scenario in "${scenario_list[@]}"; do
    [[ " ${ALL_SCENARIOS[*]} " == *" $scenario "* ]] || die "unknown scenario '$scenario'"
  done
  for target in "${target_list[@]}"; do
    [[ $target == pgmux || $target =~ ^pgmux-w[1-9][0-9]*$ || $target =~ ^pgmux-pipe[1-9][0-9]*$ ||
       $target == pgbouncer || $target == direct ||
       $target == relay ]] ||
      die "unknown target '$target'"
  done
  [[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "--duration must be a whole number of seconds"

  OUT=${OUT:-/tmp/pgmux-bench/$(date +%Y%m%d-%H%M%S)}
  mkdir -p "$OUT/runs" || die "cannot create $OUT"
  OUT=$(realpath "$OUT")
  [[ -z $(ls -A "$OUT/runs") ]] || die "$OUT/runs is not empty: choose a new --out"
  # The poolers (user postgres when root) read the config there and write nothing.
  chmod 755 "$OUT"
  [[ " ${target_list[*]} " == *" pgmux"* ]] && ensure_pgmux
  [[ " ${target_list[*]} " == *" relay "* ]] && ensure_relay
  # Thousands of clients: one descriptor each in pgbench, wrk, the app and the poolers.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null

  local most=$((IDLE_CLIENTS > WRK_CONNECTIONS ? IDLE_CLIENTS : WRK_CONNECTIONS)) n
  for n in "${sweep_list[@]}" 1000; do ((n > most)) && most=$n; done
  MAX_CLIENT_CONN=$((most + 100))

  trap cleanup EXIT
  trap 'exit 130' INT TERM
  cluster_start "$SCALE" "$PG_MAX_CONNECTIONS"
  POOLER_PORT=$(free_port)
  write_pooler_config "$OUT/config"
  write_meta
  log "results in $OUT"

  local rep clients
  for ((rep = 1; rep <= REPEAT; rep++)); do
    for scenario in "${scenario_list[@]}"; do
      case $scenario in
        idle)
          log "idle (rep $rep): $IDLE_CLIENTS idle clients"
          for target in "${target_list[@]}"; do
            # PostgreSQL cannot hold 10,000 connections: this one is for poolers (the relay
            # opens a server connection per client).
            [[ $target == direct || $target == relay ]] || run_idle "$rep" "$target"
          done ;;
        http)
          log "http (rep $rep): app.py behind wrk -c $WRK_CONNECTIONS"
          for target in "${target_list[@]}"; do run_http "$rep" "$target"; done ;;
        sweep)
          for clients in "${sweep_list[@]}"; do
            log "sweep (rep $rep): pgbench ${PGBENCH_ARGS[sweep]} -c $clients"
            for target in "${target_list[@]}"; do run_pgbench sweep "$clients" "$rep" "$target"; done
          done ;;
        *)
          log "$scenario (rep $rep): pgbench ${PGBENCH_ARGS[$scenario]} -c ${PGBENCH_CLIENTS[$scenario]}"
          for target in "${target_list[@]}"; do
            run_pgbench "$scenario" "${PGBENCH_CLIENTS[$scenario]}" "$rep" "$target"
          done ;;
      esac
    done
  done

  "$PYTHON" "$BENCH_DIR/report.py" "$OUT"
}

main "$@"
