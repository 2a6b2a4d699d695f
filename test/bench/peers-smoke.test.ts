/**
 * The benchmark's peer adapters still work: each drains no-op jobs through its real system
 * (BullMQ on Redis; graphile-worker, pg-boss, DBOS and Mastra on PostgreSQL), and the workflow
 * engines' hang-cut reads their timed-out or canceled steps back from their own tables. Not a
 * benchmark: nothing here asserts speed. Without Redis or PostgreSQL the tests skip locally and
 * fail in CI (CI=true). The ratio columns of the report are tested here too (pure functions).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import { PG_ADMIN_URL, REDIS } from '../../bench/peers/common.ts';
import { rows, type BenchResult } from '../../bench/report.ts';

const inCi = process.env.CI === 'true' || process.env.CI === '1';

/** null when reachable, else why not. */
function pingRedis(): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect(REDIS.port, REDIS.host);
    const done = (why: string | null): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done('no answer within 3 s'), 3000);
    s.on('error', (err) => done(err.message));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d: Buffer) => done(d.toString().startsWith('+PONG') ? null : `unexpected reply ${JSON.stringify(d.toString())}`));
  });
}

async function pingPostgres(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined); // a failure surfaces from connect() below
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => undefined); // never connected: nothing to close
  }
}

/** A skip message locally; a thrown error in CI, where a missing service is a failure. */
async function unavailable(service: 'Redis' | 'PostgreSQL'): Promise<string | false> {
  const why = service === 'Redis' ? await pingRedis() : await pingPostgres();
  if (why === null) return false;
  const where = service === 'Redis' ? `${REDIS.host}:${REDIS.port}` : new URL(PG_ADMIN_URL).host;
  if (inCi) throw new Error(`${service} is not reachable at ${where} (${why}): the peer smoke tests cannot run, and in CI that is a failure`);
  return `${service} is not reachable at ${where} (${why})`;
}

function assertDrained(results: BenchResult[], system: string, metrics = ['steps_per_s', 'enqueue_per_s']): void {
  const metric = (m: string): BenchResult | undefined => results.find((r) => r.system === system && r.workload === 'noop-throughput' && r.metric === m);
  for (const m of metrics) {
    const r = metric(m);
    assert.ok(r, `${system} reported no ${m}: ${JSON.stringify(results)}`);
    assert.ok(Number.isFinite(r.value) && r.value > 0, `${system} ${m} = ${r.value}`);
  }
}

const peers = [
  { system: 'bullmq', service: 'Redis', load: () => import('../../bench/peers/bullmq.ts') },
  { system: 'graphile-worker', service: 'PostgreSQL', load: () => import('../../bench/peers/graphile-worker.ts') },
  { system: 'pg-boss', service: 'PostgreSQL', load: () => import('../../bench/peers/pg-boss.ts') },
] as const;

for (const peer of peers) {
  test(`bench peer ${peer.system}: 200 no-op jobs enqueued and drained`, { timeout: 90_000 }, async (t) => {
    const skip = await unavailable(peer.service);
    if (skip) return t.skip(skip);
    const { noopThroughput } = await peer.load();
    assertDrained(await noopThroughput(200, 16), peer.system);
  });
}

// The workflow engines: DBOS enqueues (it has a queue), Mastra starts runs in-process (no enqueue rate).
const engines = [
  { system: 'dbos', metrics: ['steps_per_s', 'enqueue_per_s'], load: () => import('../../bench/peers/dbos.ts') },
  { system: 'mastra', metrics: ['steps_per_s'], load: () => import('../../bench/peers/mastra.ts') },
] as const;

for (const engine of engines) {
  test(`bench peer ${engine.system}: 50 one-step workflows drained; 2 hung steps failed or canceled and read back`, { timeout: 120_000 }, async (t) => {
    const skip = await unavailable('PostgreSQL');
    if (skip) return t.skip(skip);
    const { noopThroughput, hangCut } = await engine.load();
    assertDrained(await noopThroughput(50, 8), engine.system, [...engine.metrics]);
    // A generous cap: the loaded machine may be slow to record the failure; a cap reached is a failure here.
    const hang = await hangCut(2, 60_000, 1000);
    const p50 = hang.find((r) => r.metric === 'p50_ms');
    assert.ok(p50 && !p50.capped && Number.isFinite(p50.value), `${engine.system} hang-cut: ${JSON.stringify(hang)}`);
    const running = hang.find((r) => r.metric === 'steps_still_running');
    assert.ok(running && running.value >= 0 && running.value <= 2, `${engine.system} steps_still_running: ${JSON.stringify(running)}`);
    const sockets = hang.find((r) => r.metric === 'sockets_left_open');
    assert.ok(sockets && sockets.value >= 0 && sockets.value <= 2, `${engine.system} sockets_left_open: ${JSON.stringify(sockets)}`);
  });
}

test('report: each row has its ratio to the best queue and to the best workflow engine, bounded where a cap hides it', () => {
  const r = (system: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ system, workload: 'noop-throughput', metric: 'steps_per_s', value, ...extra });
  const c = (system: string, value: number, capped = false): BenchResult => ({ system, workload: 'crash-recovery', metric: 'ms', value, ...(capped ? { capped } : {}) });
  const table = rows([r('runwarden-sqlite', 1000), r('bullmq', 500), r('graphile-worker', 2000), r('dbos', 100), r('mastra', 250), c('runwarden-sqlite', 10), c('bullmq', 60_000), c('dbos', 100_000, true), c('mastra', 4000)]);
  const find = (workload: string, system: string) => table.find((x) => x.workload === workload && x.system === system);
  assert.equal(find('noop-throughput', 'runwarden-sqlite')?.vsQueues, '0.50×', 'against graphile-worker, the best queue');
  assert.equal(find('noop-throughput', 'runwarden-sqlite')?.vsEngines, '4.00×', 'against mastra, the best engine');
  assert.equal(find('noop-throughput', 'dbos')?.vsEngines, '0.40×');
  assert.equal(find('crash-recovery', 'runwarden-sqlite')?.vsEngines, '0.0025×', 'against mastra (uncapped beats capped)');
  assert.equal(find('crash-recovery', 'dbos')?.vsQueues, '≥1.67×', 'a capped time is a lower bound');
});
