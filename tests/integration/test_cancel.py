# CancelRequest forwarding when a cancel and its query do not meet as sent: a cancel that
# reaches PostgreSQL after its query has ended, and a query that reaches it after its cancel.
# A proxy between pgmux and PostgreSQL (slow_proxy.py) slows one or the other down. One server
# and one worker: the client always gets the same backend.
import time

import pytest

from conftest import TEST_DB
from pgwire import RawSession, send_cancel_request
from slow_proxy import SlowProxy
from test_server_pipelining import _fresh_sequence, _is_called


@pytest.fixture
def proxy(pg):
    p = SlowProxy(pg.host, pg.port)
    yield p
    p.close()


def _session(pgmux, proxy):
    mux = pgmux(auth_type="trust", default_pool_size=1, settings={"workers": 1},
                databases={TEST_DB: proxy.entry(TEST_DB)})
    s = RawSession(mux.host, mux.port, "md5user", TEST_DB)
    assert s.run("SELECT 1").rows == [("1",)]  # the server is logged in, and idle again
    return mux, s


def _cancel_too_late(mux, s, proxy):
    """A query, and a cancel for it that the proxy holds until well after the query has ended."""
    proxy.cancel_delay = 1.0
    s.query("SELECT pg_sleep(0.3)")
    send_cancel_request(mux.host, mux.port, *s.backend_key)  # pgmux closes it at once
    assert RawSession.error_of(s.read_until_ready()) is None


def test_a_query_sent_while_a_cancel_is_on_its_way_waits_for_it(pgmux, proxy):
    # PostgreSQL signals the backend twice for one CancelRequest (the process and its process
    # group), so a late cancel may stop whatever query runs when it comes. The client's next
    # query is written only once the cancel has arrived: it runs, and is not stopped.
    mux, s = _session(pgmux, proxy)
    _cancel_too_late(mux, s, proxy)
    r = s.run("SELECT 'second' FROM pg_sleep(1.2)")  # would be running when the cancel comes
    assert r.error is None and r.rows == [("second",)]
    assert proxy.cancels == 1  # sent once: its query had answered when it arrived
    s.close()


def test_a_cancel_for_a_query_held_in_pgmux_answers_it_without_running_it(pg, pgmux, proxy):
    _fresh_sequence(pg, "held_cancel_seq")
    mux, s = _session(pgmux, proxy)
    _cancel_too_late(mux, s, proxy)
    s.query("SELECT nextval('held_cancel_seq')")  # held until the first cancel has arrived
    time.sleep(0.2)
    send_cancel_request(mux.host, mux.port, *s.backend_key)
    err = RawSession.error_of(s.read_until_ready())
    assert err is not None and err["C"] == "57014", err
    assert not _is_called(pg, "held_cancel_seq")
    assert proxy.cancels == 1  # the second never went to PostgreSQL
    assert s.run("SELECT 'after'").rows == [("after",)]
    s.close()


def test_a_cancel_that_reaches_the_server_before_its_query_is_sent_again(pgmux, proxy):
    # PostgreSQL ignores a cancel that comes while the backend waits for a command. Here the
    # query reaches the server 50 ms after pgmux wrote it, and the cancel sent meanwhile finds
    # the backend idle: pgmux sends it again while the query stays unanswered.
    mux, s = _session(pgmux, proxy)
    proxy.write_delay = 0.05
    s.query("SELECT pg_sleep(30)")
    send_cancel_request(mux.host, mux.port, *s.backend_key)
    err = RawSession.error_of(s.read_until_ready())
    assert err is not None and err["C"] == "57014", err
    assert proxy.cancels >= 2
    proxy.write_delay = 0.0
    assert s.run("SELECT 'after'").rows == [("after",)]
    s.close()
