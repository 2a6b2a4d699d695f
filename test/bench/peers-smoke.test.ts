/**
 * The benchmark's peer adapters still work: each drains 200 no-op jobs through its real queue
 * (BullMQ on Redis, graphile-worker and pg-boss on PostgreSQL). Not a benchmark: nothing here
 * asserts speed. Without Redis or PostgreSQL the tests skip locally and fail in CI (CI=true).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import { PG_ADMIN_URL, REDIS } from '../../bench/peers/common.ts';
import type { BenchResult } from '../../bench/report.ts';

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

function assertDrained(rows: BenchResult[], system: string): void {
  const metric = (m: string): BenchResult | undefined => rows.find((r) => r.system === system && r.workload === 'noop-throughput' && r.metric === m);
  for (const m of ['steps_per_s', 'enqueue_per_s']) {
    const r = metric(m);
    assert.ok(r, `${system} reported no ${m}: ${JSON.stringify(rows)}`);
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
