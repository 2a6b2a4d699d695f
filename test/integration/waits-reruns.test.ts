/**
 * Issue 14, Must show, on real deployments (`runwarden start` with supervised worker processes):
 * - a `wait` step released by `runwarden signal` after every worker process was SIGKILLed and
 *   replaced while it waited (SQLite and PostgreSQL);
 * - a `wait` step that times out with a hang report naming its signal; a signal to the finished
 *   run is a 409 RUN_FINISHED (and `runwarden signal` exits 2 saying so);
 * - a 5-step run of LLM steps against the lab, failed at step 4 (its provider was down): after the
 *   provider is back, `runwarden runs rerun` calls only steps 4 and 5 (the lab's request log shows
 *   two requests, not five) and the new run succeeds with the earlier outputs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunWithSteps } from '../../src/domain/records.ts';
import { startLab } from '../../src/lab/index.ts';
import type { LabRequest } from '../../src/lab/requests.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { api, startServer, type ServerProcess } from '../helpers/server.ts';
import { runCli, startDeployment, waitFor, type Deployment } from '../supervisor/helpers.ts';

const pgSkip = await postgresSkip();

const WAIT_PLAN = [
  { name: 'approve', tool: 'wait', inputs: { signal: 'approved', timeoutMs: 120_000 } },
  { name: 'ship', tool: 'echo', inputs: { by: '{{steps.approve.outputs.by}}' }, dependsOn: ['approve'] },
];

async function waiting(d: Deployment, runId: string, step: string, signal: string): Promise<void> {
  await waitFor(
    async () => {
      const s = (await d.run(runId)).steps.find((x) => x.name === step);
      return s?.status === 'pending' && s.awaitingSignal === signal && s.workerId === null ? true : undefined;
    },
    30_000,
    `${step} to wait for ${signal}`,
  );
}

/** SIGKILLs every worker process of the deployment and waits for their replacements. */
async function killEveryWorker(d: Deployment): Promise<void> {
  const before = await d.supervisor();
  const pids = before.workers.map((w) => w.pid).filter((p): p is number => p !== null);
  assert.equal(pids.length, 2);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await waitFor(
    async () => {
      const s = await d.supervisor();
      const now = s.workers.map((w) => w.pid);
      return s.alive === 2 && now.every((p) => p !== null && !pids.includes(p)) ? true : undefined;
    },
    30_000,
    'both worker processes replaced',
  );
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  test(`[${dialect}] a wait step survives every worker process being killed and replaced; runwarden signal releases it`, { skip: dialect === 'postgres' ? pgSkip : false }, async (t) => {
    const db = dialect === 'postgres' ? await createTestDatabase() : undefined;
    const d = await startDeployment(t, { workers: 2, env: db ? { DATABASE_URL: db.url } : {} });
    // After the deployment's own hook (hooks run in the order they were added): it has stopped by then.
    if (db) t.after(() => db.drop());
    const runId = await d.submit(WAIT_PLAN);
    await waiting(d, runId, 'approve', 'approved');
    await killEveryWorker(d);
    const still = (await d.run(runId)).steps.find((s) => s.name === 'approve');
    assert.equal(still?.status, 'pending', 'it still waits after its workers were replaced');
    const signalled = await runCli(['signal', runId, 'approved', '--data', '{"by":"ada"}', '--url', d.url]);
    assert.equal(signalled.code, 0, signalled.err);
    assert.equal(signalled.out.trim(), 'signal approved: released approve');

    const run = await d.waitRun(runId, 30_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const approve = await d.step(runId, 'approve');
    assert.deepEqual(approve.outputs, { by: 'ada' });
    // One attempt, which ended when the wait began: nothing was lost to the killed workers.
    assert.deepEqual(approve.attemptsDetail.map((a) => a.status), ['succeeded']);
    assert.deepEqual(run.steps.find((s) => s.name === 'ship')?.outputs, { by: 'ada' });
    const events = (await api<{ events: Array<{ type: string; stepName?: string }> }>(d.url, `/runs/${runId}/events`)).body.events;
    assert.deepEqual(
      events.filter((e) => e.stepName === 'approve' || e.type === 'signal.received').map((e) => e.type),
      ['step.queued', 'step.started', 'step.awaiting_signal', 'signal.received', 'step.finished'],
    );
  });
}

test('a wait that times out has a report naming its signal; a signal to the finished run is a 409 with a code', async (t) => {
  const d = await startDeployment(t, { workers: 1 });
  const runId = await d.submit([{ name: 'approve', tool: 'wait', inputs: { signal: 'approved', timeoutMs: 1500 } }]);
  await waiting(d, runId, 'approve', 'approved');
  const run = await d.waitRun(runId, 30_000);
  assert.equal(run.status, 'failed');
  const step = await d.step(runId, 'approve');
  assert.equal(step.status, 'timed_out');
  assert.equal(step.error?.code, 'SIGNAL_TIMEOUT');
  assert.equal(step.hangReports.length, 1);
  const report = step.hangReports[0] as { classification: { code: string; summary: string }; waitedFor: { signal: string; since: string } };
  assert.equal(report.classification.code, 'signal.timeout');
  assert.match(report.classification.summary, /waited for signal "approved" since \d{4}-/);
  assert.equal(report.waitedFor.signal, 'approved');
  assert.equal(report.waitedFor.since, step.awaitingSince);

  const res = await api<{ error: { code: string; message: string } }>(d.url, `/runs/${runId}/signals/approved`, { body: { payload: 1 } });
  assert.equal(res.status, 409);
  assert.equal(res.body.error.code, 'RUN_FINISHED');
  const cli = await runCli(['signal', runId, 'approved', '--url', d.url]);
  assert.equal(cli.code, 2);
  assert.match(cli.err, /RUN_FINISHED/);
  const unknown = await api<{ error: { code: string } }>(d.url, '/runs/no-such-run/signals/approved', { body: {} });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'NOT_FOUND');
  const shown = await runCli(['report', runId, 'approve', '--url', d.url]);
  assert.equal(shown.code, 0, shown.err);
  assert.match(shown.out, /signal\.timeout/);
});

async function labRequests(labUrl: string, since: number): Promise<LabRequest[]> {
  return (await api<{ requests: LabRequest[] }>(labUrl, `/requests?since=${since}`)).body.requests;
}

async function startWithProviders(servers: ServerProcess[], dir: string, providers: Record<string, unknown>): Promise<ServerProcess> {
  const server = await startServer(['--data-dir', dir, '--lab', 'off', '--workers', '1'], { RUNWARDEN_PROVIDERS: JSON.stringify(providers), LAB_KEY: 'not-a-real-key' });
  servers.push(server);
  return server;
}

test('a 5-step LLM run failed at step 4: runs rerun calls only steps 4 and 5 and succeeds with the earlier outputs', async (t) => {
  const lab = await startLab({ port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'rw-rerun-'));
  const servers: ServerProcess[] = [];
  t.after(async () => {
    // The deployments first, then the lab they talk to and their data.
    for (const s of servers) await s.stop(15_000);
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const modes = new Map(lab.modes().map((m) => [m.name, m.baseUrl]));
  const healthy = modes.get('healthy');
  const overloaded = modes.get('overloaded');
  assert.ok(healthy && overloaded);
  const provider = (baseUrl: string) => ({ type: 'openai', baseUrl, apiKeyEnv: 'LAB_KEY', maxRetries: 0 });
  const steps = ['s1', 's2', 's3', 's4', 's5'].map((name, i, all) => ({
    name,
    tool: 'llm',
    inputs: { prompt: i === 0 ? 'start' : `go on from: {{steps.${all[i - 1] as string}.outputs.text}}`, provider: name === 's4' ? 'flaky' : 'good', stream: false },
    timeoutMs: 20_000,
    ...(i > 0 ? { dependsOn: [all[i - 1] as string] } : {}),
  }));

  // The first deployment: step 4's provider is down (the lab answers it 529 overloaded).
  let server = await startWithProviders(servers, dir, { good: provider(healthy), flaky: provider(overloaded) });
  const created = await api<RunWithSteps>(server.url, '/runs', { body: { plan: { steps } } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const oldId = created.body.id;
  const failed = await waitFor(async () => {
    const r = (await api<RunWithSteps>(server.url, `/runs/${oldId}`)).body;
    return r.status === 'failed' ? r : undefined;
  }, 60_000, 'the first run to fail');
  assert.deepEqual(failed.steps.map((s) => s.status), ['succeeded', 'succeeded', 'succeeded', 'failed', 'skipped']);
  await server.stop(15_000);

  // The provider is back: a new deployment on the same data, step 4's provider healthy again.
  server = await startWithProviders(servers, dir, { good: provider(healthy), flaky: provider(healthy) });
  const mark = (await api<{ last: number }>(lab.url, '/requests?since=0')).body.last;
  const rerun = await runCli(['runs', 'rerun', oldId, '--url', server.url]);
  assert.equal(rerun.code, 0, rerun.err);
  const newId = rerun.out.trim();
  assert.match(rerun.err, /3 step\(s\) reused \(s1, s2, s3\), 2 to run/);
  const done = await waitFor(async () => {
    const r = (await api<RunWithSteps>(server.url, `/runs/${newId}`)).body;
    return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
  }, 60_000, 'the rerun to finish');
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.rerunOf, oldId);

  // The lab saw two LLM calls for the rerun, not five.
  const calls = (await labRequests(lab.url, mark)).filter((r) => r.endpoint !== 'models');
  assert.equal(calls.length, 2, JSON.stringify(calls.map((c) => c.path)));
  assert.equal(done.usage.calls, 2);
  const byName = new Map(done.steps.map((s) => [s.name, s]));
  const old = new Map(failed.steps.map((s) => [s.name, s]));
  for (const name of ['s1', 's2', 's3']) {
    assert.equal(byName.get(name)?.reusedFrom, oldId, name);
    assert.equal(byName.get(name)?.attempts, 0, name);
    assert.deepEqual(byName.get(name)?.outputs, old.get(name)?.outputs, `${name} keeps the outputs of the first run`);
  }
  const s3text = (old.get('s3')?.outputs as { text: string }).text;
  assert.deepEqual(byName.get('s4')?.resolvedInputs, { prompt: `go on from: ${s3text}`, provider: 'flaky', stream: false });
  for (const name of ['s4', 's5']) assert.equal(byName.get(name)?.attempts, 1, name);

  const shown = await runCli(['runs', 'show', newId, '--url', server.url]);
  assert.equal(shown.code, 0, shown.err);
  assert.match(shown.out, new RegExp(`^rerun of  ${oldId}$`, 'm'));
  assert.match(shown.out, new RegExp(`^s1\\s+llm\\s+succeeded \\(reused from ${oldId}\\)\\s+0`, 'm'));
});
