/**
 * What one no-op single-step run costs the store, phase by phase (enqueue: 16 concurrent createRun
 * calls; process: one in-process worker, concurrency 256): rows written (SQLite: total_changes();
 * PostgreSQL: pg_stat_user_tables inserts, updates and HOT updates, read after the pool has closed
 * so that every backend flushed its counts), CPU of this process, and on PostgreSQL the CPU of the
 * database's backends (from /proc: the server must run on this machine). Row counts are exact; CPU
 * times move with the machine's load.
 *
 *   node bench/rows-per-step.ts [sqlite|postgres] [jobs] [checkout]
 *
 * `checkout`: another clone's root (e.g. /work/main) whose engine this script measures, for
 * before/after figures of a change.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PG_ADMIN_URL, randomId } from './peers/common.ts';

type Mod<T> = Promise<T>;
const [dialect = 'sqlite', jobsArg = '5000', root = join(import.meta.dirname, '..')] = process.argv.slice(2);
const jobs = Number(jobsArg);
const from = <T>(p: string): Mod<T> => import(join(root, p)) as Mod<T>;
const { Transitions } = await from<typeof import('../src/engine/transitions.ts')>('src/engine/transitions.ts');
const { validateRunRequest } = await from<typeof import('../src/domain/plan.ts')>('src/domain/plan.ts');
const { ToolRegistry } = await from<typeof import('../src/tools/registry.ts')>('src/tools/registry.ts');
const { defineTool } = await from<typeof import('../src/tools/types.ts')>('src/tools/types.ts');
const { Worker } = await from<typeof import('../src/worker/worker.ts')>('src/worker/worker.ts');
const { SqliteStore } = await from<typeof import('../src/store/sqlite/index.ts')>('src/store/sqlite/index.ts');
const { PostgresStore } = await from<typeof import('../src/store/postgres/index.ts')>('src/store/postgres/index.ts');

const tools = new ToolRegistry();
tools.register(defineTool({ name: 'noop', run: () => null }));
const dir = mkdtempSync(join(tmpdir(), 'rw-rows-'));
const dbName = `rwrows_${randomId()}`;
const dbUrl = (() => {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
if (dialect === 'postgres') {
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
}
const sqlite = dialect === 'sqlite' ? new SqliteStore({ path: join(dir, 'runwarden.db') }) : undefined;
const postgres = dialect === 'postgres' ? new PostgresStore({ url: dbUrl, poolMax: 10 }) : undefined;
const store = (sqlite ?? postgres) as NonNullable<typeof sqlite | typeof postgres>;

/** CPU ms of the database's backends by pid. */
async function serverCpu(): Promise<Map<number, number>> {
  const m = new Map<number, number>();
  if (!postgres) return m;
  const r = await postgres.pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  for (const { pid } of r.rows) {
    try {
      const f = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
      m.set(pid, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // The backend exited meanwhile: its time is lost to the count.
    }
  }
  return m;
}
const cpuDiff = (a: Map<number, number>, b: Map<number, number>): number => [...b].reduce((s, [pid, v]) => s + v - (a.get(pid) ?? 0), 0);
const changes = (): number => (sqlite ? Number((sqlite.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n) : 0);
const us = (c: NodeJS.CpuUsage): number => c.user + c.system;

try {
  await store.migrate();
  const core = new Transitions(store);
  const run = await validateRunRequest({ plan: { steps: [{ name: 'n', tool: 'noop' }] } }, tools, { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 });

  const ch0 = changes();
  const c0 = process.cpuUsage();
  const s0 = await serverCpu();
  const t0 = performance.now();
  let left = jobs;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (left-- > 0) await core.createRun(run, { steps: [{ name: 'n', tool: 'noop' }] });
  }));
  const enqueue = { wall_runs_per_s: Math.round(jobs / ((performance.now() - t0) / 1000)), cpu_us_per_run: Math.round(us(process.cpuUsage(c0)) / jobs), server_cpu_us_per_run: Math.round((cpuDiff(s0, await serverCpu()) * 1000) / jobs) };
  const ch1 = changes();

  const worker = new Worker({ core, tools, concurrency: 256, pollMs: 1000, heartbeatMs: 60_000 });
  const c2 = process.cpuUsage();
  const s2 = await serverCpu();
  const t2 = performance.now();
  worker.start();
  while (worker.stats.completed < jobs) await new Promise((r) => setTimeout(r, 2));
  const processing = { wall_steps_per_s: Math.round(jobs / ((performance.now() - t2) / 1000)), cpu_us_per_step: Math.round(us(process.cpuUsage(c2)) / jobs), server_cpu_us_per_step: Math.round((cpuDiff(s2, await serverCpu()) * 1000) / jobs) };
  const ch2 = changes();
  await worker.stop({ drainMs: 1000 });
  await store.close();

  let rows: Record<string, number>;
  if (postgres) {
    await new Promise((r) => setTimeout(r, 500));
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    const r = (await c.query<{ ins: number; upd: number; hot: number }>('SELECT sum(n_tup_ins)::int AS ins, sum(n_tup_upd)::int AS upd, sum(n_tup_hot_upd)::int AS hot FROM pg_stat_user_tables')).rows[0];
    await c.end();
    rows = { inserted_per_run: (r?.ins ?? 0) / jobs, updated_per_run: (r?.upd ?? 0) / jobs, hot_updated_per_run: (r?.hot ?? 0) / jobs };
  } else {
    rows = { enqueue_per_run: (ch1 - ch0) / jobs, process_per_step: (ch2 - ch1) / jobs };
  }
  console.log(JSON.stringify({ checkout: root, dialect, jobs, rows, enqueue, process: processing }));
} finally {
  rmSync(dir, { recursive: true, force: true });
  if (dialect === 'postgres') {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}
