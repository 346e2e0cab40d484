# Client limits: past max_client_conn a client is refused with 53300, and a slot freed by a
# disconnecting client can be taken again.
import contextlib
import time

from conftest import ROLES
from pgwire import attempt_login

MAX_CLIENTS = 3


def _login(mux):
    return attempt_login(mux.host, mux.port, "md5user", "testdb", ROLES["md5user"][1])


def test_client_past_max_client_conn_is_refused_with_53300(pgmux):
    mux = pgmux(max_client_conn=MAX_CLIENTS, default_pool_size=2)
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(mux.connect()) for _ in range(MAX_CLIENTS)]
        for conn in held:
            assert conn.execute("SELECT 1").fetchone() == (1,)

        refused = _login(mux)
        assert not refused.ready
        assert refused.sqlstate == "53300"
        assert refused.message == "no more connections allowed (max_client_conn)"
        # The clients already in are not disturbed by the refusal.
        for conn in held:
            assert conn.execute("SELECT 2").fetchone() == (2,)

        held[0].close()
        # pgmux learns of the close asynchronously: allow it a moment to free the slot.
        deadline = time.monotonic() + 10
        outcome = _login(mux)
        while not outcome.ready and time.monotonic() < deadline:
            time.sleep(0.1)
            outcome = _login(mux)
        assert outcome.ready, outcome.error
