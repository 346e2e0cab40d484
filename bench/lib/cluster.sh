# shellcheck shell=bash
# bench/lib/cluster.sh - the throwaway PostgreSQL 15 cluster of one benchmark run.
# Sourced by bench/run.sh. The cluster lives in a fresh temporary directory, listens on 127.0.0.1
# only (plus a unix socket inside that directory), belongs to the OS user postgres when we run as
# root (initdb refuses root), and is deleted by cluster_stop.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_DB=bench
BENCH_USER=bench
BENCH_PASSWORD=bench_pw
PG_ROOT=""
PG_PORT=""
PG_SOCK=""

# Runs a command as the cluster's owner.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# psql as the superuser over the unix socket (trust): unaligned, tuples only, stops on an error.
pg_sql() {
  as_owner "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres \
    -d "$BENCH_DB" "$@"
}

postmaster_pid() { head -n1 "$PG_ROOT/data/postmaster.pid"; }

# cluster_start SCALE MAX_CONNECTIONS: initdb, start, then the role `bench` (md5 password), the
# database `bench` with pgbench's tables at SCALE and `entries(id, body)` with 10,000 rows.
cluster_start() {
  local scale=$1 max_connections=$2
  PG_ROOT=$(mktemp -d /tmp/pgmux-bench-pg.XXXXXX)
  PG_SOCK=$PG_ROOT/sock
  PG_PORT=$(free_port)
  mkdir "$PG_SOCK"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$PG_ROOT" "$PG_SOCK"; fi
  log "PostgreSQL: initdb in $PG_ROOT, port $PG_PORT"
  # initdb and pg_ctl want a working directory their user can read.
  (cd /tmp && as_owner "$PG_BIN/initdb" -D "$PG_ROOT/data" -U postgres --auth-local=trust \
    --auth-host=md5 -E UTF8 --locale=C --no-sync) >"$PG_ROOT/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -5 "$PG_ROOT/initdb.log")"
  cat >>"$PG_ROOT/data/postgresql.conf" <<CONF

# bench/run.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = $max_connections
shared_buffers = 256MB
# Keeps TPC-B CPU-bound rather than bound by the virtual disk's fsync.
synchronous_commit = off
# No checkpoint inside a run.
max_wal_size = 4GB
checkpoint_timeout = 30min
password_encryption = md5
CONF
  # Truncating keeps the file's owner and mode.
  printf 'local all all trust\nhost all all 127.0.0.1/32 md5\n' >"$PG_ROOT/data/pg_hba.conf"
  (cd /tmp && as_owner "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -l "$PG_ROOT/postgresql.log" -w -t 60 \
    start) >/dev/null || die "pg_ctl start failed: $(tail -5 "$PG_ROOT/postgresql.log")"

  as_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres \
    -d postgres >/dev/null <<SQL || die "creating the role and database failed"
CREATE ROLE $BENCH_USER LOGIN PASSWORD '$BENCH_PASSWORD';
CREATE DATABASE $BENCH_DB OWNER $BENCH_USER;
SQL
  log "PostgreSQL: pgbench -i -s $scale"
  "$PG_BIN/pgbench" -i -q -s "$scale" -h "$PG_SOCK" -p "$PG_PORT" -U "$BENCH_USER" "$BENCH_DB" \
    >"$PG_ROOT/pgbench-init.log" 2>&1 || die "pgbench -i failed: $(tail -5 "$PG_ROOT/pgbench-init.log")"
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U "$BENCH_USER" \
    -d "$BENCH_DB" >/dev/null <<'SQL' || die "creating entries failed"
CREATE TABLE entries (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO entries SELECT g, 'entry ' || g || ' ' || md5(g::text) FROM generate_series(1, 10000) g;
SQL
  pg_sql -c 'VACUUM ANALYZE' >/dev/null
}

cluster_stop() {
  [[ -n $PG_ROOT && -d $PG_ROOT ]] || return 0
  if [[ -f $PG_ROOT/data/postmaster.pid ]]; then
    (cd /tmp && as_owner "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -m fast -w -t 60 stop) >/dev/null 2>&1
  fi
  rm -rf -- "$PG_ROOT"
  PG_ROOT=""
}

# Waits (up to 15 s) until no backend of the benchmark user is left and the postmaster has reaped
# every child that exited: a pooler's server connections close asynchronously, and an exited but
# not yet reaped child (a zombie) shows no CPU time in /proc while its parent's cutime does not
# include it yet, so pg_cpu_ticks would miss it.
cluster_wait_backends_gone() {
  local pm i kid busy
  pm=$(postmaster_pid)
  for ((i = 0; i < 150; i++)); do
    busy=""
    for kid in $(pgrep -P "$pm"); do
      if [[ $(sed 's/^.*) //' "/proc/$kid/stat" 2>/dev/null | cut -d' ' -f1) == Z ]] ||
        grep -q "^postgres: $BENCH_USER " "/proc/$kid/cmdline" 2>/dev/null; then
        busy=$kid
        break
      fi
    done
    [[ -z $busy ]] && return 0
    sleep 0.1
  done
  log "warning: PostgreSQL still has backends of $BENCH_USER (pid $busy)"
}

# Between runs: the previous target's backends are gone, then a checkpoint so that none falls
# inside the run.
cluster_settle() {
  cluster_wait_backends_gone
  pg_sql -c 'CHECKPOINT' >/dev/null
}

# CPU clock ticks of PostgreSQL: the postmaster with its reaped children (backends that already
# exited) plus every live child. Exact only while no child is a zombie (see
# cluster_wait_backends_gone).
pg_cpu_ticks() {
  local pm total kid
  pm=$(postmaster_pid)
  total=$(proc_ticks "$pm" with-children)
  for kid in $(pgrep -P "$pm"); do
    total=$((total + $(proc_ticks "$kid")))
  done
  echo "$total"
}
