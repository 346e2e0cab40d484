#!/usr/bin/python3
"""bench/report.py OUT - reads the runs bench/run.sh left in OUT/runs and writes OUT/results.tsv
and OUT/results.json (one row per run, plus the summary), OUT/table.md (printed too) and, with
gnuplot, the sweep plots OUT/sweep-tps.png and OUT/sweep-p99.png (drawn by OUT/sweep.gp).

How each number is computed:
  TPS              pgbench's "tps = ... (without initial connection time)"; for http, wrk's
                   successful (2xx) responses divided by its run time.
  pooler CPU us/tx (utime + stime of the pooler process over the client run, from
                   /proc/<pid>/stat) / transactions (pgbench: "actually processed"; http:
                   successful responses).
  PG CPU us/tx     the same for PostgreSQL: the postmaster, its live children and the children it
                   reaped during the run.
  p50/p95/p99      nearest-rank percentiles of the per-transaction latencies pgbench logged
                   (-l with --sampling-rate); for http, wrk --latency's distribution (no p95).
  peak RSS         the pooler's VmHWM at the end of the run.
  kB/idle client   (VmRSS with every client connected and idle - VmRSS before) / clients.
  other CPU s      the machine's busy CPU seconds over the run (/proc/stat) minus those of the
                   pooler, PostgreSQL and the client (pgbench, wrk + app, idle_clients.py): work
                   nobody in the run did, i.e. noise from other users of the machine.
  x PgBouncer,     TPS over the reference's TPS in the same scenario (for idle: kB per client over
  x direct         PgBouncer's); marked \\* when the reference run had errors.
With --repeat, the table shows the median of the runs of each scenario and target.
"""
import csv
import json
import math
import pathlib
import re
import shutil
import statistics
import subprocess
import sys

SCENARIO_ORDER = ["simple", "extended", "prepared", "tpcb", "c1000", "connect", "sweep", "http",
                  "idle"]
TARGET_ORDER = ["pgmux", "pgmux-w1", "pgmux-w2", "pgmux-pipe1", "pgmux-pipe2", "pgbouncer", "direct", "relay"]
RUN_FIELDS = ["scenario", "clients", "rep", "target", "status", "tps", "transactions",
              "pooler_cpu_us_per_tx", "pg_cpu_us_per_tx", "p50_ms", "p95_ms", "p99_ms",
              "pooler_peak_rss_kb", "wall_s", "pooler_cpu_s", "pg_cpu_s", "client_cpu_s",
              "machine_busy_s", "steal_s", "other_cpu_s", "idle_connected", "idle_connect_s",
              "idle_rss_before_kb", "idle_rss_kb", "kb_per_idle_client", "errors", "run_dir"]
NUMERIC = RUN_FIELDS[5:-2]


def read_env(path):
    """key=value lines; the value is everything after the first '='."""
    env = {}
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env[key] = value.strip()
    return env


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def first_match(pattern, text, group=1, cast=float):
    m = re.search(pattern, text, re.M)
    return cast(m.group(group)) if m else None


def short(text, n=110):
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_pgbench(run_dir, meta, row):
    log = (run_dir / "client.log").read_text(errors="replace")
    rc = int(meta.get("rc", "-1"))
    clients = int(meta["clients"])
    row["tps"] = first_match(r"^tps = ([0-9.]+)", log)
    row["transactions"] = first_match(r"^number of transactions actually processed: (\d+)", log,
                                      cast=int)
    failed = first_match(r"^number of failed transactions: (\d+)", log, cast=int) or 0
    aborted = len(re.findall(r"client \d+ (?:script \d+ )?aborted", log))
    errors = []
    if aborted:
        errors.append(f"{aborted}/{clients} clients aborted")
    if failed:
        errors.append(f"{failed} failed transactions")
    if rc not in (0, 2):
        errors.append(f"pgbench rc={rc}" + (" (timeout)" if rc in (124, 137) else ""))
    # The first error message, client numbers and statement names masked.
    for line in log.splitlines():
        if re.search(r"error|FATAL|ERROR", line) and "Run was aborted" not in line:
            errors.append("first: " + short(re.sub(r"^pgbench: (error: )?", "", line)))
            break
    latencies = []
    for path in sorted(run_dir.glob("txlog.*")):
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2].isdigit():
                    latencies.append(int(fields[2]))
    latencies.sort()
    for p in (50, 95, 99):
        v = percentile(latencies, p)
        row[f"p{p}_ms"] = None if v is None else v / 1000.0
    if row["tps"] and rc == 0:
        row["status"] = "ok" if not failed else "errors"
    elif row["tps"] and rc == 2 and aborted < clients:
        row["status"] = "partial"  # the TPS of the clients that were not aborted
    else:
        row["status"] = "FAIL"
        row["tps"] = None
    return errors


def wrk_ms(text):
    """wrk's "850.00us" / "1.20ms" / "2.00s" -> milliseconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def parse_wrk(run_dir, meta, row):
    log = (run_dir / "client.log").read_text(errors="replace")
    requests = first_match(r"^\s*(\d+) requests in", log, cast=int)
    m = re.search(r"requests in ([0-9.]+)(ms|s|m),", log)
    seconds = None
    if m:
        seconds = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(2)]
    non2xx = first_match(r"Non-2xx or 3xx responses: (\d+)", log, cast=int) or 0
    socket_errors = first_match(r"Socket errors: (.*)$", log, cast=str)
    errors = []
    if requests is not None and seconds:
        ok = requests - non2xx
        row["tps"] = ok / seconds if ok > 0 else None
        row["transactions"] = ok
    for p in (50, 99):
        v = first_match(rf"^\s+{p}%\s+(\S+)", log, cast=str)
        row[f"p{p}_ms"] = wrk_ms(v) if v else None
    if non2xx:
        errors.append(f"{non2xx} non-2xx")
    if socket_errors:
        errors.append(f"socket errors: {socket_errors}")
    app_log = (run_dir / "app.log").read_text(errors="replace") if (run_dir / "app.log").exists() \
        else ""
    m = re.search(r"^STATS (.*)$", app_log, re.M)
    if m:
        stats = json.loads(m.group(1))
        for name, count in stats["errors"].items():
            errors.append(f"app: {name} x{count}: {short(stats['first_error'].get(name, ''), 90)}")
    if row["tps"] is None:
        row["status"] = "FAIL"
    elif non2xx or socket_errors:
        row["status"] = "errors"
    else:
        row["status"] = "ok"
    return errors


def parse_idle(run_dir, meta, row):
    path = run_dir / "idle.json"
    if not path.exists():
        row["status"] = "FAIL"
        log = (run_dir / "client.log").read_text(errors="replace")
        return [short(log.strip().splitlines()[-1] if log.strip() else "no result")]
    idle = json.loads(path.read_text())
    row["idle_connected"] = idle["connected"]
    row["idle_connect_s"] = idle["connect_s"]
    row["idle_rss_before_kb"] = idle["rss_before_kb"]
    row["idle_rss_kb"] = idle["rss_idle_kb"]
    row["kb_per_idle_client"] = idle["kb_per_client"]
    errors = [f"{idle['failed']} failed"] if idle["failed"] else []
    errors += [short(e) for e in idle["errors"]]
    row["status"] = "ok" if not idle["failed"] else ("errors" if idle["connected"] else "FAIL")
    return errors


def read_run(run_dir):
    meta = read_env(run_dir / "meta.env")
    measure = read_env(run_dir / "measure.env")
    row = {f: None for f in RUN_FIELDS}
    row.update(scenario=meta["scenario"], clients=int(meta["clients"]), rep=int(meta["rep"]),
               target=meta["target"], run_dir=str(run_dir))
    if "start_error" in meta:
        row["status"] = "FAIL"
        row["errors"] = "start: " + short(meta["start_error"], 160)
        return row
    parser = {"pgbench": parse_pgbench, "wrk": parse_wrk, "idle": parse_idle}[meta["kind"]]
    errors = parser(run_dir, meta, row)
    if measure.get("pooler_alive") == "0":
        row["status"] = "FAIL"
        errors.insert(0, "POOLER DIED during the run")
    cpu_accounting(run_dir, measure, row)
    tx = row["transactions"]
    if tx and row["pooler_cpu_s"] is not None:
        row["pooler_cpu_us_per_tx"] = row["pooler_cpu_s"] * 1e6 / tx
    if tx and row["pg_cpu_s"] is not None:
        row["pg_cpu_us_per_tx"] = row["pg_cpu_s"] * 1e6 / tx
    if measure.get("pooler_hwm_kb"):
        row["pooler_peak_rss_kb"] = int(measure["pooler_hwm_kb"])
    if row["status"] == "FAIL":
        # What a failed run measured describes the failure, not the target.
        for field in ("pooler_cpu_us_per_tx", "pg_cpu_us_per_tx", "p50_ms", "p95_ms", "p99_ms"):
            row[field] = None
    row["errors"] = "; ".join(errors)
    return row


def children_cpu_s(path):
    """User + system seconds of the shell's reaped children, from the output of `times`."""
    lines = path.read_text().splitlines() if path.exists() else []
    if len(lines) < 2:
        return None
    return sum(int(m) * 60 + float(sec) for m, sec in re.findall(r"(\d+)m([0-9.]+)s", lines[1]))


def cpu_accounting(run_dir, measure, row):
    """CPU seconds of the pooler, PostgreSQL, the client and the machine over the client run;
    what is left of the machine's busy time ("other") is work nobody in the run did: other
    users of the machine, or the kernel on nobody's account. Tick sampling makes each +-0.1 s."""
    hz = float(measure.get("clk_tck") or 100)
    ticks = lambda key: int(measure[key]) / hz if measure.get(key) else None  # noqa: E731
    row["wall_s"] = float(measure["wall_s"]) if measure.get("wall_s") else None
    row["pooler_cpu_s"] = ticks("pooler_ticks")
    row["pg_cpu_s"] = ticks("pg_ticks")
    row["machine_busy_s"] = ticks("machine_busy_ticks")
    row["steal_s"] = ticks("machine_steal_ticks")
    begin, end = children_cpu_s(run_dir / "times.begin"), children_cpu_s(run_dir / "times.end")
    if begin is not None and end is not None:
        row["client_cpu_s"] = end - begin + (ticks("app_ticks") or 0)
    parts = [row["pg_cpu_s"], row["client_cpu_s"], row["machine_busy_s"]]
    if all(p is not None for p in parts):
        row["other_cpu_s"] = (row["machine_busy_s"] - row["pg_cpu_s"] - row["client_cpu_s"]
                              - (row["pooler_cpu_s"] or 0))


def order_key(row):
    s = row["scenario"]
    return (SCENARIO_ORDER.index(s) if s in SCENARIO_ORDER else 99, row["clients"],
            TARGET_ORDER.index(row["target"]) if row["target"] in TARGET_ORDER else 9, row["rep"])


def summarize(runs):
    """One row per (scenario, clients, target): medians over the repetitions."""
    groups = {}
    for r in runs:
        groups.setdefault((r["scenario"], r["clients"], r["target"]), []).append(r)
    summary = []
    for (scenario, clients, target), rs in groups.items():
        s = {"scenario": scenario, "clients": clients, "target": target, "runs": len(rs)}
        statuses = sorted({r["status"] for r in rs})
        s["status"] = statuses[0] if len(statuses) == 1 else "/".join(statuses)
        for f in NUMERIC:
            values = [r[f] for r in rs if r[f] is not None]
            s[f] = statistics.median(values) if values else None
        s["errors"] = next((r["errors"] for r in rs if r["errors"]), "")
        summary.append(s)
    summary.sort(key=lambda s: order_key({**s, "rep": 0}))
    by_key = {(s["scenario"], s["clients"], s["target"]): s for s in summary}
    for s in summary:
        for ref in ("pgbouncer", "direct"):
            other = by_key.get((s["scenario"], s["clients"], ref))
            field = "kb_per_idle_client" if s["scenario"] == "idle" else "tps"
            ok = other is not None and other[field] and s[field] is not None
            s[f"vs_{ref}"] = s[field] / other[field] if ok else None
            # A reference that was not clean (errors, aborted clients) is flagged in the table.
            s[f"vs_{ref}_clean"] = ok and (other is s or other["status"] == "ok")
    return summary


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}".replace(",", " ")
    return str(v)


def ratio(s, ref):
    if s[f"vs_{ref}"] is None:
        return "-"
    return fmt(s[f"vs_{ref}"], 2) + ("" if s[f"vs_{ref}_clean"] else "\\*")


def markdown_tables(summary, meta_lines, commands):
    out = []
    out.append("Scenarios (run as):")
    for scenario, cmd in commands.items():
        out.append(f"  {scenario:9} {cmd}")
    out.append("")
    rows = [s for s in summary if s["scenario"] != "idle"]
    if rows:
        out.append("| scenario | clients | target | status | TPS | x PgBouncer | x direct | pooler CPU "
                   "us/tx | PG CPU us/tx | p50 ms | p95 ms | p99 ms | pooler peak RSS MB "
                   "| other CPU s | errors |")
        out.append("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for s in rows:
            rss = s["pooler_peak_rss_kb"] / 1024 if s["pooler_peak_rss_kb"] else None
            out.append("| " + " | ".join([
                s["scenario"], str(s["clients"]), s["target"], s["status"], fmt(s["tps"], 0),
                ratio(s, "pgbouncer"), ratio(s, "direct"),
                fmt(s["pooler_cpu_us_per_tx"], 1), fmt(s["pg_cpu_us_per_tx"], 1),
                fmt(s["p50_ms"], 2), fmt(s["p95_ms"], 2), fmt(s["p99_ms"], 2), fmt(rss, 1),
                fmt(s["other_cpu_s"], 1), (s["errors"] or "").replace("|", "/")]) + " |")
        if any(s["vs_pgbouncer"] is not None and not s["vs_pgbouncer_clean"] or
               s["vs_direct"] is not None and not s["vs_direct_clean"] for s in rows):
            out.append("")
            out.append("\\* against a reference run that was not clean (see its status and "
                       "errors): its TPS counts only what succeeded.")
    idle = [s for s in summary if s["scenario"] == "idle"]
    if idle:
        if rows:
            out.append("")
        out.append("| idle clients | target | status | connected | login time s | RSS before MB "
                   "| RSS idle MB | kB per idle client | x PgBouncer | errors |")
        out.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
        for s in idle:
            mb = lambda kb: kb / 1024 if kb is not None else None  # noqa: E731
            out.append("| " + " | ".join([
                str(s["clients"]), s["target"], s["status"], fmt(s["idle_connected"], 0),
                fmt(s["idle_connect_s"], 1), fmt(mb(s["idle_rss_before_kb"]), 1),
                fmt(mb(s["idle_rss_kb"]), 1), fmt(s["kb_per_idle_client"], 2),
                ratio(s, "pgbouncer"), (s["errors"] or "").replace("|", "/")]) + " |")
    out.append("")
    out.extend(meta_lines)
    return "\n".join(out) + "\n"


def client_commands(runs):
    """The client command of each scenario's first run, without the per-run log options."""
    commands = {}
    for r in sorted(runs, key=order_key):
        if r["scenario"] in commands:
            continue
        path = pathlib.Path(r["run_dir"]) / "client.cmd"
        if path.exists():
            cmd = path.read_text().strip()
            cmd = re.sub(r" -l --log-prefix=\S+ --sampling-rate=\S+", "", cmd)
            cmd = re.sub(r" (-h|-p|-U|-c|--host|--port|--user|--dbname|--pid|--out) \S+", "", cmd)
            cmd = re.sub(r"\S*/bench/", "bench/", cmd)
            cmd = re.sub(r"http://127\.0\.0\.1:\d+", "http://<bench/app.py>", cmd)
            commands[r["scenario"]] = cmd + ("" if r["scenario"] == "sweep" else
                                             f"   ({r['clients']} clients)")
    return commands


def plot(out, summary, meta):
    sweep = [s for s in summary if s["scenario"] == "sweep"]
    if not sweep:
        return []
    if shutil.which("gnuplot") is None:
        print("report: gnuplot not found (Debian: gnuplot-nox): no plots", file=sys.stderr)
        return []
    targets = [t for t in TARGET_ORDER if any(s["target"] == t for s in sweep)]
    for t in targets:
        with open(out / f"sweep-{t}.dat", "w") as f:
            f.write("# clients tps p99_ms (runs that produced a number)\n")
            for s in sorted((s for s in sweep if s["target"] == t), key=lambda s: s["clients"]):
                if s["tps"] is not None:
                    f.write(f"{s['clients']} {s['tps']:.1f} {fmt(s['p99_ms'], 3)}\n")
    clients = sorted({s["clients"] for s in sweep})
    settings = dict(kv.split("=", 1) for kv in meta.get("settings", "").split() if "=" in kv)
    subtitle = f"{meta.get('date', '')}, {meta.get('machine', '').split(' (')[0]}; " \
               f"{settings.get('duration', '?')} per point, pool size {settings.get('pool_size', '?')}"
    style = {"pgmux": "lc rgb '#1b9e77' pt 7", "pgmux-w1": "lc rgb '#e7298a' pt 11",
             "pgmux-w2": "lc rgb '#66a61e' pt 13",
             "pgmux-pipe1": "lc rgb '#e6ab02' pt 15",
             "pgmux-pipe2": "lc rgb '#a6761d' pt 15",
             "pgbouncer": "lc rgb '#d95f02' pt 5",
             "direct": "lc rgb '#7570b3' pt 9",
             "relay": "lc rgb '#999999' pt 3"}

    def plot_line(column):
        return ", ".join(f"'sweep-{t}.dat' using 1:{column} with linespoints lw 2 "
                         f"{style[t]} title '{t}'" for t in targets)

    script = f"""# Drawn by bench/report.py from sweep-<target>.dat; run `gnuplot sweep.gp` here to redraw.
set terminal pngcairo size 900,560 font ',11'
set logscale x
set xtics ({", ".join(str(c) for c in clients)})
set xrange [{clients[0] * 0.8}:{clients[-1] * 1.25}]
set xlabel 'clients (pgbench -S -M simple)'
set grid
set key below horizontal
set output 'sweep-tps.png'
set title "Throughput against clients\\n{subtitle}"
set ylabel 'transactions per second'
set yrange [0:*]
plot {plot_line(2)}
set output 'sweep-p99.png'
set title "p99 latency against clients\\n{subtitle}"
set ylabel 'p99 latency, ms (log scale)'
set logscale y
set yrange [*:*]
plot {plot_line(3)}
"""
    (out / "sweep.gp").write_text(script)
    result = subprocess.run(["gnuplot", "sweep.gp"], cwd=out, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"report: gnuplot failed: {result.stderr.strip()}", file=sys.stderr)
        return []
    return [out / "sweep-tps.png", out / "sweep-p99.png"]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    run_dirs = sorted(p for p in (out / "runs").iterdir() if (p / "meta.env").exists())
    if not run_dirs:
        sys.exit(f"report: no runs in {out / 'runs'}")
    runs = sorted((read_run(d) for d in run_dirs), key=order_key)
    summary = summarize(runs)
    meta_lines = (out / "meta.txt").read_text().splitlines() if (out / "meta.txt").exists() else []
    meta = dict(line.split(": ", 1) for line in meta_lines if ": " in line)

    with open(out / "results.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, RUN_FIELDS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        for r in runs:
            w.writerow({k: ("" if v is None else (f"{v:.3f}" if isinstance(v, float) else v))
                        for k, v in r.items()})
    (out / "results.json").write_text(json.dumps({"meta": meta, "runs": runs,
                                                  "summary": summary}, indent=1) + "\n")
    table = markdown_tables(summary, meta_lines, client_commands(runs))
    (out / "table.md").write_text(table)
    print(table)
    for png in plot(out, summary, meta):
        print(f"plot: {png}")
    print(f"results: {out / 'results.tsv'} {out / 'results.json'}")


if __name__ == "__main__":
    main()
