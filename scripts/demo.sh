#!/usr/bin/env bash
# Builds pgmux, starts a throwaway PostgreSQL 15 on a loopback port with a demo user and database,
# and runs pgmux in front of it (transaction mode) in the foreground. Ctrl-C stops both.
#   --check   instead of waiting, run one query through pgmux, stop everything and exit.
# BUILD_DIR overrides the build directory; PGMUX_PORT the port pgmux listens on (default 6432).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

check_only=0
if [[ ${1:-} == "--check" ]]; then check_only=1; fi

build_dir=${BUILD_DIR:-build}
pg_bin=/usr/lib/postgresql/15/bin
demo_user=demo
demo_password=demo
demo_db=demo

scripts/install-deps.sh
cmake -S . -B "$build_dir" -DPGMUX_WERROR=ON >/dev/null
cmake --build "$build_dir" --target pgmux -j2
pgmux_bin=$repo/$build_dir/pgmux
[[ $build_dir == /* ]] && pgmux_bin=$build_dir/pgmux

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_is_free() {
  /usr/bin/python3 -c 'import socket, sys; s = socket.socket()
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

# initdb refuses root: the cluster then belongs to the postgres OS user.
as_owner=()
if [[ $(id -u) -eq 0 ]]; then as_owner=(runuser -u postgres --); fi

work=$(mktemp -d /tmp/pgmux-demo-XXXXXX)
chmod 755 "$work"
# Everything PostgreSQL writes lives under pg/, which its OS user owns.
mkdir "$work/pg" "$work/pg/sock" "$work/pgmux"
if [[ $(id -u) -eq 0 ]]; then chown -R postgres:postgres "$work/pg"; fi
data=$work/pg/data

pg_port=$(free_port)
pgmux_port=${PGMUX_PORT:-6432}
if ! port_is_free "$pgmux_port"; then
  pgmux_port=$(free_port)
fi

pg_started=0
pgmux_pid=
cleanup() {
  trap - EXIT INT TERM
  if [[ -n $pgmux_pid ]] && kill -0 "$pgmux_pid" 2>/dev/null; then
    kill -TERM "$pgmux_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pgmux_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pgmux_pid" 2>/dev/null || true
    wait "$pgmux_pid" 2>/dev/null || true
  fi
  if [[ $pg_started -eq 1 ]]; then
    "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$work"
  echo "demo: stopped pgmux and PostgreSQL"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_owner[@]}" "$pg_bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --locale=C -E UTF8 --no-sync >/dev/null
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work/pg/sock'
max_connections = 100
CONF
"${as_owner[@]}" "$pg_bin/pg_ctl" -D "$data" -l "$work/pg/postgresql.log" -w start >/dev/null
pg_started=1
"${as_owner[@]}" "$pg_bin/psql" -X -q -h "$work/pg/sock" -p "$pg_port" -U postgres -d postgres \
  -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE $demo_user LOGIN PASSWORD '$demo_password';
CREATE DATABASE $demo_db OWNER $demo_user;
SQL

cat >"$work/pgmux/userlist.txt" <<AUTH
"$demo_user" "$demo_password"
AUTH
cat >"$work/pgmux/pgmux.ini" <<INI
[databases]
$demo_db = host=127.0.0.1 port=$pg_port dbname=$demo_db

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgmux_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $work/pgmux/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
INI

"$pgmux_bin" "$work/pgmux/pgmux.ini" &
pgmux_pid=$!

connect="PGPASSWORD=$demo_password psql -h 127.0.0.1 -p $pgmux_port -U $demo_user $demo_db"
for _ in $(seq 100); do
  if PGPASSWORD=$demo_password PGCONNECT_TIMEOUT=2 psql -X -q -w -At -h 127.0.0.1 -p "$pgmux_port" \
      -U "$demo_user" -d "$demo_db" -c 'SELECT 1' >/dev/null 2>&1; then
    break
  fi
  kill -0 "$pgmux_pid" 2>/dev/null || { echo "demo: pgmux exited" >&2; exit 1; }
  sleep 0.1
done

if [[ $check_only -eq 1 ]]; then
  PGPASSWORD=$demo_password PGCONNECT_TIMEOUT=5 psql -X -w -h 127.0.0.1 -p "$pgmux_port" \
    -U "$demo_user" -d "$demo_db" -c "SELECT 'hello through pgmux' AS greeting, version()"
  exit 0
fi

cat <<MSG

  pgmux is listening on 127.0.0.1:$pgmux_port (transaction mode, pool of 20) in front of
  PostgreSQL 15 on 127.0.0.1:$pg_port. Connect through pgmux with:

    $connect

  Ctrl-C stops pgmux and PostgreSQL.

MSG
wait "$pgmux_pid"
