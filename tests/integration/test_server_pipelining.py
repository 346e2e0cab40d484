# server_pipelining: a waiting client's lone SELECT (simple or prepared) is written to a busy
# server behind the query running there, and each answer goes to its own client. Every test runs
# one worker, so that all clients share the pool's one server (a second worker would have its
# own share).
import asyncio
import random
import struct
import threading
import time

import asyncpg
import pytest

from conftest import (ROLES, TEST_DB, count_backends, init_pgbench_tables, pgbench_through, wait_for,
                      wait_for_no_backends)
from pgwire import RawSession, send_cancel_request
from test_prepared import SYNC, bind, exchange, execute, kinds, parse, send


def _mux(pgmux, pool_size=1, depth=1, **settings):
    return pgmux(auth_type="trust", default_pool_size=pool_size,
                 settings={"workers": 1, "server_pipelining": depth, **settings})


def _raw(mux, user="md5user", **kw):
    return RawSession(mux.host, mux.port, user, TEST_DB, **kw)


def _wait_running(pg, sql_prefix, user="md5user"):
    """Until a backend of `user` runs a query starting with `sql_prefix`: the head is on the
    server, so a query sent now finds it busy."""
    def probe():
        with pg.connect() as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
                                "AND state = 'active' AND query LIKE %s", (user, sql_prefix + "%")).fetchone()[0]
    assert wait_for(probe, lambda n: n == 1) == 1


def _fresh_sequence(pg, name):
    """A new sequence md5user may advance, with no backend of an earlier test around."""
    wait_for_no_backends(pg)
    with pg.connect() as conn:
        conn.execute(f"DROP SEQUENCE IF EXISTS {name}")
        conn.execute(f"CREATE SEQUENCE {name}")
        conn.execute(f"GRANT USAGE, SELECT, UPDATE ON SEQUENCE {name} TO md5user")


def _head_and_follower(pg, mux, head_sql, follower_sql, follower_params=()):
    """Client A's query runs on the pool's one server; client B's is sent behind it. Returns
    (a, b) with both answers still to read."""
    a, b = _raw(mux), _raw(mux, extra_params=follower_params)
    a.query(head_sql)
    _wait_running(pg, head_sql)
    b.query(follower_sql)
    time.sleep(0.2)  # for pgmux to read it (and, pipelining, write it to the server)
    return a, b


def _run_clients(client, count):
    """Runs client(n, failures) for n in range(count) on threads; returns what they reported.
    An exception in a client is reported too."""
    failures = []

    def guarded(n):
        try:
            client(n, failures)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            failures.append((n, repr(e)))

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return failures


@pytest.mark.parametrize("pool_size,depth,clients", [(2, 2, 12), (1, 16, 24)])
def test_each_client_gets_its_own_answers(pgmux, pool_size, depth, clients):
    # Clients on few servers, with queries allowed to wait behind each running one (up to 16 on
    # one server): the answers come back from a shared stream and must each reach the client
    # that asked.
    mux = _mux(pgmux, pool_size=pool_size, depth=depth)

    def client(n, failures):
        s = _raw(mux)
        for i in range(150):
            r = s.run(f"SELECT {n}, {i}, pg_backend_pid()")
            if r.error is not None or r.rows[:1] != [(str(n), str(i), r.rows[0][2])] or r.status != b"I":
                failures.append((n, i, r.rows, r.error, r.status))
                return
        s.close()

    assert not _run_clients(client, clients)


def test_pgbench_select_only_has_no_errors(pg, pgmux):
    # Clients, servers and pipelined queries in number: every transaction succeeds, on the pool's
    # three servers.
    init_pgbench_tables(pg, "benchuser", 1)
    mux = _mux(pgmux, pool_size=3, depth=2)
    pgbench_through(pg, mux, "benchuser", clients=30, threads=2, seconds=4, args=["-S", "-M", "simple"],
                    max_backends=3)


def test_a_follower_that_leaves_still_runs_and_the_server_is_kept(pg, pgmux):
    _fresh_sequence(pg, "pipelined_seq")
    mux = _mux(pgmux)
    # B's query goes to the busy server behind A's; B then leaves before its turn.
    a, b = _head_and_follower(pg, mux, "SELECT pg_sleep(1.5), pg_backend_pid()",
                              "SELECT nextval('pipelined_seq')")
    b.close()
    head = a.read_until_ready()
    assert RawSession.error_of(head) is None
    # It ran (a request only queued in pgmux would have been dropped with its client) ...
    with pg.connect() as conn:
        assert conn.execute("SELECT is_called FROM pipelined_seq").fetchone() == (True,)
    # ... its answer went nowhere, and the one server serves the next request.
    r = a.run("SELECT 'next', pg_backend_pid()")
    assert r.error is None and r.rows[0][0] == "next" and r.status == b"I"
    assert count_backends(pg) == 1
    a.close()


def test_a_head_that_leaves_lets_its_follower_run(pg, pgmux):
    mux = _mux(pgmux)
    a, b = _head_and_follower(pg, mux, "SELECT pg_sleep(1)", "SELECT 'b'")
    a.close()
    r = b.read_until_ready()
    assert RawSession.error_of(r) is None
    assert (b"D", b"\0\x01\0\0\0\x01b") in r and r[-1] == (b"Z", b"I")
    assert b.run("SELECT 2").rows == [("2",)]
    b.close()


def test_a_cancel_for_a_follower_waits_for_its_turn(pg, pgmux):
    mux = _mux(pgmux)
    a, b = _head_and_follower(pg, mux, "SELECT 'a', pg_sleep(1)", "SELECT pg_sleep(30)")
    # Sent on now, the cancel would stop A's query, which is the one running.
    send_cancel_request(mux.host, mux.port, *b.backend_key)
    head = a.read_until_ready()
    assert RawSession.error_of(head) is None
    assert any(kind == b"D" for kind, _ in head)
    cancelled = b.read_until_ready()
    assert RawSession.error_of(cancelled)["C"] == "57014"
    assert b.run("SELECT 1").rows == [("1",)]
    a.close()
    b.close()


def test_a_cancel_that_comes_late_does_not_stop_the_query_behind(pg, pgmux):
    # A cancel for the running query can reach PostgreSQL just after that query has ended, when
    # the next client's query, written behind it, has started: pgmux then runs that one again,
    # and its client never sees the error. Client 0's short queries are cancelled at random
    # moments around their end; clients 1 and 2 never cancel, and every answer of theirs must be
    # their rows.
    mux = _mux(pgmux, depth=2)
    done = threading.Event()

    def client(n, failures):
        s = _raw(mux)
        try:
            if n == 0:
                rng = random.Random(5)
                for i in range(150):
                    s.query("SELECT 'c' FROM pg_sleep(0.005)")
                    time.sleep(rng.random() * 0.012)
                    send_cancel_request(mux.host, mux.port, *s.backend_key)
                    err = RawSession.error_of(s.read_until_ready())
                    if err is not None and err.get("C") != "57014":
                        failures.append((n, i, err))
                return
            i = 0
            while not done.is_set():
                r = s.run(f"SELECT {n}, {i} FROM pg_sleep(0.005)")
                if r.error is not None or r.rows != [(str(n), str(i))] or r.status != b"I":
                    failures.append((n, i, r.rows, r.error, r.status))
                i += 1
        finally:
            if n == 0:
                done.set()
            s.close()

    assert not _run_clients(client, 3)
    assert count_backends(pg) == 1


@pytest.mark.parametrize("size", [10, 40_000, 200_000])
def test_a_follower_behind_a_cancelled_query_gets_its_whole_answer(pg, pgmux, size):
    # The cancel stops A's query. B's, written behind it, runs next and is held back until it is
    # whole (it might have been the one the cancel stopped); an answer too long to hold goes
    # out as it comes. Either way B gets all of it, once.
    mux = _mux(pgmux)
    a, b = _head_and_follower(pg, mux, "SELECT pg_sleep(5)", f"SELECT repeat('x', {size}), 'b'")
    send_cancel_request(mux.host, mux.port, *a.backend_key)
    assert RawSession.error_of(a.read_until_ready())["C"] == "57014"
    r = b.read_until_ready()
    assert RawSession.error_of(r) is None and r[-1] == (b"Z", b"I")
    assert [payload for kind, payload in r if kind == b"D"] == [
        struct.pack("!hi", 2, size) + b"x" * size + struct.pack("!i", 1) + b"b"]
    assert b.run("SELECT 'next'").rows == [("next",)]
    a.close()
    b.close()


def test_what_a_held_client_sends_meanwhile_keeps_its_order(pg, pgmux):
    # B's first query follows A's and, A's being cancelled, has its answer held; that answer
    # outgrows the hold (64 KiB) and is passed on while the query still runs. B's second query,
    # sent while it followed, and its third, sent once the hold has ended, must run in that
    # order after the first.
    mux = _mux(pgmux)
    a, b = _head_and_follower(pg, mux, "SELECT pg_sleep(5)",
                              "SELECT repeat('x', 140000) UNION ALL SELECT 'y' FROM pg_sleep(1)")
    b.query("SELECT 'second'")
    send_cancel_request(mux.host, mux.port, *a.backend_key)
    assert RawSession.error_of(a.read_until_ready())["C"] == "57014"
    time.sleep(0.5)  # B's first row is out, its query sleeps
    b.query("SELECT 'third'")
    first = b.read_until_ready()
    assert RawSession.error_of(first) is None and len([k for k, _ in first if k == b"D"]) == 2
    assert (b"D", b"\0\x01\0\0\0\x06second") in b.read_until_ready()
    assert (b"D", b"\0\x01\0\0\0\x05third") in b.read_until_ready()
    a.close()
    b.close()


def test_a_follower_that_times_out_is_not_run_again(pg, pgmux):
    # statement_timeout's error has a cancel's SQLSTATE (57014), not its message: a follower
    # whose turn comes after a cancel and which then times out gets its error, once.
    with pg.connect() as conn:
        conn.execute("ALTER ROLE scramuser SET statement_timeout = '3s'")
    try:
        mux = _mux(pgmux)
        a, b = _raw(mux, user="scramuser"), _raw(mux, user="scramuser")
        a.query("SELECT pg_sleep(2.5)")
        _wait_running(pg, "SELECT pg_sleep(2.5)", user="scramuser")
        b.query("SELECT pg_sleep(6)")
        time.sleep(0.1)
        send_cancel_request(mux.host, mux.port, *a.backend_key)
        # The cancel stopped A (not the timeout, and not B, which would then rightly run again).
        assert RawSession.error_of(a.read_until_ready())["M"] == "canceling statement due to user request"
        err = RawSession.error_of(b.read_until_ready())
        assert err["C"] == "57014" and "statement timeout" in err["M"]
        assert "running it again" not in mux.read_log()
        a.close()
        b.close()
    finally:
        with pg.connect() as conn:
            conn.execute("ALTER ROLE scramuser RESET statement_timeout")


def test_a_query_inside_a_transaction_block_is_not_followed(pg, pgmux):
    mux = _mux(pgmux)
    a, b = _raw(mux), _raw(mux)
    assert a.run("BEGIN").status == b"T"
    a.query("SELECT pg_sleep(0.5)")
    _wait_running(pg, "SELECT pg_sleep(0.5)")
    b.query("SELECT txid_current_if_assigned() IS NULL, now() = statement_timestamp()")
    time.sleep(0.2)
    a.read_until_ready()
    assert a.run("SELECT txid_current()").status == b"T"
    assert a.run("COMMIT").status == b"I"
    # B ran after A's transaction, in one of its own: not inside A's (status T, A's txid).
    r = b.read_until_ready()
    assert RawSession.error_of(r) is None
    assert (b"D", b"\0\x02\0\0\0\x01t\0\0\0\x01t") in r and r[-1] == (b"Z", b"I")
    a.close()
    b.close()


def test_a_client_with_other_settings_is_not_followed(pg, pgmux):
    mux = _mux(pgmux)
    a, b = _head_and_follower(pg, mux, "SELECT pg_sleep(0.5), current_setting('TimeZone')",
                              "SELECT current_setting('TimeZone')", (("TimeZone", "Asia/Tokyo"),))
    head = a.read_until_ready()
    assert RawSession.error_of(head) is None
    r = b.read_until_ready()
    assert (b"D", b"\0\x01\0\0\0\x0aAsia/Tokyo") in r
    a.close()
    b.close()


def test_a_head_that_sends_more_gets_it_answered_after_its_follower(pg, pgmux):
    mux = _mux(pgmux)
    a, b = _head_and_follower(pg, mux, "SELECT 'a1', pg_sleep(0.5)", "SELECT 'b'")
    a.query("SELECT 'a2'")  # before its first answer: it waits, then runs after B's query
    first = a.read_until_ready()
    assert any(kind == b"D" and b"a1" in payload for kind, payload in first)
    second = a.read_until_ready()
    assert (b"D", b"\0\x01\0\0\0\x02a2") in second and second[-1] == (b"Z", b"I")
    r = b.read_until_ready()
    assert (b"D", b"\0\x01\0\0\0\x01b") in r
    a.close()
    b.close()


def test_off_by_default(pg, pgmux):
    # With the default (0) a follower is only queued: leaving, its query never runs.
    _fresh_sequence(pg, "unpipelined_seq")
    mux = pgmux(auth_type="trust", default_pool_size=1, settings={"workers": 1})
    a, b = _head_and_follower(pg, mux, "SELECT pg_sleep(1)", "SELECT nextval('unpipelined_seq')")
    b.close()
    assert RawSession.error_of(a.read_until_ready()) is None
    with pg.connect() as conn:
        assert conn.execute("SELECT is_called FROM unpipelined_seq").fetchone() == (False,)
    a.close()


def test_clients_that_leave_and_cancel_at_random_leave_the_pool_sound(pg, pgmux):
    # Twelve clients on two servers with two followers each, for a few hundred rounds: queries
    # that check their own answers, queries abandoned by a client that disconnects before its
    # answer, and queries cancelled. Every answer read must be the client's own, and the pool
    # must end with its servers kept and serving.
    mux = _mux(pgmux, pool_size=2, depth=2)

    def client(n, failures):
        rng = random.Random(n)
        hist = []
        s = _raw(mux)
        for i in range(60):
            action = rng.random()
            if action < 0.15:
                s.query(f"SELECT {n}, {i}, pg_sleep(0.01)")
                s.close()  # leaves before its answer, perhaps while following
                hist.append((i, "left"))
                s = _raw(mux)
                continue
            if action < 0.25:
                # Long enough that the cancel always reaches it: one reaching PostgreSQL
                # after the query has ended is lost (and the query behind it, if it stopped
                # that one, runs again), which is not what this test is about.
                s.query("SELECT pg_sleep(2)")
                time.sleep(rng.random() * 0.05)
                send_cancel_request(mux.host, mux.port, *s.backend_key)
                r = s.read_until_ready()
                err = RawSession.error_of(r)
                if err is None or err.get("C") != "57014":  # pg_sleep(2) ended: the cancel was lost
                    failures.append((n, i, "cancel", err, hist[-4:]))
                hist.append((i, "cancel", None if err is None else err.get("C")))
                continue
            r = s.run(f"SELECT {n}, {i}")
            hist.append((i, "query"))
            if r.error is not None or r.rows != [(str(n), str(i))] or r.status != b"I":
                failures.append((n, i, r.rows, r.error, r.status, hist[-4:]))
        s.close()

    assert not _run_clients(client, 12)
    s = _raw(mux)
    assert s.run("SELECT 'after'").rows == [("after",)]
    s.close()
    assert 1 <= count_backends(pg) <= 2


# ---- the extended protocol: a Bind, Execute and Sync of a prepared SELECT ----

def _prepare(session, name, sql):
    assert kinds(exchange(session, parse(name, sql), SYNC)) == "1Z"


def _exec_params(sql, *params):
    """What libpq's PQexecParams sends: the unnamed statement parsed, bound and run."""
    return parse("", sql), bind("", *params), (b"D", b"P\0"), execute(), SYNC


def _follows_then_leaves(pg, mux, b, *messages):
    """A's query runs on the pool's one server; B sends `messages` behind it and leaves before
    its turn. Returns A, answered."""
    a = _raw(mux)
    a.query("SELECT pg_sleep(1.5)")
    _wait_running(pg, "SELECT pg_sleep(1.5)")
    send(b, *messages)
    time.sleep(0.2)
    b.close()
    assert RawSession.error_of(a.read_until_ready()) is None
    return a


def _is_called(pg, sequence):
    with pg.connect() as conn:
        return conn.execute(f"SELECT is_called FROM {sequence}").fetchone()[0]


def test_a_prepared_select_follows_and_still_runs_when_its_client_leaves(pg, pgmux):
    _fresh_sequence(pg, "pipelined_ext_seq")
    mux = _mux(pgmux)
    b = _raw(mux)
    _prepare(b, "next", "SELECT nextval('pipelined_ext_seq')")  # now on the pool's one server
    a = _follows_then_leaves(pg, mux, b, bind("next"), execute(), SYNC)
    # It ran (a queued request would have been dropped with its client), and the server was kept
    # with nothing owed from it.
    assert _is_called(pg, "pipelined_ext_seq")
    assert a.run("SELECT 'next'").rows == [("next",)]
    assert count_backends(pg) == 1
    a.close()


def test_an_unnamed_select_follows_and_still_runs_when_its_client_leaves(pg, pgmux):
    _fresh_sequence(pg, "pipelined_unnamed_seq")
    mux = _mux(pgmux)
    a = _follows_then_leaves(pg, mux, _raw(mux), *_exec_params("SELECT nextval('pipelined_unnamed_seq')"))
    assert _is_called(pg, "pipelined_unnamed_seq")
    assert a.run("SELECT 'next'").rows == [("next",)]
    assert count_backends(pg) == 1
    a.close()


def test_an_unnamed_statement_that_is_not_a_select_is_not_followed(pg, pgmux):
    # VALUES could have been pipelined, but only a SELECT is: B waits in pgmux and its request
    # goes with it.
    _fresh_sequence(pg, "unpipelined_unnamed_seq")
    mux = _mux(pgmux)
    a = _follows_then_leaves(pg, mux, _raw(mux), *_exec_params("VALUES (nextval('unpipelined_unnamed_seq'))"))
    assert not _is_called(pg, "unpipelined_unnamed_seq")
    a.close()


@pytest.mark.parametrize("form", ["prepared", "unnamed"])
def test_extended_followers_get_their_own_rows_and_errors(pg, pgmux, form):
    # Two followers behind one query: the first one's Bind fails in the server (a bad integer),
    # which skips to its own Sync only; the second gets its row.
    mux = _mux(pgmux, depth=2)
    a, b, c = _raw(mux), _raw(mux), _raw(mux)
    if form == "prepared":
        _prepare(b, "q", "SELECT $1::int")
        _prepare(c, "q", "SELECT $1::int")

        def request(value):
            return bind("q", value), execute(), SYNC
        answered = "2DCZ"
    else:
        def request(value):
            return _exec_params("SELECT $1::int", value)
        answered = "12TDCZ"
    a.query("SELECT pg_sleep(1)")
    _wait_running(pg, "SELECT pg_sleep(1)")
    send(b, *request("abc"))
    send(c, *request("7"))
    time.sleep(0.2)
    assert RawSession.error_of(a.read_until_ready()) is None
    failed = b.read_until_ready()
    assert RawSession.error_of(failed)["C"] == "22P02" and failed[-1] == (b"Z", b"I")
    got = c.read_until_ready()
    assert kinds(got) == answered and (b"D", b"\0\x01\0\0\0\x017") in got
    # Both go on, on the same server, with nothing owed.
    assert kinds(exchange(b, *request("8"))) == answered
    assert kinds(exchange(c, *request("9"))) == answered
    for s in (a, b, c):
        s.close()


@pytest.mark.parametrize("mode", ["prepared", "extended"])
def test_pgbench_extended_has_no_errors(pg, pgmux, mode):
    init_pgbench_tables(pg, "benchuser", 1)
    mux = _mux(pgmux, pool_size=3, depth=2)
    pgbench_through(pg, mux, "benchuser", clients=30, threads=2, seconds=4, args=["-S", "-M", mode],
                    max_backends=3)


def test_psycopg_threads_get_their_own_rows(pgmux):
    # psycopg without prepared statements sends each query as PQexecParams does: Parse of the
    # unnamed statement, Bind, Describe, Execute, Sync.
    mux = _mux(pgmux, pool_size=2, depth=2)

    def client(n, failures):
        with mux.connect() as conn:
            for i in range(100):
                row = conn.execute("SELECT %s::int, %s::text", (n, f"row {i}")).fetchone()
                if row != (n, f"row {i}"):
                    failures.append((n, i, row))
                    return

    assert not _run_clients(client, 12)


def test_asyncpg_tasks_get_their_own_rows(pgmux):
    # asyncpg prepares each statement once per connection, then sends Bind/Execute/Sync: its
    # requests follow each other on the pool's two servers.
    mux = _mux(pgmux, pool_size=2, depth=2)

    async def run():
        conns = [await asyncpg.connect(host=mux.host, port=mux.port, user="md5user",
                                       password=ROLES["md5user"][1], database=TEST_DB)
                 for _ in range(12)]
        try:
            async def task(n, conn):
                for i in range(100):
                    row = await conn.fetchrow("SELECT $1::int AS n, $2::int AS i", n, i)
                    assert (row["n"], row["i"]) == (n, i)
            await asyncio.gather(*(task(n, c) for n, c in enumerate(conns)))
        finally:
            for c in conns:
                await c.close()

    asyncio.run(run())
