# Signals as PgBouncer has them: SIGHUP reloads the config and the auth file; a reload that fails
# keeps the running config; SIGUSR1/SIGUSR2 do not kill the pooler.
import signal
import time

from conftest import ROLES


def _wait_for_log(mux, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in mux.read_log():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the pgmux log:\n{mux.read_log()}")


def test_sighup_reloads_the_auth_file(pgmux, pg):
    # The server login uses the entry's password, so the auth file only decides who gets in.
    entry = f"host={pg.host} port={pg.port} dbname=testdb password={ROLES['md5user'][1]}"
    mux = pgmux(users={"md5user": "old-password"}, databases={"testdb": entry})
    assert mux.psql("-c", "SELECT 1", password="old-password").stdout == "1\n"
    mux.auth_path.write_text(f'"md5user" "{ROLES["md5user"][1]}"\n')
    mux.proc.send_signal(signal.SIGHUP)
    _wait_for_log(mux, "RELOAD: config")
    assert mux.psql("-c", "SELECT 2").stdout == "2\n"
    rejected = mux.psql("-c", "SELECT 3", password="old-password", check=False)
    assert rejected.returncode != 0
    assert "password authentication failed" in rejected.stderr


def test_failed_reload_keeps_the_running_config(pgmux):
    mux = pgmux()
    good = mux.ini_path.read_text()
    mux.ini_path.write_text(good + "max_client_conn = lots\n")
    mux.proc.send_signal(signal.SIGHUP)
    _wait_for_log(mux, "RELOAD failed")
    assert "max_client_conn" in mux.read_log()
    assert mux.proc.poll() is None
    assert mux.psql("-c", "SELECT 1").stdout == "1\n"


def test_sigusr1_and_sigusr2_do_not_stop_the_pooler(pgmux):
    mux = pgmux()
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        mux.proc.send_signal(sig)
    _wait_for_log(mux, "not supported yet")
    assert mux.proc.poll() is None
    assert mux.psql("-c", "SELECT 1").stdout == "1\n"


def test_reload_that_moves_a_database_moves_its_pool(pgmux, pg):
    mux = pgmux(default_pool_size=2)
    with mux.connect() as held:
        assert held.execute("SELECT current_database()").fetchone() == ("testdb",)
        # Point the entry at another database of the same cluster and reload.
        ini = mux.ini_path.read_text().replace("dbname=testdb", "dbname=postgres")
        mux.ini_path.write_text(ini)
        mux.proc.send_signal(signal.SIGHUP)
        _wait_for_log(mux, "RELOAD: pool testdb/md5user moves to")
        # Transaction mode: the next transaction gets a server of the new configuration.
        assert held.execute("SELECT current_database()").fetchone() == ("postgres",)
    with pg.connect() as direct:
        left = direct.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'md5user' AND datname = 'testdb'"
        ).fetchone()[0]
    assert left == 0  # servers of the old configuration were closed as they came free


def test_server_fast_close_ends_a_session_at_its_transaction_end(pgmux):
    mux = pgmux(pool_mode="session", settings={"server_fast_close": 1})
    with mux.connect() as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("testdb",)
        mux.ini_path.write_text(mux.ini_path.read_text().replace("dbname=testdb", "dbname=postgres"))
        mux.proc.send_signal(signal.SIGHUP)
        _wait_for_log(mux, "RELOAD: pool testdb/md5user moves to")
        import psycopg
        try:
            conn.execute("SELECT 1")
            conn.execute("SELECT 2")
            raised = None
        except psycopg.OperationalError as e:
            raised = e
        # The session ends at its transaction end (the FATAL that says why may be lost to the
        # client's next write hitting the closed socket; the log says it).
        assert raised is not None
        assert "closing: database configuration changed (server_fast_close)" in mux.read_log()
    with mux.connect() as fresh:
        assert fresh.execute("SELECT current_database()").fetchone() == ("postgres",)
