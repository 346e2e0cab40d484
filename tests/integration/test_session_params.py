# Session parameters in transaction mode: TimeZone, DateStyle, IntervalStyle and application_name
# follow the client that set them (with SET, in the startup packet, or through `options`), never
# the server it happens to land on, and never leak to the next client of that server.
import pytest

from conftest import TEST_DB
from pgwire import RawSession

PROBE = ("SELECT pg_backend_pid(), current_setting('TimeZone'), current_setting('DateStyle'), "
         "current_setting('IntervalStyle'), current_setting('application_name')")


def _probe(conn):
    """(backend pid, TimeZone, DateStyle, IntervalStyle, application_name) as the server has
    them while running this client's statement."""
    return conn.execute(PROBE).fetchone()


@pytest.fixture(scope="module")
def server_defaults(pg):
    """What a backend reports when nobody set anything: (TimeZone, DateStyle, IntervalStyle)."""
    with pg.connect() as conn:
        return conn.execute("SELECT current_setting('TimeZone'), current_setting('DateStyle'), "
                            "current_setting('IntervalStyle')").fetchone()


def _values(row):
    return row[1:4]


def test_set_values_stay_with_the_client_on_a_shared_server(pgmux, server_defaults):
    mux = pgmux(default_pool_size=1)
    with mux.connect() as a, mux.connect() as b:
        a.execute("SET TimeZone = 'America/New_York'")
        a.execute("SET DateStyle = 'SQL, DMY'")
        a.execute("SET IntervalStyle = 'iso_8601'")
        mine = ("America/New_York", "SQL, DMY", "iso_8601")
        a_first = _probe(a)
        assert _values(a_first) == mine

        for _ in range(3):
            b_row = _probe(b)
            # One server in the pool: B ran on the very backend A changed.
            assert b_row[0] == a_first[0]
            assert _values(b_row) == server_defaults
            a_row = _probe(a)
            assert a_row[0] == a_first[0]
            assert _values(a_row) == mine

        # Each client's own view (ParameterStatus) agrees with what its statements saw.
        assert a.info.parameter_status("TimeZone") == "America/New_York"
        assert a.info.parameter_status("DateStyle") == "SQL, DMY"
        assert a.info.parameter_status("IntervalStyle") == "iso_8601"
        assert b.info.parameter_status("TimeZone") == server_defaults[0]
        assert b.info.parameter_status("DateStyle") == server_defaults[1]
        assert b.info.parameter_status("IntervalStyle") == server_defaults[2]
        # A timestamp is rendered with the client's own settings, not the server's last ones.
        assert b.execute("SELECT '2024-03-01 12:00:00+00'::timestamptz::text").fetchone()[0] \
            .startswith("2024-03-01")
        assert a.execute("SELECT '2024-03-01 12:00:00+00'::timestamptz::text").fetchone()[0] \
            == "01/03/2024 07:00:00 EST"


def test_set_values_follow_the_client_to_another_server(pgmux, server_defaults):
    mux = pgmux(default_pool_size=2)
    with mux.connect() as a, mux.connect() as b, mux.connect() as c:
        a.execute("SET TimeZone = 'Asia/Kathmandu'; SET DateStyle = 'Postgres, YMD'")
        mine = ("Asia/Kathmandu", "Postgres, YMD", server_defaults[2])
        a_pid = _probe(a)[0]
        # B and C hold both servers in transactions; the one not on A's old server lets go, so
        # A's next statement can only run on the other server.
        b.execute("BEGIN")
        c.execute("BEGIN")
        b_row, c_row = _probe(b), _probe(c)
        assert b_row[0] != c_row[0], "two open transactions shared a server"
        assert a_pid in (b_row[0], c_row[0]), "a pool of two: one of them must be A's old server"
        assert _values(b_row) == server_defaults
        assert _values(c_row) == server_defaults
        holder, leaver = (b, c) if b_row[0] == a_pid else (c, b)
        other_pid = c_row[0] if holder is b else b_row[0]
        leaver.execute("COMMIT")

        moved = _probe(a)
        assert moved[0] == other_pid != a_pid
        assert _values(moved) == mine

        holder.execute("COMMIT")
        # Both servers have now run A's statements; the others still see their own values.
        for conn in (b, c):
            assert _values(_probe(conn)) == server_defaults
        assert _values(_probe(a)) == mine


def test_options_startup_parameter_values_stay_with_their_client(pgmux, server_defaults):
    mux = pgmux(default_pool_size=1)
    tokyo = mux.connect(options="-c TimeZone=Asia/Tokyo -c DateStyle=German")
    plain = mux.connect()
    with tokyo, plain:
        first = _probe(tokyo)
        assert first[1:3] == ("Asia/Tokyo", "German, DMY")
        assert tokyo.info.parameter_status("TimeZone") == "Asia/Tokyo"
        # psql's PGOPTIONS is the same startup parameter, from another process.
        out = mux.psql("-c", PROBE, extra_env={"PGOPTIONS": "-c TimeZone=Pacific/Auckland"})
        pid, zone, datestyle = out.stdout.strip().split("|")[:3]
        assert (int(pid), zone, datestyle) == (first[0], "Pacific/Auckland", server_defaults[1])
        plain_row = _probe(plain)
        assert plain_row[0] == first[0]
        assert _values(plain_row) == server_defaults
        assert _probe(tokyo)[1:3] == ("Asia/Tokyo", "German, DMY")


def test_plain_startup_keys_stay_with_their_client(pgmux, server_defaults):
    mux = pgmux(auth_type="trust", default_pool_size=1)
    paris = RawSession(mux.host, mux.port, "md5user", TEST_DB, extra_params=(
        ("TimeZone", "Europe/Paris"), ("DateStyle", "Postgres, DMY"),
        ("application_name", "raw-paris")))
    chicago = RawSession(mux.host, mux.port, "md5user", TEST_DB, extra_params=(
        ("TimeZone", "America/Chicago"), ("application_name", "raw-chicago")))
    try:
        # The welcome reports the client's own values, whatever the pool's server has.
        assert paris.parameter_status("TimeZone") == "Europe/Paris"
        assert paris.parameter_status("DateStyle") == "Postgres, DMY"
        assert paris.parameter_status("application_name") == "raw-paris"
        assert chicago.parameter_status("TimeZone") == "America/Chicago"
        assert chicago.parameter_status("DateStyle") == server_defaults[1]
        assert chicago.parameter_status("application_name") == "raw-chicago"
        pids = set()
        for _ in range(3):
            p = paris.run(PROBE)
            c = chicago.run(PROBE)
            assert p.error is None and c.error is None, (p.error, c.error)
            pids.update((p.rows[0][0], c.rows[0][0]))
            assert p.rows[0][1:] == ("Europe/Paris", "Postgres, DMY", server_defaults[2],
                                     "raw-paris")
            assert c.rows[0][1:] == ("America/Chicago", server_defaults[1], server_defaults[2],
                                     "raw-chicago")
        assert len(pids) == 1, "a pool of one server served both clients"
    finally:
        paris.close()
        chicago.close()


def test_application_name_set_by_one_client_is_not_seen_by_another(pgmux, pg):
    mux = pgmux(default_pool_size=1)
    with mux.connect(application_name="app-a") as a, mux.connect() as anonymous, \
            mux.connect(application_name="app-b") as b:
        assert _probe(a)[4] == "app-a"
        assert _probe(anonymous)[4] == ""
        a.execute("SET application_name = 'renamed-a'")
        assert _probe(b)[4] == "app-b"
        assert _probe(anonymous)[4] == ""
        row = _probe(a)
        assert row[4] == "renamed-a"
        assert a.info.parameter_status("application_name") == "renamed-a"
        assert anonymous.info.parameter_status("application_name") == ""
        # pg_stat_activity, read while A's transaction holds the server, names A.
        a.execute("BEGIN")
        a_pid = _probe(a)[0]
        with pg.connect() as direct:
            shown = direct.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s",
                                   [a_pid]).fetchone()[0]
        a.execute("COMMIT")
        assert shown == "renamed-a"


def test_reset_leaves_the_client_view_and_the_server_consistent(pgmux, server_defaults):
    # RESET goes back to a session's reset value; on a shared server that is the server's, not
    # necessarily the client's startup value. Whatever it lands on, the client's ParameterStatus
    # view must agree with what its statements see, and the next client must see its own.
    mux = pgmux(default_pool_size=1)
    with mux.connect(options="-c TimeZone=Australia/Perth") as a, mux.connect() as b:
        a.execute("SET TimeZone = 'Africa/Cairo'")
        assert _probe(a)[1] == "Africa/Cairo"
        assert _values(_probe(b)) == server_defaults
        a.execute("RESET TimeZone")
        after_reset = _probe(a)[1]
        assert after_reset in ("Australia/Perth", server_defaults[0])
        assert a.info.parameter_status("TimeZone") == after_reset
        assert _values(_probe(b)) == server_defaults
        assert _probe(a)[1] == after_reset
