# Timeouts, each triggered on purpose with a small value: what the client is told (PgBouncer's
# text and SQLSTATE), and what PostgreSQL is left with. Deadlines are generous; nothing here
# asserts how fast a timeout fired, only that it did and what it did.
import select
import socket
import struct
import time

import pytest

from conftest import TEST_DB, count_backends, free_port, wait_for, wait_for_no_backends
from pgwire import PROTOCOL_3_0, RawSession, attempt_query, send_cancel_request

DEADLINE_S = 20.0  # no timeout below is more than a few seconds; this only stops a hang


def _raw(mux, user="md5user", timeout=DEADLINE_S):
    return RawSession(mux.host, mux.port, user, TEST_DB, timeout=timeout)


def _ok(session, sql):
    result = session.run(sql)
    assert result.error is None and not result.closed, (sql, result.error, result.closed)
    return result


def _wait_for_fatal(session):
    """Reads, without sending anything, until pgmux closes the connection; returns the error
    it sent first."""
    messages, closed = session.read_until_ready_or_closed()
    assert closed, f"expected the connection to be closed, got {messages}"
    error = RawSession.error_of(messages)
    assert error is not None, f"closed without an ErrorResponse: {messages}"
    assert error.get("S") == "FATAL", error
    return error


def _run_until_closed(session, sql, deadline_s=DEADLINE_S):
    """Runs `sql` again and again until pgmux closes the connection; returns (error, runs)."""
    deadline = time.monotonic() + deadline_s
    runs = 0
    while time.monotonic() < deadline:
        try:
            session.query(sql)
        except OSError:  # closed between two queries; what it said is still in the socket
            messages, closed = session.read_until_ready_or_closed()
            return RawSession.error_of(messages), runs
        messages, closed = session.read_until_ready_or_closed()
        if closed:
            return RawSession.error_of(messages), runs
        assert RawSession.error_of(messages) is None, messages
        runs += 1
    pytest.fail(f"still connected after {deadline_s} s of `{sql}`")


def _db_spec(pg, **extra):
    return " ".join([f"host={pg.host} port={pg.port} dbname={TEST_DB}",
                     *(f"{k}={v}" for k, v in extra.items())])


@pytest.mark.parametrize("where", ["main", "database", "user"])
def test_query_wait_timeout_fails_the_waiting_client(pgmux, pg, where):
    config = {"settings": {"query_wait_timeout": 1}}
    if where == "database":
        config = {"databases": {TEST_DB: _db_spec(pg, query_wait_timeout=1)}}
    elif where == "user":
        config = {"user_entries": {"md5user": "query_wait_timeout=1"}}
    mux = pgmux(auth_type="trust", default_pool_size=1, **config)
    holder = _raw(mux)
    _ok(holder, "BEGIN")
    _ok(holder, "SELECT 1")
    waiter = _raw(mux)
    waiter.query("SELECT 'should never run'")
    error = _wait_for_fatal(waiter)
    assert (error["C"], error["M"]) == ("08P01", "query_wait_timeout")
    # The client holding the server was not disturbed.
    _ok(holder, "COMMIT")
    assert _ok(holder, "SELECT 2").rows == [("2",)]
    holder.close()


@pytest.mark.parametrize("where", ["main", "user"])
def test_client_idle_timeout_closes_only_the_idle_client(pgmux, where):
    config = {"settings": {"client_idle_timeout": 2}}
    if where == "user":
        config = {"user_entries": {"md5user": "client_idle_timeout=2"}}
    mux = pgmux(auth_type="trust", default_pool_size=2, **config)
    idle = _raw(mux)
    busy = _raw(mux)
    deadline = time.monotonic() + DEADLINE_S
    # The busy client keeps querying while the idle one waits to be closed.
    while not select.select([idle.sock], [], [], 0.2)[0]:
        assert time.monotonic() < deadline, "the idle client was never closed"
        _ok(busy, "SELECT 1")
    error = _wait_for_fatal(idle)
    assert (error["C"], error["M"]) == ("08P01", "client_idle_timeout")
    assert _ok(busy, "SELECT 3").rows == [("3",)]
    busy.close()


def _login_silent(mux):
    return socket.create_connection((mux.host, mux.port), timeout=DEADLINE_S)


def _login_half_startup(mux):
    sock = socket.create_connection((mux.host, mux.port), timeout=DEADLINE_S)
    # A startup packet that announces 40 bytes and sends 8.
    sock.sendall(struct.pack("!II", 40, PROTOCOL_3_0))
    return sock


def _login_unanswered_password(mux):
    sock = socket.create_connection((mux.host, mux.port), timeout=DEADLINE_S)
    body = struct.pack("!I", PROTOCOL_3_0) + b"user\0md5user\0database\0testdb\0\0"
    sock.sendall(struct.pack("!I", len(body) + 4) + body)
    header = sock.recv(5, socket.MSG_WAITALL)
    assert header[:1] == b"R", header  # the password request, left unanswered
    sock.recv(struct.unpack("!I", header[1:])[0] - 4, socket.MSG_WAITALL)
    return sock


@pytest.mark.parametrize("begin_login", [_login_silent, _login_half_startup,
                                         _login_unanswered_password],
                         ids=["nothing-sent", "half-a-startup-packet", "password-unanswered"])
def test_client_login_timeout_disconnects_a_client_that_never_logs_in(pgmux, begin_login):
    # tcp_defer_accept off: otherwise the kernel would not hand a silent socket to pgmux at all.
    mux = pgmux(auth_type="md5", settings={"client_login_timeout": 1, "tcp_defer_accept": 0})
    with mux.connect() as logged_in:
        sock = begin_login(mux)
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail(f"not disconnected within {DEADLINE_S} s")
        finally:
            sock.close()
        if received:
            assert received[:1] == b"E" and b"client_login_timeout" in received, received
        # A client that did log in is not subject to the login timeout.
        assert logged_in.execute("SELECT 1").fetchone() == (1,)


# Tests that leave a transaction open on purpose take fresh_table before pgmux: fixtures are torn
# down in reverse, so pgmux (and any transaction it still holds) is gone before the table is
# dropped, and a pgmux without the timeout fails the test instead of blocking the DROP.
def _assert_rolled_back(pg, table, server_pid):
    left = wait_for(lambda: count_backends(pg, state="idle in transaction"), lambda n: n == 0)
    assert left == 0, "a transaction of the timed-out client is still open"
    with pg.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        state = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s",
                             [int(server_pid)]).fetchone()
    assert state is None or state[0] == "idle", state


def test_idle_transaction_timeout_closes_the_client_and_rolls_back(fresh_table, pgmux, pg):
    mux = pgmux(auth_type="trust", default_pool_size=1,
                settings={"idle_transaction_timeout": 1})
    session = _raw(mux)
    _ok(session, "BEGIN")
    _ok(session, f"INSERT INTO {fresh_table} VALUES (1, 'never committed')")
    # A statement running longer than the timeout is not idle: it finishes.
    pid = _ok(session, "SELECT pg_backend_pid() FROM pg_sleep(1.5)").rows[0][0]
    error = _wait_for_fatal(session)
    assert (error["C"], error["M"]) == ("08P01", "idle transaction timeout")
    _assert_rolled_back(pg, fresh_table, pid)
    # The pool's only server slot serves the next client.
    after = _raw(mux)
    assert _ok(after, f"SELECT count(*) FROM {fresh_table}").rows == [("0",)]
    after.close()


def test_per_user_idle_transaction_timeout_applies_to_that_user_only(pgmux):
    mux = pgmux(auth_type="trust", default_pool_size=2,
                user_entries={"md5user": "idle_transaction_timeout=1"})
    limited = _raw(mux, user="md5user")
    other = _raw(mux, user="scramuser")
    _ok(limited, "BEGIN")
    _ok(other, "BEGIN")
    _ok(other, "CREATE TEMP TABLE kept (x int) ON COMMIT DROP")
    error = _wait_for_fatal(limited)
    assert (error["C"], error["M"]) == ("08P01", "idle transaction timeout")
    time.sleep(1.0)  # twice md5user's timeout: scramuser, with none, is still in its transaction
    _ok(other, "INSERT INTO kept VALUES (1)")
    _ok(other, "COMMIT")
    other.close()


def test_transaction_timeout_closes_a_long_transaction(fresh_table, pgmux, pg):
    mux = pgmux(auth_type="trust", default_pool_size=1, settings={"transaction_timeout": 1})
    # Short transactions, many of them, add up to far more than the timeout: each is fine.
    quick = _raw(mux)
    for _ in range(12):
        _ok(quick, "BEGIN; SELECT pg_sleep(0.1); COMMIT")
    quick.close()
    session = _raw(mux)
    _ok(session, "BEGIN")
    _ok(session, f"INSERT INTO {fresh_table} VALUES (1, 'never committed')")
    pid = _ok(session, "SELECT pg_backend_pid()").rows[0][0]
    # Busy all along (never idle for long), the transaction still ends.
    error, runs = _run_until_closed(session, "SELECT pg_sleep(0.2)")
    assert error is not None, "closed without an ErrorResponse"
    assert (error["C"], error["M"], error.get("S")) == ("08P01", "transaction timeout", "FATAL")
    assert runs >= 1
    _assert_rolled_back(pg, fresh_table, pid)


def test_query_timeout_stops_the_query_on_the_server(pgmux, pg):
    mux = pgmux(auth_type="trust", default_pool_size=1, settings={"query_timeout": 1})
    session = _raw(mux)
    for _ in range(3):
        _ok(session, "SELECT pg_sleep(0.3)")  # under the timeout
    result = session.run("SELECT pg_sleep(30)")
    assert result.error is not None, result
    assert result.error["C"] in ("08P01", "57014"), result.error
    assert "timeout" in result.error["M"].lower() or "cancel" in result.error["M"].lower()
    assert not result.rows

    def running():
        with pg.connect() as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                "query = 'SELECT pg_sleep(30)' AND state = 'active'").fetchone()[0]
    assert wait_for(running, lambda n: n == 0, timeout=10) == 0, \
        "the timed-out query is still running on the server"
    if not result.closed:  # cancelled, not disconnected: the session goes on
        assert _ok(session, "SELECT 4").rows == [("4",)]
    after = _raw(mux)
    assert _ok(after, "SELECT 5").rows == [("5",)]
    after.close()


def test_server_idle_timeout_closes_idle_servers(pgmux, pg):
    wait_for_no_backends(pg)
    mux = pgmux(auth_type="trust", default_pool_size=3, settings={"server_idle_timeout": 1})
    sessions = [_raw(mux) for _ in range(3)]
    for s in sessions:
        _ok(s, "BEGIN")
    assert count_backends(pg) == 3
    for s in sessions:
        _ok(s, "COMMIT")
    # The clients stay connected; only their servers, idle, go away.
    assert wait_for(lambda: count_backends(pg), lambda n: n == 0) == 0
    assert _ok(sessions[0], "SELECT 6").rows == [("6",)]
    for s in sessions:
        s.close()


def test_server_lifetime_replaces_an_old_server_once_released(pgmux, pg):
    mux = pgmux(auth_type="trust", default_pool_size=1, settings={"server_lifetime": 1})
    session = _raw(mux)
    first_pid = _ok(session, "SELECT pg_backend_pid()").rows[0][0]
    # In a transaction the server is in use: past its lifetime it still is not closed.
    _ok(session, "BEGIN")
    for _ in range(6):
        assert _ok(session, "SELECT pg_backend_pid() FROM pg_sleep(0.3)").rows[0][0] == first_pid
    _ok(session, "COMMIT")
    later = wait_for(lambda: _ok(session, "SELECT pg_backend_pid()").rows[0][0],
                     lambda pid: pid != first_pid, timeout=DEADLINE_S, interval=0.3)
    assert later != first_pid, "the server outlived server_lifetime"

    def old_server_left():
        with pg.connect() as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                [int(first_pid)]).fetchone()[0]
    assert wait_for(old_server_left, lambda n: n == 0) == 0
    session.close()


class _SilentServer:
    """A listening socket that never accepts: TCP connects, the startup is never answered."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("failure", ["refused", "silent", "wrong-password"])
def test_server_login_retry_fails_clients_fast_while_logins_fail(pgmux, pg, failure):
    silent = None
    if failure == "refused":
        spec = f"host=127.0.0.1 port={free_port()} dbname={TEST_DB}"
    elif failure == "silent":
        silent = _SilentServer()
        spec = f"host=127.0.0.1 port={silent.port} dbname={TEST_DB}"
    else:
        spec = _db_spec(pg, user="md5user", password="not-the-password")
    try:
        mux = pgmux(auth_type="trust", databases={TEST_DB: spec}, settings={
            "server_connect_timeout": 1, "server_login_retry": 60, "query_wait_timeout": 5})
        first = attempt_query(mux.host, mux.port, "md5user", TEST_DB, "SELECT 1",
                              timeout=DEADLINE_S)
        assert first.error is not None and not first.rows, first
        second = attempt_query(mux.host, mux.port, "md5user", TEST_DB, "SELECT 1",
                               timeout=DEADLINE_S)
        assert second.error is not None, second
        assert (second.error["C"], second.error["M"]) == (
            "08P01", "server login has been failing, try again later (server_login_retry)")
        assert second.closed
    finally:
        if silent is not None:
            silent.close()


def test_cancel_removes_a_waiting_client_from_the_queue(pgmux):
    mux = pgmux(auth_type="trust", default_pool_size=1)
    holder = _raw(mux)
    _ok(holder, "BEGIN")
    holder.query("SELECT 'holder done' FROM pg_sleep(2)")
    waiter = _raw(mux, timeout=10)
    waiter.query("SELECT 'waiter ran'")
    time.sleep(0.5)  # lets the query reach pgmux and queue behind the holder
    send_cancel_request(mux.host, mux.port, *waiter.backend_key)
    messages, closed = waiter.read_until_ready_or_closed()
    assert not closed, messages
    error = RawSession.error_of(messages)
    assert error is not None and error["C"] == "57014", messages
    assert not [m for m in messages if m[0] == b"D"], messages
    assert messages[-1] == (b"Z", b"I")
    # The query actually running, on the server, is someone else's: it was not cancelled.
    done, closed = holder.read_until_ready_or_closed()
    assert RawSession.error_of(done) is None, done
    assert done[-1] == (b"Z", b"T")
    _ok(holder, "COMMIT")
    # The cancelled client is still connected and usable, and its query never ran late.
    assert _ok(waiter, "SELECT 'after cancel'").rows == [("after cancel",)]
    holder.close()
    waiter.close()
