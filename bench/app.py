#!/usr/bin/python3
"""bench/app.py - the HTTP app of the `http` scenario: GET /entries/{id} answers one row of table
`entries` as JSON, read through asyncpg's pool with its default statement cache (so named
prepared statements, as most asyncpg apps run). A stand-in for the companion C++ app.

Prints "READY" once it listens. On SIGTERM it stops and prints "STATS {...}": rows served and
database errors by exception class, with the first message of each."""
import argparse
import asyncio
import collections
import json
import signal

import asyncpg
from aiohttp import web

QUERY = "SELECT id, body FROM entries WHERE id = $1"


async def serve(args):
    pool = await asyncpg.create_pool(args.dsn, min_size=args.pool_size, max_size=args.pool_size)
    served = 0
    errors = collections.Counter()
    first_error = {}

    async def entry(request):
        nonlocal served
        try:
            entry_id = int(request.match_info["id"])
        except ValueError:
            return web.json_response({"error": "bad id"}, status=400)
        try:
            row = await pool.fetchrow(QUERY, entry_id)
        except Exception as exc:  # every database failure is a 500, counted by class
            name = type(exc).__name__
            errors[name] += 1
            first_error.setdefault(name, str(exc)[:200])
            return web.json_response({"error": name}, status=500)
        if row is None:
            return web.json_response({"error": "not found"}, status=404)
        served += 1
        return web.json_response({"id": row["id"], "body": row["body"]})

    app = web.Application()
    app.router.add_get("/entries/{id}", entry)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096).start()
    print("READY", flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    pool.terminate()
    print("STATS " + json.dumps({"served": served, "errors": dict(errors),
                                 "first_error": first_error}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool-size", type=int, default=10)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
