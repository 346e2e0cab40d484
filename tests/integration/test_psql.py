# psql through pgmux in transaction mode: simple and multi-statement queries, errors, COPY both
# ways (server-side and \copy), a result far larger than any buffer, and the unix socket.
import csv
import hashlib
import io

import pytest

LARGE_ROWS = 2_000_000


@pytest.fixture
def mux(pgmux):
    return pgmux(pool_mode="transaction", default_pool_size=4)


def test_simple_queries_return_their_rows(mux):
    assert mux.psql("-c", "SELECT 1 + 1").stdout == "2\n"
    out = mux.psql("-c", "SELECT current_user, current_database()").stdout
    assert out == "md5user|testdb\n"
    out = mux.psql("-c", "SELECT g, g * g FROM generate_series(1, 3) g").stdout
    assert out == "1|1\n2|4\n3|9\n"


def test_error_then_later_queries_in_the_same_session_succeed(mux):
    script = (
        "SELECT 1/0;\n"
        "SELECT 'after error';\n"
        "BEGIN;\n"
        "SELECT 'in transaction';\n"
        "SELECT 1/0;\n"
        "SELECT 'not run';\n"
        "ROLLBACK;\n"
        "SELECT 'recovered';\n"
    )
    result = mux.psql("-v", "ON_ERROR_STOP=0", input=script)
    assert result.stdout.splitlines() == ["after error", "in transaction", "recovered"]
    assert result.stderr.count("division by zero") == 2
    assert "current transaction is aborted" in result.stderr


def test_rolled_back_transaction_leaves_no_rows(mux, fresh_table, pg):
    script = (
        f"BEGIN;\n"
        f"INSERT INTO {fresh_table} VALUES (1, 'kept only until rollback');\n"
        f"SELECT count(*) FROM {fresh_table};\n"
        f"ROLLBACK;\n"
        f"SELECT count(*) FROM {fresh_table};\n"
    )
    assert mux.psql(input=script).stdout.splitlines() == ["1", "0"]
    with pg.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {fresh_table}").fetchone()[0] == 0


def test_multi_statement_query_string_returns_every_result(mux):
    out = mux.psql("-c", "SELECT 'one'; SELECT 'two', 2; SELECT 'three'").stdout
    assert out.splitlines() == ["one", "two|2", "three"]


def test_multi_statement_query_string_commits_or_fails_as_one(mux, fresh_table, pg):
    mux.psql("-c", f"INSERT INTO {fresh_table} VALUES (1, 'a'); "
                   f"INSERT INTO {fresh_table} VALUES (2, 'b'); "
                   f"SELECT count(*) FROM {fresh_table}")
    failed = mux.psql("-c", f"INSERT INTO {fresh_table} VALUES (3, 'c'); SELECT 1/0; "
                            f"INSERT INTO {fresh_table} VALUES (4, 'd')", check=False)
    assert failed.returncode != 0
    assert "division by zero" in failed.stderr
    # The implicit transaction of the failed string rolled back its first INSERT too.
    assert mux.psql("-c", f"SELECT string_agg(id::text, ',' ORDER BY id) FROM {fresh_table}"
                    ).stdout == "1,2\n"
    with pg.connect() as conn:
        ids = [r[0] for r in conn.execute(f"SELECT id FROM {fresh_table} ORDER BY id")]
    assert ids == [1, 2]


def _tricky_rows(n):
    """(id, note) pairs whose text needs COPY escaping: tabs, backslashes, newlines, UTF-8, NULL."""
    rows = []
    for i in range(1, n + 1):
        if i % 97 == 0:
            note = None
        elif i % 11 == 0:
            note = f"tab\there\\back\nline {i}"
        elif i % 7 == 0:
            note = f"grüße ✓ {i}"
        else:
            note = f"row {i} " + "x" * (i % 40)
        rows.append((i, note))
    return rows


def _copy_text(rows):
    def field(value):
        if value is None:
            return "\\N"
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return "".join(f"{i}\t{field(note)}\n" for i, note in rows)


def test_copy_from_stdin_loads_every_row(mux, fresh_table, pg):
    rows = _tricky_rows(20_000)
    script = (f"COPY {fresh_table} (id, note) FROM STDIN;\n" + _copy_text(rows) + "\\.\n"
              f"SELECT count(*) FROM {fresh_table};\n")
    assert mux.psql(input=script).stdout == f"{len(rows)}\n"
    with pg.connect() as conn:
        stored = conn.execute(f"SELECT id, note FROM {fresh_table} ORDER BY id").fetchall()
    assert stored == rows


def test_copy_from_stdin_that_fails_midway_leaves_the_session_usable(mux, fresh_table, pg):
    # Row 3 is not an integer: the server fails the COPY while psql is still sending data.
    script = (f"COPY {fresh_table} (id, note) FROM STDIN;\n"
              "1\tfine\n2\tfine\nthree\tbroken\n4\tnever stored\n\\.\n"
              f"SELECT 'after', count(*) FROM {fresh_table};\n")
    result = mux.psql("-v", "ON_ERROR_STOP=0", input=script)
    assert "invalid input syntax for type integer" in result.stderr
    assert result.stdout == "after|0\n"
    with pg.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {fresh_table}").fetchone()[0] == 0


def test_copy_to_stdout_returns_every_row(mux, fresh_table, pg):
    rows = _tricky_rows(50_000)
    with pg.connect() as conn:
        with conn.cursor().copy(f"COPY {fresh_table} (id, note) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    out = mux.psql("-c", f"COPY (SELECT id, note FROM {fresh_table} ORDER BY id) TO STDOUT").stdout
    assert out == _copy_text(rows)
    # The session is usable after COPY OUT completes.
    assert mux.psql("-c", "COPY (SELECT 1) TO STDOUT; SELECT 'next'").stdout == "1\nnext\n"


def test_backslash_copy_round_trips_a_csv_file(mux, fresh_table, tmp_path):
    rows = [(i, f'note {i}, with "quotes"' if i % 3 == 0 else f"note {i}")
            for i in range(1, 100_001)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    source = tmp_path / "in.csv"
    source.write_text(buf.getvalue())
    target = tmp_path / "out.csv"
    mux.psql("-c", f"\\copy {fresh_table} FROM '{source}' WITH (FORMAT csv)")
    assert mux.psql("-c", f"SELECT count(*), sum(id) FROM {fresh_table}").stdout == \
        f"{len(rows)}|{sum(i for i, _ in rows)}\n"
    mux.psql("-c", f"\\copy (SELECT id, note FROM {fresh_table} ORDER BY id) TO '{target}' "
                   f"WITH (FORMAT csv)")
    assert target.read_text() == source.read_text()


def test_large_result_arrives_complete_and_in_order(mux):
    expected = hashlib.sha256()
    for i in range(1, LARGE_ROWS + 1):
        expected.update(f"{i}|{hashlib.md5(str(i).encode()).hexdigest()}\n".encode())
    result = mux.psql("-c", f"SELECT i, md5(i::text) FROM generate_series(1, {LARGE_ROWS}) i",
                      timeout=180)
    assert result.stdout.count("\n") == LARGE_ROWS
    assert hashlib.sha256(result.stdout.encode()).hexdigest() == expected.hexdigest()


def test_psql_connects_over_the_unix_socket(pgmux):
    mux = pgmux(pool_mode="transaction", unix_socket=True)
    out = mux.psql("-c", "SELECT 'via socket', current_database()", via_socket=True).stdout
    assert out == "via socket|testdb\n"
