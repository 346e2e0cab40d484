# pgmux's command line: --check-config judges a file without serving it, -V prints the version,
# and SIGTERM / SIGINT stop a running pgmux cleanly.
import re
import signal
import socket
import subprocess

import pytest

from conftest import REPO, pgmux_binary

GOOD_MAIN_SECTION = {
    "listen_addr": "127.0.0.1",
    "listen_port": "6432",
    "unix_socket_dir": "",
    "auth_type": "md5",
    "pool_mode": "transaction",
    "default_pool_size": "20",
    "max_client_conn": "100",
}


def _write_config(tmp_path, overrides=None):
    """Writes a complete config; returns its path and the line number of each main-section key."""
    auth = tmp_path / "userlist.txt"
    auth.write_text('"md5user" "md5-Secret.1"\n')
    main = dict(GOOD_MAIN_SECTION, auth_file=str(auth))
    main.update(overrides or {})
    lines = ["; written by test_command_line.py", "[databases]",
             "testdb = host=127.0.0.1 port=5432 dbname=testdb", "", "[pgbouncer]"]
    line_of = {}
    for key, value in main.items():
        lines.append(f"{key} = {value}")
        line_of[key] = len(lines)
    path = tmp_path / "pgmux.ini"
    path.write_text("\n".join(lines) + "\n")
    return path, line_of


def _run(*args):
    return subprocess.run([pgmux_binary(), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_check_config_accepts_a_valid_file(tmp_path):
    path, _ = _write_config(tmp_path)
    result = _run("--check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("key,bad_value", [
    ("default_pool_size", "banana"),
    ("pool_mode", "sometimes"),
    ("auth_type", "magic"),
    ("max_client_conn", "12x"),
])
def test_check_config_names_file_line_and_key_of_a_bad_value(tmp_path, key, bad_value):
    path, line_of = _write_config(tmp_path, {key: bad_value})
    result = _run("--check-config", str(path))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{path}:{line_of[key]}" in output
    assert key in output


def test_version_flag_prints_the_project_version():
    project = re.search(r"project\(pgmux VERSION (\S+)", (REPO / "CMakeLists.txt").read_text())
    result = _run("-V")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pgmux" in (result.stdout + result.stderr).lower()
    assert project.group(1) in result.stdout + result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_an_idle_pgmux(pgmux, sig):
    mux = pgmux(pool_mode="transaction")
    assert mux.psql("-c", "SELECT 1").stdout == "1\n"
    code = mux.signal_and_wait(sig, timeout=10)
    assert code == 0, f"exit code {code}"
    assert not _accepts(mux.port)


def _accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
