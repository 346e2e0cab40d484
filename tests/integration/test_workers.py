# workers = N: several event-loop threads, each accepting on its own SO_REUSEPORT listener (the
# unix socket shared). Limits are global: pool_size counts every worker's servers, so an idle
# server moves (by file descriptor, no new login) to a worker whose clients wait. Cancel
# requests reach the worker that owns the client whichever worker accepts them. The whole suite
# also runs against two workers with PGMUX_TEST_WORKERS=2.
import os
import threading

import psycopg
import pytest

from conftest import (BackendSampler, assert_cancelled, init_pgbench_tables, pgbench_through,
                      wait_for, wait_for_no_backends)

WORKERS = 2


def _clients_run(mux, clients, rounds, query, **connect_kwargs):
    """`clients` connections at once, each running `rounds` one-statement transactions of
    `query`. Returns (results by client, errors)."""
    results = [[] for _ in range(clients)]
    errors = []
    barrier = threading.Barrier(clients)

    def work(i):
        try:
            with mux.connect(**connect_kwargs) as conn:
                barrier.wait(timeout=30)
                for _ in range(rounds):
                    results[i].append(conn.execute(query).fetchone()[0])
        except Exception as e:  # collected; a thread cannot fail the test itself
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "clients still running after 120 s"
    return results, errors


def test_one_server_serves_clients_of_every_worker_without_a_new_login(pgmux, pg):
    # pool_size 1 over two workers: 20 clients land on both (the kernel spreads them), and the
    # one server must move between the workers for all of them to be served. It is the same
    # backend throughout: moved, not closed and logged in again.
    wait_for_no_backends(pg)
    mux = pgmux(default_pool_size=1,
                settings={"workers": WORKERS, "query_wait_timeout": 30, "verbose": 1})
    with BackendSampler(pg, ["md5user"]) as sampler:
        results, errors = _clients_run(mux, 20, 15, "SELECT pg_backend_pid()")
    assert errors == []
    pids = {pid for per_client in results for pid in per_client}
    assert len(pids) == 1, f"backends used: {pids}"
    assert max(sampler.counts) == 1, sampler.counts
    # Every hand-over was taken over (the last one may still be on its way as the clients end).
    log = wait_for(mux.read_log, lambda text: text.count("handed to another worker") ==
                   text.count("taken over from another worker"), timeout=10)
    assert log.count("new connection to server") == 1
    assert log.count("handed to another worker") >= 1
    assert log.count("handed to another worker") == log.count("taken over from another worker")


def test_pool_size_counts_the_servers_of_every_worker(pgmux, pg):
    init_pgbench_tables(pg, "benchuser", 1)
    mux = pgmux(default_pool_size=3, max_client_conn=200, settings={"workers": WORKERS})
    pgbench_through(pg, mux, "benchuser", clients=40, threads=4, seconds=4, args=["-S"],
                    max_backends=3)


@pytest.mark.parametrize("mode", ["prepared", "extended"])
def test_prepared_statements_follow_a_server_that_moves(pgmux, pg, mode):
    # Each move hands the server over with statements named by the other worker: they are
    # deallocated on arrival and prepared again when a client needs them.
    init_pgbench_tables(pg, "benchuser", 1)
    mux = pgmux(default_pool_size=2, settings={"workers": WORKERS})
    pgbench_through(pg, mux, "benchuser", clients=12, threads=12, seconds=4,
                    args=["-S", "-M", mode], max_backends=2)


def test_session_mode_sessions_wait_for_a_server_of_any_worker(pgmux, pg):
    wait_for_no_backends(pg)
    mux = pgmux(pool_mode="session", default_pool_size=2,
                settings={"workers": WORKERS, "query_wait_timeout": 60})
    with BackendSampler(pg, ["md5user"]) as sampler:
        # Each client holds a server for its whole session (a short one): 12 sessions on 2
        # servers take turns, whichever worker accepted them.
        results, errors = _clients_run(mux, 12, 3, "SELECT count(*) FROM pg_sleep(0.05)")
    assert errors == []
    assert all(r == [1, 1, 1] for r in results)
    assert 1 <= max(sampler.counts) <= 2, sampler.counts


def test_cancel_reaches_the_client_whichever_worker_accepts_it(pgmux):
    # A CancelRequest arrives on a new connection that the kernel may give to either worker;
    # eight cancels make it all but certain that some cross workers.
    mux = pgmux(default_pool_size=4, settings={"workers": WORKERS})
    conns = [mux.connect() for _ in range(8)]
    try:
        for conn in conns:
            assert_cancelled(conn, after=0.3)
    finally:
        for conn in conns:
            conn.close()


def _socket_inodes(pid):
    """The inodes of the sockets process `pid` holds, with how many descriptors each."""
    counts = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inode = target[len("socket:["):-1]
            counts[inode] = counts.get(inode, 0) + 1
    return counts


def _tcp_listener_inodes(port):
    """Inodes of the TCP sockets listening on 127.0.0.1:`port` (/proc/net/tcp, state 0A)."""
    inodes = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                inodes.append(fields[9])
    return inodes


def _unix_listener_inode(path):
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(path):
                return fields[6]
    return None


def test_every_worker_listens_on_its_own_tcp_socket_and_on_the_unix_socket(pgmux):
    mux = pgmux(default_pool_size=2, unix_socket=True, settings={"workers": WORKERS})
    held = _socket_inodes(mux.proc.pid)
    # TCP: one SO_REUSEPORT listener per worker, all of them pgmux's.
    tcp = _tcp_listener_inodes(mux.port)
    assert len(tcp) == WORKERS, tcp
    assert all(held.get(inode) == 1 for inode in tcp), (tcp, held)
    # Unix: one socket, a descriptor of it in every worker.
    unix = _unix_listener_inode(mux.socket_dir / f".s.PGSQL.{mux.port}")
    assert unix is not None
    assert held.get(unix) == WORKERS, (unix, held)
    for _ in range(10):
        assert mux.psql("-c", "SELECT 42", via_socket=True).stdout.strip() == "42"
    results, errors = _clients_run(mux, 10, 5, "SELECT 1")
    assert errors == []


def test_max_client_conn_counts_the_clients_of_every_worker(pgmux):
    mux = pgmux(default_pool_size=2, max_client_conn=6, settings={"workers": WORKERS})
    held = [mux.connect() for _ in range(6)]
    try:
        # Whichever worker the seventh lands on, the count is over both.
        for _ in range(4):
            with pytest.raises(psycopg.OperationalError, match="no more connections allowed"):
                mux.connect()
    finally:
        for conn in held:
            conn.close()
    with mux.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_every_client_gets_the_welcome_whichever_worker_logs_in_first(pgmux):
    # A new pool, 24 clients at once over two workers: a share whose first server comes from the
    # other worker (straight from its login) still welcomes its clients with the server's
    # parameters.
    mux = pgmux(default_pool_size=2, settings={"workers": WORKERS})
    welcomes = []
    errors = []
    barrier = threading.Barrier(24)

    def login():
        try:
            barrier.wait(timeout=30)
            with mux.connect() as conn:
                welcomes.append((conn.info.parameter_status("server_version"),
                                 conn.info.parameter_status("client_encoding")))
        except Exception as e:  # collected; a thread cannot fail the test itself
            errors.append(repr(e))

    threads = [threading.Thread(target=login) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(welcomes) == 24
    assert all(version and version.startswith("15") and encoding for version, encoding in welcomes), \
        welcomes
