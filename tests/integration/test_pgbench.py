# pgbench through pgmux in transaction mode: a thousand clients share a pool of 20 server
# connections (PostgreSQL allows 100), every transaction succeeds, and PostgreSQL never sees
# more than the pool's 20 backends for the pgbench user.
import re
import subprocess

import pytest

from conftest import PG_BIN, ROLES, TEST_DB, BackendSampler, client_env, wait_for_no_backends

BENCH_USER = "benchuser"
POOL_SIZE = 20
CLIENTS = 1000
SCALE = 2
DURATION_S = 10
SAMPLE_INTERVAL_S = 0.1


def _pgbench(args, password, timeout):
    return subprocess.run([str(PG_BIN / "pgbench"), *args], capture_output=True, text=True,
                          timeout=timeout, env=client_env(password))


@pytest.fixture(scope="module")
def bench_tables(pg):
    """pgbench's tables in testdb, loaded directly (not through pgmux) and owned by benchuser."""
    result = _pgbench(["-i", "-q", "-s", str(SCALE), "-h", str(pg.socket_dir), "-p", str(pg.port),
                       "-U", BENCH_USER, TEST_DB], None, timeout=120)
    assert result.returncode == 0, result.stderr
    return SCALE


def _run_under_sampling(pg, mux, script_args):
    wait_for_no_backends(pg, [BENCH_USER])
    sampler = BackendSampler(pg, [BENCH_USER], interval=SAMPLE_INTERVAL_S)
    sampler.start()
    try:
        result = _pgbench(["-n", "-c", str(CLIENTS), "-j", "2", "-T", str(DURATION_S),
                           *script_args, "-h", mux.host, "-p", str(mux.port), "-U", BENCH_USER,
                           TEST_DB], ROLES[BENCH_USER][1], timeout=200)
    finally:
        sampler.stop()
    report = f"pgbench exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n" \
             f"{result.stderr[-5000:]}"
    assert result.returncode == 0, report
    assert re.search(r"^number of failed transactions: 0\b", result.stdout, re.M), report
    assert "aborted" not in result.stderr, report
    processed = re.search(r"^number of transactions actually processed: (\d+)", result.stdout,
                          re.M)
    assert processed and int(processed.group(1)) > 0, report
    print(f"{processed.group(1)} transactions; {len(sampler.counts)} samples of "
          f"pg_stat_activity, at most {max(sampler.counts)} backends for {BENCH_USER}")
    # The sampler saw pgbench's backends at all, so the bound below is not vacuous.
    assert max(sampler.counts) >= 1, sampler.counts
    assert max(sampler.counts) <= POOL_SIZE, \
        f"PostgreSQL had up to {max(sampler.counts)} backends for {BENCH_USER}; samples: " \
        f"{sampler.counts}"
    return result


@pytest.fixture
def bench_mux(pgmux, bench_tables, raised_fd_limit):
    return pgmux(pool_mode="transaction", auth_type="md5", default_pool_size=POOL_SIZE,
                 max_client_conn=CLIENTS + 100)


@pytest.mark.slow
def test_pgbench_tpcb_with_1000_clients_fits_in_a_pool_of_20(pg, bench_mux):
    _run_under_sampling(pg, bench_mux, [])
    with pg.connect() as conn:
        # Each TPC-B transaction adds one delta to an account, a teller, a branch and the
        # history: the sums agree only if no transaction was split or applied in part.
        sums = conn.execute(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
            "(SELECT sum(tbalance) FROM pgbench_tellers), "
            "(SELECT sum(bbalance) FROM pgbench_branches), "
            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)").fetchone()
    assert len(set(sums)) == 1, sums


@pytest.mark.slow
def test_pgbench_select_only_with_1000_clients_fits_in_a_pool_of_20(pg, bench_mux):
    _run_under_sampling(pg, bench_mux, ["-S"])


def test_pgbench_initialises_a_database_through_pgmux(pg, pgmux):
    mux = pgmux(pool_mode="transaction", auth_type="scram-sha-256")
    result = _pgbench(["-i", "-q", "-s", "1", "-h", mux.host, "-p", str(mux.port),
                       "-U", BENCH_USER, "benchinit"], ROLES[BENCH_USER][1], timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    with pg.connect(dbname="benchinit") as conn:
        assert conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0] == 100_000
        assert conn.execute("SELECT count(*) FROM pgbench_branches").fetchone()[0] == 1
