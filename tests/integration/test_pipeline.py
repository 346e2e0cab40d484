# libpq pipeline mode through pgmux: several pipelining clients share a pool smaller than their
# number, and each gets every result, in order, with each Sync's batch on a single backend.
import os
import subprocess

import pytest

from conftest import REPO, ROLES, client_env

CLIENTS = 8
POOL_SIZE = 2


@pytest.fixture(scope="module")
def pipeline_client():
    path = os.environ.get("PIPELINE_CLIENT") or str(REPO / "build" / "pipeline_client")
    if not os.access(path, os.X_OK):
        pytest.fail(f"pipeline_client not found at {path}: build it, or set PIPELINE_CLIENT")
    return path


def _start(client, conninfo, *args):
    return subprocess.Popen([client, conninfo, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=client_env(ROLES["md5user"][1]))


def _run_parallel(client, conninfo, args, count):
    procs = [_start(client, conninfo, *args) for _ in range(count)]
    failures = []
    for i, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode != 0:
            failures.append(f"client {i} exit {proc.returncode}\n{out[-3000:]}\n{err[-3000:]}")
    assert not failures, "\n".join(failures)


def test_pipeline_client_is_correct_against_postgresql_directly(pg, pipeline_client):
    # Pins the tool itself, so that a failure through pgmux is pgmux's.
    conninfo = f"host={pg.socket_dir} port={pg.port} user=md5user dbname=testdb"
    _run_parallel(pipeline_client, conninfo,
                  ["--queries", "12", "--batches", "3", "--rounds", "3", "--error"], 1)


def test_pipelined_batches_return_every_result_in_order(pgmux, pipeline_client):
    mux = pgmux(pool_mode="transaction", default_pool_size=POOL_SIZE)
    _run_parallel(pipeline_client, mux.conninfo("md5user"),
                  ["--queries", "12", "--batches", "1", "--rounds", "30"], CLIENTS)


def test_several_syncs_in_flight_keep_their_results_apart(pgmux, pipeline_client):
    mux = pgmux(pool_mode="transaction", default_pool_size=POOL_SIZE)
    _run_parallel(pipeline_client, mux.conninfo("md5user"),
                  ["--queries", "10", "--batches", "4", "--rounds", "20"], CLIENTS)


def test_error_in_a_pipeline_aborts_only_its_own_batch(pgmux, pipeline_client):
    mux = pgmux(pool_mode="transaction", default_pool_size=POOL_SIZE)
    _run_parallel(pipeline_client, mux.conninfo("md5user"),
                  ["--queries", "10", "--batches", "3", "--rounds", "20", "--error"], CLIENTS)
