# Pool limits: max_db_connections and max_user_connections cap servers across pools,
# max_db_client_connections and max_user_client_connections refuse clients with 53300,
# min_pool_size and the reserve pool open servers, and [databases] / [users] overrides of
# pool_size and pool_mode take effect.
import contextlib
import threading
import time

import psycopg
import pytest

from conftest import ROLES, TEST_DB, BackendSampler, count_backends, wait_for, wait_for_no_backends
from pgwire import attempt_login

ROUNDS = 10


def _run_transactions(mux, clients):
    """Each (user, dbname) in `clients` runs ROUNDS short transactions on its own connection,
    all at once. Returns the errors."""
    errors = []
    barrier = threading.Barrier(len(clients))

    def work(user, dbname):
        try:
            with mux.connect(user=user, dbname=dbname) as conn:
                barrier.wait(timeout=30)
                for _ in range(ROUNDS):
                    with conn.transaction():
                        conn.execute("SELECT pg_sleep(0.02)")
        except Exception as e:  # collected; a thread cannot fail the test itself
            errors.append(f"{user}@{dbname}: {e!r}")

    threads = [threading.Thread(target=work, args=c) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not any(t.is_alive() for t in threads), "clients still waiting after 90 s"
    return errors


def test_max_db_connections_caps_servers_across_users(pgmux, pg):
    users = ("md5user", "scramuser")
    wait_for_no_backends(pg, users)
    mux = pgmux(default_pool_size=5,
                settings={"max_db_connections": 2, "query_wait_timeout": 60})
    sampler = BackendSampler(pg, users)
    sampler.start()
    try:
        errors = _run_transactions(mux, [(u, TEST_DB) for u in users for _ in range(3)])
    finally:
        sampler.stop()
    # Every client was served in the end, one user's idle servers making room for the other's.
    assert errors == []
    assert 1 <= max(sampler.counts) <= 2, sampler.counts


def test_max_user_connections_caps_servers_across_databases(pgmux, pg):
    wait_for_no_backends(pg, dbname=None)
    mux = pgmux(default_pool_size=5,
                settings={"max_user_connections": 2, "query_wait_timeout": 60})
    sampler = BackendSampler(pg, ["md5user"], dbname=None)
    sampler.start()
    try:
        errors = _run_transactions(mux, [("md5user", db) for db in (TEST_DB, "benchinit")
                                         for _ in range(3)])
    finally:
        sampler.stop()
    assert errors == []
    assert 1 <= max(sampler.counts) <= 2, sampler.counts


def _login(mux, user="md5user", dbname=TEST_DB):
    return attempt_login(mux.host, mux.port, user, dbname, ROLES[user][1])


def _login_eventually(mux, user="md5user", dbname=TEST_DB):
    """pgmux learns of a client's close asynchronously: allow it a moment to free the slot."""
    outcome = wait_for(lambda: _login(mux, user, dbname), lambda o: o.ready, timeout=10)
    assert outcome.ready, outcome.error


def _assert_too_many(outcome, key):
    assert not outcome.ready
    assert outcome.sqlstate == "53300", outcome.error
    assert key in outcome.message, outcome.message


@pytest.mark.parametrize("where", ["main", "database"])
def test_max_db_client_connections_refuses_the_client_over_the_limit(pgmux, pg, where):
    if where == "main":
        mux = pgmux(settings={"max_db_client_connections": 2})
    else:
        mux = pgmux(databases={
            TEST_DB: f"host={pg.host} port={pg.port} dbname={TEST_DB} max_db_client_connections=2",
            "benchinit": f"host={pg.host} port={pg.port} dbname=benchinit"})
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(mux.connect(user=u)) for u in ("md5user", "scramuser")]
        _assert_too_many(_login(mux), "max_db_client_connections")
        # The limit is per database: another one still takes clients.
        assert _login(mux, dbname="benchinit").ready
        for conn in held:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        held[0].close()
        _login_eventually(mux)


@pytest.mark.parametrize("where", ["main", "user"])
def test_max_user_client_connections_refuses_the_client_over_the_limit(pgmux, where):
    if where == "main":
        mux = pgmux(settings={"max_user_client_connections": 2})
    else:
        mux = pgmux(user_entries={"md5user": "max_user_client_connections=2"})
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(mux.connect(dbname=db)) for db in (TEST_DB, "benchinit")]
        _assert_too_many(_login(mux), "max_user_client_connections")
        # The limit is per user: another user still gets in.
        assert _login(mux, user="scramuser").ready
        for conn in held:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        held[1].close()
        _login_eventually(mux)


@pytest.mark.parametrize("where", ["main", "database"])
def test_min_pool_size_keeps_servers_open_after_the_first_client(pgmux, pg, where):
    wait_for_no_backends(pg)
    settings = {"server_idle_timeout": 1}
    databases = None
    if where == "main":
        settings["min_pool_size"] = 3
    else:
        databases = {TEST_DB: f"host={pg.host} port={pg.port} dbname={TEST_DB} min_pool_size=3"}
    mux = pgmux(default_pool_size=5, settings=settings, databases=databases)
    with mux.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # The client is gone; its pool fills up to min_pool_size anyway.
    assert wait_for(lambda: count_backends(pg), lambda n: n >= 3) == 3
    # Idle for longer than server_idle_timeout, the minimum is kept, without churn.
    sampler = BackendSampler(pg, ["md5user"])
    sampler.start()
    time.sleep(2.5)
    sampler.stop()
    assert set(sampler.counts) == {3}, sampler.counts


def _query_in_thread(conn, sql):
    """Starts `sql` on `conn` in a thread; returns (thread, results list, errors list)."""
    results, errors = [], []

    def run():
        try:
            results.append(conn.execute(sql).fetchone())
        except Exception as e:  # surfaced by the caller
            errors.append(e)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, results, errors


def test_reserve_pool_serves_a_client_that_waited_past_reserve_pool_timeout(pgmux, pg):
    wait_for_no_backends(pg)
    mux = pgmux(default_pool_size=1,
                settings={"reserve_pool_size": 1, "reserve_pool_timeout": 1})
    with mux.connect() as a, mux.connect() as b, mux.connect() as c:
        a.execute("BEGIN")
        a_pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        thread, results, errors = _query_in_thread(b, "SELECT pg_backend_pid()")
        thread.join(timeout=20)
        assert not thread.is_alive(), "the reserve pool never served the waiting client"
        assert errors == []
        # A still holds its server: B ran on a second one, from the reserve.
        assert results[0][0] != a_pid
        assert a.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS

        # Pool and reserve both in use: a third client waits for one of them.
        b.execute("BEGIN")
        b.execute("SELECT 1")
        thread, results, errors = _query_in_thread(c, "SELECT pg_backend_pid()")
        thread.join(timeout=2.5)
        assert thread.is_alive(), f"a third server was opened: {results}"
        assert count_backends(pg) == 2
        a.execute("COMMIT")
        thread.join(timeout=20)
        assert not thread.is_alive() and errors == []
        assert results[0][0] == a_pid
        b.execute("COMMIT")


def test_database_pool_size_overrides_default_pool_size(pgmux, pg):
    wait_for_no_backends(pg)
    mux = pgmux(default_pool_size=10, databases={
        TEST_DB: f"host={pg.host} port={pg.port} dbname={TEST_DB} pool_size=2"})
    with mux.connect() as c1, mux.connect() as c2, mux.connect() as c3:
        c1.execute("BEGIN")
        c1_pid = c1.execute("SELECT pg_backend_pid()").fetchone()[0]
        c2.execute("BEGIN")
        c2.execute("SELECT 1")
        thread, results, errors = _query_in_thread(c3, "SELECT pg_backend_pid()")
        thread.join(timeout=1.0)
        assert thread.is_alive(), "a third server was opened past the database's pool_size"
        assert count_backends(pg) == 2
        c1.execute("COMMIT")
        thread.join(timeout=20)
        assert not thread.is_alive() and errors == []
        assert results[0][0] == c1_pid
        c2.execute("COMMIT")


def test_user_pool_size_overrides_default_pool_size(pgmux):
    mux = pgmux(default_pool_size=10, user_entries={"md5user": "pool_size=1"})
    with mux.connect() as m1, mux.connect() as m2, \
            mux.connect(user="scramuser") as s1, mux.connect(user="scramuser") as s2:
        m1.execute("BEGIN")
        m1.execute("SELECT 1")
        thread, results, errors = _query_in_thread(m2, "SELECT 'm2'")
        thread.join(timeout=1.0)
        assert thread.is_alive(), "md5user got a second server past its pool_size of 1"
        # scramuser has no override: two transactions at once, two servers.
        s1.execute("BEGIN")
        s2.execute("BEGIN")
        pids = {s.execute("SELECT pg_backend_pid()").fetchone()[0] for s in (s1, s2)}
        assert len(pids) == 2
        s1.execute("COMMIT")
        s2.execute("COMMIT")
        m1.execute("COMMIT")
        thread.join(timeout=20)
        assert not thread.is_alive() and errors == [] and results == [("m2",)]


@pytest.mark.parametrize("where", ["user", "database"])
def test_pool_mode_override_gives_session_pooling(pgmux, pg, where):
    if where == "user":
        mux = pgmux(pool_mode="transaction", default_pool_size=2,
                    user_entries={"md5user": "pool_mode=session"})
        contrast = {"user": "scramuser", "dbname": TEST_DB}
    else:
        mux = pgmux(pool_mode="transaction", default_pool_size=2, databases={
            TEST_DB: f"host={pg.host} port={pg.port} dbname={TEST_DB} pool_mode=session",
            "benchinit": f"host={pg.host} port={pg.port} dbname=benchinit"})
        contrast = {"user": "md5user", "dbname": "benchinit"}
    pid = "SELECT pg_backend_pid()"
    with mux.connect() as a, mux.connect() as b:
        a_pid = a.execute(pid).fetchone()[0]
        # Session mode: A keeps its server between transactions, so B cannot have it.
        assert b.execute(pid).fetchone()[0] != a_pid
        a.execute("CREATE TEMP TABLE session_scoped (x int)")
        assert a.execute(pid).fetchone()[0] == a_pid
        assert a.execute("SELECT to_regclass('pg_temp.session_scoped') IS NOT NULL").fetchone() \
            == (True,)
    # Without the override, transaction mode: two clients in turn share one idle server.
    with mux.connect(**contrast) as c, mux.connect(**contrast) as d:
        assert c.execute(pid).fetchone()[0] == d.execute(pid).fetchone()[0]
