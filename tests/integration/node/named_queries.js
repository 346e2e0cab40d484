// node-postgres named queries for the integration suite: many concurrent pg.Clients run the same
// few named statements (Parse once per connection, then Bind/Execute only), some inside
// BEGIN/COMMIT or BEGIN/ROLLBACK, check every result, and print a JSON summary on stdout.
// Exits 1 on any error or wrong result (each is printed on stderr).
//
// usage: node named_queries.js '<json>'   with host, port, user, password, database, table,
//        clients, rounds, seedRows (rows 1..seedRows hold note 'seed-<id>').
'use strict';

const { Client } = require('pg');

const cfg = JSON.parse(process.argv[2]);
const table = '"' + cfg.table.replace(/"/g, '""') + '"';

// The statements every client prepares under the same names.
const GET = { name: 'get', text: `SELECT id, note FROM ${table} WHERE id = $1` };
const RANGE = {
  name: 'range',
  text: `SELECT count(*)::int AS n, coalesce(sum(id), 0)::int AS s FROM ${table} ` +
    'WHERE id BETWEEN $1 AND $2',
};
const WHOAMI = { name: 'whoami', text: 'SELECT pg_backend_pid() AS pid, $1::text AS tag' };
const INSERT = { name: 'insert', text: `INSERT INTO ${table} (id, note) VALUES ($1, $2)` };

const errors = [];
let executions = 0;

function expect(ok, what) {
  if (!ok) throw new Error(`wrong result: ${what}`);
}

async function named(client, stmt, values) {
  const result = await client.query({ name: stmt.name, text: stmt.text, values });
  executions += 1;
  return result;
}

// The id a client inserts in a round; the Python test recomputes it.
function insertedId(clientNo, round) {
  return 100000 + clientNo * 1000 + round;
}

async function runClient(clientNo) {
  const client = new Client({
    host: cfg.host, port: cfg.port, user: cfg.user, password: cfg.password,
    database: cfg.database, connectionTimeoutMillis: 10000, query_timeout: 30000,
  });
  // A connection-level error (e.g. the socket closed) is recorded, not thrown from an emitter.
  client.on('error', (e) => errors.push(`client ${clientNo}: connection error: ${e.message}`));
  const pids = new Set();
  await client.connect();
  try {
    for (let round = 0; round < cfg.rounds; round += 1) {
      const k = 1 + ((clientNo * 7 + round) % cfg.seedRows);
      const got = await named(client, GET, [k]);
      expect(got.rows.length === 1 && got.rows[0].id === k && got.rows[0].note === `seed-${k}`,
        `get ${k} -> ${JSON.stringify(got.rows)}`);

      const lo = 1 + ((clientNo + round) % (cfg.seedRows - 9));
      const range = await named(client, RANGE, [lo, lo + 9]);
      expect(range.rows[0].n === 10 && range.rows[0].s === 10 * lo + 45,
        `range ${lo} -> ${JSON.stringify(range.rows)}`);

      const tag = `c${clientNo}-r${round}`;
      const who = await named(client, WHOAMI, [tag]);
      expect(who.rows[0].tag === tag, `whoami ${tag} -> ${JSON.stringify(who.rows)}`);
      pids.add(who.rows[0].pid);

      // A transaction: the statements run on one server, which may not have them prepared yet.
      const id = insertedId(clientNo, round);
      const rollback = round % 4 === 3;
      await client.query('BEGIN');
      const first = await named(client, WHOAMI, [tag]);
      const ins = await named(client, INSERT, [id, tag]);
      expect(ins.rowCount === 1, `insert ${id} -> rowCount ${ins.rowCount}`);
      const back = await named(client, GET, [id]);
      expect(back.rows.length === 1 && back.rows[0].note === tag,
        `get ${id} in transaction -> ${JSON.stringify(back.rows)}`);
      const last = await named(client, WHOAMI, [tag]);
      expect(first.rows[0].pid === last.rows[0].pid,
        `transaction moved from backend ${first.rows[0].pid} to ${last.rows[0].pid}`);
      pids.add(first.rows[0].pid);
      await client.query(rollback ? 'ROLLBACK' : 'COMMIT');

      const after = await named(client, GET, [id]);
      expect(after.rows.length === (rollback ? 0 : 1),
        `get ${id} after ${rollback ? 'ROLLBACK' : 'COMMIT'} -> ${JSON.stringify(after.rows)}`);
    }
  } catch (e) {
    errors.push(`client ${clientNo}: ${e.code ? e.code + ' ' : ''}${e.message}`);
  } finally {
    await client.end().catch((e) => errors.push(`client ${clientNo}: end: ${e.message}`));
  }
  return [...pids];
}

async function main() {
  const clients = [];
  for (let i = 0; i < cfg.clients; i += 1) clients.push(runClient(i));
  const settled = await Promise.allSettled(clients);
  const pidsPerClient = [];
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') pidsPerClient.push(s.value);
    else errors.push(`client ${i}: ${s.reason && s.reason.message}`);
  });
  const allPids = new Set(pidsPerClient.flat());
  process.stdout.write(JSON.stringify({
    clients: cfg.clients,
    executions,
    errors: errors.length,
    distinctBackends: allPids.size,
    clientsOnSeveralBackends: pidsPerClient.filter((p) => p.length > 1).length,
  }) + '\n');
  for (const e of errors.slice(0, 50)) process.stderr.write(e + '\n');
  process.exitCode = errors.length === 0 ? 0 : 1;
}

main().catch((e) => {
  process.stderr.write(`fatal: ${e.stack}\n`);
  process.exitCode = 1;
});
