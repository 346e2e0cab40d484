# pgbench through pgmux in transaction mode: a thousand clients share a pool of 20 server
# connections (PostgreSQL allows 100), every transaction succeeds, and PostgreSQL never sees
# more than the pool's 20 backends for the pgbench user.
import pytest

from conftest import (ROLES, assert_tpcb_balances_agree, init_pgbench_tables, pgbench_through,
                      run_pgbench)

BENCH_USER = "benchuser"
POOL_SIZE = 20
CLIENTS = 1000
SCALE = 2
DURATION_S = 10


@pytest.fixture(scope="module")
def bench_tables(pg):
    init_pgbench_tables(pg, BENCH_USER, SCALE)
    return SCALE


def _run_under_sampling(pg, mux, script_args):
    return pgbench_through(pg, mux, BENCH_USER, clients=CLIENTS, threads=2, seconds=DURATION_S,
                           args=script_args, max_backends=POOL_SIZE)[0]


@pytest.fixture
def bench_mux(pgmux, bench_tables, raised_fd_limit):
    return pgmux(pool_mode="transaction", auth_type="md5", default_pool_size=POOL_SIZE,
                 max_client_conn=CLIENTS + 100)


@pytest.mark.slow
def test_pgbench_tpcb_with_1000_clients_fits_in_a_pool_of_20(pg, bench_mux):
    _run_under_sampling(pg, bench_mux, [])
    assert_tpcb_balances_agree(pg)


@pytest.mark.slow
def test_pgbench_select_only_with_1000_clients_fits_in_a_pool_of_20(pg, bench_mux):
    _run_under_sampling(pg, bench_mux, ["-S"])


def test_pgbench_initialises_a_database_through_pgmux(pg, pgmux):
    mux = pgmux(pool_mode="transaction", auth_type="scram-sha-256")
    result = run_pgbench(["-i", "-q", "-s", "1", "-h", mux.host, "-p", str(mux.port),
                          "-U", BENCH_USER, "benchinit"], ROLES[BENCH_USER][1])
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    with pg.connect(dbname="benchinit") as conn:
        assert conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0] == 100_000
        assert conn.execute("SELECT count(*) FROM pgbench_branches").fetchone()[0] == 1
