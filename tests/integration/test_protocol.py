# Protocol corners of transaction pooling: COPY through the extended protocol, cancel requests
# racing with the end of a transaction, startup parameters the server refuses.
import threading
import time

import psycopg

from conftest import TEST_DB, assert_cancelled
from pgwire import RawSession


def _raw(mux, **kw):
    return RawSession(mux.host, mux.port, "md5user", TEST_DB, **kw)


def test_extended_protocol_copy_from_stdin_gives_the_server_back(pgmux):
    # libpq sends Parse/Bind/Execute/Sync for COPY, and a second Sync after CopyDone; the backend
    # ignores the first Sync in copy-in mode, so only one ReadyForQuery comes back.
    mux = pgmux(auth_type="trust", default_pool_size=1)
    a = _raw(mux)
    a.query("BEGIN; CREATE TEMP TABLE copied (x int) ON COMMIT DROP")
    a.read_until_ready()
    a.send(b"P", b"\0COPY copied FROM STDIN\0\0\0")
    a.send(b"B", b"\0\0\0\0\0\0\0\0")
    a.send(b"E", b"\0\0\0\0\0")
    a.send(b"S")
    kind, _ = a.read()
    assert kind == b"1"  # ParseComplete
    kind, _ = a.read()
    assert kind == b"2"  # BindComplete
    kind, _ = a.read()
    assert kind == b"G"  # CopyInResponse
    a.send(b"d", b"1\n")
    a.send(b"d", b"2\n")
    a.send(b"c")
    a.send(b"S")
    done = a.read_until_ready()
    assert (b"C", b"COPY 2\0") in done
    a.query("SELECT count(*) FROM copied")
    rows = a.read_until_ready()
    assert (b"D", b"\0\x01\0\0\0\x012") in rows
    a.query("COMMIT")
    assert a.read_until_ready()[-1] == (b"Z", b"I")
    # The pool's only server must now serve another client.
    b = _raw(mux, timeout=5.0)
    b.query("SELECT 1")
    assert RawSession.error_of(b.read_until_ready()) is None
    a.close()
    b.close()


def test_cancel_stops_a_long_query(pgmux):
    mux = pgmux(default_pool_size=2)
    with mux.connect() as conn:
        assert_cancelled(conn, after=0.5)


def test_cancel_racing_a_transaction_end_never_hits_the_next_client(pgmux):
    # One server: B waits for it while A's query ends just as A's cancel is sent. The cancel
    # may stop A's query or arrive too late, but must never stop B's.
    mux = pgmux(default_pool_size=1)
    b_errors = []
    for _ in range(30):
        with mux.connect() as a, mux.connect() as b:
            def run_b():
                time.sleep(0.05)
                try:
                    b.execute("SELECT pg_sleep(0.3)")
                except psycopg.Error as e:
                    b_errors.append(repr(e))
            tb = threading.Thread(target=run_b)
            tb.start()
            timer = threading.Timer(0.2, a.cancel)
            timer.start()
            try:
                a.execute("SELECT pg_sleep(0.2)")
            except psycopg.errors.QueryCanceled:
                pass
            timer.join()
            tb.join()
    assert b_errors == []


def test_a_startup_parameter_the_server_refuses_is_reported_to_the_client(pgmux):
    mux = pgmux(auth_type="trust", default_pool_size=1)
    bad = _raw(mux, extra_params=(("TimeZone", "No/Such_Zone"),))
    bad.query("SELECT 1")
    messages = []
    try:
        while not messages or messages[-1][0] != b"Z":
            messages.append(bad.read())
    except (EOFError, ConnectionResetError):
        pass  # pgmux closes the connection after the FATAL error, as PostgreSQL would
    error = RawSession.error_of(messages)
    assert error is not None and error["C"] == "22023", messages
    assert "TimeZone" in error["M"]
    bad.sock.close()
    # The pool still serves well-formed clients.
    good = _raw(mux, extra_params=(("TimeZone", "Europe/Paris"),))
    good.query("SHOW TimeZone")
    assert (b"D", b"\0\x01\0\0\0\x0cEurope/Paris") in good.read_until_ready()
    good.close()
