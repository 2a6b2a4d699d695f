/**
 * A run through database outages: an API process and two worker processes run a 200-step DAG
 * (20 chains of 10) while `outage()` cuts their connections (kills every backend of the database,
 * or restarts the server); afterwards the run must have succeeded with its books intact.
 * Shared by test/postgres/connection-loss.test.ts and test/serial/postgres-restart.test.ts.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { EventRecord, RunWithSteps } from '../../src/domain/records.ts';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/wait.ts';
import { api, startApi, startWorker, stopAll, type Proc } from './processes.ts';


export async function runThroughOutages(t: TestContext, outage: (dbName: string) => Promise<void>, opts: { outagesAt: number[] }): Promise<void> {
  const db = await createTestDatabase();
  const store = new PostgresStore({ url: db.url, poolMax: 2 });
  t.after(async () => {
    await stopAll();
    await store.close();
    await db.drop();
  });
  const apiProc = await startApi(db.url, ['--workers', '0']);
  const workerArgs = ['--lease-ms', '2000', '--heartbeat-ms', '300', '--concurrency', '16'];
  const workers: Proc[] = await Promise.all([startWorker(db.url, workerArgs), startWorker(db.url, workerArgs)]);

  const steps: Array<Record<string, unknown>> = [];
  for (let c = 0; c < 20; c++) {
    for (let i = 0; i < 10; i++) {
      steps.push({ name: `c${c}_${i}`, tool: 'sleep', inputs: { ms: 40 + ((c * 7 + i * 3) % 9) * 10 }, ...(i > 0 ? { dependsOn: [`c${c}_${i - 1}`] } : {}) });
    }
  }
  const created = await api<RunWithSteps>(apiProc.ref, '/runs', { body: { plan: { goal: 'through outages', steps } } });
  assert.equal(created.status, 201);
  const runId = created.body.id;

  const done = async (): Promise<number> => (await store.getRunSteps(runId)).filter((s) => s.status === 'succeeded').length;
  for (const at of opts.outagesAt) {
    const n = await waitFor(async () => {
      const d = await done();
      return d >= at ? d : undefined;
    }, 60_000, `${at} steps to be done`);
    t.diagnostic(`outage after ${n} of 200 steps`);
    await outage(db.name);
  }

  const run = await waitFor(
    async () => {
      const r = (await api<RunWithSteps>(apiProc.ref, `/runs/${runId}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    },
    120_000,
    'the run to finish',
  );
  assert.equal(run.status, 'succeeded', JSON.stringify(run.steps.filter((s) => s.status !== 'succeeded').slice(0, 3)));
  assert.ok(run.steps.every((s) => s.status === 'succeeded'));
  const page = (await api<{ events: EventRecord[] }>(apiProc.ref, `/runs/${runId}/events?limit=10000`)).body.events;
  page.forEach((e, i) => assert.equal(e.seq, i + 1, 'seq 1..n without gaps'));
  const finished = page.filter((e) => e.type === 'step.finished');
  assert.equal(finished.length, 200, 'exactly one step.finished per step');
  assert.equal(new Set(finished.map((e) => e.stepName)).size, 200);
  let lost = 0;
  for (const s of run.steps) {
    const attempts = await store.listAttempts(runId, s.name);
    assert.ok(attempts.every((a) => a.status !== 'running'), `${s.name}: every attempt ended`);
    assert.equal(attempts.at(-1)?.status, 'succeeded');
    lost += attempts.filter((a) => a.status === 'lost').length;
  }
  assert.deepEqual((await api<{ steps: unknown[] }>(apiProc.ref, '/steps/stuck')).body.steps, []);
  assert.equal((await store.stepCounts()).running, 0);
  const retried = workers.filter((w) => /store write failed, will retry|DATABASE_UNAVAILABLE|unavailable/.test(w.output())).length;
  t.diagnostic(`run succeeded; ${lost} attempt(s) lost to the outages; ${retried} of 2 workers logged a failed write they retried`);
  for (const w of [...workers, apiProc]) assert.equal(w.child.exitCode, null, `${w.kind} ${w.ref} is still running:\n${w.output()}`);
}
