/**
 * `runwarden runs prune` on a real deployment (`runwarden start`, a supervised worker process on
 * its own SQLite connection) while it keeps working: finished runs go with all their rows, running
 * runs stay and keep running, runs submitted during the prune finish, and the database file is
 * smaller after. The 100,000-run version of this is `node bench/prune.ts`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { validateRunRequest } from '../../src/domain/plan.ts';
import { pruneRuns, startRetention } from '../../src/engine/retention.ts';
import { Transitions } from '../../src/engine/transitions.ts';
import { SqliteStore } from '../../src/store/sqlite/index.ts';
import { builtinTools } from '../../src/tools/builtin.ts';
import { ToolRegistry } from '../../src/tools/registry.ts';
import pg from 'pg';
import { killAll, runCli, startServer, type ServerProcess } from '../cli/helpers.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';

after(killAll);

const RUNS = 1000;
/** ~4 KB per step input, stored in inputs, resolved inputs, outputs and events: ~30 KB a run. */
const PAYLOAD = 'x'.repeat(4096);

async function api<T>(url: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `n` runs of one echo step, claimed and completed directly through the transitions (no worker). */
async function finishedRuns(store: SqliteStore, n: number, payload: string): Promise<string[]> {
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  const core = new Transitions(store);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const validated = await validateRunRequest({ plan: { steps: [{ name: 'a', tool: 'echo', inputs: { payload } }] } }, tools, { defaultTimeoutMs: 1000, maxTimeoutMs: 10_000 });
    const { runId } = await core.createRun(validated, {});
    const [c] = await core.claim('w', 1, 10_000);
    assert.ok(c);
    await core.flush([], [{ runId, stepName: 'a', attempt: 1, token: c.token, outcome: 'succeeded', outputs: { payload }, artifacts: [] }]);
    ids.push(runId);
  }
  return ids;
}

const plan = (i: number) => ({
  plan: {
    goal: `retention run ${i}`,
    steps: [
      { name: 'a', tool: 'echo', inputs: { payload: PAYLOAD, i } },
      { name: 'b', tool: 'echo', inputs: { from: '{{steps.a.outputs.payload}}' }, dependsOn: ['a'] },
    ],
  },
});

interface Dialect {
  name: string;
  start(dir: string): Promise<ServerProcess>;
  /** Counts rows with one `SELECT count(*) AS n ...` on the deployment's database. */
  count(sql: string): Promise<number>;
  /** SQLite: the file's size once its WAL is checkpointed. */
  fileSize?(): number;
  close(): Promise<void>;
}

function sqlite(dir: string): Dialect {
  let db: DatabaseSync | undefined;
  const open = (): DatabaseSync => (db ??= new DatabaseSync(join(dir, 'runwarden.db'), { timeout: 10_000 }));
  return {
    name: 'SQLite',
    start: (d) => startServer(['--data-dir', d, '--lab', 'off', '--workers', '1']),
    count: async (sql) => Number((open().prepare(sql).get() as { n: number }).n),
    fileSize() {
      open().exec('PRAGMA wal_checkpoint(TRUNCATE)');
      return statSync(join(dir, 'runwarden.db')).size;
    },
    async close() {
      db?.close();
    },
  };
}

async function postgres(): Promise<Dialect> {
  const testDb = await createTestDatabase();
  const client = new pg.Client({ connectionString: testDb.url });
  let connected = false;
  return {
    name: 'PostgreSQL',
    start: (d) => startServer(['--data-dir', d, '--lab', 'off', '--workers', '1'], { env: { DATABASE_URL: testDb.url } }),
    async count(sql) {
      if (!connected) {
        await client.connect();
        connected = true;
      }
      return Number(((await client.query(sql)).rows[0] as { n: string }).n);
    },
    async close() {
      if (connected) await client.end();
      await testDb.drop();
    },
  };
}

const DIALECTS: Array<{ name: string; make: (dir: string) => Promise<Dialect>; skip: string | false }> = [
  { name: 'SQLite', make: async (dir) => sqlite(dir), skip: false },
  { name: 'PostgreSQL', make: () => postgres(), skip: await postgresSkip() },
];

for (const { name, make, skip } of DIALECTS) {
  describe(`runs prune on a working deployment on ${name} (a supervised worker process on its own connection)`, { skip }, () => {
    let dir: string;
    let server: ServerProcess;
    let d: Dialect;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rw-prune-'));
      d = await make(dir);
      server = await d.start(dir);
    });
    after(async () => {
      await server?.stop();
      await d?.close();
      await rm(dir, { recursive: true, force: true });
    });

    test(`${RUNS} finished runs pruned while others run and arrive; nothing of them is left`, async (t) => {
      const url = server.url;
      for (let i = 0; i < RUNS; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => api(url, '/runs', plan(i + k))));
      await until('the seeded runs to finish', 120_000, async () => {
        const page = await api<{ runs: unknown[] }>(url, '/runs?status=succeeded&limit=500&goal=retention');
        const q = await api<{ queue: { queued: number; running: number; pending: number } }>(url, '/health/detailed');
        return page.body.runs.length === 500 && q.body.queue.queued + q.body.queue.running + q.body.queue.pending === 0 ? true : undefined;
      });
      // Runs that are running during the prune, and must be untouched by it.
      const long = await Promise.all([1, 2].map(async () => (await api<{ id: string }>(url, '/runs', { plan: { steps: [{ name: 'long', tool: 'sleep', inputs: { ms: 120_000 }, timeoutMs: 180_000 }] } })).body.id));
      await until('the long runs to start', 20_000, async () => {
        const runs = await Promise.all(long.map(async (id) => (await api<{ status: string }>(url, `/runs/${id}`)).body.status));
        return runs.every((s) => s === 'running') ? true : undefined;
      });
      const sizeBefore = d.fileSize?.();

      // Work keeps arriving while the prune runs.
      let submitting = true;
      const arrived: string[] = [];
      const submitter = (async () => {
        for (let i = 0; submitting; i++) arrived.push((await api<{ id: string }>(url, '/runs', { plan: { steps: [{ name: 'n', tool: 'echo', inputs: { i } }] } })).body.id);
      })();
      const pruned = await runCli(['runs', 'prune', '--older-than', '0s', '--json', '--url', url], { timeoutMs: 120_000 });
      submitting = false;
      await submitter;
      assert.equal(pruned.code, 0, pruned.stderr);
      const result = JSON.parse(pruned.stdout) as { runs: number; steps: number; events: number; done: boolean; space: { before: { bytes: number; reclaim: string }; after: { bytes: number; freeBytes: number } } };
      assert.ok(result.runs >= RUNS, `pruned ${result.runs}`);
      assert.ok(result.events >= RUNS * 8, `events ${result.events}`);
      assert.equal(result.done, true);

      // Every seeded run is gone with all its rows; the running ones are untouched.
      assert.equal(await d.count("SELECT count(*) AS n FROM runs WHERE goal LIKE 'retention run %'"), 0);
      for (const table of ['steps', 'events', 'attempts', 'run_plans']) {
        assert.equal(await d.count(`SELECT count(*) AS n FROM ${table} WHERE run_id NOT IN (SELECT id FROM runs)`), 0, table);
      }
      for (const id of long) {
        const r = (await api<{ status: string; steps: Array<{ status: string }> }>(url, `/runs/${id}`)).body;
        assert.equal(r.status, 'running');
        assert.equal(r.steps[0]?.status, 'running');
      }
      // What arrived meanwhile finished: pruned if it had finished before the cutoff, else there.
      for (const id of arrived) {
        const r = await until(`run ${id}`, 20_000, async () => {
          const got = await api<{ status?: string; error?: { code: string } }>(url, `/runs/${id}`);
          return got.status === 404 || got.body.status === 'succeeded' ? got : undefined;
        });
        assert.ok(r.status === 404 || r.body.status === 'succeeded');
      }
      assert.ok(arrived.length > 0, 'runs were submitted during the prune');

      if (sizeBefore !== undefined && d.fileSize) {
        // SQLite: smaller in pages (what the prune reported) and on disk once the WAL is checkpointed.
        assert.equal(result.space.before.reclaim, 'incremental');
        assert.ok(result.space.after.bytes < result.space.before.bytes / 4, JSON.stringify(result.space));
        assert.equal(result.space.after.freeBytes, 0);
        const sizeAfter = d.fileSize();
        t.diagnostic(`pruned ${result.runs} runs (${result.events} events) while ${arrived.length} arrived; file ${sizeBefore} -> ${sizeAfter} bytes`);
        assert.ok(sizeAfter < sizeBefore / 4, `file ${sizeBefore} -> ${sizeAfter} bytes`);
      } else {
        t.diagnostic(`pruned ${result.runs} runs (${result.events} events) while ${arrived.length} arrived (${d.name})`);
      }
      for (const id of long) await api(url, `/runs/${id}/cancel`, {});
    });
  });
}

describe('a database from before incremental auto-vacuum', () => {
  test('prune frees pages it cannot return; runwarden db vacuum returns them and switches the mode', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rw-vacuum-'));
    const path = join(dir, 'runwarden.db');
    try {
      // What earlier versions created: WAL first, so auto_vacuum stayed NONE.
      const old = new DatabaseSync(path);
      old.exec('PRAGMA journal_mode = WAL');
      old.close();
      const store = new SqliteStore({ path });
      await store.migrate();
      await finishedRuns(store, 200, PAYLOAD);
      const r = await pruneRuns(store, { olderThanMs: 0, now: Date.now() + 1 });
      assert.equal(r.runs, 200);
      assert.equal(r.done, true);
      assert.equal(r.space.after.reclaim, 'vacuum');
      assert.ok(r.space.after.freeBytes > r.space.after.bytes / 2, JSON.stringify(r.space));
      await store.close();

      const cli = await runCli(['db', 'vacuum', '--json', '--data-dir', dir], { timeoutMs: 60_000 });
      assert.equal(cli.code, 0, cli.stderr);
      const v = JSON.parse(cli.stdout) as { before: { bytes: number; reclaim: string }; after: { bytes: number; freeBytes: number; reclaim: string } };
      assert.equal(v.before.reclaim, 'vacuum');
      assert.equal(v.after.reclaim, 'incremental');
      assert.equal(v.after.freeBytes, 0);
      assert.ok(v.after.bytes < v.before.bytes / 2, JSON.stringify(v));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the retention setting', () => {
  test('prunes on its own timer, and stops cleanly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rw-retention-'));
    const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
    try {
      await store.migrate();
      const [runId = ''] = await finishedRuns(store, 1, 'small');
      const lines: string[] = [];
      const stop = startRetention(store, { retentionMs: 50, firstMs: 200, intervalMs: 100, log: (l) => lines.push(l) });
      await until('the timer to prune', 10_000, async () => ((await store.getRun(runId)) === null ? true : undefined));
      await stop();
      assert.match(lines[0] ?? '', /^retention: pruned 1 run finished before \S+ \(1 steps, \d+ events, 0 artifacts, 0 vectors\); database /);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
