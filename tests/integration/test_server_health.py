# Server sanity settings: server_check_query before reusing a long-idle server, and
# server_reset_query_always in transaction mode.
import time


def _checks_run(pg, table):
    with pg.connect(user="md5user") as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE note = 'checked'").fetchone()[0]


def test_server_check_query_runs_before_a_long_idle_server_is_reused(fresh_table, pgmux, pg):
    check = f"INSERT INTO {fresh_table} SELECT coalesce(max(id), 0) + 1, 'checked' FROM {fresh_table}"
    mux = pgmux(default_pool_size=1, settings={"server_check_delay": 1, "server_check_query": check})
    with mux.connect() as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert _checks_run(pg, fresh_table) == 0  # a fresh server is not checked
        conn.execute("SELECT 1")
        assert _checks_run(pg, fresh_table) == 0  # nor one reused at once
        time.sleep(1.5)
        # Idle longer than server_check_delay: checked, then the same server serves the client.
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        assert _checks_run(pg, fresh_table) == 1


def test_server_check_delay_zero_never_checks(fresh_table, pgmux, pg):
    check = f"INSERT INTO {fresh_table} VALUES (1, 'checked')"
    mux = pgmux(default_pool_size=1, settings={"server_check_delay": 0, "server_check_query": check})
    with mux.connect() as conn:
        conn.execute("SELECT 1")
        time.sleep(1.2)
        conn.execute("SELECT 1")
    assert _checks_run(pg, fresh_table) == 0


def _work_mem_seen_after_another_client_set_it(mux):
    with mux.connect() as a:
        a.execute("SET work_mem = '7MB'")  # outside a transaction: stays on the server
    with mux.connect() as b:
        return b.execute("SELECT current_setting('work_mem')").fetchone()[0]


def test_transaction_mode_without_reset_leaves_session_state_on_the_server(pgmux):
    # The baseline the next test improves on: what PgBouncer does by default, too.
    mux = pgmux(default_pool_size=1)
    assert _work_mem_seen_after_another_client_set_it(mux) == "7MB"


def test_server_reset_query_always_cleans_the_server_in_transaction_mode(pgmux):
    mux = pgmux(default_pool_size=1, settings={"server_reset_query_always": 1})
    assert _work_mem_seen_after_another_client_set_it(mux) == "4MB"
