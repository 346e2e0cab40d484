# PostgreSQL restarted or stopped under pgmux: clients in flight get an error, never a hang;
# pgmux itself keeps running, drops the broken servers and serves again as soon as the database
# is back. Both tests leave the session's PostgreSQL running whatever happens.
import re
import subprocess
import threading
import time

from conftest import PG_BIN, ROLES, TEST_DB, client_env

BENCH_USER = "benchuser"
# Multi-statement transactions, so that the restart finds some of them half done.
LOAD_SCRIPT = "BEGIN;\nSELECT count(*) FROM pg_class;\nSELECT pg_sleep(0.005);\nEND;\n"
RECOVERY_DEADLINE_S = 20.0


def _psql_until_it_succeeds(mux, deadline_s=RECOVERY_DEADLINE_S):
    """Runs psql through pgmux until a query succeeds; returns the attempts' failures before."""
    failures = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = mux.psql("-c", "SELECT 'back'", check=False, timeout=15)
        if result.returncode == 0 and result.stdout == "back\n":
            return failures
        failures.append(result.stderr.strip())
        time.sleep(0.2)
    raise AssertionError(f"pgmux did not serve within {deadline_s} s of the restart; "
                         f"last errors: {failures[-3:]}")


def test_pgmux_serves_again_after_postgresql_restarts_under_pgbench_load(pgmux, pg, tmp_path):
    # server_login_retry is short: a connect attempt that hit the restart's down time must not
    # keep new clients away for PgBouncer's default 15 s.
    mux = pgmux(pool_mode="transaction", default_pool_size=5, auth_type="md5",
                settings={"server_login_retry": 1})
    pgmux_pid = mux.proc.pid
    script = tmp_path / "load.sql"
    script.write_text(LOAD_SCRIPT)
    bench = subprocess.Popen(
        [str(PG_BIN / "pgbench"), "-n", "-c", "20", "-j", "2", "-T", "12", "-f", str(script),
         "-h", mux.host, "-p", str(mux.port), "-U", BENCH_USER, TEST_DB],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=client_env(ROLES[BENCH_USER][1]))
    try:
        time.sleep(3)
        assert bench.poll() is None, f"pgbench ended before the restart: {bench.communicate()}"
        pg.restart()
        _psql_until_it_succeeds(mux)
        assert mux.proc.poll() is None and mux.proc.pid == pgmux_pid, "pgmux did not survive"
        # Every pgbench client ends: with an error for those the restart hit, none hangs.
        try:
            out, err = bench.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("pgbench still running 60 s after the restart: a client hangs")
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
        pg.ensure_running()
    processed = re.search(r"^number of transactions actually processed: (\d+)", out, re.M)
    assert processed and int(processed.group(1)) > 0, f"{out}\n{err[-3000:]}"
    print(f"pgbench exit {bench.returncode}, {processed.group(1)} transactions; "
          f"{err.count('aborted')} client(s) aborted by the restart")
    # pgmux is still whole: a fresh client gets consistent results.
    assert mux.psql("-c", "SELECT count(*) FROM generate_series(1, 1000)").stdout == "1000\n"


def test_client_waiting_while_postgresql_is_down_is_served_once_it_is_back(pgmux, pg):
    mux = pgmux(pool_mode="transaction", default_pool_size=2,
                settings={"server_login_retry": 1, "query_wait_timeout": 30})
    # The pool knows the server before the outage.
    assert mux.psql("-c", "SELECT 1").stdout == "1\n"
    outcome = {}

    def client():
        # Logs in and queries while the database is down: whichever step waits for a server,
        # it must be served once the database is back.
        try:
            with mux.connect() as conn:
                outcome["rows"] = conn.execute("SELECT 'served'").fetchall()
        except Exception as e:  # reported below
            outcome["error"] = repr(e)

    try:
        pg.stop_cluster()
        thread = threading.Thread(target=client)
        thread.start()
        time.sleep(2)
        pg.ensure_running()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the waiting client hangs after the database came back"
    finally:
        pg.ensure_running()
    assert outcome == {"rows": [("served",)]}, outcome
    _psql_until_it_succeeds(mux)
