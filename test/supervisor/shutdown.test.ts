/**
 * Stopping a deployment: SIGTERM drains within its bound and hands running steps back; a second
 * signal exits at once; a supervisor killed outright takes its workers with it. No process is ever
 * left behind (helpers.ts checks after every test).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite/index.ts';
import { assertNoOrphans, startDeployment, waitFor, type Deployment } from './helpers.ts';

async function runningStep(d: Deployment, ms = 30_000): Promise<string> {
  const runId = await d.submit([{ name: 'long', tool: 'sleep', inputs: { ms }, timeoutMs: 60_000 }]);
  await waitFor(async () => ((await d.step(runId, 'long')).status === 'running' ? true : undefined), 10_000, 'the step to run');
  return runId;
}

async function exited(d: Deployment): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = d.server.child;
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}

test('SIGTERM drains within its bound, hands the running step back and exits 0; a second SIGTERM exits at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rw-sup-stop-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const first = await startDeployment(t, { workers: 2, dir, args: ['--drain-ms', '500'] });
  const runId = await runningStep(first);
  const t0 = Date.now();
  first.server.child.kill('SIGTERM');
  const end = await exited(first);
  const tookMs = Date.now() - t0;
  assert.deepEqual(end, { code: 0, signal: null }, first.server.output());
  // drain 500 ms + the sleep tool's prompt abort: well inside drain + abort grace + slack.
  assert.ok(tookMs < 6000, `stopped in ${tookMs} ms`);
  await assertNoOrphans(dir, 5000);
  const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
  try {
    const attempts = await store.listAttempts(runId, 'long');
    assert.deepEqual(attempts.map((a) => [a.status, a.error?.code]), [['lost', 'WORKER_SHUTDOWN']]);
    assert.equal((await store.getStep(runId, 'long'))?.status, 'queued', 'handed back to the queue');
  } finally {
    await store.close();
  }

  // The step is claimed again by the next deployment; this time the operator insists.
  const second = await startDeployment(t, { workers: 2, dir });
  await waitFor(async () => ((await second.step(runId, 'long')).status === 'running' ? true : undefined), 10_000, 'the step to run again');
  second.server.child.kill('SIGTERM');
  const signalled = Date.now();
  await waitFor(() => /stopping runwarden/.test(second.server.output()), 5000, 'the first SIGTERM to be taken');
  // A repeat within 250 ms is the same signal delivered twice (src/cli/signals.ts): wait that window out.
  await new Promise((r) => setTimeout(r, Math.max(0, 400 - (Date.now() - signalled))));
  const t1 = Date.now();
  second.server.child.kill('SIGTERM');
  const end2 = await exited(second);
  assert.equal(end2.code, 143, second.server.output());
  assert.ok(Date.now() - t1 < 2000, 'the second signal exits at once');
  await assertNoOrphans(dir, 5000);
});

test('a supervisor killed with SIGKILL takes its workers with it', async (t) => {
  const d = await startDeployment(t, { workers: 2 });
  await runningStep(d);
  const pids = (await d.supervisor()).workers.map((w) => w.pid);
  assert.equal(pids.filter((p) => p !== null).length, 2);
  d.server.child.kill('SIGKILL');
  await exited(d);
  await assertNoOrphans(d.dir, 10_000);
});
