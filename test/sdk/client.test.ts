/**
 * createClient against a real runtime (startRuntime, tools as objects) and against servers that
 * misbehave: every call typed, errors carrying the API's codes, every call abortable, and a
 * deadline on everything, so the client cannot hang on a server that never answers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/engine.ts';
import { builtins, createClient, definePlan, defineTool, isApiError, jsonSchema, RunwardenApiError, startRuntime, type EmbeddedRuntime } from '../../src/index.ts';

const TOKEN = 'client-test-token-0123456789';

const greet = defineTool({
  name: 'greet',
  input: jsonSchema({ type: 'object', properties: { name: { type: 'string' } }, required: ['name'] }),
  run: (_ctx, input) => ({ greeting: `hello ${input.name}` }),
});

/** Accepts connections and never answers: what a hung server looks like to a client. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

describe('createClient', () => {
  let rt: EmbeddedRuntime;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rw-client-'));
    rt = await startRuntime({ port: 0, dataDir: dir, workers: 1, lab: 'off', token: TOKEN, tools: [greet], env: {} });
  });
  after(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('runs.create / get / list / step / steps / events, typed, and waitForRun', async () => {
    const client = createClient({ baseUrl: `${rt.url}/`, token: TOKEN });
    const plan = definePlan({ goal: 'client test' })
      .step('hi', greet, { name: 'ada' })
      .step('echo', builtins.echo, (s) => ({ said: s.hi.outputs.greeting }))
      .build();
    const created = await client.runs.create({ plan, labels: { suite: 'client' }, idempotencyKey: 'client-1' });
    assert.equal(created.created, true);
    assert.deepEqual(created.steps.map((s) => s.name), ['hi', 'echo']);
    const again = await client.runs.create({ plan, idempotencyKey: 'client-1' });
    assert.equal(again.created, false);
    assert.equal(again.id, created.id);

    const done = await client.waitForRun(created.id, { timeoutMs: 15_000 });
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.steps.find((s) => s.name === 'echo')?.outputs, { said: 'hello ada' });
    assert.equal((await client.runs.get(created.id)).status, 'succeeded');
    const page = await client.runs.list({ label: 'suite:client', limit: 10 });
    assert.deepEqual(page.runs.map((r) => r.id), [created.id]);
    assert.equal((await client.runs.step(created.id, 'hi')).attemptsDetail.length, 1);
    assert.deepEqual((await client.runs.steps(created.id)).steps.map((s) => s.name), ['hi', 'echo']);
    const events = await client.events(created.id);
    assert.deepEqual(events.events.map((e) => e.seq), events.events.map((_, i) => i + 1));
    assert.equal(events.events.at(-1)?.type, 'run.finished');
    const more = await client.events(created.id, { after: events.nextAfter });
    assert.deepEqual(more.events, []);
  });

  test('the API answers as typed errors with its codes and details', async () => {
    const client = createClient({ baseUrl: rt.url, token: TOKEN });
    const missing = await rejection(client.runs.get('no-such-run'));
    assert.ok(isApiError(missing, 'NOT_FOUND'));
    assert.equal(missing.status, 404);

    const bad = await rejection(client.runs.create({ plan: { steps: [{ name: 'a', tool: 'teleport' }, { name: 'a', tool: 'greet', inputs: { name: 5 } }] } }));
    assert.ok(bad instanceof RunwardenApiError);
    assert.equal(bad.code, 'PLAN_INVALID');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.details.map((d) => d.code).sort(), ['DUPLICATE_STEP', 'UNKNOWN_TOOL']);

    const anonymous = await rejection(createClient({ baseUrl: rt.url }).runs.list());
    assert.ok(isApiError(anonymous, 'UNAUTHORIZED'));
    assert.equal(anonymous.status, 401);
    assert.doesNotMatch(JSON.stringify({ ...anonymous, message: anonymous.message }), new RegExp(TOKEN));
  });

  test('runs.rerun and runs.signal: a wait released by a signal, a rerun reusing it, coded refusals', async () => {
    const client = createClient({ baseUrl: rt.url, token: TOKEN });
    const plan = definePlan()
      .step('ok', builtins.wait, { signal: 'ok', timeoutMs: 60_000 })
      .step('hi', greet, { name: 'x' }, { dependsOn: ['ok'] })
      .build();
    const run = await client.runs.create({ plan });
    const early = await rejection(client.runs.rerun(run.id, { from: ['hi'] }));
    assert.ok(isApiError(early, 'RUN_NOT_FINISHED'), String(early));
    assert.equal(early.status, 409);
    const sent = await client.runs.signal(run.id, 'ok', { fine: true });
    assert.equal(sent.name, 'ok');
    const done = await client.waitForRun(run.id, { timeoutMs: 30_000 });
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.steps.find((s) => s.name === 'ok')?.outputs, { fine: true });
    const late = await rejection(client.runs.signal(run.id, 'ok'));
    assert.ok(isApiError(late, 'RUN_FINISHED'), String(late));
    assert.equal(late.status, 409);

    const unknown = await rejection(client.runs.rerun(run.id, { from: ['nope'] }));
    assert.ok(isApiError(unknown, 'UNKNOWN_STEP'), String(unknown));
    assert.equal(unknown.status, 400);
    const again = await client.runs.rerun(run.id, { from: ['hi'] });
    assert.equal(again.created, true);
    assert.equal(again.rerunOf, run.id);
    assert.equal(again.steps.find((s) => s.name === 'ok')?.reusedFrom, run.id);
    const second = await client.waitForRun(again.id, { timeoutMs: 30_000 });
    assert.equal(second.status, 'succeeded');
    assert.equal(second.steps.find((s) => s.name === 'hi')?.attempts, 1);
  });

  test('cancel: a running run ends cancelled, and its stream ends with run.finished', async () => {
    const client = createClient({ baseUrl: rt.url, token: TOKEN });
    const run = await client.runs.create({ plan: definePlan().step('nap', builtins.sleep, { ms: 30_000 }).build() });
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of client.stream(run.id)) seen.push(e.type);
    })();
    await waitFor(async () => ((await client.runs.get(run.id)).status === 'running' ? true : undefined), 10_000, 'the run to start');
    await client.runs.cancel(run.id);
    await following;
    assert.equal(seen.at(-1), 'run.finished');
    assert.equal((await client.runs.get(run.id)).status, 'cancelled');
  });

  test('every call has a deadline: a server that never answers is a TIMEOUT, not a hang', async () => {
    const silent = await silentServer();
    try {
      const client = createClient({ baseUrl: silent.url, timeoutMs: 300 });
      const started = Date.now();
      const err = await rejection(client.runs.get('x'));
      assert.ok(isApiError(err, 'TIMEOUT'), String(err));
      assert.equal(err.status, 0);
      assert.ok(Date.now() - started < 5000, 'the default deadline applies');
      const perCall = await rejection(createClient({ baseUrl: silent.url }).runs.list({}, { timeoutMs: 200 }));
      assert.ok(isApiError(perCall, 'TIMEOUT'));
      const waited = await rejection(createClient({ baseUrl: silent.url, timeoutMs: 60_000 }).waitForRun('x', { timeoutMs: 300 }));
      assert.ok(isApiError(waited, 'TIMEOUT'), String(waited));
      const stream = createClient({ baseUrl: silent.url }).stream('x', { connectTimeoutMs: 200, giveUpAfterMs: 500 });
      const lost = await rejection(stream.next());
      assert.ok(isApiError(lost, 'STREAM_LOST'), String(lost));
    } finally {
      await silent.close();
    }
  });

  test('every call takes a signal: aborting rejects with its reason at once', async () => {
    const silent = await silentServer();
    try {
      const client = createClient({ baseUrl: silent.url, timeoutMs: 60_000 });
      const why = new Error('the user left');
      const ctl = new AbortController();
      const pending = rejection(client.runs.create({ plan: { steps: [{ name: 'a', tool: 'echo' }] } }, { signal: ctl.signal }));
      setTimeout(() => ctl.abort(why), 50);
      assert.equal(await pending, why);
      const ctl2 = new AbortController();
      const waiting = rejection(client.waitForRun('x', { signal: ctl2.signal }));
      setTimeout(() => ctl2.abort(why), 50);
      assert.equal(await waiting, why);
      const ctl3 = new AbortController();
      const streaming = rejection(client.stream('x', { signal: ctl3.signal }).next());
      setTimeout(() => ctl3.abort(why), 50);
      assert.equal(await streaming, why);
    } finally {
      await silent.close();
    }
  });

  test('nothing listening is UNREACHABLE, naming the address and the reason; a base URL with credentials is refused', async () => {
    const url = await closedPort();
    const err = await rejection(createClient({ baseUrl: url }).runs.list());
    assert.ok(isApiError(err, 'UNREACHABLE'));
    assert.match(err.message, new RegExp(`${url.replace(/[.:/]/g, '\\$&')}: connection refused \\(ECONNREFUSED\\)`));
    assert.throws(() => createClient({ baseUrl: 'http://user:secret@127.0.0.1:1' }), (e: unknown) => isApiError(e) && !e.message.includes('secret'));
  });

  test('tool objects cannot go to worker processes: startRuntime says to pass a module path', async () => {
    const err = await rejection(startRuntime({ port: 0, dataDir: join(dir, 'processes'), workerMode: 'processes', workers: 1, lab: 'off', tools: [greet], env: {} }));
    assert.ok(err instanceof Error);
    assert.match(err.message, /tool objects \(greet\) can only run on the in-process worker/);
  });
});
