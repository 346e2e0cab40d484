# Named prepared statements in transaction mode: a statement a client prepared on one server runs
# on another. pgbench, asyncpg, psycopg and raw protocol messages drive pools of 2 to 5 servers
# with many more clients. The tests that mean something without a pooler also run against
# PostgreSQL directly ([postgres]), so what they expect from pgmux is PostgreSQL's own behaviour.
import asyncio
import collections
import contextlib
import hashlib
import os
import socket
import struct
import threading

import asyncpg
import psycopg
from psycopg import sql
import pytest

from conftest import (CONNECT_TIMEOUT_S, ROLES, TEST_DB, assert_tpcb_balances_agree,
                      init_pgbench_tables, pgbench_through)
from pgwire import PROTOCOL_3_0, RawSession, parse_data_row

USER = "md5user"
PASSWORD = ROLES[USER][1]
BENCH_USER = "benchuser"


# ---- where the clients connect: PostgreSQL itself, or pgmux in transaction mode ----

class _UnixSession(RawSession):
    """A RawSession over PostgreSQL's unix socket, where pg_hba trusts every role."""

    def __init__(self, pg, user, database, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(pg.socket_dir / f".s.PGSQL.{pg.port}"))
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                          for k, v in (("user", user), ("database", database)))
        startup = struct.pack("!I", PROTOCOL_3_0) + params + b"\0"
        self.sock.sendall(struct.pack("!I", len(startup) + 4) + startup)
        self.welcome = self.read_until_ready()


class _Direct:
    """PostgreSQL without a pooler: every session keeps its own backend."""

    name = "postgres"
    moves = False  # a session never changes backend

    def __init__(self, pg):
        self.pg = pg
        self.host, self.port = pg.host, pg.port

    def raw(self):
        return _UnixSession(self.pg, USER, TEST_DB)

    def connect(self, **kwargs):
        """psycopg preparing every statement it runs (prepare_threshold=0)."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(host=self.host, port=self.port, user=USER, password=PASSWORD,
                               dbname=TEST_DB, connect_timeout=CONNECT_TIMEOUT_S,
                               prepare_threshold=0, **kwargs)

    def elsewhere(self, pid):
        return contextlib.nullcontext()

    def onto(self, pid):
        return contextlib.nullcontext()


class _ThroughPgmux(_Direct):
    """pgmux in transaction mode with a pool of `pool_size` servers."""

    name = "pgmux"
    moves = True

    def __init__(self, mux, pool_size):
        self.mux = mux
        self.pool_size = pool_size
        self.host, self.port = mux.host, mux.port

    def raw(self):
        return RawSession(self.mux.host, self.mux.port, USER, TEST_DB)

    @contextlib.contextmanager
    def _hold_servers(self, keep):
        """Takes every server of the pool with an open transaction, then gives back those whose
        backend PID `keep` rejects: until the block ends, clients run only on those."""
        holders = [self.mux.connect(user=USER, autocommit=False) for _ in range(self.pool_size)]
        try:
            pids = [h.execute("SELECT pg_backend_pid()").fetchone()[0] for h in holders]
            assert len(set(pids)) == self.pool_size, pids
            kept = [p for p in pids if keep(p)]
            assert kept and len(kept) < len(pids), f"cannot steer: servers {pids}"
            for holder, pid in zip(holders, pids):
                if not keep(pid):
                    holder.rollback()
            yield
        finally:
            for holder in holders:
                # Closed inside its transaction, a holder would cost the pool that server.
                with contextlib.suppress(psycopg.Error):
                    holder.rollback()
                holder.close()

    def elsewhere(self, pid):
        """Clients run on servers other than backend `pid` until the block ends."""
        return self._hold_servers(lambda p: p == pid)

    def onto(self, pid):
        """Clients run on backend `pid` until the block ends."""
        return self._hold_servers(lambda p: p != pid)

    def on_each_server(self, query):
        """{backend PID: rows of `query`} for every server of the pool."""
        holders = [self.mux.connect(user=USER, autocommit=False) for _ in range(self.pool_size)]
        try:
            out = {}
            for h in holders:
                pid = h.execute("SELECT pg_backend_pid()").fetchone()[0]
                out[pid] = h.execute(query).fetchall()
            assert len(out) == self.pool_size, out
            return out
        finally:
            for h in holders:
                with contextlib.suppress(psycopg.Error):
                    h.rollback()
                h.close()


@pytest.fixture(params=["postgres", "pgmux"])
def target(request, pg):
    """Factory: target(pool_size=..., auth_type=..., settings=...) -> _Direct or _ThroughPgmux."""
    start_pgmux = request.getfixturevalue("pgmux") if request.param == "pgmux" else None

    def open_target(pool_size=2, auth_type="trust", settings=None, max_client_conn=100):
        if start_pgmux is None:
            return _Direct(pg)
        mux = start_pgmux(pool_mode="transaction", auth_type=auth_type,
                          default_pool_size=pool_size, max_client_conn=max_client_conn,
                          settings=settings)
        return _ThroughPgmux(mux, pool_size)

    return open_target


# ---- extended-protocol messages and what comes back ----

def _cstr(text):
    return text.encode() + b"\0"


def parse(name, query, types=()):
    return b"P", (_cstr(name) + _cstr(query) + struct.pack("!H", len(types))
                  + b"".join(struct.pack("!I", t) for t in types))


def bind(statement, *params, portal=""):
    body = _cstr(portal) + _cstr(statement) + struct.pack("!HH", 0, len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            value = p.encode() if isinstance(p, str) else p
            body += struct.pack("!i", len(value)) + value
    return b"B", body + struct.pack("!H", 0)


def execute(portal="", max_rows=0):
    return b"E", _cstr(portal) + struct.pack("!I", max_rows)


def describe_statement(name):
    return b"D", b"S" + _cstr(name)


def close_statement(name):
    return b"C", b"S" + _cstr(name)


SYNC = (b"S", b"")
FLUSH = (b"H", b"")


def send(session, *messages):
    """Sends the messages in one write, as a pipelining driver does."""
    session.sock.sendall(b"".join(kind + struct.pack("!I", len(payload) + 4) + payload
                                  for kind, payload in messages))


def exchange(session, *messages):
    """Sends the messages and reads up to ReadyForQuery."""
    send(session, *messages)
    return session.read_until_ready()


def kinds(messages):
    """The message types as one string: '12DCZ' = ParseComplete, BindComplete, DataRow,
    CommandComplete, ReadyForQuery."""
    return "".join(kind.decode() for kind, _ in messages)


def rows(messages):
    return [parse_data_row(payload) for kind, payload in messages if kind == b"D"]


def error(messages):
    fields = RawSession.error_of(messages)
    return None if fields is None else (fields["C"], fields["M"])


def command_tags(messages):
    return [payload.rstrip(b"\0").decode() for kind, payload in messages if kind == b"C"]


def field_names(messages):
    """Column names of the first RowDescription."""
    payload = next(p for k, p in messages if k == b"T")
    (count,) = struct.unpack("!H", payload[:2])
    names, pos = [], 2
    for _ in range(count):
        end = payload.index(b"\0", pos)
        names.append(payload[pos:end].decode())
        pos = end + 1 + 18  # table OID, column number, type OID, size, modifier, format
    return names


def run_statement(session, name, *params):
    """Bind + Execute + Sync of a statement that returns (backend PID, value): the row."""
    messages = exchange(session, bind(name, *params), execute(), SYNC)
    assert kinds(messages) == "2DCZ", messages
    (row,) = rows(messages)
    return int(row[0]), row[1]


def moved(t, before, after):
    """On pgmux the two executions ran on different servers; directly, on the same backend."""
    return after != before if t.moves else after == before


INT4 = 23


# ---- protocol edge cases, on PostgreSQL directly and through pgmux ----

def test_a_statement_prepared_on_one_server_runs_on_another(target):
    t = target()
    a = t.raw()
    assert kinds(exchange(a, parse("s1", "SELECT pg_backend_pid(), $1::int * 2"), SYNC)) == "1Z"
    first_pid, value = run_statement(a, "s1", "21")
    assert value == "42"
    with t.elsewhere(first_pid):
        # Describe first: the server it lands on has never seen the statement.
        described = exchange(a, describe_statement("s1"), SYNC)
        assert kinds(described) == "tTZ", described
        assert described[0][1] == struct.pack("!HI", 1, INT4)
        pid, value = run_statement(a, "s1", "5")
        assert value == "10"
        assert moved(t, first_pid, pid), (first_pid, pid)
    a.close()


def test_each_client_has_its_own_statement_names(target):
    t = target()
    a, b = t.raw(), t.raw()
    assert kinds(exchange(a, parse("s", "SELECT pg_backend_pid(), 'a'"), SYNC)) == "1Z"
    assert kinds(exchange(b, parse("s", "SELECT pg_backend_pid(), 'b'"), SYNC)) == "1Z"
    a_pid, value = run_statement(a, "s")
    assert value == "a"
    with t.onto(a_pid):
        pid, value = run_statement(b, "s")
        assert value == "b"
        assert not t.moves or pid == a_pid
    with t.elsewhere(a_pid):
        pid, value = run_statement(a, "s")
        assert value == "a"
        assert moved(t, a_pid, pid)
    a.close()
    b.close()


def test_closing_a_statement_leaves_another_clients_statement_of_the_same_text(target):
    t = target()
    a, b = t.raw(), t.raw()
    text = "SELECT pg_backend_pid(), 'shared'"
    assert kinds(exchange(a, parse("mine", text), SYNC)) == "1Z"
    assert kinds(exchange(b, parse("yours", text), SYNC)) == "1Z"
    b_pid, _ = run_statement(b, "yours")
    a_pid, _ = run_statement(a, "mine")
    assert kinds(exchange(a, close_statement("mine"), SYNC)) == "3Z"
    assert error(exchange(a, bind("mine"), execute(), SYNC)) == \
        ("26000", 'prepared statement "mine" does not exist')
    for pid in (a_pid, b_pid):
        with t.onto(pid):
            assert run_statement(b, "yours")[1] == "shared"
    a.close()
    b.close()


def test_parse_of_a_name_in_use_gives_42p05_and_keeps_the_first_definition(target):
    t = target()
    a = t.raw()
    assert kinds(exchange(a, parse("dup", "SELECT pg_backend_pid(), 'first'"), SYNC)) == "1Z"
    again = exchange(a, parse("dup", "SELECT pg_backend_pid(), 'second'"), SYNC)
    assert kinds(again) == "EZ", again
    assert error(again) == ("42P05", 'prepared statement "dup" already exists')
    assert again[-1] == (b"Z", b"I")
    # The same text again is a duplicate too.
    same = exchange(a, parse("dup", "SELECT pg_backend_pid(), 'first'"), SYNC)
    assert error(same) == ("42P05", 'prepared statement "dup" already exists')
    pid, value = run_statement(a, "dup")
    assert value == "first"
    with t.elsewhere(pid):
        assert run_statement(a, "dup")[1] == "first"
    assert a.run("SELECT 1").rows == [("1",)]
    a.close()


def test_a_duplicate_parse_in_a_batch_rolls_the_batch_back(target, fresh_table):
    t = target()
    a = t.raw()
    insert = f'INSERT INTO "{fresh_table}" (id, note) VALUES ($1, $2)'
    assert kinds(exchange(a, parse("ins", insert), SYNC)) == "1Z"
    batch = exchange(a, bind("ins", "1", "before"), execute(), parse("ins", insert),
                     bind("ins", "2", "after"), execute(), SYNC)
    assert kinds(batch) == "2CEZ", batch
    assert error(batch) == ("42P05", 'prepared statement "ins" already exists')
    # As in PostgreSQL, the error aborts the implicit transaction: the first INSERT is undone.
    assert a.run(f'SELECT count(*) FROM "{fresh_table}"').rows == [("0",)]
    assert kinds(exchange(a, bind("ins", "3", "later"), execute(), SYNC)) == "2CZ"
    assert a.run(f'SELECT id FROM "{fresh_table}"').rows == [("3",)]
    a.close()


def test_bind_or_describe_of_an_unknown_name_gives_26000(target):
    t = target()
    a = t.raw()
    missing = ("26000", 'prepared statement "nope" does not exist')
    unknown_bind = exchange(a, bind("nope", "1"), execute(), SYNC)
    assert kinds(unknown_bind) == "EZ", unknown_bind
    assert error(unknown_bind) == missing
    unknown_describe = exchange(a, describe_statement("nope"), SYNC)
    assert kinds(unknown_describe) == "EZ", unknown_describe
    assert error(unknown_describe) == missing
    assert unknown_describe[-1] == (b"Z", b"I")
    assert a.run("SELECT 1").rows == [("1",)]
    assert kinds(exchange(a, parse("nope", "SELECT pg_backend_pid(), 'now'"), SYNC)) == "1Z"
    assert run_statement(a, "nope")[1] == "now"
    a.close()


def test_bind_of_an_unknown_name_in_a_batch_rolls_the_batch_back(target, fresh_table):
    t = target()
    a = t.raw()
    insert = f'INSERT INTO "{fresh_table}" (id, note) VALUES ($1, $2)'
    assert kinds(exchange(a, parse("ins", insert), SYNC)) == "1Z"
    batch = exchange(a, bind("ins", "1", "before"), execute(), bind("nope"), execute(),
                     bind("ins", "2", "after"), execute(), SYNC)
    assert kinds(batch) == "2CEZ", batch
    assert error(batch) == ("26000", 'prepared statement "nope" does not exist')
    assert a.run(f'SELECT count(*) FROM "{fresh_table}"').rows == [("0",)]
    a.close()


def test_a_parse_that_fails_leaves_the_name_free(target):
    t = target()
    a = t.raw()
    bad = exchange(a, parse("s", "SELEC 1"), SYNC)
    assert kinds(bad) == "EZ" and error(bad)[0] == "42601", bad
    assert error(exchange(a, bind("s"), execute(), SYNC)) == \
        ("26000", 'prepared statement "s" does not exist')
    assert kinds(exchange(a, parse("s", "SELECT pg_backend_pid(), 'fixed'"), SYNC)) == "1Z"
    pid, value = run_statement(a, "s")
    assert value == "fixed"
    with t.elsewhere(pid):
        assert run_statement(a, "s")[1] == "fixed"
    a.close()


def test_close_then_parse_of_the_same_name_takes_the_new_definition(target):
    t = target()
    a = t.raw()
    assert kinds(exchange(a, parse("s", "SELECT pg_backend_pid(), 'one'"), SYNC)) == "1Z"
    pid, value = run_statement(a, "s")
    assert value == "one"
    assert kinds(exchange(a, close_statement("s"), SYNC)) == "3Z"
    assert error(exchange(a, bind("s"), execute(), SYNC)) == \
        ("26000", 'prepared statement "s" does not exist')
    # Closing a name that was never prepared is not an error in PostgreSQL.
    assert kinds(exchange(a, close_statement("never"), SYNC)) == "3Z"
    assert kinds(exchange(a, parse("s", "SELECT pg_backend_pid(), $1::int + 1", (INT4,)),
                          SYNC)) == "1Z"
    assert run_statement(a, "s", "41")[1] == "42"
    with t.elsewhere(pid):
        assert run_statement(a, "s", "1")[1] == "2"
    # Close and Parse again in one batch, as drivers do when their statement cache evicts.
    batch = exchange(a, close_statement("s"), parse("s", "SELECT pg_backend_pid(), 'three'"),
                     bind("s"), execute(), SYNC)
    assert kinds(batch) == "312DCZ", batch
    assert rows(batch)[0][1] == "three"
    with t.onto(pid):
        assert run_statement(a, "s")[1] == "three"
    a.close()


@pytest.mark.parametrize("command, tag", [("DEALLOCATE ALL", "DEALLOCATE ALL"),
                                          ("discard all", "DISCARD ALL")],
                         ids=["deallocate-all", "discard-all"])
def test_deallocate_all_and_discard_all_forget_the_clients_statements(target, command, tag):
    t = target()
    a = t.raw()
    assert kinds(exchange(a, parse("s1", "SELECT pg_backend_pid(), 's1'"),
                          parse("s2", "SELECT pg_backend_pid(), 's2'"), SYNC)) == "11Z"
    pid, _ = run_statement(a, "s1")
    with t.elsewhere(pid):
        run_statement(a, "s2")
    result = a.run(command)
    assert result.error is None and command_tags(result.messages) == [tag], result.messages
    for name in ("s1", "s2"):
        assert error(exchange(a, bind(name), execute(), SYNC)) == \
            ("26000", f'prepared statement "{name}" does not exist')
    # The names are free again, for the same text or another one.
    assert kinds(exchange(a, parse("s1", "SELECT pg_backend_pid(), 's1'"),
                          parse("s2", "SELECT pg_backend_pid(), 'new s2'"), SYNC)) == "11Z"
    for steer in (t.onto, t.elsewhere):
        with steer(pid):
            assert run_statement(a, "s1")[1] == "s1"
            assert run_statement(a, "s2")[1] == "new s2"
    a.close()


@pytest.mark.parametrize("command", ["DEALLOCATE ALL", "DISCARD ALL"],
                         ids=["deallocate-all", "discard-all"])
def test_another_clients_discard_all_does_not_lose_my_statements(target, command):
    t = target()
    a, b = t.raw(), t.raw()
    assert kinds(exchange(b, parse("keep", "SELECT pg_backend_pid(), 'kept'"), SYNC)) == "1Z"
    b_pid, _ = run_statement(b, "keep")
    with t.onto(b_pid):
        # a runs the command on the very server where b's statement is prepared.
        a_pid = int(a.run("SELECT pg_backend_pid()").rows[0][0])
        assert not t.moves or a_pid == b_pid
        assert a.run(command).error is None
        pid, value = run_statement(b, "keep")
        assert value == "kept"
        assert not t.moves or pid == b_pid
    a.close()
    b.close()


def test_deallocate_of_one_statement_by_simple_and_extended_query(target):
    t = target()
    a = t.raw()
    assert kinds(exchange(a, parse("s1", "SELECT pg_backend_pid(), 'one'"),
                          parse("S 2", "SELECT pg_backend_pid(), 'two'"), SYNC)) == "11Z"
    pid, _ = run_statement(a, "s1")
    with t.elsewhere(pid):
        run_statement(a, "S 2")
    # By simple query, an unquoted name folded to lower case ...
    result = a.run("deallocate S1")
    assert result.error is None and command_tags(result.messages) == ["DEALLOCATE"], result.messages
    # ... and by extended query (as psycopg sends it), a quoted one.
    out = exchange(a, parse("", 'DEALLOCATE PREPARE "S 2"'), bind(""), execute(), SYNC)
    assert kinds(out) == "12CZ" and command_tags(out) == ["DEALLOCATE"], out
    for name in ("s1", "S 2"):
        assert error(exchange(a, bind(name), execute(), SYNC)) == \
            ("26000", f'prepared statement "{name}" does not exist')
    # A name the client never prepared gets PostgreSQL's own error.
    assert error(a.run("DEALLOCATE nosuch").messages) == \
        ("26000", 'prepared statement "nosuch" does not exist')
    assert kinds(exchange(a, parse("s1", "SELECT pg_backend_pid(), 'again'"), SYNC)) == "1Z"
    with t.onto(pid):
        assert run_statement(a, "s1")[1] == "again"
    a.close()


def test_psycopg_evicting_and_rolling_back_its_prepared_statements(target):
    """psycopg 3.1 sends DEALLOCATE name (as an unnamed Parse) past prepared_max, and DEALLOCATE
    ALL after a rollback; its statements must stay in step with the server's either way."""
    t = target(pool_size=2)

    def client(n):
        with t.connect(autocommit=False) as conn:
            conn.prepared_max = 2
            for r in range(4):
                for k in range(5):
                    got = conn.execute(f"SELECT %s::int + {k}", [n * 10 + r]).fetchone()
                    assert got == (n * 10 + r + k,)
                conn.commit()
                with pytest.raises(psycopg.errors.DivisionByZero):
                    conn.execute("SELECT 1 / %s::int", [0])
                conn.rollback()

    _run_clients(client, 6)


def test_statements_parsed_in_the_pipeline_after_deallocate_all_stay(target):
    t = target(pool_size=1, settings={"max_prepared_statements": 1})
    a, b = t.raw(), t.raw()
    assert kinds(exchange(b, parse("keep", "SELECT 'kept'::text"), parse("z", "SELECT 'z'::text"),
                          SYNC)) == "11Z"
    send(a, (b"Q", b"DEALLOCATE ALL\0"), parse("s2", "SELECT 'kept'::text"), SYNC)
    assert kinds(a.read_until_ready()) == "CZ"
    assert kinds(a.read_until_ready()) == "1Z"
    assert rows(exchange(a, bind("s2"), execute(), SYNC)) == [("kept",)]
    # b's statements are b's, whatever a's DEALLOCATE ALL did to the server.
    assert rows(exchange(b, bind("keep"), execute(), SYNC)) == [("kept",)]
    a.close()
    b.close()


def test_an_empty_statement_after_a_deallocate_keeps_its_own_reply(target):
    t = target(pool_size=1)
    a = t.raw()
    assert kinds(exchange(a, parse("s1", "SELECT 1"), SYNC)) == "1Z"
    out = exchange(a, parse("", "DEALLOCATE s1"), bind(""), execute(), SYNC)
    assert command_tags(out) == ["DEALLOCATE"], out
    assert kinds(exchange(a, parse("e", ""), bind("e"), execute(), SYNC)) == "12IZ"
    a.close()


def test_the_unnamed_statement_stays_the_clients_across_a_parse_pgmux_answers(target):
    """A Parse of a statement the server has already must not replace the client's unnamed
    statement, whether the client parsed it itself or it is a DEALLOCATE."""
    t = target(pool_size=1)
    a, b = t.raw(), t.raw()
    assert kinds(exchange(b, parse("shared", "SELECT 'shared'::text"), SYNC)) == "1Z"
    assert kinds(exchange(a, parse("s1", "SELECT 1"), SYNC)) == "1Z"
    out = exchange(a, parse("", "SELECT 'unnamed'::text"), parse("x", "SELECT 'shared'::text"),
                   bind(""), execute(), SYNC)
    assert kinds(out) == "112DCZ" and rows(out) == [("unnamed",)], out
    out = exchange(a, parse("", "DEALLOCATE s1"), parse("y", "SELECT 'shared'::text"), bind(""),
                   execute(), SYNC)
    assert kinds(out) == "112CZ" and command_tags(out) == ["DEALLOCATE"], out
    assert rows(exchange(a, bind("y"), execute(), SYNC)) == [("shared",)]
    a.close()
    b.close()


def test_a_skipped_batch_leaves_what_each_server_has_right(target):
    """An error skips a batch whose Parses pgmux had rewritten (and whose statements the LRU
    evicted others for); another client's statements on that server must keep working, and
    preparing the same text again must not collide with what is really there."""
    t = target(pool_size=1, settings={"max_prepared_statements": 2})
    a, b = t.raw(), t.raw()
    assert kinds(exchange(b, parse("keep", "SELECT 'L'::text"), SYNC)) == "1Z"
    assert kinds(exchange(b, parse("x1", "SELECT 'X'::text"), parse("x2", "SELECT 'Y'::text"),
                          SYNC)) == "11Z"
    # Execute of a portal that does not exist fails first: the rest of the batch is skipped.
    send(a, execute("nope"), parse("long", "SELECT 'L'::text"), parse("s2", "SELECT 'G'::text"),
         parse("s0", "SELECT 'Q'::text"), SYNC)
    assert error(a.read_until_ready())[0] == "34000"
    for _ in range(3):
        assert rows(exchange(b, bind("keep"), execute(), SYNC)) == [("L",)]
        assert rows(exchange(b, bind("x1"), execute(), SYNC)) == [("X",)]
    for name in ("long", "s2", "s0"):
        assert error(exchange(a, bind(name), execute(), SYNC)) == \
            ("26000", f'prepared statement "{name}" does not exist')
    assert kinds(exchange(a, parse("long", "SELECT 'L'::text"), bind("long"), execute(),
                          SYNC)) == "12DCZ"
    a.close()
    b.close()


def test_a_reset_query_that_discards_everything_is_followed(pgmux):
    """With server_reset_query_always, DISCARD ALL runs on the server at every release: pgmux
    must know the server has nothing prepared any more and prepare again."""
    t = _ThroughPgmux(pgmux(pool_mode="transaction", auth_type="trust", default_pool_size=1,
                            settings={"server_reset_query_always": 1,
                                      "server_reset_query": "DISCARD ALL"}), 1)
    a, b = t.raw(), t.raw()
    assert kinds(exchange(a, parse("s", "SELECT pg_backend_pid(), 'a'"), SYNC)) == "1Z"
    assert kinds(exchange(b, parse("s", "SELECT pg_backend_pid(), 'b'"), SYNC)) == "1Z"
    for _ in range(3):
        assert run_statement(a, "s")[1] == "a"
        assert run_statement(b, "s")[1] == "b"
    a.close()
    b.close()


def test_a_query_text_longer_than_the_packet_buffer(target):
    t = target()
    a = t.raw()
    texts = {"long": "x" * 12_000, "longer": "yz" * 40_000}
    assert kinds(exchange(a, *(parse(name, f"SELECT pg_backend_pid(), length('{text}') + $1::int")
                               for name, text in texts.items()), SYNC)) == "11Z"
    pids = set()
    for _ in range(2):
        for name, text in texts.items():
            pid, value = run_statement(a, name, "1")
            assert value == str(len(text) + 1)
            pids.add(pid)
        with t.elsewhere(pid):
            for name, text in texts.items():
                described = exchange(a, describe_statement(name), SYNC)
                assert kinds(described) == "tTZ", described
                pid, value = run_statement(a, name, "2")
                assert value == str(len(text) + 2)
                pids.add(pid)
    assert len(pids) == (2 if t.moves else 1), pids
    a.close()


def test_a_one_megabyte_bind_parameter(target):
    t = target()
    a = t.raw()
    big = os.urandom(512 * 1024).hex()  # 1 MiB of text that a shuffled byte would change
    expected = hashlib.md5(big.encode()).hexdigest()
    assert kinds(exchange(a, parse("wide", "SELECT pg_backend_pid(), md5($1::text)"),
                          parse("len", "SELECT pg_backend_pid(), length($1::text)"),
                          SYNC)) == "11Z"
    pid, digest = run_statement(a, "wide", big)
    assert digest == expected
    with t.elsewhere(pid):
        # The first Bind on this server is the 1 MiB one: the statement is prepared before it.
        other, digest = run_statement(a, "wide", big)
        assert digest == expected
        assert moved(t, pid, other)
        batch = exchange(a, bind("len", big), execute(), bind("wide", big), execute(), SYNC)
        assert kinds(batch) == "2DC2DCZ", batch
        assert [r[1] for r in rows(batch)] == [str(len(big)), expected]
    a.close()


def test_an_error_in_the_middle_of_a_batch_leaves_the_bookkeeping_right(target):
    t = target()
    a = t.raw()
    assert kinds(exchange(a, parse("ok", "SELECT pg_backend_pid(), $1::int + 1", (INT4,)),
                          # generate_series keeps the planner from folding 10 / $1 at Bind:
                          # the division fails in Execute.
                          parse("div", "SELECT pg_backend_pid(), 10 / g "
                                       "FROM generate_series($1::int, $1::int) AS g", (INT4,)),
                          parse("later", "SELECT pg_backend_pid(), $1::int * 100", (INT4,)),
                          SYNC)) == "111Z"
    pid, value = run_statement(a, "ok", "1")
    assert value == "2"
    with t.elsewhere(pid):
        # On a server that has none of them yet: 'later' comes after the failure, and so does
        # the Parse of 'fresh'; PostgreSQL skips both up to Sync.
        batch = exchange(a, bind("ok", "1"), execute(), bind("div", "0"), execute(),
                         bind("later", "2"), execute(), parse("fresh", "SELECT 'fresh'"), SYNC)
        assert kinds(batch) == "2DC2EZ", batch
        assert error(batch) == ("22012", "division by zero")
        assert batch[-1] == (b"Z", b"I")
        other, value = run_statement(a, "later", "5")
        assert value == "500"
        assert moved(t, pid, other)
        assert error(exchange(a, bind("fresh"), execute(), SYNC)) == \
            ("26000", 'prepared statement "fresh" does not exist')
        assert kinds(exchange(a, parse("fresh", "SELECT pg_backend_pid(), 'fresh'"),
                              SYNC)) == "1Z"
        assert run_statement(a, "fresh")[1] == "fresh"
        assert run_statement(a, "div", "5")[1] == "2"
    for name, param, expected in (("ok", "7", "8"), ("later", "3", "300"), ("div", "2", "5")):
        assert run_statement(a, name, param)[1] == expected
    assert a.run("SELECT 1").rows == [("1",)]
    a.close()


def test_parse_describe_flush_then_bind_execute_sync(target):
    # asyncpg prepares with Parse + Describe + Flush, reads the descriptions, then binds.
    t = target()
    a = t.raw()
    send(a, parse("s", "SELECT pg_backend_pid(), $1::int * 3"), describe_statement("s"), FLUSH)
    first = [a.read() for _ in range(3)]
    assert kinds(first) == "1tT", first
    assert field_names(first) == ["pg_backend_pid", "?column?"]
    pid, value = run_statement(a, "s", "7")
    assert value == "21"
    with t.elsewhere(pid):
        # A Describe + Flush of a statement this server lacks: only the descriptions come back.
        send(a, describe_statement("s"), FLUSH)
        described = [a.read() for _ in range(2)]
        assert kinds(described) == "tT", described
        other, value = run_statement(a, "s", "2")
        assert value == "6"
        assert moved(t, pid, other)
        send(a, parse("s2", "SELECT pg_backend_pid(), $1::text"), describe_statement("s2"),
             FLUSH)
        assert kinds([a.read() for _ in range(3)]) == "1tT"
        assert run_statement(a, "s2", "two")[1] == "two"
    assert a.run("SELECT 1").rows == [("1",)]
    a.close()


def test_more_statements_than_max_prepared_statements(pgmux):
    # Each server keeps at most 2: the others are prepared again whenever they are needed.
    t = _ThroughPgmux(pgmux(pool_mode="transaction", auth_type="trust", default_pool_size=2,
                            settings={"max_prepared_statements": 2}), 2)
    a, b = t.raw(), t.raw()
    names = [f"s{k}" for k in range(5)]
    for session in (a, b):
        assert kinds(exchange(session, *(parse(n, f"SELECT pg_backend_pid(), {k}")
                                         for k, n in enumerate(names)), SYNC)) == "11111Z"
    pid, _ = run_statement(a, "s0")
    for _ in range(3):
        for k, name in enumerate(names):
            assert run_statement(a, name)[1] == str(k)
            assert run_statement(b, names[-1 - k])[1] == str(4 - k)
        with t.elsewhere(pid):
            batch = exchange(a, *(m for n in names for m in (bind(n), execute())), SYNC)
            assert kinds(batch) == "2DC" * 5 + "Z", batch
            assert [r[1] for r in rows(batch)] == [str(k) for k in range(5)]
    prepared = t.on_each_server("SELECT count(*) FROM pg_prepared_statements")
    assert all(count <= 2 for ((count,),) in prepared.values()), prepared
    a.close()
    b.close()


# ---- a row type changed by DDL between executions ----

ROW_TYPE_CHANGED = ("0A000", "cached plan must not change result type")


def _row_type_change(t, pg, table, column):
    """Two clients prepare SELECT * FROM table, each inside an open transaction at the same time
    (through pgmux: on both servers of a pool of 2); a column is added; the old statement runs on
    each server; then one client prepares the same text again under its old name (Close +
    Parse), the other under a new name, and both run it on each server."""
    query = f'SELECT * FROM "{table}" ORDER BY id'
    a, b = t.raw(), t.raw()
    pids = []
    for session in (a, b):
        assert session.run("BEGIN").error is None
        prepared = exchange(session, parse("s", query), bind("s"), execute(), SYNC)
        assert kinds(prepared) == "12DCZ", prepared
        pids.append(int(session.run("SELECT pg_backend_pid()").rows[0][0]))
    for session in (a, b):
        assert session.run("COMMIT").error is None
    assert len(set(pids)) == 2, pids
    with pg.connect(user=USER) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} int DEFAULT 7").format(
            sql.Identifier(table), sql.Identifier(column)))
    old = []
    for pid in pids:
        with t.onto(pid):
            outcome = exchange(a, bind("s"), execute(), SYNC)
            assert kinds(outcome) in ("EZ", "2EZ"), outcome
            old.append(error(outcome))
    assert kinds(exchange(a, close_statement("s"), parse("s", query), SYNC)) == "31Z"
    assert kinds(exchange(b, parse("s_again", query), SYNC)) == "1Z"
    new = []
    for pid in pids:
        with t.onto(pid):
            for session, name in ((a, "s"), (b, "s_again")):
                outcome = exchange(session, describe_statement(name), bind(name), execute(), SYNC)
                assert kinds(outcome) == "tT2DCZ", outcome
                new.append((field_names(outcome), rows(outcome)))
    a.close()
    b.close()
    return old, new


def test_a_row_type_change_gives_postgresqls_error_until_the_client_prepares_again(
        pg, pgmux, fresh_table):
    with pg.connect(user=USER) as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1, 'one')").format(
            sql.Identifier(fresh_table)))
    old, new = _row_type_change(_Direct(pg), pg, fresh_table, "added_directly")
    assert old == [ROW_TYPE_CHANGED] * 2
    assert new == [(["id", "note", "added_directly"], [("1", "one", "7")])] * 4
    # One worker: a server moving between workers has its statements deallocated, so the old
    # statement would be prepared afresh there instead of failing as it does directly.
    mux = _ThroughPgmux(pgmux(pool_mode="transaction", auth_type="trust", default_pool_size=2,
                              settings={"workers": 1}), 2)
    old, new = _row_type_change(mux, pg, fresh_table, "added_through_pgmux")
    assert old == [ROW_TYPE_CHANGED] * 2
    assert new == [(["id", "note", "added_directly", "added_through_pgmux"],
                    [("1", "one", "7", "7")])] * 4


# ---- psycopg 3 preparing every statement (prepare_threshold=0) ----

def _run_clients(worker, count, timeout=90):
    """Runs worker(n) for n in range(count) in threads; fails with every error they raised."""
    errors = []

    def guarded(n):
        try:
            worker(n)
        except BaseException as e:  # pytest's failures are BaseExceptions too
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=guarded, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    assert errors == []


def _check_statements_moved(t, pids_by_client, pool_size):
    """Through pgmux some client ran its statements on several servers of the pool; directly,
    each client kept its own backend."""
    all_pids = set().union(*pids_by_client.values())
    if t.moves:
        assert len(all_pids) <= pool_size, all_pids
        assert max(len(p) for p in pids_by_client.values()) > 1, pids_by_client
    else:
        assert all(len(p) == 1 for p in pids_by_client.values()), pids_by_client
        assert len(all_pids) == len(pids_by_client)


PSYCOPG_CLIENTS = 20
PSYCOPG_ROUNDS = 10


def test_psycopg_prepared_statements_from_20_connections_on_a_pool_of_3(target, fresh_table):
    t = target(pool_size=3, auth_type="md5")
    table = f'"{fresh_table}"'
    insert = f"INSERT INTO {table} (id, note) VALUES (%s, %s)"
    pids = collections.defaultdict(set)

    def client(n):
        with t.connect() as conn:
            for r in range(PSYCOPG_ROUNDS):
                base = (n * PSYCOPG_ROUNDS + r) * 10

                def backend_pid():
                    pid, doubled = conn.execute("SELECT pg_backend_pid(), %s::int * 2",
                                                [base]).fetchone()
                    assert doubled == 2 * base
                    pids[n].add(pid)

                def concat():
                    assert conn.execute("SELECT %s::text || 'x'", [str(base)]).fetchone() == \
                        (f"{base}x",)

                def transaction():
                    with conn.transaction():
                        conn.execute(insert, [base, f"n{base}"])
                        assert conn.execute(f"SELECT note FROM {table} WHERE id = %s",
                                            [base]).fetchone() == (f"n{base}",)

                def series():
                    assert conn.execute("SELECT sum(g) FROM generate_series(1, %s::int) AS g",
                                        [n + 1]).fetchone() == ((n + 1) * (n + 2) // 2,)

                def many():
                    conn.cursor().executemany(insert, [(base + 1, "m"), (base + 2, "m")])
                    assert conn.execute(f"SELECT count(*) FROM {table} WHERE id BETWEEN %s AND %s",
                                        [base + 1, base + 2]).fetchone() == (2,)

                # Rotated so that psycopg's names (_pg3_0, _pg3_1, ...) stand for different
                # texts on different connections.
                steps = [backend_pid, concat, transaction, series, many]
                for step in steps[n % 5:] + steps[:n % 5]:
                    step()
            # psycopg really prepared them: the server this transaction runs on has the text.
            with conn.transaction():
                backend_pid()
                texts = [s for (s,) in conn.execute(
                    "SELECT statement FROM pg_prepared_statements").fetchall()]
            assert "SELECT pg_backend_pid(), $1::int * 2" in texts, texts

    _run_clients(client, PSYCOPG_CLIENTS)
    _check_statements_moved(t, pids, 3)
    runs = PSYCOPG_CLIENTS * PSYCOPG_ROUNDS
    with t.connect() as conn:
        count, total = conn.execute(f"SELECT count(*), sum(id) FROM {table}").fetchone()
    assert count == 3 * runs
    assert total == sum(3 * base + 3 for base in range(0, runs * 10, 10))


PIPELINE_CLIENTS = 6
PIPELINE_ROUNDS = 4
Q_DOUBLE = "SELECT %s::int * 2"
Q_DIVIDE = "SELECT 10 / %s::int"
Q_NEXTVAL = "SELECT nextval(%s::regclass)"


def test_psycopg_pipelines_of_prepared_statements_with_an_error_in_the_middle(target, pg):
    t = target(pool_size=2, auth_type="md5")
    seq = f"pipeline_seq_{t.name}_{os.getpid()}"
    with pg.connect(user=USER) as conn:
        conn.execute(sql.SQL("DROP SEQUENCE IF EXISTS {}").format(sql.Identifier(seq)))
        conn.execute(sql.SQL("CREATE SEQUENCE {}").format(sql.Identifier(seq)))

    def client(n):
        with t.connect() as conn:
            # Every statement is prepared before the pipelines, so that psycopg sends no Parse
            # in the part of a pipeline the server skips (psycopg 3.1 would then wrongly believe
            # that statement prepared).
            assert conn.execute(Q_DOUBLE, [1]).fetchone() == (2,)
            assert conn.execute(Q_DIVIDE, [5]).fetchone() == (2,)
            conn.execute(Q_NEXTVAL, [seq])
            for r in range(PIPELINE_ROUNDS):
                with conn.pipeline():
                    doubles = [conn.execute(Q_DOUBLE, [n * 100 + k]) for k in range(5)]
                    nextval = conn.execute(Q_NEXTVAL, [seq])
                assert [c.fetchone() for c in doubles] == \
                    [(2 * (n * 100 + k),) for k in range(5)]
                assert nextval.fetchone()[0] > 0
                before, after = [], []
                with pytest.raises(psycopg.errors.DivisionByZero):
                    with conn.pipeline():
                        for k in range(3):
                            before.append(conn.execute(Q_DOUBLE, [k]))
                        before.append(conn.execute(Q_NEXTVAL, [seq]))
                        conn.execute(Q_DIVIDE, [0])
                        for _ in range(3):
                            cur = conn.cursor()
                            after.append(cur)
                            cur.execute(Q_NEXTVAL, [seq])
                assert [c.fetchone() for c in before[:3]] == [(0,), (2,), (4,)]
                assert before[3].fetchone()[0] > 0
                for cur in after:
                    with pytest.raises(psycopg.Error):  # no result: the server skipped it
                        cur.fetchone()
                # The connection works again, in and out of a pipeline.
                assert conn.execute(Q_DIVIDE, [2]).fetchone() == (5,)
                with conn.pipeline():
                    again = [conn.execute(Q_DOUBLE, [r]), conn.execute(Q_DIVIDE, [1])]
                assert [c.fetchone() for c in again] == [(2 * r,), (10,)]

    try:
        _run_clients(client, PIPELINE_CLIENTS)
        with pg.connect() as conn:
            last = conn.execute(sql.SQL("SELECT last_value FROM {}").format(
                sql.Identifier(seq))).fetchone()[0]
        # One nextval when preparing, then two per round; none of the skipped ones ran.
        assert last == PIPELINE_CLIENTS * (1 + 2 * PIPELINE_ROUNDS)
    finally:
        with pg.connect(user=USER) as conn:
            conn.execute(sql.SQL("DROP SEQUENCE IF EXISTS {}").format(sql.Identifier(seq)))


# ---- asyncpg with its default statement cache ----

ASYNCPG_TASKS = 200
ASYNCPG_ROUNDS = 3


class _Rollback(Exception):
    pass


async def _asyncpg_workload(t, table):
    """200 tasks share an asyncpg pool of 10 connections; returns (pids by client, ids kept)."""
    table = f'"{table}"'
    insert = f"INSERT INTO {table} (id, note) VALUES ($1, $2)"
    pids = collections.defaultdict(set)
    pool = await asyncpg.create_pool(host=t.host, port=t.port, user=USER, password=PASSWORD,
                                     database=TEST_DB, min_size=10, max_size=10,
                                     command_timeout=60)
    try:
        async def task(i):
            kept = []
            for r in range(ASYNCPG_ROUNDS):
                base = (i * ASYNCPG_ROUNDS + r) * 10
                async with pool.acquire() as conn:
                    kind = (i + r) % 5
                    if kind == 0:
                        async with conn.transaction():
                            await conn.execute(insert, base, f"note {base}")
                            note = await conn.fetchval(f"SELECT note FROM {table} WHERE id = $1",
                                                       base)
                        assert note == f"note {base}"
                        kept.append(base)
                    elif kind == 1:
                        ids = [base + k for k in range(1, 6)]
                        await conn.executemany(insert, [(k, "many") for k in ids])
                        assert await conn.fetchval(
                            f"SELECT count(*) FROM {table} WHERE id BETWEEN $1 AND $2",
                            ids[0], ids[-1]) == 5
                        kept.extend(ids)
                    elif kind == 2:
                        got = await conn.fetch(
                            "SELECT g, $1::int * g AS m FROM generate_series(1, $2::int) AS g",
                            i, 10)
                        assert [(row["g"], row["m"]) for row in got] == \
                            [(g, i * g) for g in range(1, 11)]
                    elif kind == 3:
                        row = await conn.fetchrow(
                            "SELECT pg_backend_pid() AS pid, $1::text || '/' || $2::text AS s",
                            str(i), str(r))
                        assert row["s"] == f"{i}/{r}"
                        pids[conn.get_server_pid()].add(row["pid"])
                    else:
                        try:
                            async with conn.transaction():
                                await conn.execute(insert, -base - 1, "rolled back")
                                assert await conn.fetchval(
                                    f"SELECT count(*) FROM {table} WHERE id = $1",
                                    -base - 1) == 1
                                raise _Rollback
                        except _Rollback:
                            pass
            return kept

        results = await asyncio.gather(*(task(i) for i in range(ASYNCPG_TASKS)),
                                       return_exceptions=True)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        assert errors == [], f"{len(errors)} of {ASYNCPG_TASKS} tasks failed: {errors[:10]}"
        async with pool.acquire() as conn:
            stored = await conn.fetchrow(f"SELECT count(*) AS n, sum(id) AS total, "
                                         f"count(*) FILTER (WHERE id < 0) AS negative "
                                         f"FROM {table}")
        kept = [k for ids in results for k in ids]
        return pids, kept, stored
    finally:
        await pool.close()


def test_asyncpg_pool_of_10_with_its_statement_cache_on_a_pool_of_3(target, fresh_table):
    t = target(pool_size=3, auth_type="md5")
    pids, kept, stored = asyncio.run(_asyncpg_workload(t, fresh_table))
    assert (stored["n"], stored["total"], stored["negative"]) == (len(kept), sum(kept), 0)
    _check_statements_moved(t, pids, 3)


# ---- pgbench -M prepared / -M extended ----

BENCH_CLIENTS = 50
BENCH_POOL = 3
BENCH_SECONDS = 8


@pytest.fixture(scope="module")
def bench_tables(pg):
    init_pgbench_tables(pg, BENCH_USER, 1)


@pytest.mark.parametrize("mode, script", [("prepared", ["-S"]), ("prepared", []),
                                          ("extended", ["-S"])],
                         ids=["prepared-select-only", "prepared-tpcb", "extended-select-only"])
def test_pgbench_with_50_clients_on_a_pool_of_3(pg, pgmux, bench_tables, mode, script):
    mux = pgmux(pool_mode="transaction", auth_type="md5", default_pool_size=BENCH_POOL,
                max_client_conn=BENCH_CLIENTS + 50)
    # pgbench prepares with the synchronous PQprepare: a client waiting for a server blocks its
    # whole thread, and with BEGIN..END scripts the servers may be held by clients of that same
    # thread (PgBouncer hangs the same way). One thread per client avoids that deadlock.
    threads = BENCH_CLIENTS if mode == "prepared" and not script else 2
    pgbench_through(pg, mux, BENCH_USER, clients=BENCH_CLIENTS, threads=threads,
                    seconds=BENCH_SECONDS, args=["-M", mode, *script], max_backends=BENCH_POOL)
    if not script:
        assert_tpcb_balances_agree(pg)
