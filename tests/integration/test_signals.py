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
