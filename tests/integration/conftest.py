# Fixtures for pgmux's integration suite: one throwaway PostgreSQL 15 for the session, pgmux
# instances started per test on free loopback ports, and the real clients that drive them.
import os
import pathlib
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import psycopg
from psycopg import sql
import pytest

PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")
REPO = pathlib.Path(__file__).resolve().parents[2]
TEST_DB = "testdb"
# Databases created for the suite, each with the role that owns it.
DATABASES = {TEST_DB: "md5user", "benchinit": "benchuser"}
# Login roles and their passwords; the hash PostgreSQL stores is the one named.
ROLES = {
    "md5user": ("md5", "md5-Secret.1"),
    "scramuser": ("scram-sha-256", "scram-Secret.2"),
    "benchuser": ("scram-sha-256", "bench-Secret.3"),
}
CONNECT_TIMEOUT_S = 10
READY_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0

_PGMUX_INSTANCES = pytest.StashKey[list]()
_POSTGRES = pytest.StashKey[object]()


def free_port():
    """A loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running_as_root():
    return os.geteuid() == 0


def client_env(password=None, **extra):
    """The environment for a client process: no PG* variables leak in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = str(CONNECT_TIMEOUT_S)
    env["PGCLIENTENCODING"] = "UTF8"
    if password is not None:
        env["PGPASSWORD"] = password
    env.update(extra)
    return env


def _record_pid(kind, pid, detail):
    """Lets scripts/test.sh stop, by PID, anything a killed pytest left running."""
    state_dir = os.environ.get("PGMUX_IT_STATE_DIR")
    if not state_dir:
        return None
    path = pathlib.Path(state_dir) / f"{kind}-{pid}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(detail + "\n")
    return path


def _forget_pid(path):
    if path is not None:
        path.unlink(missing_ok=True)


class PostgresServer:
    """A PostgreSQL 15 cluster in a temporary directory, on loopback and a private unix socket."""

    def __init__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="pgmux-it-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_path = self.root / "postgresql.log"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.pid = None
        self.secrets = {}  # role -> rolpassword as stored in pg_authid
        self._pid_record = None

    def _as_owner(self, argv):
        # initdb refuses to run as root; the cluster belongs to the postgres OS user then.
        if running_as_root():
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv, timeout=120):
        result = subprocess.run(self._as_owner(argv), capture_output=True, text=True,
                                timeout=timeout, env=client_env())
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}\n{self.log_tail()}")
        return result

    def start(self):
        self.socket_dir.mkdir()
        if running_as_root():
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                   "--auth-local=trust", "--auth-host=md5", "--locale=C", "-E", "UTF8",
                   "--no-sync"])
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# pgmux integration suite\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "max_connections = 100\n"
                # A throwaway cluster: durability costs time and buys nothing here.
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n")
        # Truncating keeps the file's owner (postgres) and mode.
        with open(self.data_dir / "pg_hba.conf", "w") as hba:
            hba.write("local all all trust\n"
                      "host all all 127.0.0.1/32 md5\n")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
                   "-w", "-t", "60", "start"])
        self.pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        self._pid_record = _record_pid("postgres", self.pid, str(self.data_dir))
        self._create_roles_and_databases()

    def _create_roles_and_databases(self):
        with self.connect(dbname="postgres") as conn:
            for role, (encryption, password) in ROLES.items():
                conn.execute(sql.SQL("SET password_encryption = {}").format(
                    sql.Literal(encryption)))
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)))
            for db, owner in DATABASES.items():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(db), sql.Identifier(owner)))
            rows = conn.execute("SELECT rolname, rolpassword FROM pg_authid "
                                "WHERE rolname = ANY(%s)", [list(ROLES)]).fetchall()
            self.secrets = dict(rows)
        with self.connect(dbname=TEST_DB) as conn:
            # PostgreSQL 15 lets only the owner create in public; every test role needs to.
            conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(
                sql.SQL(", ").join(sql.Identifier(r) for r in ROLES)))
        assert self.secrets["md5user"].startswith("md5")
        assert self.secrets["scramuser"].startswith("SCRAM-SHA-256$")

    def connect(self, user="postgres", dbname=TEST_DB, **kwargs):
        """A direct connection over the unix socket (trust), bypassing pgmux."""
        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=user,
                               dbname=dbname, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               **kwargs)

    def log_tail(self, lines=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no PostgreSQL log)"

    def restart(self):
        """pg_ctl restart -m fast: every backend is terminated; same port and data directory."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
                   "-m", "fast", "-w", "-t", "60", "restart"])
        _forget_pid(self._pid_record)
        self.pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        self._pid_record = _record_pid("postgres", self.pid, str(self.data_dir))

    def stop_cluster(self):
        """pg_ctl stop -m fast, keeping the data directory for ensure_running() to start again."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                   "-t", "60", "stop"])

    def ensure_running(self):
        """Starts the cluster again if a test left it stopped (pg_ctl status says no server)."""
        status = subprocess.run(self._as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir),
                                                "status"]),
                                capture_output=True, text=True, timeout=30, env=client_env())
        if status.returncode == 0:
            return
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
                   "-w", "-t", "60", "start"])
        _forget_pid(self._pid_record)
        self.pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        self._pid_record = _record_pid("postgres", self.pid, str(self.data_dir))

    def stop(self):
        if self.pid is not None:
            result = subprocess.run(
                self._as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast",
                                "-w", "-t", "30", "stop"]),
                capture_output=True, text=True, timeout=60, env=client_env())
            if result.returncode != 0 and _pid_alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
            self.pid = None
        _forget_pid(self._pid_record)
        shutil.rmtree(self.root, ignore_errors=True)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pgmux_binary():
    path = os.environ.get("PGMUX_BIN") or str(REPO / "build" / "pgmux")
    if not os.access(path, os.X_OK):
        pytest.fail(f"pgmux binary not found at {path}: build it, or set PGMUX_BIN")
    return path


def _quote_auth_field(value):
    return '"' + value.replace('"', '""') + '"'


class Pgmux:
    """One pgmux process with its own ini, auth file and log, in a directory of its own."""

    def __init__(self, binary, workdir, pg, *, pool_mode, auth_type, users, default_pool_size,
                 max_client_conn, unix_socket, settings, databases, user_entries=None):
        self.binary = binary
        self.workdir = workdir
        self.pg = pg
        self.host = "127.0.0.1"
        self.port = free_port()
        self.socket_dir = workdir / "sock" if unix_socket else None
        self.ini_path = workdir / "pgmux.ini"
        self.auth_path = workdir / "userlist.txt"
        self.log_path = workdir / "pgmux.log"
        self.proc = None
        self.stopped_by_test = False
        self._pid_record = None
        self._log_file = None
        if users is None:
            users = {role: password for role, (_, password) in ROLES.items()}
        if databases is None:
            databases = {db: f"host={pg.host} port={pg.port} dbname={db}" for db in DATABASES}
        main = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": str(self.socket_dir) if self.socket_dir else "",
            "auth_type": auth_type,
            "auth_file": str(self.auth_path),
            "pool_mode": pool_mode,
            "default_pool_size": str(default_pool_size),
            "max_client_conn": str(max_client_conn),
        }
        if os.environ.get("PGMUX_TEST_WORKERS"):
            # The whole suite can run against several workers: PGMUX_TEST_WORKERS=2.
            main["workers"] = os.environ["PGMUX_TEST_WORKERS"]
        main.update({k: str(v) for k, v in settings.items()})
        workdir.mkdir(parents=True, exist_ok=True)
        if self.socket_dir:
            self.socket_dir.mkdir()
        lines = ["[databases]"]
        lines += [f"{name} = {spec}" for name, spec in databases.items()]
        if user_entries:
            lines += ["", "[users]"]
            lines += [f"{name} = {spec}" for name, spec in user_entries.items()]
        lines += ["", "[pgbouncer]"]
        lines += [f"{key} = {value}" for key, value in main.items()]
        self.ini_path.write_text("\n".join(lines) + "\n")
        self.auth_path.write_text("".join(f"{_quote_auth_field(u)} {_quote_auth_field(s)}\n"
                                          for u, s in users.items()))

    def start(self):
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, str(self.ini_path)], stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        self._pid_record = _record_pid("pgmux", self.proc.pid, os.path.realpath(self.binary))
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stopped_by_test = True  # reported here; teardown need not repeat it
                pytest.fail(f"pgmux exited with code {self.proc.returncode} during start-up\n"
                            f"--- {self.ini_path}\n{self.ini_path.read_text()}"
                            f"--- pgmux log\n{self.read_log()}", pytrace=False)
            if self._accepts_tcp() and self._has_unix_socket():
                return
            time.sleep(0.05)
        self.stopped_by_test = True
        self.stop()
        pytest.fail(f"pgmux did not accept connections on {self.host}:{self.port} within "
                    f"{READY_TIMEOUT_S:.0f} s\n--- pgmux log\n{self.read_log()}", pytrace=False)

    def _accepts_tcp(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def _has_unix_socket(self):
        return self.socket_dir is None or (self.socket_dir / f".s.PGSQL.{self.port}").exists()

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def signal_and_wait(self, sig, timeout=10.0):
        """Sends `sig` and waits for the exit; returns the exit code, or None if still running."""
        self.stopped_by_test = True
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then SIGKILL after a grace period. Returns a complaint if it had crashed."""
        if self.proc is None:
            return None
        complaint = None
        if self.proc.poll() is not None and not self.stopped_by_test:
            complaint = f"pgmux exited on its own during the test (code {self.proc.returncode})"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _forget_pid(self._pid_record)
        self._log_file.close()
        return complaint

    # ---- clients ----

    def conninfo(self, user, dbname=TEST_DB, via_socket=False):
        host = str(self.socket_dir) if via_socket else self.host
        return f"host={host} port={self.port} user={user} dbname={dbname}"

    def connect(self, user="md5user", password=None, dbname=TEST_DB, **kwargs):
        """psycopg through pgmux; no prepared statements (prepare_threshold=None)."""
        if password is None:
            password = ROLES[user][1]
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(host=self.host, port=self.port, user=user, password=password,
                               dbname=dbname, connect_timeout=CONNECT_TIMEOUT_S,
                               prepare_threshold=None, **kwargs)

    def psql(self, *args, user="md5user", password=None, dbname=TEST_DB, input=None, timeout=60,
             via_socket=False, check=True, extra_env=None):
        """Runs psql through pgmux (-X -A -t -q, ON_ERROR_STOP) and returns the CompletedProcess."""
        if password is None:
            password = ROLES[user][1]
        host = str(self.socket_dir) if via_socket else self.host
        argv = [str(PG_BIN / "psql"), "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1",
                "-h", host, "-p", str(self.port), "-U", user, "-d", dbname, *args]
        result = subprocess.run(argv, input=input, capture_output=True, encoding="utf-8",
                                errors="replace", timeout=timeout,
                                env=client_env(password, **(extra_env or {})), cwd=self.workdir)
        if check and result.returncode != 0:
            pytest.fail(f"psql {' '.join(args)} exited {result.returncode}\n"
                        f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}",
                        pytrace=False)
        return result


@pytest.fixture(scope="session")
def pg(request):
    server = PostgresServer()
    request.config.stash[_POSTGRES] = server
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pgmux(request, pg, tmp_path):
    """Factory: pgmux(pool_mode=..., ...) writes an ini + auth file, starts pgmux, waits for it."""
    binary = pgmux_binary()
    started = []
    request.node.stash[_PGMUX_INSTANCES] = started

    def start(*, pool_mode="transaction", auth_type="md5", users=None, default_pool_size=20,
              max_client_conn=100, unix_socket=False, settings=None, databases=None,
              user_entries=None):
        instance = Pgmux(binary, tmp_path / f"pgmux{len(started)}", pg, pool_mode=pool_mode,
                         auth_type=auth_type, users=users, default_pool_size=default_pool_size,
                         max_client_conn=max_client_conn, unix_socket=unix_socket,
                         settings=settings or {}, databases=databases,
                         user_entries=user_entries)
        started.append(instance)
        return instance.start()

    yield start
    complaints = [c for c in (instance.stop() for instance in started) if c]
    if complaints:
        pytest.fail("; ".join(complaints), pytrace=False)


def wait_for(probe, done, timeout=15.0, interval=0.1):
    """Calls probe() until done(value) or the timeout; returns the last value either way."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    return value


def count_backends(pg, users=("md5user",), dbname=TEST_DB, state=None):
    """Client backends PostgreSQL has for `users` in `dbname` (any database when None),
    optionally only those whose state starts with `state`."""
    query = ("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
             "AND usename = ANY(%s) AND (%s::text IS NULL OR datname = %s) "
             "AND (%s::text IS NULL OR state LIKE %s || '%%')")
    with pg.connect() as conn:
        return conn.execute(query, [list(users), dbname, dbname, state, state]).fetchone()[0]


class BackendSampler(threading.Thread):
    """Counts, every `interval` seconds over a direct connection, the client backends PostgreSQL
    has for `users` in `dbname` (every database when None). stop() fails the test if sampling
    failed or took no sample."""

    def __init__(self, pg, users, dbname=TEST_DB, interval=0.05):
        super().__init__(daemon=True)
        self.pg, self.users, self.dbname, self.interval = pg, list(users), dbname, interval
        self.counts = []
        self.error = None
        self._stop_event = threading.Event()

    def run(self):
        try:
            with self.pg.connect() as conn:
                while not self._stop_event.is_set():
                    self.counts.append(conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        "'client backend' AND usename = ANY(%s) AND "
                        "(%s::text IS NULL OR datname = %s)",
                        [self.users, self.dbname, self.dbname]).fetchone()[0])
                    self._stop_event.wait(self.interval)
        except Exception as e:  # reported by stop(), in the test's thread
            self.error = e

    def stop(self):
        self._stop_event.set()
        self.join(timeout=30)
        assert self.error is None, f"sampler failed: {self.error!r}"
        assert self.counts, "no pg_stat_activity sample was taken"

    # `with BackendSampler(...) as sampler:` samples while the block runs; a failure inside the
    # block is reported rather than the sampler's.
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            self._stop_event.set()
            self.join(timeout=30)
        return False


def assert_cancelled(conn, after, sql="SELECT pg_sleep(30)"):
    """Runs `sql` on `conn` and cancels it from another thread `after` seconds in: the query
    must fail with 57014 (without the cancel, pg_sleep(30) would end normally and nothing
    would raise), and the connection must serve the next query."""
    timer = threading.Timer(after, conn.cancel)
    timer.start()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(sql)
    finally:
        timer.join()
    assert conn.execute("SELECT 1").fetchone() == (1,)


def wait_for_no_backends(pg, users=("md5user",), dbname=TEST_DB, timeout=15.0):
    """An earlier test's pgmux may take a moment to close its servers: start from zero."""
    count = wait_for(lambda: count_backends(pg, users, dbname), lambda n: n == 0, timeout)
    assert count == 0, f"{users} still have {count} backends before the test"


@pytest.fixture
def raised_fd_limit():
    """Lets this process's children (pgmux, pgbench) hold thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        pass
    elif hard == resource.RLIM_INFINITY or hard >= wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    elif running_as_root():
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    else:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}; raise it to run this")
    yield wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for instance in item.stash.get(_PGMUX_INSTANCES, []):
        report.sections.append((f"pgmux log {instance.log_path}", instance.read_log()[-20000:]))
    server = item.config.stash.get(_POSTGRES, None)
    if server is not None:
        report.sections.append(("PostgreSQL log (tail)", server.log_tail()))


@pytest.fixture
def fresh_table(pg, request):
    """A new empty table (id int primary key, note text) owned by md5user, dropped afterwards."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40].lower()
    name = f"{name}_{os.getpid()}_{int(time.monotonic_ns() % 1000000)}"
    with pg.connect(user="md5user") as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text)").format(
            sql.Identifier(name)))
    yield name
    with pg.connect(user="md5user") as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


# ---- pgbench ----

def run_pgbench(args, password=None, timeout=120):
    return subprocess.run([str(PG_BIN / "pgbench"), *args], capture_output=True, text=True,
                          timeout=timeout, env=client_env(password))


def init_pgbench_tables(pg, user, scale):
    """pgbench's tables in testdb, loaded directly (not through pgmux) and owned by `user`."""
    result = run_pgbench(["-i", "-q", "-s", str(scale), "-h", str(pg.socket_dir), "-p",
                          str(pg.port), "-U", user, TEST_DB])
    assert result.returncode == 0, result.stderr


def pgbench_through(pg, mux, user, *, clients, threads, seconds, args, max_backends):
    """Runs pgbench through pgmux while sampling pg_stat_activity. Checks that every
    transaction succeeded and that PostgreSQL never had more than `max_backends` backends of
    `user` (and had some: the bound is not vacuous). Returns (CompletedProcess, processed)."""
    wait_for_no_backends(pg, [user])
    sampler = BackendSampler(pg, [user], interval=0.1)
    sampler.start()
    try:
        result = run_pgbench(["-n", "-c", str(clients), "-j", str(threads), "-T", str(seconds),
                              *args, "-h", mux.host, "-p", str(mux.port), "-U", user, TEST_DB],
                             ROLES[user][1], timeout=seconds + 190)
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
    tps = re.search(r"^tps = ([\d.]+)", result.stdout, re.M)
    print(f"pgbench {' '.join(args)}: {processed.group(1)} transactions, "
          f"tps {tps.group(1) if tps else '?'}; {len(sampler.counts)} samples of "
          f"pg_stat_activity, at most {max(sampler.counts)} backends for {user}")
    assert 1 <= max(sampler.counts) <= max_backends, \
        f"PostgreSQL had up to {max(sampler.counts)} backends for {user}; samples: " \
        f"{sampler.counts}"
    return result, int(processed.group(1))


def assert_tpcb_balances_agree(pg):
    """Each TPC-B transaction adds one delta to an account, a teller, a branch and the history:
    the sums agree only if no transaction was split or applied in part."""
    with pg.connect() as conn:
        sums = conn.execute(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
            "(SELECT sum(tbalance) FROM pgbench_tellers), "
            "(SELECT sum(bbalance) FROM pgbench_branches), "
            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)").fetchone()
    assert len(set(sums)) == 1, sums
