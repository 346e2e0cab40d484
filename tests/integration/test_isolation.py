# Transaction-mode isolation: an open transaction keeps its backend to itself, other clients never
# see its uncommitted rows, and a client that dies mid-transaction leaves nothing open behind.
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import PG_BIN, ROLES, client_env

READERS = 3
READS_PER_READER = 25


def _open_transactions(pg, user="md5user"):
    with pg.connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'testdb' AND usename = %s "
            "AND state LIKE 'idle in transaction%%'", [user]).fetchone()[0]


def _wait_for_open_transactions(pg, wanted, timeout=10.0):
    deadline = time.monotonic() + timeout
    count = _open_transactions(pg)
    while count != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        count = _open_transactions(pg)
    return count


def _probe(conn, table):
    """(backend pid, rows visible in table, whether this statement runs outside any xid)."""
    return conn.execute(f"SELECT pg_backend_pid(), (SELECT count(*) FROM {table}), "
                        f"pg_current_xact_id_if_assigned() IS NULL").fetchone()


def test_other_clients_never_see_or_share_an_open_transaction(pgmux, fresh_table):
    mux = pgmux(pool_mode="transaction", default_pool_size=2)
    with mux.connect() as writer:
        writer.execute("BEGIN")
        writer.execute(f"INSERT INTO {fresh_table} VALUES (1, 'uncommitted')")
        writer_pid = writer.execute("SELECT pg_backend_pid()").fetchone()[0]

        readers = [mux.connect() for _ in range(READERS)]
        seen = [[] for _ in readers]
        errors = []

        def read(conn, out):
            try:
                for _ in range(READS_PER_READER):
                    out.append(_probe(conn, fresh_table))
            except Exception as e:  # surfaced below; a thread cannot fail the test itself
                errors.append(e)

        threads = [threading.Thread(target=read, args=(c, s)) for c, s in zip(readers, seen)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        for samples in seen:
            assert len(samples) == READS_PER_READER
            for pid, rows, outside_xid in samples:
                assert pid != writer_pid, "a reader was given the backend of an open transaction"
                assert rows == 0, "a reader saw an uncommitted row"
                assert outside_xid

        writer.execute("COMMIT")
        for reader in readers:
            assert _probe(reader, fresh_table)[1] == 1
            reader.close()


def test_client_waits_for_the_only_backend_until_the_transaction_ends(pgmux, fresh_table):
    mux = pgmux(pool_mode="transaction", default_pool_size=1)
    with mux.connect() as writer, mux.connect() as waiter:
        writer.execute("BEGIN")
        writer.execute(f"INSERT INTO {fresh_table} VALUES (1, 'committed later')")
        writer_pid = writer.execute("SELECT pg_backend_pid()").fetchone()[0]

        result = []
        thread = threading.Thread(target=lambda: result.append(_probe(waiter, fresh_table)))
        thread.start()
        thread.join(timeout=1.0)  # gives the query time to reach pgmux; it must not be answered
        assert thread.is_alive(), f"answered while the only backend was in a transaction: {result}"

        writer.execute("COMMIT")
        thread.join(timeout=30)
        assert not thread.is_alive()
        pid, rows, outside_xid = result[0]
        # It ran on the same backend, after the commit, in a transaction of its own.
        assert (pid, rows, outside_xid) == (writer_pid, 1, True)


def _kill_psql(mux, table, pg):
    proc = subprocess.Popen(
        [str(PG_BIN / "psql"), "-X", "-q", "-w", "-h", mux.host, "-p", str(mux.port),
         "-U", "md5user", "testdb"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        env=client_env(ROLES["md5user"][1]))
    try:
        proc.stdin.write(f"BEGIN;\nINSERT INTO {table} VALUES (1, 'ghost');\n")
        proc.stdin.flush()
        assert _wait_for_open_transactions(pg, 1) == 1, "psql's transaction never opened"
    finally:
        proc.kill()
        proc.wait()


def _shut_down_socket(mux, table, pg):
    conn = mux.connect()
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO {table} VALUES (1, 'ghost')")
    assert _wait_for_open_transactions(pg, 1) == 1
    # The client vanishes without a Terminate message, as when its host dies.
    with socket.socket(fileno=os.dup(conn.fileno())) as s:
        s.shutdown(socket.SHUT_RDWR)
    conn.close()


def _close_with_terminate(mux, table, pg):
    conn = mux.connect()
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO {table} VALUES (1, 'ghost')")
    assert _wait_for_open_transactions(pg, 1) == 1
    conn.close()  # sends Terminate with the transaction still open


@pytest.mark.parametrize("vanish", [_kill_psql, _shut_down_socket, _close_with_terminate],
                         ids=["psql-killed", "socket-shut-down", "terminate-mid-transaction"])
def test_client_gone_mid_transaction_leaves_no_open_transaction(pgmux, fresh_table, pg, vanish):
    mux = pgmux(pool_mode="transaction", default_pool_size=1)
    assert _open_transactions(pg) == 0
    vanish(mux, fresh_table, pg)
    assert _wait_for_open_transactions(pg, 0) == 0, "the dead client's transaction is still open"
    with pg.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {fresh_table}").fetchone()[0] == 0
    # The pool's only slot is usable again, and what it serves is clean.
    with mux.connect() as conn:
        _, rows, outside_xid = _probe(conn, fresh_table)
        assert (rows, outside_xid) == (0, True)
        conn.execute(f"INSERT INTO {fresh_table} VALUES (2, 'after')")
    with pg.connect() as conn:
        ids = [r[0] for r in conn.execute(f"SELECT id FROM {fresh_table}")]
    assert ids == [2]
