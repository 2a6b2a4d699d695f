/** The event stream over a real socket: history then live events, resume, keepalive, cleanup, shutdown. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { EventRecord } from '../../src/domain/records.ts';
import { buildApp } from '../../src/http/app.ts';
import { createRun, http, plan, readFrames, startTestRuntime, waitFor, waitForRun } from './helpers.ts';
import type { Frame, TestRuntime } from './helpers.ts';

const events = (frames: Frame[]): EventRecord[] => frames.filter((f) => f.data !== undefined).map((f) => JSON.parse(f.data ?? '') as EventRecord);
const finished = (frames: Frame[]): boolean => frames.some((f) => f.event === 'run.finished');

async function openStream(url: string, runId: string, headers: Record<string, string> = {}, query = ''): Promise<{ res: Response; abort: AbortController }> {
  const abort = new AbortController();
  const res = await fetch(`${url}/runs/${runId}/events/stream${query}`, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  return { res, abort };
}

async function streamGauge(url: string): Promise<number> {
  const text = (await http<string>(url, '/metrics')).body;
  const m = /^runwarden_http_event_streams (\d+)$/m.exec(text);
  return Number(m?.[1] ?? NaN);
}

describe('GET /runs/:id/events/stream', () => {
  let rt: TestRuntime;
  let url: string;
  before(async () => {
    rt = await startTestRuntime();
    url = rt.url;
  });
  after(async () => {
    await rt.close();
  });

  test('a finished run: every stored event as id/event/data, then the stream ends', async () => {
    const run = await createRun(url, plan([{ name: 'a', tool: 'echo', inputs: {} }, { name: 'b', tool: 'echo', inputs: {}, dependsOn: ['a'] }]));
    await waitForRun(url, run.id);
    const { res } = await openStream(url, run.id);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
    const frames = await readFrames(res, () => false);
    const evs = events(frames);
    const stored = (await http<{ events: EventRecord[] }>(url, `/runs/${run.id}/events`)).body.events;
    assert.deepEqual(evs, stored);
    for (const f of frames.filter((x) => x.data !== undefined)) {
      const e = JSON.parse(f.data ?? '') as EventRecord;
      assert.equal(f.id, String(e.seq));
      assert.equal(f.event, e.type);
    }
    assert.equal(evs.at(-1)?.type, 'run.finished');
  });

  test('live: events arrive as the run progresses, and the stream ends after run.finished', async () => {
    const run = await createRun(url, plan([{ name: 'nap', tool: 'sleep', inputs: { ms: 400 } }, { name: 'then', tool: 'echo', inputs: {}, dependsOn: ['nap'] }]));
    const { res } = await openStream(url, run.id);
    const frames = await readFrames(res, () => false, 15_000);
    const types = events(frames).map((e) => `${e.type}${e.stepName ? ` ${e.stepName}` : ''}`);
    assert.ok(types.includes('step.finished nap'));
    assert.ok(types.includes('step.finished then'));
    assert.equal(types.at(-1), 'run.finished');
    assert.equal(types.filter((t) => t === 'run.finished').length, 1);
  });

  test('resume with Last-Event-ID: no gap, no duplicate; the header wins over ?after=', async () => {
    const run = await createRun(url, plan([{ name: 'a', tool: 'echo', inputs: {} }, { name: 'nap', tool: 'sleep', inputs: { ms: 300 }, dependsOn: ['a'] }]));
    const first = await openStream(url, run.id);
    const part = await readFrames(first.res, (f) => events(f).length >= 3);
    first.abort.abort();
    const seen = events(part);
    const last = seen.at(-1)?.seq;
    assert.ok(last !== undefined);
    const second = await openStream(url, run.id, { 'last-event-id': String(last) }, '?after=0');
    const rest = events(await readFrames(second.res, finished, 15_000));
    assert.equal(rest[0]?.seq, last + 1, 'resumes right after Last-Event-ID');
    const stored = (await http<{ events: EventRecord[] }>(url, `/runs/${run.id}/events`)).body.events;
    assert.deepEqual([...seen, ...rest], stored);

    const viaQuery = events(await readFrames((await openStream(url, run.id, {}, `?after=${last}`)).res, finished));
    assert.equal(viaQuery[0]?.seq, last + 1);
    const atEnd = await readFrames((await openStream(url, run.id, { 'last-event-id': String(stored.at(-1)?.seq) })).res, () => false, 5000);
    assert.deepEqual(events(atEnd), [], 'resuming after run.finished ends at once with nothing new');
  });

  test('a bad Last-Event-ID or ?after= is a coded 400', async () => {
    const run = await createRun(url, plan([{ name: 'a', tool: 'echo', inputs: {} }]));
    const bad = await http(url, `/runs/${run.id}/events/stream`, { headers: { 'last-event-id': 'abc' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_QUERY');
    const badQ = await http(url, `/runs/${run.id}/events/stream?after=-1`);
    assert.equal(badQ.status, 400);
    assert.equal(badQ.body.error.code, 'INVALID_QUERY');
  });

  test('a client that disconnects releases its stream (listener and timers)', async () => {
    const run = await createRun(url, plan([{ name: 'long', tool: 'sleep', inputs: { ms: 20_000 } }]));
    // The streams of the tests before this one end (a client's abort reaches the server a moment
    // later): count from none open, or a stream still closing would be taken for this one.
    const before = await waitFor(async () => ((await streamGauge(url)) === 0 ? 0 : undefined), 5000, 'earlier streams released');
    const { res, abort } = await openStream(url, run.id);
    await readFrames(res, (f) => events(f).length >= 1);
    assert.equal(await streamGauge(url), before + 1);
    abort.abort();
    await waitFor(async () => ((await streamGauge(url)) === before ? true : undefined), 5000, 'the stream gauge to drop');
    await http(url, `/runs/${run.id}/cancel`, { method: 'POST' });
    await waitForRun(url, run.id);
  });

  test('keepalive comments on a quiet stream, and close() ends open streams at once', async () => {
    // A second app on the same real engine with a short keepalive, listening on its own port.
    const app = buildApp({ engine: rt.runtime.engine, requireToken: false, bodyLimitBytes: 1 << 20, version: 'test', sse: { keepaliveMs: 50 } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const run = await createRun(url, plan([{ name: 'long', tool: 'sleep', inputs: { ms: 20_000 } }]));
    try {
      const { res } = await openStream(`http://127.0.0.1:${port}`, run.id);
      const reading = readFrames(res, () => false, 10_000);
      const frames = await readFrames((await openStream(`http://127.0.0.1:${port}`, run.id)).res, (f) => f.filter((x) => x.comment === 'keepalive').length >= 2);
      assert.ok(frames.filter((f) => f.comment === 'keepalive').length >= 2);
      const t0 = Date.now();
      await app.close();
      assert.ok(Date.now() - t0 < 2000, `close() took ${Date.now() - t0} ms with an open stream`);
      const rest = await reading;
      assert.ok(!finished(rest), 'the stream was ended by shutdown, not by the run');
    } finally {
      await app.close();
      await http(url, `/runs/${run.id}/cancel`, { method: 'POST' });
      await waitForRun(url, run.id);
    }
  });

  test('backpressure: a client that stops reading is disconnected instead of buffered without bound', async () => {
    const app = buildApp({ engine: rt.runtime.engine, requireToken: false, bodyLimitBytes: 1 << 20, version: 'test', sse: { drainTimeoutMs: 300 } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    try {
      // ~24 MB of step.log events: far more than the kernel's socket buffers hold.
      const run = await createRun(url, plan([{ name: 'talk', tool: 'chatty', inputs: { lines: 6000, size: 4000 } }]));
      assert.equal((await waitForRun(url, run.id, 60_000)).status, 'succeeded');
      const socket = connect(port, '127.0.0.1');
      socket.pause(); // never read: the server's writes stop draining
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      socket.write(`GET /runs/${run.id}/events/stream HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n`);
      await waitFor(async () => ((await streamGauge(`http://127.0.0.1:${port}`)) === 1 ? true : undefined), 5000, 'the stream to open');
      await waitFor(async () => ((await streamGauge(`http://127.0.0.1:${port}`)) === 0 ? true : undefined), 10_000, 'the stalled stream to be dropped');
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (received += d));
      socket.resume();
      await waitFor(() => (socket.destroyed || socket.readableEnded ? true : undefined), 10_000, 'the server to close the socket');
      await closed;
      assert.ok(!received.includes('event: run.finished'), 'the stream was cut before the end, not completed into kernel buffers');
      assert.equal((await http(`http://127.0.0.1:${port}`, '/health')).status, 200);
    } finally {
      await app.close();
    }
  });
});
