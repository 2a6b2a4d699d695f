/**
 * `runwarden worker`: a supervisor and its worker processes without the API, against PostgreSQL,
 * next to an API-only `runwarden start --workers 0`. A worker process holding a step is SIGKILLed:
 * its supervisor ends the attempt at once and the step runs again on the sibling.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunWithSteps, StepDetail } from '../../src/domain/records.ts';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { api, startApi, startWorker, stopAll } from '../postgres/processes.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';
import { assertNoOrphans, waitFor } from './helpers.ts';

const skip = await postgresSkip();

test('runwarden worker supervises its worker processes on PostgreSQL: a SIGKILLed one is replaced and its step retried at once', { skip, timeout: 60_000 }, async (t) => {
  const db = await createTestDatabase();
  const store = new PostgresStore({ url: db.url, poolMax: 2 });
  t.after(async () => {
    await stopAll();
    await store.close();
    // Every process of this deployment names the database (redacted) on its command line.
    await assertNoOrphans(db.name, 10_000);
    await db.drop();
  });
  const api0 = await startApi(db.url, ['--workers', '0']);
  const host = await startWorker(db.url, ['--workers', '2', '--heartbeat-ms', '500']);
  assert.match(host.output(), /workers: 2 supervised processes/);
  // Each worker process registers its claim loops (`<supervisor id>-<pid>-<i>`).
  const processes = async (): Promise<Set<number>> => new Set((await store.listWorkers()).filter((w) => w.id.startsWith(`${host.ref}-`)).map((w) => w.pid));
  await waitFor(async () => ((await processes()).size === 2 ? true : undefined), 20_000, 'both worker processes registered');

  const created = await api<RunWithSteps>(api0.ref, '/runs', { body: { plan: { steps: [{ name: 'nap', tool: 'sleep', inputs: { ms: 1500 }, timeoutMs: 20_000 }] } } });
  assert.equal(created.status, 201);
  const runId = created.body.id;
  const running = await waitFor(async () => {
    const s = await store.getStep(runId, 'nap');
    return s?.status === 'running' && s.workerId ? s : undefined;
  }, 10_000, 'the step to run');
  assert.ok(running.workerId?.startsWith(`${host.ref}-`), `claimed by one of the supervisor's workers (${running.workerId})`);
  const pid = (await store.listWorkers()).find((w) => w.id === running.workerId)?.pid;
  assert.ok(pid);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');

  const done = await waitFor(async () => {
    const r = (await api<RunWithSteps>(api0.ref, `/runs/${runId}`)).body;
    return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
  }, 20_000, 'the run to finish');
  assert.equal(done.status, 'succeeded');
  const step = (await api<StepDetail>(api0.ref, `/runs/${runId}/steps/nap`)).body;
  assert.deepEqual(step.attemptsDetail.map((a) => [a.status, a.error?.code ?? null]), [
    ['lost', 'WORKER_CRASHED'],
    ['succeeded', null],
  ]);
  const retryMs = Date.parse(step.attemptsDetail[1]?.startedAt as string) - killedAt;
  assert.ok(retryMs < 5000, `the next attempt started ${retryMs} ms after the kill (supervisor, not lease expiry)`);
  assert.match(host.output(), /worker \d \(pid \d+\) was killed by SIGKILL/);
  await waitFor(async () => {
    const pids = await processes();
    return pids.size === 2 && !pids.has(pid) ? true : undefined;
  }, 20_000, 'a fresh worker process in its place');
});

test('runwarden worker --tool-isolation: tools from modules run in tool threads by default, on the worker\'s own loop with inline', { skip, timeout: 90_000 }, async (t) => {
  const db = await createTestDatabase();
  t.after(async () => {
    await stopAll();
    await db.drop();
  });
  const api0 = await startApi(db.url, ['--workers', '0', '--tools', TOOLS_FILE]);
  const whereItRan = async (): Promise<{ mainThread: boolean; pid: number }> => {
    const created = await api<RunWithSteps>(api0.ref, '/runs', { body: { plan: { steps: [{ name: 'where', tool: 'where_am_i', timeoutMs: 20_000 }] } } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitFor(async () => {
      const r = (await api<RunWithSteps>(api0.ref, `/runs/${created.body.id}`)).body;
      return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
    }, 30_000, 'the run to finish');
    assert.equal(done.status, 'succeeded', JSON.stringify(done.steps[0]?.error));
    return done.steps[0]?.outputs as { mainThread: boolean; pid: number };
  };
  for (const [flags, mainThread] of [[[], false], [['--tool-isolation', 'inline'], true]] as const) {
    const host = await startWorker(db.url, ['--workers', '1', '--tools', TOOLS_FILE, ...flags]);
    assert.equal((await whereItRan()).mainThread, mainThread, `${flags.join(' ') || 'default'}: ${mainThread ? 'on the worker\'s loop' : 'in a tool thread'}`);
    await host.stop();
  }
});
