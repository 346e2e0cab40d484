# Startup parameters: real drivers (asyncpg, JDBC) log in with the parameters they send by
# default; an untracked parameter is refused with PgBouncer's 08P01 error unless it is listed in
# ignore_startup_parameters; `options` works for tracked keys only.
import asyncio
import pathlib
import shutil
import subprocess

import asyncpg
import pytest

from conftest import ROLES, TEST_DB
from pgwire import RawSession, attempt_login

JAVA_DIR = pathlib.Path(__file__).resolve().parent / "java"
JDBC_JAR = pathlib.Path("/usr/share/java/postgresql.jar")


def _login(mux, *params):
    return attempt_login(mux.host, mux.port, "md5user", TEST_DB, ROLES["md5user"][1],
                         extra_params=params)


def _raw(mux, *params):
    return RawSession(mux.host, mux.port, "md5user", TEST_DB, extra_params=params)


def _assert_refused(outcome, name):
    assert not outcome.ready, f"{name} was accepted"
    assert outcome.sqlstate == "08P01", outcome.error
    assert outcome.message == f"unsupported startup parameter: {name}"
    assert outcome.error.get("S") == "FATAL", outcome.error


async def _asyncpg_session(mux):
    conn = await asyncpg.connect(host=mux.host, port=mux.port, user="md5user",
                                 password=ROLES["md5user"][1], database=TEST_DB,
                                 statement_cache_size=0, timeout=10)
    try:
        seen = {}
        seen["simple"] = await conn.execute("SELECT 1")
        seen["row"] = tuple(await conn.fetchrow(
            "SELECT current_user, current_setting('client_encoding')"))
        seen["param"] = await conn.fetchval("SELECT $1::int + 1", 41)
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE asyncpg_rows (x int) ON COMMIT DROP")
            await conn.executemany("INSERT INTO asyncpg_rows VALUES ($1)", [(1,), (2,), (3,)])
            seen["in_transaction"] = await conn.fetchval("SELECT sum(x) FROM asyncpg_rows")
        return seen
    finally:
        await conn.close(timeout=10)


def test_asyncpg_connects_with_its_default_startup_parameters(pgmux):
    mux = pgmux(default_pool_size=2)
    seen = asyncio.run(asyncio.wait_for(_asyncpg_session(mux), timeout=60))
    assert seen["simple"] == "SELECT 1"
    assert seen["row"] == ("md5user", "UTF8")
    assert seen["param"] == 42
    assert seen["in_transaction"] == 6


@pytest.fixture(scope="module")
def jdbc_classes(tmp_path_factory):
    """JdbcSmoke compiled into a temporary directory (javac and Debian's driver jar)."""
    javac = shutil.which("javac")
    assert javac, "javac not found: scripts/install-deps.sh installs default-jdk-headless"
    assert JDBC_JAR.exists(), f"{JDBC_JAR} missing: install libpostgresql-jdbc-java"
    out = tmp_path_factory.mktemp("jdbc")
    result = subprocess.run([javac, "-d", str(out), str(JAVA_DIR / "JdbcSmoke.java")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def test_jdbc_connects_with_its_default_startup_parameters(pgmux, jdbc_classes):
    mux = pgmux(default_pool_size=1)
    # The driver sends TimeZone from the JVM's zone, DateStyle=ISO, extra_float_digits and
    # application_name in its startup packet.
    url = f"jdbc:postgresql://{mux.host}:{mux.port}/{TEST_DB}"
    result = subprocess.run(
        ["java", "-Duser.timezone=America/Sao_Paulo", "-cp", f"{jdbc_classes}:{JDBC_JAR}",
         "JdbcSmoke", url, "md5user", ROLES["md5user"][1]],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert seen == {
        "user": "md5user",
        "timezone": "America/Sao_Paulo",
        "datestyle": "ISO, MDY",
        "application_name": "PostgreSQL JDBC Driver",
        "client_encoding": "UTF8",
        "prepared_sum": str(sum(i + 1 for i in range(1, 6))),
        "transaction_rows": "10",
    }, result.stdout


def test_unknown_startup_parameter_is_refused(pgmux):
    mux = pgmux(auth_type="trust")
    _assert_refused(_login(mux, ("foo_bar", "1")), "foo_bar")
    # The refusal is for that client only.
    assert _login(mux).ready


def test_ignored_startup_parameter_is_accepted(pgmux):
    mux = pgmux(auth_type="trust", settings={"ignore_startup_parameters": "foo_bar"})
    session = _raw(mux, ("foo_bar", "1"))
    try:
        result = session.run("SELECT current_user")
        assert result.error is None, result.error
        assert result.rows == [("md5user",)]
    finally:
        session.close()


def test_extra_float_digits_is_accepted_by_default(pgmux):
    mux = pgmux(auth_type="trust")
    session = _raw(mux, ("extra_float_digits", "3"))
    try:
        result = session.run("SELECT 1")
        assert result.error is None and result.rows == [("1",)], result
    finally:
        session.close()


def test_options_with_a_tracked_key_is_accepted(pgmux):
    mux = pgmux(auth_type="trust", default_pool_size=1)
    utc = _raw(mux, ("options", "-c TimeZone=UTC"))
    kolkata = _raw(mux, ("options", "-c TimeZone=Asia/Kolkata"))
    try:
        for _ in range(2):
            assert utc.run("SHOW TimeZone").rows == [("UTC",)]
            assert kolkata.run("SHOW TimeZone").rows == [("Asia/Kolkata",)]
    finally:
        utc.close()
        kolkata.close()


def test_options_with_an_untracked_key_is_refused(pgmux):
    mux = pgmux(auth_type="trust")
    _assert_refused(_login(mux, ("options", "-c work_mem=64MB")), "options")


def test_options_listed_in_ignore_startup_parameters_is_accepted(pgmux, pg):
    mux = pgmux(auth_type="trust", settings={"ignore_startup_parameters": "options"})
    session = _raw(mux, ("options", "-c work_mem=64MB"))
    try:
        result = session.run("SHOW work_mem")
        assert result.error is None, result.error
        # Ignored means ignored: a pooled server is not left with one client's work_mem.
        with pg.connect() as direct:
            default = direct.execute("SHOW work_mem").fetchone()[0]
        assert result.rows == [(default,)]
    finally:
        session.close()
