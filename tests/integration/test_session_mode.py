# Session mode: a client keeps one backend for its whole session, and server_reset_query cleans
# that backend before the next client gets it.


def test_session_state_is_reset_before_the_next_client(pgmux):
    mux = pgmux(pool_mode="session", default_pool_size=1)
    first = mux.psql(input=(
        "SET work_mem = '7MB';\n"
        "SET pgmux_test.marker = 'dirty';\n"
        "PREPARE leftover AS SELECT 1;\n"
        "CREATE TEMP TABLE leftover_tmp (x int);\n"
        "SELECT pg_backend_pid(), current_setting('work_mem'), "
        "current_setting('pgmux_test.marker');\n")).stdout
    first_pid, work_mem, marker = first.strip().split("|")
    assert (work_mem, marker) == ("7MB", "dirty")

    second = mux.psql("-c", (
        "SELECT pg_backend_pid(), current_setting('work_mem'), "
        "coalesce(current_setting('pgmux_test.marker', true), ''), "
        "(SELECT count(*) FROM pg_prepared_statements), "
        "to_regclass('pg_temp.leftover_tmp') IS NULL")).stdout
    second_pid, work_mem, marker, prepared, no_temp_table = second.strip().split("|")
    # The pool has one backend, so the reset (not a new connection) is what cleaned it.
    assert second_pid == first_pid
    assert work_mem == "4MB"
    assert marker == ""
    assert prepared == "0"
    assert no_temp_table == "t"


def test_session_keeps_one_backend_across_transactions(pgmux):
    mux = pgmux(pool_mode="session", default_pool_size=2)
    with mux.connect() as a, mux.connect() as b:
        a.execute("CREATE TEMP TABLE mine (x int)")
        pids_a, pids_b = set(), set()
        for i in range(5):
            a.execute("INSERT INTO mine VALUES (%s)", [i])
            pids_a.add(a.execute("SELECT pg_backend_pid()").fetchone()[0])
            pids_b.add(b.execute("SELECT pg_backend_pid()").fetchone()[0])
        assert len(pids_a) == 1 and len(pids_b) == 1
        assert pids_a != pids_b
        # The temp table lives in a's backend across its transactions.
        assert a.execute("SELECT count(*) FROM mine").fetchone()[0] == 5


def test_configured_server_reset_query_is_the_one_run(pgmux):
    # RESET ALL resets settings but, unlike the default DISCARD ALL, keeps prepared statements.
    mux = pgmux(pool_mode="session", default_pool_size=1,
                settings={"server_reset_query": "RESET ALL"})
    mux.psql(input="SET work_mem = '7MB';\nPREPARE kept AS SELECT 1;\n")
    out = mux.psql("-c", "SELECT current_setting('work_mem'), "
                         "(SELECT count(*) FROM pg_prepared_statements WHERE name = 'kept')").stdout
    assert out == "4MB|1\n"
