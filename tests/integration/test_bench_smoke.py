# bench/run.sh still works end to end: a two-second client sweep and a small idle-clients run
# against pgmux, PgBouncer, PostgreSQL directly and the bare TCP relay (bench/tcp_relay.cpp), on
# the benchmark's own throwaway cluster. It checks that every run produced numbers, that the
# printed table and the results files agree on the rows, that the plots were drawn and that
# nothing the benchmark started is left running.
# No timing or ratio between targets is asserted: on a shared 2-core machine they are noise.
import csv
import json
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import REPO, client_env, pgmux_binary

TARGETS = ["pgmux", "pgbouncer", "direct", "relay"]
POOLERS = ["pgmux", "pgbouncer"]  # the idle scenario's targets
PROXIES = POOLERS + ["relay"]  # targets with a process of their own between client and server
SWEEP = [4, 8]
IDLE_CLIENTS = 200


@pytest.fixture
def out_dir():
    """A results directory the poolers' user (postgres, when root) can enter: pytest's own
    tmp_path lives under a directory only its owner may open."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="pgmux-bench-smoke-"))
    path.chmod(0o755)
    yield path / "out"
    shutil.rmtree(path, ignore_errors=True)


def _relay_binary():
    """The relay of the build under test (next to pgmux), not build-rel's."""
    return str(pathlib.Path(pgmux_binary()).parent / "tcp_relay")


def _run_bench(args, timeout=180):
    """bench/run.sh ARGS; past the timeout it gets SIGTERM, on which it stops what it started."""
    proc = subprocess.Popen([str(REPO / "bench" / "run.sh"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=client_env(TCP_RELAY_BIN=_relay_binary()))
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        pytest.fail(f"bench/run.sh ran over {timeout} s\nstdout:\n{stdout[-4000:]}\n"
                    f"stderr:\n{stderr[-4000:]}", pytrace=False)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _processes_mentioning(text):
    """PIDs whose command line contains `text`."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(proc.name))
    return pids


def _table_rows(stdout):
    """The printed markdown table rows, as lists of cells, keyed by their first three cells."""
    rows = {}
    for line in stdout.splitlines():
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[tuple(cells[:3])] = cells
    return rows


def _number(cell):
    return float(cell.replace(" ", ""))


@pytest.mark.slow
def test_bench_run_writes_a_row_of_numbers_per_target_and_the_plots(out_dir):
    result = _run_bench(
        ["--scenarios", "sweep,idle", "--targets", ",".join(TARGETS), "--duration", "2",
         "--scale", "1", "--clients-sweep", ",".join(map(str, SWEEP)),
         "--idle-clients", str(IDLE_CLIENTS), "--pgmux", pgmux_binary(), "--out", str(out_dir)])
    report = f"bench/run.sh exit {result.returncode}\nstdout:\n{result.stdout[-6000:]}\n" \
             f"stderr:\n{result.stderr[-6000:]}"
    assert result.returncode == 0, report

    # Nothing it started is left: no pooler reading its config, no relay, no PostgreSQL in its
    # cluster.
    assert _processes_mentioning(str(out_dir)) == [], report
    assert _processes_mentioning(_relay_binary()) == [], report
    cluster = re.search(r"PostgreSQL: initdb in (\S+),", result.stderr)
    assert cluster, report
    assert not pathlib.Path(cluster.group(1)).exists(), report
    assert _processes_mentioning(cluster.group(1)) == [], report

    with open(out_dir / "results.tsv") as f:
        runs = list(csv.DictReader(f, delimiter="\t"))
    sweep = {(int(r["clients"]), r["target"]): r for r in runs if r["scenario"] == "sweep"}
    assert sorted(sweep) == sorted((c, t) for c in SWEEP for t in TARGETS), report
    for (clients, target), r in sweep.items():
        where = f"sweep -c {clients} {target}: {r}"
        assert r["status"] == "ok", where
        assert r["errors"] == "", where
        for field in ("tps", "transactions", "pg_cpu_us_per_tx", "p50_ms", "p99_ms"):
            assert float(r[field]) > 0, where
        assert float(r["p50_ms"]) <= float(r["p95_ms"]) <= float(r["p99_ms"]), where
        if target in PROXIES:
            assert float(r["pooler_cpu_us_per_tx"]) > 0, where
            assert int(r["pooler_peak_rss_kb"]) > 0, where
        else:
            assert r["pooler_cpu_us_per_tx"] == "" and r["pooler_peak_rss_kb"] == "", where

    idle = {r["target"]: r for r in runs if r["scenario"] == "idle"}
    assert sorted(idle) == sorted(POOLERS), report  # PostgreSQL itself is not asked to hold them
    for target, r in idle.items():
        where = f"idle {target}: {r}"
        assert r["status"] == "ok", where
        assert int(r["idle_connected"]) == IDLE_CLIENTS, where
        assert int(r["idle_rss_kb"]) > 0 and int(r["idle_rss_before_kb"]) > 0, where
        assert r["kb_per_idle_client"] != "", where

    # The printed table has the same rows, with each reference at exactly 1.00 of itself.
    table = _table_rows(result.stdout)
    for clients in SWEEP:
        for target in TARGETS:
            cells = table.get(("sweep", str(clients), target))
            assert cells, f"no table row for sweep {clients} {target}\n{report}"
            assert cells[3] == "ok", cells
            assert _number(cells[4]) > 0, cells
            assert _number(cells[5]) > 0 and _number(cells[6]) > 0, cells
        assert table[("sweep", str(clients), "pgbouncer")][5] == "1.00"
        assert table[("sweep", str(clients), "direct")][6] == "1.00"
    for target in POOLERS:
        cells = table.get((str(IDLE_CLIENTS), target, "ok"))
        assert cells and int(cells[3]) == IDLE_CLIENTS, f"idle {target}: {cells}\n{report}"

    summary = json.loads((out_dir / "results.json").read_text())["summary"]
    assert len(summary) == len(SWEEP) * len(TARGETS) + len(POOLERS), summary
    assert (out_dir / "table.md").read_text() in result.stdout
    for png in ("sweep-tps.png", "sweep-p99.png"):
        assert (out_dir / png).exists(), f"no {png} (is gnuplot installed?)\n{report}"
        assert (out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    for target in TARGETS:
        points = (out_dir / f"sweep-{target}.dat").read_text().split("\n", 1)[1].split()
        assert len(points) == 3 * len(SWEEP), points  # clients, tps, p99 per point
