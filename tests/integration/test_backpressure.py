# Large results stream through pgmux with backpressure: a client that reads slowly does not make
# pgmux buffer the result; the server side is paused instead.
import socket
import time

from conftest import TEST_DB
from pgwire import RawSession

RESULT_ROWS = 400_000  # x 1000-byte rows: about 400 MB on the wire


def _vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_slow_reader_of_a_large_result_keeps_pgmux_memory_flat(pgmux):
    mux = pgmux(auth_type="trust", default_pool_size=1)
    session = RawSession(mux.host, mux.port, "md5user", TEST_DB)
    # A small receive buffer, so the kernel cannot absorb the result either.
    session.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    rss_before = _vm_rss_kib(mux.proc.pid)
    session.query(f"SELECT repeat('x', 1000) FROM generate_series(1, {RESULT_ROWS})")
    # Read a little now and then for a while: PostgreSQL could send the whole result meanwhile.
    peak = rss_before
    rows = 0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        kind, _ = session.read()
        rows += kind == b"D"
        peak = max(peak, _vm_rss_kib(mux.proc.pid))
        time.sleep(0.02)
    # Then read everything and check it all arrived.
    while True:
        kind, payload = session.read()
        if kind == b"D":
            rows += 1
        elif kind == b"Z":
            break
    assert rows == RESULT_ROWS
    session.close()
    print(f"[backpressure] pgmux VmRSS {rss_before} KiB before, {peak} KiB peak while the client read slowly")
    # Without backpressure pgmux would hold hundreds of MB of the result.
    assert peak - rss_before < 32 * 1024
