/**
 * Issue 15, Must show, on deployments (`runwarden start`, supervised worker processes; SQLite with
 * 2, PostgreSQL with 3), each worker taking at most 2 steps at a time so that work queues:
 * - `concurrency: { key: "tenant-a", limit: 2 }` on 3 runs of 20 steps: never more than 2 of their
 *   steps run at once, across all workers;
 * - a run of another tenant, submitted after them, is not held back: it is done while tenant-a
 *   still has most of its work queued;
 * - with every slot taken and more low-priority work queued, a high-priority run submitted last
 *   starts before the low-priority steps that were queued when it came.
 * Each step runs `timed_sleep`, which returns when it ran: two steps whose intervals overlap were
 * running at once (the interval lies inside the step's running time), so the counts below are a
 * lower bound of what ran together, read from the steps' own outputs, not from the wall clock.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunWithSteps } from '../../src/domain/records.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { api, startDeployment, waitFor, type Deployment } from '../supervisor/helpers.ts';

const pgSkip = await postgresSkip();
const TOOLS = join(import.meta.dirname, 'fixtures', 'timed-tools.ts');

interface Ran {
  run: string;
  name: string;
  start: number;
  end: number;
  /** When its attempt was claimed (the store's startedAt): steps claimed together share it. */
  claimedAt: number;
}

async function submit(d: Deployment, body: Record<string, unknown>): Promise<string> {
  const r = await api<{ id: string }>(d.url, '/runs', { body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

const sleeps = (prefix: string, n: number, ms: number): unknown[] =>
  Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, tool: 'timed_sleep', inputs: { ms } }));

async function ran(d: Deployment, ids: string[]): Promise<Ran[]> {
  const out: Ran[] = [];
  for (const id of ids) {
    const run: RunWithSteps = await d.waitRun(id, 120_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.steps.filter((s) => s.status !== 'succeeded').map((s) => [s.name, s.status, s.error?.code])));
    for (const s of run.steps) {
      const o = s.outputs as { start: number; end: number };
      out.push({ run: id, name: s.name, start: o.start, end: o.end, claimedAt: Date.parse(s.startedAt ?? '') });
    }
  }
  return out;
}

/** The most intervals that overlap at any moment (an end at the same ms as a start does not overlap). */
function maxOverlap(xs: readonly Ran[]): number {
  const points = xs.flatMap((x): Array<[number, number]> => [
    [x.start, 1],
    [x.end, -1],
  ]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let n = 0;
  let max = 0;
  for (const [, d] of points) {
    n += d;
    max = Math.max(max, n);
  }
  return max;
}

for (const [dialect, workers] of [['sqlite', 2], ['postgres', 3]] as const) {
  test(`[${dialect}] tenant-a's key holds 2 across ${workers} workers, tenant-b is not held back, and a high priority submitted last starts first`, { skip: dialect === 'postgres' ? pgSkip : false, timeout: 240_000 }, async (t) => {
    const db = dialect === 'postgres' ? await createTestDatabase() : undefined;
    const d = await startDeployment(t, { workers, args: ['--tools', TOOLS, '--concurrency', '2'], env: db ? { DATABASE_URL: db.url } : {} });
    if (db) t.after(() => db.drop());

    // Tenants: 60 steps of tenant-a under a key of 2, then a run of tenant-b under its own key.
    const tenantA = { key: 'tenant-a', limit: 2 };
    const aRuns: string[] = [];
    for (let r = 0; r < 3; r++) aRuns.push(await submit(d, { plan: { steps: sleeps(`a${r}-`, 20, 150) }, labels: { tenant: 'a' }, concurrency: tenantA }));
    const bRun = await submit(d, { plan: { steps: sleeps('b', 6, 150) }, labels: { tenant: 'b' }, concurrency: { key: 'tenant-b', limit: 2 } });
    const a = await ran(d, aRuns);
    const b = await ran(d, [bRun]);
    assert.equal(a.length, 60);
    assert.equal(maxOverlap(a), 2, 'tenant-a never ran more than 2 steps at once, and did run 2');
    const aStarts = a.map((x) => x.start).sort((x, y) => x - y);
    const bDone = Math.max(...b.map((x) => x.end));
    const aStartedBeforeB = aStarts.filter((s) => s < bDone).length;
    assert.ok(aStartedBeforeB <= 30, `tenant-b was done after only ${aStartedBeforeB} of tenant-a's 60 steps had started (not held back behind them)`);
    assert.ok(maxOverlap([...a, ...b]) > 2, 'tenant-b ran beside tenant-a');

    // Priorities: every slot busy with long low-priority steps and more of them queued; then one
    // high-priority run. It starts before every low-priority step that was still queued.
    const slots = workers * 2;
    const low: string[] = [];
    for (let r = 0; r < slots * 3; r++) low.push(await submit(d, { plan: { steps: sleeps(`low${r}-`, 1, 600) }, priority: 0 }));
    await waitFor(async () => {
      const q = (await d.health()).queue;
      return q.running === slots && q.queued > 0 ? true : undefined;
    }, 30_000, 'every slot busy with low-priority work, more of it queued');
    const high = await submit(d, { plan: { steps: sleeps('high', 1, 10) }, priority: 50 });
    // When the high-priority run was surely visible to every claim: its POST had returned (its
    // createdAt is taken when its transaction begins, and a claim running beside it may not see it yet).
    const submittedAt = Date.now();
    const lows = await ran(d, low);
    const [h] = await ran(d, [high]);
    assert.ok(h);
    const queuedThen = lows.filter((x) => x.claimedAt > submittedAt);
    assert.ok(queuedThen.length >= slots, `low-priority work was still queued when the high-priority run came (${queuedThen.length} steps)`);
    const firstAfter = Math.min(...queuedThen.map((x) => x.claimedAt));
    assert.ok(h.claimedAt <= firstAfter, `the high-priority step was claimed at +${h.claimedAt - submittedAt} ms, a queued low one at +${firstAfter - submittedAt} ms`);
  });
}
