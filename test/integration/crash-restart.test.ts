import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EventRecord, RunWithSteps } from '../../src/domain/records.ts';
import { waitFor } from '../helpers/engine.ts';
import { api, startServer, type ServerProcess } from '../helpers/server.ts';

test('kill -9 of the whole start process mid-run, then start again: every step finished exactly once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rw-crash-'));
  const servers: ServerProcess[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop(1000);
    rmSync(dir, { recursive: true, force: true });
  });
  const args = ['--data-dir', dir, '--lab', 'off', '--lease-ms', '1000', '--heartbeat-ms', '300'];
  const first = await startServer(args);
  servers.push(first);

  const steps = [
    ...Array.from({ length: 8 }, (_, i) => ({ name: `slow${i}`, tool: 'sleep', inputs: { ms: 1500 }, timeoutMs: 10_000 })),
    { name: 'join', tool: 'echo', inputs: { ok: true }, dependsOn: Array.from({ length: 8 }, (_, i) => `slow${i}`) },
  ];
  const created = await api<RunWithSteps>(first.url, '/runs', { body: { plan: { steps } } });
  assert.equal(created.status, 201);
  const runId = created.body.id;
  await waitFor(
    async () => ((await api<RunWithSteps>(first.url, `/runs/${runId}`)).body.steps.filter((s) => s.status === 'running').length === 8 ? true : undefined),
    10_000,
    'all sleeps running',
  );

  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));

  const second = await startServer(args);
  servers.push(second);
  const done = await waitFor(
    async () => {
      const r = (await api<RunWithSteps>(second.url, `/runs/${runId}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    },
    30_000,
    'the run to finish after restart',
  );
  assert.equal(done.status, 'succeeded');
  assert.ok(done.steps.every((s) => s.status === 'succeeded'));
  const events = (await api<EventRecord[] | { events: EventRecord[] }>(second.url, `/runs/${runId}/events?limit=10000`)).body;
  const list = Array.isArray(events) ? events : events.events;
  const finished = list.filter((e) => e.type === 'step.finished');
  assert.equal(finished.length, 9);
  assert.equal(new Set(finished.map((e) => e.stepName)).size, 9);
  assert.equal(list.filter((e) => e.type === 'run.finished').length, 1);
  list.forEach((e, i) => assert.equal(e.seq, i + 1));
  // The interrupted attempts are on record as lost, and retried.
  const slow0 = (await api<{ attemptsDetail: Array<{ status: string }> }>(second.url, `/runs/${runId}/steps/slow0`)).body;
  assert.deepEqual(slow0.attemptsDetail.map((a) => a.status), ['lost', 'succeeded']);
  const stuck = (await api<unknown[] | { steps: unknown[] }>(second.url, '/steps/stuck')).body;
  assert.equal((Array.isArray(stuck) ? stuck : stuck.steps).length, 0);
});
