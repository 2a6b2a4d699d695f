/**
 * Issue 13, Must show: a run whose first step adds 50 steps, one of which adds 5 more, on a real
 * deployment (`runwarden start`, two supervised worker processes, SQLite). Each adding step's first
 * attempt has called ctx.addSteps and is held before it returns; the worker process holding it is
 * SIGKILLed. Recovery: the attempt is lost, the retry adds the steps, and no step is added twice:
 * 56 steps (1 + 50 + 5), one step.added per added step, one step.finished per step, each child run once, and
 * run.finished after the last step.finished. The run is then read as `runwarden runs show` shows it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EventRecord } from '../../src/domain/records.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { api, runCli, startDeployment, waitFor } from '../supervisor/helpers.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';

const pgSkip = await postgresSkip();

for (const dialect of ['sqlite', 'postgres'] as const) {
test(`[${dialect}] fan-out of 50 (one adds 5): the workers holding both adding steps are SIGKILLed mid-step; every step is added and finished once`, { skip: dialect === 'postgres' ? pgSkip : false }, async (t) => {
  const db = dialect === 'postgres' ? await createTestDatabase() : undefined;
  const d = await startDeployment(t, { workers: 2, args: ['--tools', TOOLS_FILE], env: db ? { DATABASE_URL: db.url } : {} });
  // After the deployment's own hook (hooks run in the order they were added): it has stopped by then.
  if (db) t.after(() => db.drop());
  const listed = (await api<{ tools: Array<{ name: string; isolation: string }> }>(d.url, '/tools')).body.tools;
  assert.equal(listed.find((x) => x.name === 'fanout')?.isolation, 'thread', 'the adding tool runs in a tool thread');
  const runId = await d.submit([{ name: 'root', tool: 'fanout', inputs: { n: 50, nestAt: 7, holdFirstAttempt: true, markerDir: d.dir }, timeoutMs: 60_000 }]);

  const kill = async (step: string): Promise<number> => {
    await waitFor(() => (existsSync(join(d.dir, `${step}.added`)) ? true : undefined), 30_000, `${step} to have added its steps`);
    const s = await d.step(runId, step);
    assert.equal(s.status, 'running', `${step} is still running when its worker is killed`);
    const pid = await d.pidOf(s.workerId as string);
    process.kill(pid, 'SIGKILL');
    return pid;
  };
  await kill('root');
  // The steps root asked for were never written: the run still has its one step.
  assert.equal((await d.run(runId)).stepsTotal, 1);
  await kill('root-7');

  const run = await d.waitRun(runId, 60_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.stepsTotal, 56);
  assert.equal(run.steps.length, 56);
  for (const adder of ['root', 'root-7']) {
    const s = await d.step(runId, adder);
    assert.deepEqual(
      s.attemptsDetail.map((a) => [a.status, a.error?.code ?? null]),
      [
        ['lost', 'WORKER_CRASHED'],
        ['succeeded', null],
      ],
      adder,
    );
    assert.deepEqual(s.outputs, { id: adder, added: adder === 'root' ? 50 : 5, attempt: 2 });
  }
  // Each added step succeeded once. A child that happened to run on a killed worker process has a
  // lost attempt before its success, and nothing else.
  for (const s of run.steps.filter((x) => x.addedBy)) {
    assert.equal(s.addedBy, s.name.startsWith('root-7-sub-') ? 'root-7' : 'root', s.name);
    assert.equal(s.status, 'succeeded', s.name);
    if (s.name === 'root-7') continue;
    const detail = await d.step(runId, s.name);
    const statuses = detail.attemptsDetail.map((a) => (a.status === 'lost' ? `lost:${a.error?.code}` : a.status));
    assert.deepEqual(statuses, [...statuses.slice(0, -1).map(() => 'lost:WORKER_CRASHED'), 'succeeded'], s.name);
    const i = Number(s.name.split('-').at(-1));
    assert.deepEqual(s.outputs, { i, parent: s.addedBy }, s.name);
  }

  const events = (await api<{ events: EventRecord[] }>(d.url, `/runs/${runId}/events?limit=10000`)).body.events;
  events.forEach((e, i) => assert.equal(e.seq, i + 1));
  const added = events.filter((e) => e.type === 'step.added').map((e) => e.stepName);
  assert.equal(added.length, 55, 'each added step added once');
  assert.equal(new Set(added).size, 55);
  const finished = events.filter((e) => e.type === 'step.finished').map((e) => e.stepName);
  assert.equal(finished.length, 56, 'one step.finished per step');
  assert.equal(new Set(finished).size, 56);
  const last = events.at(-1) as EventRecord;
  assert.equal(last.type, 'run.finished');
  assert.equal((last.data.steps as { total: number }).total, 56);
  assert.ok(Math.max(...events.filter((e) => e.type === 'step.finished').map((e) => e.seq)) < last.seq);

  // As `runwarden runs show` shows it: who added each step.
  const shown = await runCli(['runs', 'show', runId, '--url', d.url]);
  assert.equal(shown.code, 0, shown.err);
  assert.match(shown.out, /steps {5}56\/56 done {2}\(55 added at runtime, at most 1000 steps\)/);
  assert.match(shown.out, /^STEP\s+TOOL\s+STATUS\s+ATTEMPTS\s+DURATION\s+ADDED BY\s+ERROR$/m);
  assert.match(shown.out, /^root-7-sub-4\s+echo\s+succeeded\s+1\s+\S+\s+root-7\s*$/m);
  assert.match(shown.out, /^root\s+fanout\s+succeeded\s+2\s+\S+\s+-\s*$/m);
});
}
