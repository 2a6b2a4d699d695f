/**
 * Scale-out on PostgreSQL: the same backlog of single-step no-op runs drained by 1, 2 and 4
 * runwarden worker processes (one `runwarden worker --workers K` host, the same concurrency per
 * process), and where it saturates, measured over each drain:
 *
 * - CPU, from /proc: the PostgreSQL backends of the bench's database plus the server's own
 *   processes (WAL writer, checkpointer, background writer, autovacuum; from pg_stat_activity's
 *   `backend_type`), the worker host and its worker processes (its process group), and the whole
 *   machine (/proc/stat, which includes whatever else runs on it);
 * - waits, from pg_stat_activity sampled every 100 ms: how many of the database's backends wait on
 *   a heavyweight lock (`wait_event_type` Lock, as pg_locks' ungranted rows), on an LWLock, or on
 *   I/O (WAL writes and syncs), on average, and the most frequent wait event;
 * - WAL, from pg_stat_wal (cluster-wide: other databases' writes count too): bytes per step and
 *   WAL syncs per second.
 *
 * The no-op tool runs inline (`toolIsolation: 'inline'`, from a config file): this measures what
 * the database and the worker loop carry, not the start of a tool thread per attempt.
 *
 *   node bench/scale-out.ts [--jobs N]      (or as the `scale-out` workload of `npm run bench`)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PostgresStore } from '../src/store/postgres/index.ts';
import { now, startWorkerHost } from './deployment.ts';
import { PG_ADMIN_URL, round, sleep, waitFor, withDatabase } from './peers/common.ts';
import { enqueue } from './postgres-engine.ts';
import type { BenchResult } from './report.ts';

const SYSTEM = 'runwarden-postgres';
const TOOLS = join(import.meta.dirname, 'postgres-engine.ts');
/** Steps in flight per worker process: a process added brings its own. */
const PER_PROCESS = 64;
const TICKS = 100; // USER_HZ on Linux

/** utime + stime of `pid` in ticks, or undefined when it is gone. */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  }
}

/** Pids whose process group is `pgid` (a worker host spawned detached leads its own). */
function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(d));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  return out;
}

/** Busy and total ticks of the whole machine (/proc/stat's first line). */
function machineTicks(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU of a changing set of processes: each pid's ticks from when first seen (0 if it started after the first look) to its last look. */
class CpuMeter {
  private first = new Map<number, number>();
  private last = new Map<number, number>();
  look(pids: number[], initial: boolean): void {
    for (const pid of pids) {
      const t = cpuTicks(pid);
      if (t === undefined) continue;
      if (!this.first.has(pid)) this.first.set(pid, initial ? t : 0);
      this.last.set(pid, t);
    }
  }
  cores(seconds: number): number {
    let ticks = 0;
    for (const [pid, t] of this.last) ticks += t - (this.first.get(pid) ?? t);
    return ticks / TICKS / seconds;
  }
}

interface Wal {
  bytes: number;
  syncs: number;
}
async function wal(c: pg.Client): Promise<Wal> {
  const r = (await c.query<{ b: string; s: string }>('SELECT wal_bytes::text AS b, wal_sync::text AS s FROM pg_stat_wal')).rows[0];
  return { bytes: Number(r?.b ?? NaN), syncs: Number(r?.s ?? NaN) };
}

const SERVER_PROCESSES = "('walwriter', 'checkpointer', 'background writer', 'autovacuum launcher', 'autovacuum worker')";

let configDir: string | undefined;
/** A config file that runs tools inline, written once per bench process and removed at exit. */
function inlineConfig(): string {
  if (!configDir) {
    const dir = mkdtempSync(join(tmpdir(), 'rwbench-scale-out-'));
    configDir = dir;
    writeFileSync(join(dir, 'runwarden.config.json'), JSON.stringify({ toolIsolation: 'inline' }));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return join(configDir, 'runwarden.config.json');
}

/** One drain of `jobs` runs by `processes` worker processes, with what the database spent on it. */
async function drain(jobs: number, processes: number): Promise<BenchResult[]> {
  return withDatabase(async (db) => {
    const store = new PostgresStore({ url: db.url, poolMax: 8 });
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL, application_name: 'rwbench-scale-out' });
    admin.on('error', () => undefined); // a broken connection fails the next query, which reports it
    try {
      await store.migrate();
      await admin.connect();
      const log = (m: string): void => void process.stderr.write(`bench: scale-out ${processes}p: ${m}\n`);
      log(`enqueueing ${jobs}`);
      await enqueue(store, jobs, 'noop');
      log('enqueued');
      await store.pool.query('ANALYZE');
      const host = startWorkerHost(db.url, [TOOLS], ['--workers', String(processes), '--concurrency', String(PER_PROCESS), '--config', inlineConfig()]);
      try {
        const ready = await host.ready;
        log('workers ready');
        const pgPids = async (): Promise<number[]> =>
          (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = $1 OR backend_type IN ${SERVER_PROCESSES}`, [db.name])).rows.map((r) => r.pid);
        const dbCpu = new CpuMeter();
        const workerCpu = new CpuMeter();
        const hostPid = host.child.pid ?? 0;
        dbCpu.look(await pgPids(), true);
        workerCpu.look(groupPids(hostPid), true);
        const m0 = machineTicks();
        const w0 = await wal(admin);
        const t0 = now();
        const waits = { samples: 0, lock: 0, lwlock: 0, io: 0, events: new Map<string, number>() };
        let open = true;
        const sampler = (async () => {
          while (open) {
            const rows = (await admin.query<{ t: string | null; e: string | null }>("SELECT wait_event_type AS t, wait_event AS e FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()", [db.name])).rows;
            waits.samples++;
            for (const r of rows) {
              if (r.t === 'Lock') waits.lock++;
              if (r.t === 'LWLock') waits.lwlock++;
              if (r.t === 'IO') waits.io++;
              if (r.t && r.t !== 'Client' && r.t !== 'Activity') waits.events.set(`${r.t}:${r.e}`, (waits.events.get(`${r.t}:${r.e}`) ?? 0) + 1);
            }
            dbCpu.look(await pgPids(), false);
            await sleep(100);
          }
        })();
        try {
          await waitFor(
            async () => (await store.pool.query<{ open: boolean }>("SELECT EXISTS (SELECT 1 FROM steps WHERE status IN ('queued', 'running')) AS open")).rows[0]?.open === false,
            600_000,
            `${jobs} steps on ${processes} worker processes`,
            20,
          );
        } finally {
          open = false;
          await sampler;
        }
        const seconds = (now() - t0) / 1000;
        dbCpu.look(await pgPids(), false);
        workerCpu.look(groupPids(hostPid), false);
        const m1 = machineTicks();
        const w1 = await wal(admin);
        const succeeded = (await store.stepCounts()).succeeded;
        if (succeeded !== jobs) throw new Error(`scale-out: ${succeeded} of ${jobs} steps succeeded`);
        const r = (await store.pool.query<{ after: number; last: string }>('SELECT count(*) FILTER (WHERE finished_at >= $1)::int AS after, max(finished_at)::text AS last FROM steps', [Math.floor(ready)])).rows[0];
        const stepsPerS = Number(r?.after) / ((Number(r?.last) - ready) / 1000);
        const top = [...waits.events].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([e, n]) => `${e} ${round(n / Math.max(1, waits.samples))}`).join(', ');
        const k = `${processes}p`;
        const per = (n: number): number => round(n / Math.max(1, waits.samples));
        const cores = machineCores(m0, m1);
        const row = (metric: string, value: number, note?: string): BenchResult => ({ system: SYSTEM, workload: 'scale-out', metric: `${metric}_${k}`, value, ...(note ? { note } : {}) });
        return [
          row('steps_per_s', Math.round(stepsPerS), `${processes} worker process(es) x ${PER_PROCESS} in flight, ${jobs.toLocaleString('en-US')} runs`),
          row('db_cpu_cores', round(dbCpu.cores(seconds)), 'PostgreSQL: the database\'s backends + WAL writer, checkpointer, bgwriter, autovacuum (/proc)'),
          row('worker_cpu_cores', round(workerCpu.cores(seconds)), 'the runwarden worker host and its worker processes (/proc)'),
          row('machine_busy_pct', round(cores.busyPct), `all ${cores.n} cores, anything running on the machine (/proc/stat)`),
          row('lock_waiting', per(waits.lock), `backends waiting on a heavyweight lock, mean of ${waits.samples} samples of pg_stat_activity`),
          row('lwlock_waiting', per(waits.lwlock), 'backends waiting on an LWLock, same samples'),
          row('io_waiting', per(waits.io), `backends waiting on I/O, same samples; top waits: ${top || 'none'}`),
          row('wal_bytes_per_step', Math.round((w1.bytes - w0.bytes) / jobs), 'pg_stat_wal, cluster-wide'),
          row('wal_syncs_per_s', Math.round((w1.syncs - w0.syncs) / seconds), 'pg_stat_wal, cluster-wide'),
        ];
      } finally {
        await host.stop();
      }
    } finally {
      await admin.end().catch(() => undefined); // never connected or already broken: nothing to close
      await store.close();
    }
  });
}

function machineCores(a: { busy: number; total: number }, b: { busy: number; total: number }): { busyPct: number; n: number } {
  const n = Number((readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm) ?? []).length) || 1;
  return { busyPct: ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100, n };
}

/** 1, 2 and 4 worker processes, each on a fresh database with the same backlog. */
export async function scaleOut(jobs: number, counts: number[] = [1, 2, 4]): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const p of counts) out.push(...(await drain(jobs, p)));
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '10000' } } });
  for (const r of await scaleOut(Number(values.jobs))) console.log(`${r.metric.padEnd(24)} ${String(r.value).padStart(10)}  ${r.note ?? ''}`);
}
