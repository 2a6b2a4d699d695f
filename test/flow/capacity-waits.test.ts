/**
 * Issue 15, Must show: a step held back by a limit is shown as waiting, with the limit, in the API
 * (`waitingFor`), the CLI (`runwarden runs show`) and `runwarden doctor`; waiting for capacity does
 * not use up a step's `timeoutMs`; `queueTimeoutMs` ends a wait with QUEUE_TIMEOUT and a report of
 * what held it. On deployments (`runwarden start` with supervised worker processes), against the
 * lab over real sockets, SQLite and PostgreSQL.
 *
 * - A provider limited to one call at a time (`limits.concurrency: 1`) and a lab answering after
 *   3 s: four LLM steps of `timeoutMs` 5000 run one after another, the last one's attempt 12 s
 *   long, and all succeed (the waits did not count); while they wait, each shows `waitingFor`.
 * - The same provider busy, a step with `queueTimeoutMs: 500` fails QUEUE_TIMEOUT with a hang report
 *   (trigger `queue_timeout`) naming the provider's concurrency limit.
 * - A concurrency key of limit 1 held by a 10 s step: a queued step of the key shows `waitingFor`
 *   (the key, 1 of 1 running); one with `queueTimeoutMs: 800` fails QUEUE_TIMEOUT, failed by the
 *   reaper with a `step.hang_report` event that names the key.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { EventRecord, RunWithSteps, StepRecord, WaitingFor } from '../../src/domain/records.ts';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { api, runCli, startDeployment, waitFor, type Deployment } from '../supervisor/helpers.ts';

const pgSkip = await postgresSkip();
const DIALECTS = ['sqlite', 'postgres'] as const;

async function deploy(t: TestContext, dialect: (typeof DIALECTS)[number], providers: Record<string, unknown>): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-capacity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'runwarden.config.json');
  writeFileSync(file, JSON.stringify({ providers }));
  const db = dialect === 'postgres' ? await createTestDatabase() : undefined;
  const d = await startDeployment(t, { workers: 1, args: ['--config', file], env: db ? { DATABASE_URL: db.url } : {} });
  // After hooks run in the order they were added: the deployment stops before its database goes.
  if (db) t.after(() => db.drop());
  return d;
}

async function submit(d: Deployment, body: Record<string, unknown>): Promise<string> {
  const r = await api<{ id: string }>(d.url, '/runs', { body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

/** Polls the run until one of its steps shows a `waitingFor` that `match` accepts. */
async function waitingStep(d: Deployment, runId: string, match: (w: WaitingFor, s: StepRecord) => boolean, what: string): Promise<StepRecord> {
  return waitFor(
    async () => (await d.run(runId)).steps.find((s) => s.waitingFor !== null && match(s.waitingFor, s)),
    30_000,
    what,
  );
}

async function events(d: Deployment, runId: string): Promise<EventRecord[]> {
  return (await api<{ events: EventRecord[] }>(d.url, `/runs/${runId}/events`)).body.events;
}

/** The chat requests the lab received, from its request log. */
async function labCalls(lab: Lab): Promise<number> {
  const r = await api<{ requests: Array<{ path: string }> }>(lab.url, '/requests?since=0');
  return r.body.requests.filter((q) => q.path.includes('chat/completions')).length;
}

const llm = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  tool: 'llm',
  inputs: { provider: 'one', prompt: `question ${name}`, stream: false },
  ...extra,
});

function oneAtATime(lab: Lab): Record<string, unknown> {
  return { one: { type: 'openai', baseUrl: `${lab.url}/healthy;latency_ms=3000/v1`, maxRetries: 0, limits: { concurrency: 1 } } };
}

for (const dialect of DIALECTS) {
  test(`[${dialect}] steps waiting at a provider's gate are shown waiting (API, runs show, doctor), and the wait does not use up their timeoutMs`, { skip: dialect === 'postgres' ? pgSkip : false, timeout: 120_000 }, async (t) => {
    const lab = await startLab({ port: 0 });
    t.after(() => lab.close());
    const d = await deploy(t, dialect, oneAtATime(lab));
    const runId = await submit(d, { plan: { steps: ['a', 'b', 'c', 'd'].map((n) => llm(n, { timeoutMs: 5000 })) } });

    const held = await waitingStep(d, runId, (w) => w.kind === 'provider', 'a step shown waiting for provider one');
    assert.equal(held.status, 'running');
    const w = held.waitingFor;
    assert.ok(w?.kind === 'provider');
    assert.equal(w.provider, 'one');
    assert.equal(w.limit, 'concurrency');
    assert.deepEqual([w.used, w.cap], [1, 1]);
    assert.equal(w.attempt, held.attempts);
    assert.ok(Date.parse(w.since) <= Date.now() && Number.isFinite(Date.parse(w.nextSlotAt)));
    // The step's own view says the same.
    const detail = await d.step(runId, held.name);
    assert.equal(detail.waitingFor?.kind, 'provider');

    // Both at once, while the steps wait (a CLI process takes a while to start on a loaded machine).
    const [doctor, shown] = await Promise.all([runCli(['doctor', '--url', d.url]), runCli(['runs', 'show', runId, '--url', d.url])]);
    assert.match(doctor.out, /limits .*provider one: concurrency 1 of 1, [1-3] steps? waiting/);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /running: waits for provider one \(concurrency 1\/1; next slot/);
    const health = await d.health();
    assert.ok(health.limits?.some((l) => l.kind === 'provider' && l.name === 'one' && l.limit === 'concurrency' && l.waiting >= 1), JSON.stringify(health.limits));
    const metrics = await (await fetch(`${d.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    assert.match(metrics, /runwarden_limit_waiting_steps\{kind="provider",name="one",limit="concurrency"\} \d/);

    const run = await d.waitRun(runId, 60_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.steps.map((s) => [s.name, s.status, s.error?.code])));
    // One call at a time, 3 s each: the last step's single attempt lasted about 12 s, longer than its
    // 5 s timeoutMs, and was not timed out: the 9 s it waited at the gate did not count.
    const durations = run.steps.map((s) => Date.parse(s.finishedAt ?? '') - Date.parse(s.startedAt ?? ''));
    assert.ok(run.steps.every((s) => s.attempts === 1));
    assert.ok(Math.max(...durations) > 5000, `an attempt ran past its timeoutMs while waiting: ${durations.join(', ')} ms`);
    assert.ok(run.steps.every((s) => s.waitingFor === null), 'nothing waits once the run is done');
    const waited = (await events(d, runId)).filter((e) => e.type === 'step.waiting');
    assert.ok(waited.length >= 2, `step.waiting for each step that waited: ${waited.length}`);
  });

  test(`[${dialect}] queueTimeoutMs ends a wait at the provider's gate: QUEUE_TIMEOUT with a report naming the limit`, { skip: dialect === 'postgres' ? pgSkip : false, timeout: 120_000 }, async (t) => {
    const lab = await startLab({ port: 0 });
    t.after(() => lab.close());
    const d = await deploy(t, dialect, oneAtATime(lab));
    const busy = await submit(d, { plan: { steps: [llm('busy')] } });
    await waitFor(async () => ((await labCalls(lab)) > 0 ? true : undefined), 20_000, 'the first call at the lab');
    const bounded = await submit(d, { plan: { steps: [llm('bounded', { timeoutMs: 60_000 })] }, queueTimeoutMs: 500 });

    const run = await d.waitRun(bounded, 30_000);
    assert.equal(run.status, 'failed');
    const step = await d.step(bounded, 'bounded');
    assert.equal(step.status, 'failed');
    assert.equal(step.queueTimeoutMs, 500);
    assert.equal(step.error?.code, 'QUEUE_TIMEOUT');
    assert.match(step.error?.message ?? '', /over its queueTimeoutMs of 500 ms: waited \d+ ms at provider one's gate for its concurrency limit \(1 of 1 calls in flight/);
    assert.equal(step.attempts, 1, 'not retried');
    const report = step.hangReports[0];
    assert.equal(report?.trigger, 'queue_timeout');
    assert.equal((report?.classification as { code?: string } | undefined)?.code, 'llm.limit_wait');
    assert.equal((await d.waitRun(busy, 30_000)).status, 'succeeded', 'the call that held the slot was not disturbed');
    assert.equal(await labCalls(lab), 1, 'the bounded step never called the provider');
  });

  test(`[${dialect}] a queued step behind a full concurrency key is shown waiting for the key, and queueTimeoutMs fails it`, { skip: dialect === 'postgres' ? pgSkip : false, timeout: 120_000 }, async (t) => {
    const d = await deploy(t, dialect, {});
    const key = { key: 'tenant-k', limit: 1 };
    const holder = await submit(d, { plan: { steps: [{ name: 'hold', tool: 'sleep', inputs: { ms: 10_000 } }] }, concurrency: key });
    await waitFor(async () => ((await d.run(holder)).steps[0]?.status === 'running' ? true : undefined), 20_000, 'the key held');
    const queued = await submit(d, { plan: { steps: [{ name: 'next', tool: 'echo', inputs: { x: 1 } }] }, concurrency: key });
    const bounded = await submit(d, { plan: { steps: [{ name: 'bounded', tool: 'echo', inputs: { x: 2 } }] }, concurrency: key, queueTimeoutMs: 800 });

    const next = await waitingStep(d, queued, (w) => w.kind === 'concurrency', 'next shown waiting for tenant-k');
    assert.equal(next.status, 'queued');
    assert.deepEqual(next.waitingFor && { ...next.waitingFor, nextSlotBy: typeof (next.waitingFor as { nextSlotBy?: unknown }).nextSlotBy, since: typeof next.waitingFor.since }, {
      kind: 'concurrency',
      key: 'tenant-k',
      used: 1,
      cap: 1,
      nextSlotBy: 'string',
      since: 'string',
    });
    const [shown, doctor] = await Promise.all([runCli(['runs', 'show', queued, '--url', d.url]), runCli(['doctor', '--url', d.url])]);
    assert.match(shown.out, /queued: waits for concurrency key tenant-k \(1\/1 running; a slot frees by/);
    assert.match(doctor.out, /concurrency key tenant-k: 1 of 1 running, [12] steps? waiting/);
    // The wait is announced once in the run's events (the reaper's pass), naming the key.
    const told = await waitFor(async () => (await events(d, queued)).find((e) => e.type === 'step.waiting'), 10_000, 'a step.waiting event for next');
    assert.deepEqual({ ...told.data, slotBy: typeof told.data.slotBy }, { key: 'tenant-k', limit: 'concurrencyKey', used: 1, cap: 1, slotBy: 'string', since: next.waitingFor?.since });

    const failed = await d.waitRun(bounded, 30_000);
    assert.equal(failed.status, 'failed');
    const step = failed.steps[0] as RunWithSteps['steps'][number];
    assert.equal(step.error?.code, 'QUEUE_TIMEOUT');
    assert.match(step.error?.message ?? '', /over its queueTimeoutMs of 800 ms: its concurrency key "tenant-k" had 1 of 1 steps running/);
    assert.equal(step.attempts, 0, 'it never started');
    const report = (await events(d, bounded)).find((e) => e.type === 'step.hang_report');
    assert.ok(report, 'a hang report event');
    const data = (report as unknown as { data: Record<string, unknown> }).data;
    assert.equal(data.trigger, 'queue_timeout');
    assert.equal((data.classification as { code?: string }).code, 'queue.timeout');
    assert.deepEqual((data.waitedFor as { concurrency?: unknown }).concurrency, { key: 'tenant-k', limit: 1, running: 1 });

    assert.equal((await d.waitRun(holder, 30_000)).status, 'succeeded');
    assert.equal((await d.waitRun(queued, 30_000)).status, 'succeeded', 'the unbounded step ran once the key had room');
    assert.equal((await events(d, queued)).filter((e) => e.type === 'step.waiting').length, 1, 'told once');
  });
}
