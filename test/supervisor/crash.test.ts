/**
 * Worker processes that die: a tool calling process.exit, a worker running out of memory, a worker
 * SIGKILLed from outside. Every attempt they held ends at once as `lost` (`worker.crashed`) with the
 * exit code or signal and the worker's last lines, is retried elsewhere, and the worker is replaced.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventRecord } from '../../src/domain/records.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';
import { api, startDeployment, waitFor } from './helpers.ts';

interface Report {
  classification: { code: string; summary: string };
  where: { file: string; line: number } | null;
  exit?: { code: number | null; signal: string | null };
  lastLines?: string[];
}

test('a tool that calls process.exit: every attempt lost as worker.crashed, retried, the step fails, the workers come back', async (t) => {
  const d = await startDeployment(t, { workers: 2 });
  const runId = await d.submit([{ name: 'exits', tool: 'exit', inputs: { code: 7 } }]);
  const run = await d.waitRun(runId, 30_000);
  assert.equal(run.status, 'failed');
  const step = await d.step(runId, 'exits');
  assert.equal(step.status, 'failed');
  // The lost-attempt budget: 2 plus retries.max (0).
  assert.deepEqual(step.attemptsDetail.map((a) => a.status), ['lost', 'lost', 'lost']);
  for (const a of step.attemptsDetail) {
    assert.equal(a.error?.code, 'WORKER_CRASHED');
    const report = a.hangReport as unknown as Report;
    assert.equal(report.classification.code, 'worker.crashed');
    assert.match(report.classification.summary, /called process\.exit\(7\)/);
    assert.equal(report.where?.file, TOOLS_FILE, 'the report points at the process.exit call');
    assert.deepEqual(report.exit, { code: 7, signal: null });
  }
  const events = (await api<{ events: EventRecord[] }>(d.url, `/runs/${runId}/events`)).body.events;
  assert.equal(events.filter((e) => e.type === 'step.retrying' && e.stepName === 'exits').length, 2, 'retried twice');

  const s = await waitFor(async () => {
    const st = await d.supervisor();
    return st.alive === 2 && st.totals.restarts >= 3 ? st : undefined;
  }, 15_000, 'both workers back');
  assert.ok(s.totals.crashes >= 3);

  // An exception thrown from a timer after a tool returned is no crash: it is recorded on its step
  // and the worker carries on.
  const throwsRun = await d.submit([{ name: 'throws', tool: 'throw_later' }]);
  assert.equal((await d.waitRun(throwsRun)).status, 'succeeded');
  await waitFor(async () => {
    const ev = (await api<{ events: EventRecord[] }>(d.url, `/runs/${throwsRun}/events`)).body.events;
    return ev.some((e) => e.type === 'step.log' && /uncaught exception/.test(String(e.data.message))) ? true : undefined;
  }, 5000, 'the stray throw on record');
  assert.equal((await d.supervisor()).totals.crashes, s.totals.crashes, 'no worker died of it');
});

test('process.exit from a tool thread ends only that thread: the step fails, no worker dies', async (t) => {
  const d = await startDeployment(t, { workers: 1 });
  const before = await d.supervisor();
  const runId = await d.submit([{ name: 'exits', tool: 'exit_in_thread', inputs: { code: 9 }, retries: { max: 0 } }, { name: 'after', tool: 'sleep', inputs: { ms: 10 }, dependsOn: [] }]);
  const run = await d.waitRun(runId, 30_000);
  const step = await d.step(runId, 'exits');
  assert.deepEqual(step.attemptsDetail.map((a) => a.status), ['failed']);
  assert.equal(step.error?.code, 'TOOL_THREAD_EXITED');
  assert.match(step.error?.message ?? '', /process\.exit\(9\)/);
  assert.equal(run.steps.find((s) => s.name === 'after')?.status, 'succeeded');
  const s = await d.supervisor();
  assert.equal(s.totals.crashes, before.totals.crashes, 'no worker crashed');
  assert.equal(s.workers[0]?.pid, before.workers[0]?.pid, 'the same worker process');
});

test('a worker holding a step is SIGKILLed from outside: the next attempt starts within 5 s and succeeds', async (t) => {
  const d = await startDeployment(t, { workers: 2 });
  const runId = await d.submit([{ name: 'nap', tool: 'sleep', inputs: { ms: 1500 }, timeoutMs: 20_000 }]);
  const running = await waitFor(async () => {
    const s = await d.step(runId, 'nap');
    return s.status === 'running' && s.workerId ? s : undefined;
  }, 10_000, 'the step to run');
  const pid = await d.pidOf(running.workerId as string);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');

  const run = await d.waitRun(runId, 20_000);
  assert.equal(run.status, 'succeeded');
  const step = await d.step(runId, 'nap');
  assert.deepEqual(step.attemptsDetail.map((a) => a.status), ['lost', 'succeeded']);
  const [lost, next] = step.attemptsDetail;
  const retryMs = Date.parse(next?.startedAt as string) - killedAt;
  assert.ok(retryMs <= 5000, `the next attempt started ${retryMs} ms after the kill`);
  assert.equal(lost?.error?.code, 'WORKER_CRASHED');
  const report = lost?.hangReport as unknown as Report;
  assert.equal(report.classification.code, 'worker.crashed');
  assert.deepEqual(report.exit, { code: null, signal: 'SIGKILL' });
  assert.match(report.classification.summary, /SIGKILL from outside/);
  await waitFor(async () => ((await d.supervisor()).alive === 2 ? true : undefined), 10_000, 'the killed worker replaced');
});

test('a worker that runs out of memory: its attempt is lost with the fatal error in the last lines', async (t) => {
  // A small heap for every process of this deployment, so that the hog dies fast.
  // GC thrash near the limit can block the loop for a while: not what this test is about.
  const d = await startDeployment(t, { workers: 1, env: { NODE_OPTIONS: '--max-old-space-size=96', RUNWARDEN_LOOP_KILL_MS: '30000' } });
  const runId = await d.submit([{ name: 'hog', tool: 'oom', timeoutMs: 60_000 }]);
  const lost = await waitFor(async () => (await d.step(runId, 'hog')).attemptsDetail.find((a) => a.status === 'lost'), 30_000, 'the first attempt lost');
  const report = lost.hangReport as unknown as Report;
  assert.equal(report.classification.code, 'worker.crashed');
  assert.ok(report.exit?.signal === 'SIGABRT' || report.exit?.code === 134, `exit ${JSON.stringify(report.exit)}`);
  assert.ok(report.lastLines?.some((l) => /heap out of memory|Reached heap limit/i.test(l)), `last lines: ${report.lastLines?.join('\n')}`);
  await api(d.url, `/runs/${runId}/cancel`, { method: 'POST' });
});
