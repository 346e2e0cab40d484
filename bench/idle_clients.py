#!/usr/bin/python3
"""bench/idle_clients.py - opens --count client connections to a pooler, logs each one in (md5 or
cleartext password, from $PGPASSWORD), runs `SELECT 1` once on each, then holds them all idle and
reads the pooler's resident set size (/proc/<pid>/status) before and after.

It speaks the wire protocol itself: a driver would spend more memory and CPU here than the pooler
under test. Writes a JSON summary to --out and prints one line."""
import argparse
import asyncio
import collections
import hashlib
import json
import os
import resource
import struct
import time

PROTOCOL_3_0 = 196608


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def message(kind, body):
    return kind + struct.pack("!I", 4 + len(body)) + body


def error_text(body):
    """The M (message) field of an ErrorResponse."""
    for field in body.split(b"\0"):
        if field[:1] == b"M":
            return field[1:].decode(errors="replace")
    return "ErrorResponse"


async def read_message(reader):
    header = await reader.readexactly(5)
    (length,) = struct.unpack("!I", header[1:])
    return header[:1], await reader.readexactly(length - 4)


async def until_ready(reader, writer, user, password):
    """Answers authentication requests and returns at ReadyForQuery; raises on ErrorResponse."""
    while True:
        kind, body = await read_message(reader)
        if kind == b"E":
            raise RuntimeError(error_text(body))
        if kind == b"Z":
            return
        if kind != b"R":
            continue  # ParameterStatus, BackendKeyData, RowDescription, DataRow, CommandComplete
        (code,) = struct.unpack("!I", body[:4])
        if code == 3:  # AuthenticationCleartextPassword
            writer.write(message(b"p", password.encode() + b"\0"))
        elif code == 5:  # AuthenticationMD5Password
            inner = hashlib.md5((password + user).encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            writer.write(message(b"p", b"md5" + outer.encode() + b"\0"))
        elif code != 0:
            raise RuntimeError(f"authentication request {code} is not supported here")


async def open_client(args, password):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    try:
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                          for k, v in (("user", args.user), ("database", args.dbname))) + b"\0"
        writer.write(struct.pack("!II", 8 + len(params), PROTOCOL_3_0) + params)
        await until_ready(reader, writer, args.user, password)
        writer.write(message(b"Q", b"SELECT 1\0"))
        await until_ready(reader, writer, args.user, password)
    except BaseException:
        writer.close()
        raise
    return writer


async def run(args):
    password = os.environ.get("PGPASSWORD", "")
    rss_before = status_kb(args.pid, "VmRSS")
    # Logins in flight at once: the pooler's listen backlog must not overflow.
    gate = asyncio.Semaphore(args.concurrency)

    async def one():
        async with gate:
            return await asyncio.wait_for(open_client(args, password), 30)

    started = time.monotonic()
    results = await asyncio.gather(*(one() for _ in range(args.count)), return_exceptions=True)
    connect_s = time.monotonic() - started
    writers = [r for r in results if not isinstance(r, BaseException)]
    errors = collections.Counter(f"{type(r).__name__}: {r}"[:160]
                                 for r in results if isinstance(r, BaseException))
    await asyncio.sleep(args.settle)
    rss_idle = status_kb(args.pid, "VmRSS")
    summary = {
        "requested": args.count,
        "connected": len(writers),
        "failed": sum(errors.values()),
        "errors": dict(errors.most_common(3)),
        "connect_s": round(connect_s, 2),
        "rss_before_kb": rss_before,
        "rss_idle_kb": rss_idle,
        "kb_per_client": round((rss_idle - rss_before) / len(writers), 2) if writers else None,
    }
    for w in writers:
        w.close()
    with open(args.out, "w") as f:
        json.dump(summary, f)
    print(f"{summary['connected']}/{args.count} clients idle in {connect_s:.1f} s; pooler RSS "
          f"{rss_before} -> {rss_idle} kB, {summary['kb_per_client']} kB per client; "
          f"{summary['failed']} failed {summary['errors'] or ''}")
    return 0 if writers else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--dbname", required=True)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--pid", type=int, required=True, help="the pooler, for its RSS")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds between the last login and the RSS reading")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    # One descriptor per client.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < args.count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
