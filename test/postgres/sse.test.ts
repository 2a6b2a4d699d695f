/**
 * Server-Sent Events across processes: a client streaming a run from API process A sees, promptly,
 * the events a worker process writes (the run itself created through API process B). Without
 * cross-process notifications the stream would only learn of them at its fallback poll (5 s).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventRecord, RunWithSteps } from '../../src/domain/records.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { api, startApi, startWorker, stopAll } from './processes.ts';

const skip = await postgresSkip();

test('an SSE client on API process A sees events a worker process writes, within milliseconds', { skip, timeout: 60_000 }, async (t) => {
  const db = await createTestDatabase();
  t.after(async () => {
    await stopAll();
    await db.drop();
  });
  const [a, b] = await Promise.all([startApi(db.url, ['--workers', '0']), startApi(db.url, ['--workers', '0'])]);
  await startWorker(db.url, ['--heartbeat-ms', '250']);

  const steps = Array.from({ length: 6 }, (_, i) => ({ name: `s${i}`, tool: 'sleep', inputs: { ms: 150 }, ...(i > 0 ? { dependsOn: [`s${i - 1}`] } : {}) }));
  const created = await api<RunWithSteps>(b.ref, '/runs', { body: { plan: { steps } } });
  assert.equal(created.status, 201);
  const runId = created.body.id;

  const res = await fetch(`${a.ref}/runs/${runId}/events/stream`, { signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 200);
  assert.ok(res.body);
  const received: Array<{ event: EventRecord; at: number }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let i: number;
    while ((i = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const data = frame.split('\n').find((l) => l.startsWith('data: '));
      if (data) received.push({ event: JSON.parse(data.slice(6)) as EventRecord, at: Date.now() });
    }
  }
  const types = received.map((r) => r.event.type);
  assert.equal(types.at(-1), 'run.finished', 'the stream ends with the run');
  assert.deepEqual(
    received.map((r) => r.event.seq),
    received.map((_, i) => i + 1),
  );
  // Events written after the client connected: how long from the worker's write to the client.
  const streamed = received.filter((r) => r.event.type === 'step.finished' || r.event.type === 'run.finished');
  assert.equal(streamed.length, 7);
  const lags = streamed.map((r) => r.at - Date.parse(r.event.ts)).sort((x, y) => x - y);
  const p50 = lags[Math.floor(lags.length / 2)] ?? Infinity;
  t.diagnostic(`write-to-client lag over ${lags.length} events: p50 ${p50} ms, max ${lags.at(-1)} ms`);
  assert.ok(p50 < 250, `p50 lag ${p50} ms: the notification did not arrive, the stream fell back to polling`);
  assert.ok((lags.at(-1) ?? Infinity) < 2500, `max lag ${lags.at(-1)} ms`);
});
