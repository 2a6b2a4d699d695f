/**
 * The schemas of /openapi.json describe what the API really sends: every event of runs that produce
 * every event type (a retry, a log line, an artifact, an LLM call on the lab, a step cut at its
 * deadline with its hang report, a step added at runtime that its adder waits for, a wait released
 * by a signal, and a rerun reusing steps), from the JSON route and from the SSE stream, validates against
 * `Event`; the run, the step with its hang report, a page of runs and an error body against theirs.
 * And every event type the code writes is one the document (and src/domain/events.ts) lists.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { EVENT_TYPES } from '../../src/domain/events.ts';
import { openApiDocument } from '../../src/http/openapi.ts';
import { definePlan, defineTool, builtins, startRuntime, type EmbeddedRuntime, type Event } from '../../src/index.ts';
import { waitFor } from '../helpers/wait.ts';

const SRC = join(import.meta.dirname, '..', '..', 'src');
/** Written on the SSE stream only, never stored (no seq): not an Event. */
const FRAMES = new Set(['llm.delta']);

const attempts = new Map<string, number>();
const flaky = defineTool({
  name: 'flaky',
  run(ctx) {
    const n = (attempts.get(ctx.runId) ?? 0) + 1;
    attempts.set(ctx.runId, n);
    if (n === 1) throw new Error('first attempt fails');
    return { attempts: n };
  },
});
const chatty = defineTool({
  name: 'chatty',
  run(ctx) {
    ctx.log('writing a note', { bytes: 5 });
    ctx.log.warn('a warning');
    const ref = ctx.artifacts.put({ name: 'note.txt', content: 'hello' });
    return { artifact: ref.id };
  },
});

const grower = defineTool({
  name: 'grower',
  run(ctx) {
    ctx.addSteps([{ name: 'grown', tool: 'echo', dependsOn: [], inputs: { said: 'grown' } }], { outputsFrom: 'grown' });
    return null;
  },
});

function validator(): (name: string, value: unknown) => string[] {
  const doc = openApiDocument('test') as { components: { schemas: Record<string, unknown> } };
  // OpenAPI 3.1 schemas are JSON Schema 2020-12; `discriminator` is OpenAPI's annotation (the
  // oneOf decides), formats are not checked here.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'doc', components: doc.components });
  return (name, value) => {
    const validate = ajv.getSchema(`doc#/components/schemas/${name}`);
    assert.ok(validate, `no schema ${name}`);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  };
}

describe('the OpenAPI schemas fit what the API sends', () => {
  let rt: EmbeddedRuntime;
  let runId: string;
  let rerunId: string;
  let keyedId: string;
  let dataDir: string;
  const check = validator();

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'rw-fit-'));
    // 'paced' lets one call a second through: of the two steps calling it at once, one waits (step.waiting).
    rt = await startRuntime({
      port: 0, dataDir, workers: 1, lab: 'on', labPort: 0, abortGraceMs: 200, tools: [flaky, chatty, grower], env: {},
      providers: { paced: { type: 'lab', limits: { requestsPerMinute: 60 } } },
    });
    const plan = definePlan({ goal: 'every event type' })
      .step('flaky', flaky, {}, { retries: { max: 1, backoffMs: 10 } })
      .step('chatty', chatty, {})
      .step('grower', grower, {})
      .step('ask', builtins.llm, { prompt: 'say something', provider: 'lab', stream: true }, { timeoutMs: 10_000 })
      .step('paced1', builtins.llm, { prompt: 'one', provider: 'paced', stream: false }, { timeoutMs: 10_000 })
      .step('paced2', builtins.llm, { prompt: 'two', provider: 'paced', stream: false }, { timeoutMs: 10_000 })
      .step('nap', builtins.sleep, { ms: 5000 }, { timeoutMs: 300 })
      .step('approve', builtins.wait, { signal: 'go', timeoutMs: 60_000 })
      .build();
    runId = (await rt.client.runs.create({ plan, labels: { test: 'fit' } })).id;
    await waitFor(async () => (await rt.client.runs.get(runId)).steps.find((s) => s.name === 'approve' && s.awaitingSignal === 'go' && s.status === 'pending'), 30_000, 'the wait step to wait');
    assert.deepEqual(check('SignalResult', await rt.client.runs.signal(runId, 'go', { ok: true })), []);
    const run = await rt.client.waitForRun(runId, { timeoutMs: 30_000 });
    assert.equal(run.status, 'failed', 'the nap step times out, so the run fails');
    rerunId = (await rt.client.runs.rerun(runId, { from: ['nap'] })).id;
    await rt.client.waitForRun(rerunId, { timeoutMs: 30_000 });
    // A step held back by its full concurrency key: told by the reaper's pass (step.waiting with a key).
    keyedId = (
      await rt.client.runs.create({
        plan: { steps: [{ name: 'hold', tool: 'sleep', inputs: { ms: 1500 } }, { name: 'held', tool: 'echo', inputs: {} }] },
        concurrency: { key: 'fit-key', limit: 1 },
      })
    ).id;
    await rt.client.waitForRun(keyedId, { timeoutMs: 30_000 });
  });
  after(async () => {
    await rt.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('every stored and streamed event validates against Event, and every type occurs', async () => {
    const { events } = await rt.client.events(runId, { limit: 1000 });
    const streamed: Event[] = [];
    for await (const e of rt.client.stream(runId)) streamed.push(e);
    assert.deepEqual(streamed, events, 'the stream sends what the JSON route lists');
    // The rerun writes the events only a rerun has (step.reused, run.created with rerunOf).
    const all = [...events, ...(await rt.client.events(rerunId, { limit: 1000 })).events];
    const keyed = (await rt.client.events(keyedId, { limit: 1000 })).events;
    assert.deepEqual(keyed.filter((e) => e.type === 'step.waiting').map((e) => [e.stepName, (e.data as { key?: string }).key]), [['held', 'fit-key']]);
    all.push(...keyed);
    for (const e of all) assert.deepEqual(check('Event', e), [], `${e.type} #${e.seq}: ${JSON.stringify(e).slice(0, 400)}`);
    assert.deepEqual([...new Set(all.map((e) => e.type))].sort(), [...EVENT_TYPES].sort());
  });

  test('a wrong event does not validate (the check can fail)', () => {
    const base = { seq: 1, ts: new Date().toISOString(), runId: 'r' };
    assert.notDeepEqual(check('Event', { ...base, type: 'step.finished', data: { status: 'running', error: null, durationMs: 1, attempts: 1 } }), []);
    assert.notDeepEqual(check('Event', { ...base, type: 'step.teleported', data: {} }), []);
    assert.notDeepEqual(check('Event', { ...base, type: 'run.started', data: { extra: 1 } }), []);
    const keyWait = { key: 'k', limit: 'concurrencyKey', used: 1, cap: 1, slotBy: null, since: base.ts };
    assert.deepEqual(check('Event', { ...base, type: 'step.waiting', stepName: 's', data: keyWait }), []);
    assert.notDeepEqual(check('Event', { ...base, type: 'step.waiting', stepName: 's', data: { ...keyWait, limit: 'requestsPerMinute' } }), []);
    assert.notDeepEqual(check('Event', { ...base, type: 'step.waiting', stepName: 's', data: { key: 'k', limit: 'concurrencyKey', used: 1, cap: 1 } }), []);
  });

  test('the run, a page of runs, the timed-out step with its hang report, and an error body validate', async () => {
    assert.deepEqual(check('Run', await rt.client.runs.get(runId)), []);
    assert.deepEqual(check('Run', await rt.client.runs.get(rerunId)), []);
    assert.deepEqual(check('RunPage', await rt.client.runs.list({ label: 'test:fit' })), []);
    const nap = await rt.client.runs.step(runId, 'nap');
    assert.equal(nap.status, 'timed_out');
    assert.ok(nap.hangReports.length >= 1, 'the timed-out step has a hang report');
    assert.deepEqual(check('StepDetail', nap), []);
    assert.deepEqual(check('HangReport', nap.hangReports[0]), []);
    const res = await fetch(`${rt.url}/runs/nope`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 404);
    assert.deepEqual(check('Error', await res.json()), []);
  });

  test('every event type written anywhere in src/ is listed', () => {
    const written = new Set<string>();
    for (const f of readdirSync(SRC, { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.ts')) continue;
      const text = readFileSync(join(SRC, f), 'utf8');
      for (const m of text.matchAll(/(?:type: |record\(|emit\(|onEvent\?\.\()'([a-z]+\.[a-z_]+)'/g)) written.add(m[1] ?? '');
    }
    assert.ok(written.size >= 10, `found only ${[...written].join(', ')}`);
    const unlisted = [...written].filter((t) => !FRAMES.has(t) && !(EVENT_TYPES as readonly string[]).includes(t));
    assert.deepEqual(unlisted, [], 'event types written in src/ but missing from src/domain/events.ts and the OpenAPI Event union');
  });
});
