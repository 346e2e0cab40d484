# Named prepared statements from real drivers in transaction mode: node-postgres named queries
# and JDBC with prepareThreshold=1 prepare a statement once per client connection and then only
# Bind/Execute it, while pgmux moves the client among a pool of 3 servers. Every execution must
# succeed with the right result, transactions stay on one server, and the rows committed (and
# not the rows rolled back) are in the table afterwards.
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest
from psycopg import sql

from conftest import ROLES, TEST_DB

HERE = pathlib.Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
JAVA_DIR = HERE / "java"
JDBC_JAR = pathlib.Path("/usr/share/java/postgresql.jar")
USER = "md5user"
POOL_SIZE = 3
SEED_ROWS = 100
# Executions of named statements per client and round, in both programs: get, range, whoami,
# then in a transaction whoami, insert, get, whoami, then get after COMMIT/ROLLBACK.
EXECUTIONS_PER_ROUND = 8
NODE_CLIENTS, NODE_ROUNDS, NODE_ID_BASE = 30, 8, 100000
JDBC_THREADS, JDBC_ROUNDS, JDBC_ID_BASE = 20, 10, 200000
NPM_TIMEOUT_S = 150


def install_node_postgres():
    """node-postgres installed with `npm ci` from the committed lock file into a cache directory
    outside the repository, keyed by the lock file's contents; returns its node_modules. Called
    from the test, not a fixture: an unreachable registry fails the test (it is not an error in
    set-up, nor a skip)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node/npm not found: scripts/install-deps.sh installs them"
    manifest = (NODE_DIR / "package.json").read_bytes()
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    key = hashlib.sha256(manifest + b"\0" + lock).hexdigest()[:16]
    cache = pathlib.Path(tempfile.gettempdir()) / f"pgmux-it-node-{os.getuid()}-{key}"
    if (cache / "node_modules" / "pg" / "package.json").exists():
        return cache / "node_modules"
    # Installed beside the cache and renamed into place: a cache directory is always complete.
    staging = pathlib.Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
    try:
        shutil.copy(NODE_DIR / "package.json", staging)
        shutil.copy(NODE_DIR / "package-lock.json", staging)
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=1",
                 "--fetch-timeout=30000"],
                cwd=staging, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm ci did not finish within {NPM_TIMEOUT_S} s: is the npm registry "
                        f"reachable? (node-postgres is installed at test time)", pytrace=False)
        if result.returncode != 0:
            pytest.fail(f"npm ci failed ({result.returncode}): is the npm registry reachable? "
                        f"(node-postgres is installed at test time)\n{result.stdout[-3000:]}\n"
                        f"{result.stderr[-3000:]}", pytrace=False)
        try:
            staging.rename(cache)
        except OSError:
            pass  # another run installed the same lock file first; its copy is as good
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    assert (cache / "node_modules" / "pg" / "package.json").exists(), f"no pg in {cache}"
    return cache / "node_modules"


@pytest.fixture(scope="module")
def jdbc_classes(tmp_path_factory):
    """PreparedLoad compiled into a temporary directory against Debian's driver jar."""
    javac = shutil.which("javac")
    assert javac, "javac not found: scripts/install-deps.sh installs default-jdk-headless"
    assert JDBC_JAR.exists(), f"{JDBC_JAR} missing: install libpostgresql-jdbc-java"
    out = tmp_path_factory.mktemp("jdbc_prepared")
    result = subprocess.run([javac, "-cp", str(JDBC_JAR), "-d", str(out),
                             str(JAVA_DIR / "PreparedLoad.java")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def seed(pg, table):
    """Rows 1..SEED_ROWS with note 'seed-<id>', written directly to PostgreSQL."""
    with pg.connect(user=USER) as conn:
        conn.execute(sql.SQL("INSERT INTO {} SELECT g, 'seed-' || g FROM generate_series(1, %s) g")
                     .format(sql.Identifier(table)), [SEED_ROWS])


def written_rows(pg, table, id_base):
    with pg.connect(user=USER) as conn:
        return set(conn.execute(sql.SQL("SELECT id, note FROM {} WHERE id >= %s")
                                .format(sql.Identifier(table)), [id_base]).fetchall())


def expected_rows(id_base, clients, rounds, prefix):
    """What the programs commit: every round's row except every fourth, which is rolled back."""
    return {(id_base + c * 1000 + r, f"{prefix}{c}-r{r}")
            for c in range(clients) for r in range(rounds) if r % 4 != 3}


def run_node(node_modules, host, port, table, clients, rounds):
    """named_queries.js against host:port; returns its exit code, JSON summary and stderr."""
    config = {"host": host, "port": port, "user": USER, "password": ROLES[USER][1],
              "database": TEST_DB, "table": table, "clients": clients, "rounds": rounds,
              "seedRows": SEED_ROWS}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["NODE_PATH"] = str(node_modules)
    result = subprocess.run(["node", str(NODE_DIR / "named_queries.js"), json.dumps(config)],
                            capture_output=True, text=True, timeout=120, env=env)
    report = f"node exit {result.returncode}\nstdout:\n{result.stdout}\n" \
             f"stderr:\n{result.stderr[-5000:]}"
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else None
    return result.returncode, summary, report


def run_jdbc(jdbc_classes, host, port, table, threads, rounds):
    """PreparedLoad against host:port; returns its exit code, key=value summary and output."""
    url = f"jdbc:postgresql://{host}:{port}/{TEST_DB}"
    result = subprocess.run(
        ["java", "-cp", f"{jdbc_classes}:{JDBC_JAR}", "PreparedLoad", url, USER,
         ROLES[USER][1], table, str(threads), str(rounds), str(SEED_ROWS)],
        capture_output=True, text=True, timeout=120)
    report = f"java exit {result.returncode}\nstdout:\n{result.stdout}\n" \
             f"stderr:\n{result.stderr[-5000:]}"
    summary = {k: int(v) for k, v in (line.split("=", 1) for line in result.stdout.splitlines()
                                      if "=" in line)}
    return result.returncode, summary, report


def test_node_postgres_named_queries_from_many_clients(pgmux, pg, fresh_table):
    node_modules = install_node_postgres()
    seed(pg, fresh_table)
    mux = pgmux(pool_mode="transaction", default_pool_size=POOL_SIZE, max_client_conn=100)
    code, summary, report = run_node(node_modules, mux.host, mux.port, fresh_table,
                                     NODE_CLIENTS, NODE_ROUNDS)
    assert code == 0, report
    assert summary["errors"] == 0, report
    assert summary["executions"] == NODE_CLIENTS * NODE_ROUNDS * EXECUTIONS_PER_ROUND, report
    # The named statements really ran on several servers, and only the pool's.
    assert 2 <= summary["distinctBackends"] <= POOL_SIZE, report
    assert summary["clientsOnSeveralBackends"] >= 1, report
    assert written_rows(pg, fresh_table, NODE_ID_BASE) == \
        expected_rows(NODE_ID_BASE, NODE_CLIENTS, NODE_ROUNDS, "c")


def test_jdbc_server_prepared_statements_from_many_threads(pgmux, pg, fresh_table, jdbc_classes):
    seed(pg, fresh_table)
    mux = pgmux(pool_mode="transaction", default_pool_size=POOL_SIZE, max_client_conn=100)
    code, summary, report = run_jdbc(jdbc_classes, mux.host, mux.port, fresh_table,
                                     JDBC_THREADS, JDBC_ROUNDS)
    assert code == 0, report
    assert summary["errors"] == 0, report
    assert summary["executions"] == JDBC_THREADS * JDBC_ROUNDS * EXECUTIONS_PER_ROUND, report
    # Every thread's four statements had become named server-side statements.
    assert summary["server_prepared"] == JDBC_THREADS * 4, report
    assert 2 <= summary["distinct_backends"] <= POOL_SIZE, report
    assert summary["threads_on_several_backends"] >= 1, report
    assert written_rows(pg, fresh_table, JDBC_ID_BASE) == \
        expected_rows(JDBC_ID_BASE, JDBC_THREADS, JDBC_ROUNDS, "t")
