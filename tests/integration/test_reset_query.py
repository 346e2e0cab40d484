# A driver's connection-reset query (asyncpg's "SELECT pg_advisory_unlock_all(); CLOSE ALL;
# UNLISTEN *; RESET ALL;") in transaction mode: answered by pgmux without a server, with the
# bytes PostgreSQL would send, RESET ALL taking the client's tracked parameters back to its
# welcome's values; forwarded in session mode and with local_reset_query = 0.
import asyncio
import select
import threading
import time

import asyncpg

from conftest import TEST_DB, ROLES
from pgwire import RawSession

ASYNCPG_RESET = "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;"


def _raw(mux, **kw):
    return RawSession(mux.host, mux.port, "md5user", TEST_DB, **kw)


def _server_pid(session):
    """The backend of the pool's only server (pools here have one), found through `session`."""
    return session.run("SELECT pg_backend_pid()").rows[0][0]


def _last_query(pg, pid):
    """The last statement the server `pid` ran (pg_stat_activity keeps it while idle)."""
    with pg.connect() as direct:
        return direct.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                              [int(pid)]).fetchone()[0]


def test_asyncpg_reset_query_is_answered_without_a_server_as_postgres_answers_it(pgmux, pg):
    local = pgmux(auth_type="trust", default_pool_size=1)
    forwarded = pgmux(auth_type="trust", default_pool_size=1, settings={"local_reset_query": 0})
    a, b = _raw(local), _raw(forwarded)
    a_pid, b_pid = _server_pid(a), _server_pid(b)
    mine = a.run(ASYNCPG_RESET).messages
    postgres = b.run(ASYNCPG_RESET).messages
    assert _last_query(pg, a_pid) == "SELECT pg_backend_pid()"
    assert _last_query(pg, b_pid) == ASYNCPG_RESET
    # The same messages, byte for byte, as PostgreSQL itself sent through the other pgmux.
    assert mine == postgres
    assert [k for k, _ in mine] == [b"T", b"D", b"C", b"C", b"C", b"C", b"Z"]
    # The client goes on as before, on a server again.
    assert a.run("SELECT 41 + 1").rows == [("42",)]
    a.close()
    b.close()


def test_other_queries_go_to_a_server(pgmux, pg):
    mux = pgmux(auth_type="trust", default_pool_size=1)
    a = _raw(mux)
    pid = _server_pid(a)
    for sql in ("RESET ALL; SELECT 1", "DISCARD ALL", "UNLISTEN chan", "RESET TimeZone", "SELECT now()",
                "SELECT pg_advisory_unlock_all(), 1", "CLOSE ALL; -- all"):
        a.run(sql)
        assert _last_query(pg, pid) == sql
    a.close()


def test_local_reset_query_0_sends_it_to_a_server(pgmux, pg):
    mux = pgmux(auth_type="trust", default_pool_size=1, settings={"local_reset_query": 0})
    a = _raw(mux)
    pid = _server_pid(a)
    assert a.run(ASYNCPG_RESET).status == b"I"
    assert _last_query(pg, pid) == ASYNCPG_RESET
    a.close()


def test_session_mode_sends_it_to_the_clients_server(pgmux):
    mux = pgmux(auth_type="trust", pool_mode="session", default_pool_size=2)
    a = _raw(mux)
    pid = a.run("SELECT pg_backend_pid()").rows[0][0]
    a.run("SELECT pg_advisory_lock(4242)")
    a.run(ASYNCPG_RESET)
    # The lock of a's own session is gone: its server ran the unlock.
    other = _raw(mux)
    assert other.run("SELECT pg_try_advisory_lock(4242)").rows == [("t",)]
    assert a.run("SELECT pg_backend_pid()").rows[0][0] == pid
    other.close()
    a.close()


def _parameter_statuses(messages):
    return dict(tuple(v.decode() for v in payload.split(b"\0")[:2])
                for kind, payload in messages if kind == b"S")


def test_startup_parameters_survive_the_reset_as_on_postgres(pgmux, pg):
    # RESET ALL goes back to the session's start: the values of the startup packet.
    mux = pgmux(auth_type="trust", default_pool_size=1)
    a = _raw(mux, extra_params=(("TimeZone", "Europe/Paris"),))
    pid = _server_pid(a)
    reply = a.run(ASYNCPG_RESET).messages
    assert _last_query(pg, pid) == "SELECT pg_backend_pid()"
    assert _parameter_statuses(reply) == {}
    assert a.run("SHOW TimeZone").rows == [("Europe/Paris",)]
    a.close()
    with pg.connect(options="-c TimeZone=Europe/Paris") as direct:
        direct.execute(ASYNCPG_RESET)
        assert direct.execute("SHOW TimeZone").fetchone()[0] == "Europe/Paris"


def test_the_reset_undoes_the_clients_set_as_on_postgres(pgmux, pg):
    with pg.connect() as direct:
        default = direct.execute("SHOW TimeZone").fetchone()[0]
    assert default not in ("America/New_York", "Europe/Paris")
    mux = pgmux(auth_type="trust", default_pool_size=1)
    a = _raw(mux)
    pid = _server_pid(a)
    a.run("SET TimeZone = 'America/New_York'; SET DateStyle = 'German'")
    a.run("SELECT 1")
    reply = a.run(ASYNCPG_RESET).messages
    assert _last_query(pg, pid) == "SELECT 1"
    # PostgreSQL reports each value RESET ALL changed, after the statements, before ReadyForQuery.
    assert [k for k, _ in reply] == [b"T", b"D", b"C", b"C", b"C", b"C", b"S", b"S", b"Z"]
    assert _parameter_statuses(reply) == {"TimeZone": default, "DateStyle": "ISO, MDY"}
    assert a.run("SHOW TimeZone").rows == [(default,)]
    assert a.run("SHOW DateStyle").rows == [("ISO, MDY",)]
    a.close()

    # A value from the startup packet is what RESET ALL goes back to, on PostgreSQL and here.
    b = _raw(mux, extra_params=(("TimeZone", "Europe/Paris"),))
    b.run("SET TimeZone = 'America/New_York'")
    reply = b.run(ASYNCPG_RESET).messages
    assert _parameter_statuses(reply) == {"TimeZone": "Europe/Paris"}
    assert b.run("SHOW TimeZone").rows == [("Europe/Paris",)]
    b.close()
    with pg.connect(options="-c TimeZone=Europe/Paris") as direct:
        direct.execute("SET TimeZone = 'America/New_York'")
        direct.execute(ASYNCPG_RESET)
        assert direct.execute("SHOW TimeZone").fetchone()[0] == "Europe/Paris"


def test_a_client_that_only_resets_is_not_idle(pgmux):
    # client_idle_timeout counts from the last request, answered by pgmux or by a server.
    mux = pgmux(auth_type="trust", default_pool_size=1, settings={"client_idle_timeout": 2})
    idle, resetting = _raw(mux), _raw(mux)
    deadline = time.monotonic() + 30
    while not select.select([idle.sock], [], [], 0.2)[0]:
        assert time.monotonic() < deadline, "the idle client was never closed"
        assert resetting.run(ASYNCPG_RESET).status == b"I"
    closed = idle.read_until_ready_or_closed()[0]
    assert RawSession.error_of(closed)["M"] == "client_idle_timeout"
    # Longer than the timeout again, with only reset queries: still served.
    until = time.monotonic() + 3
    while time.monotonic() < until:
        result = resetting.run(ASYNCPG_RESET)
        assert not result.closed and result.error is None
        time.sleep(0.2)
    assert resetting.run("SELECT 1").rows == [("1",)]
    resetting.close()


async def _asyncpg_releases(mux, queried, held):
    """An asyncpg pool of one through pgmux: queries, then (once `held` says another client holds
    the pool's only server) a release. Returns the rows."""
    pool = await asyncpg.create_pool(host=mux.host, port=mux.port, user="md5user",
                                     password=ROLES["md5user"][1], database=TEST_DB,
                                     min_size=1, max_size=1)
    try:
        rows = []
        for i in range(20):
            async with pool.acquire() as con:
                rows.append(await con.fetchval("SELECT $1::int * 2", i))
        con = await pool.acquire()
        rows.append(await con.fetchval("SELECT 40 + 2"))
        queried.set()
        await asyncio.get_running_loop().run_in_executor(None, held.wait)
        await asyncio.wait_for(pool.release(con), timeout=10)  # asyncpg's reset query
        return rows
    finally:
        await pool.close()


def test_asyncpg_pool_releases_without_a_server(pgmux):
    mux = pgmux(default_pool_size=1)
    queried, held, released = threading.Event(), threading.Event(), threading.Event()
    out = {}

    def app():
        try:
            out["rows"] = asyncio.run(_asyncpg_releases(mux, queried, held))
        finally:
            released.set()

    worker = threading.Thread(target=app)
    worker.start()
    try:
        assert queried.wait(timeout=30)
        with mux.connect(autocommit=False) as holder:
            holder.execute("SELECT 1")  # in a transaction: the only server stays with it
            held.set()
            # The release finishes while the server is held: it needed none.
            assert released.wait(timeout=10)
            holder.rollback()
    finally:
        held.set()
        worker.join(timeout=60)
    assert out["rows"] == [i * 2 for i in range(20)] + [42]
