/**
 * /metrics passes `promtool check metrics` (Debian's prometheus package) after real traffic: a
 * successful LLM step, a timed-out step (a hang report), a step held queued behind a concurrency
 * key, HTTP requests; and carries real histograms for steps, queue waits, LLM calls and HTTP
 * requests and counters for tokens and hang classifications. Once on SQLite with the worker in the
 * API's process, once on PostgreSQL with the API's supervised worker process (its numbers reach the
 * API's /metrics with its heartbeats). promtool missing: skipped, except with CI=true (fails).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { createTestDatabase, postgresSkip, type TestDatabase } from '../helpers/postgres.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { api, startApi, stopAll, type Proc } from '../postgres/processes.ts';

const PROMTOOL = process.env.RUNWARDEN_PROMTOOL ?? '/usr/bin/promtool';
function promtoolMissing(): string | undefined {
  if (existsSync(PROMTOOL)) return undefined;
  if (process.env.CI === 'true') throw new Error(`promtool not found at ${PROMTOOL} (apt-get install -y prometheus): required with CI=true`);
  return `promtool not found at ${PROMTOOL}`;
}

function promtoolCheck(text: string): void {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `promtool:\n${r.stdout}${r.stderr}`);
}

/**
 * Two steps ready at once on a concurrency key of one: `hold` (a sleep, higher priority) is claimed
 * first, so `held` (an echo) stays queued, ready, for at least as long as `hold` sleeps.
 */
const HOLD_MS = 700;
const heldBehindKey = [
  { name: 'hold', tool: 'sleep', inputs: { ms: HOLD_MS }, priority: 10, concurrency: { key: 'metrics-test', limit: 1 } },
  { name: 'held', tool: 'echo', inputs: { said: 'after hold' }, concurrency: { key: 'metrics-test', limit: 1 } },
];

/** The queue-wait histogram's series for `tool`: bucket counts by `le`, and the count. */
function queueWait(text: string, tool: string): { buckets: Map<string, number>; count: number | undefined } {
  const buckets = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^runwarden_step_queue_wait_seconds_bucket\\{tool="${tool}",le="([^"]+)"\\} (\\d+)$`, 'gm'))) buckets.set(m[1] ?? '', Number(m[2]));
  const count = new RegExp(`^runwarden_step_queue_wait_seconds_count\\{tool="${tool}"\\} (\\d+)$`, 'm').exec(text)?.[1];
  return { buckets, count: count === undefined ? undefined : Number(count) };
}

/** The held step waited at least HOLD_MS: nothing in the buckets up to 0.5 s, its one wait above. */
function assertHeldWait(text: string): void {
  const held = queueWait(text, 'echo');
  assert.equal(held.count, 1, 'one claim of the held step');
  assert.equal(held.buckets.get('0.5'), 0, `the held step waited more than 0.5 s (it was ready ${HOLD_MS} ms behind the key)`);
  assert.equal(held.buckets.get('+Inf'), 1);
  assert.equal(held.buckets.size, 18, 'every bucket is rendered');
}

describe('/metrics', () => {
  let lab: Lab;
  let rt: TestRuntime;
  let text = '';
  before(async () => {
    lab = await startLab({ host: '127.0.0.1', port: 0 });
    rt = await startTestRuntime({ providers: { lab: { type: 'openai', baseUrl: `${lab.url}/v1` } } });
    const run = await rt.submit({
      plan: {
        steps: [
          { name: 'ask', tool: 'llm', inputs: { prompt: 'count my tokens', provider: 'lab' } },
          { name: 'nap', tool: 'sleep', inputs: { ms: 5000 }, timeoutMs: 200 },
          ...heldBehindKey,
        ],
      },
    });
    await rt.waitRun(run.id);
    await (await fetch(`${rt.url}/runs/${run.id}`, { signal: AbortSignal.timeout(5000) })).arrayBuffer();
    text = await (await fetch(`${rt.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  });
  after(async () => {
    await rt?.close();
    await lab?.close();
  });

  test('has real histograms and counters for steps, LLM calls, tokens, hang reports and HTTP', () => {
    assert.match(text, /^# TYPE runwarden_step_duration_seconds histogram$/m);
    assert.match(text, /^runwarden_step_duration_seconds_bucket\{tool="llm",status="succeeded",le="\+Inf"\} 1$/m);
    assert.match(text, /^runwarden_step_duration_seconds_count\{tool="sleep",status="timed_out"\} 1$/m);
    assert.match(text, /^# TYPE runwarden_step_queue_wait_seconds histogram$/m);
    assert.equal(queueWait(text, 'llm').count, 1);
    assert.equal(queueWait(text, 'sleep').count, 2, 'nap and hold');
    assert.match(text, /^runwarden_llm_call_duration_seconds_count\{provider="lab",model="[^"]+",outcome="ok"\} 1$/m);
    assert.match(text, /^runwarden_llm_tokens_total\{provider="lab",model="[^"]+",direction="output"\} [1-9]\d*$/m);
    assert.match(text, /^runwarden_hang_reports_total\{classification="[a-z_.]+"\} 1$/m);
    assert.match(text, /^runwarden_http_request_duration_seconds_bucket\{method="GET",route="\/runs\/:id",status="2xx",le="0\.005"\} \d+$/m);
    assert.match(text, /^# TYPE runwarden_event_loop_delay_seconds summary$/m);
    assert.match(text, /^runwarden_event_loop_delay_seconds_count \d+$/m);
    assert.doesNotMatch(text, /_sum counter/);
  });

  test('a step held ready behind a concurrency key shows its wait in the queue-wait histogram', () => {
    assertHeldWait(text);
  });

  test('passes promtool check metrics', { skip: promtoolMissing() }, () => {
    promtoolCheck(text);
  });
});

const pgSkip = await postgresSkip();

describe('/metrics on PostgreSQL, from a supervised worker process', { skip: pgSkip }, () => {
  let db: TestDatabase;
  let apiProc: Proc;
  let text = '';
  before(async () => {
    db = await createTestDatabase();
    apiProc = await startApi(db.url, ['--workers', '1']);
    const created = await api<{ id: string }>(apiProc.ref, '/runs', { body: { plan: { steps: heldBehindKey } } });
    assert.equal(created.status, 201);
    // The worker process sends its numbers with its heartbeats: wait (bounded) until they show.
    const until = Date.now() + 30_000;
    for (;;) {
      const res = await fetch(`${apiProc.ref}/metrics`, { signal: AbortSignal.timeout(5000) });
      text = await res.text();
      if (queueWait(text, 'echo').count === 1 && queueWait(text, 'sleep').count === 1) break;
      if (Date.now() > until) throw new Error(`the worker process's queue waits did not reach /metrics within 30 s:\n${text}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  after(async () => {
    await stopAll();
    await db?.drop();
  });

  test('the queue wait observed in the worker process reaches the API and shows the held step waited', () => {
    assert.match(text, /^# TYPE runwarden_step_queue_wait_seconds histogram$/m);
    assertHeldWait(text);
  });

  test('passes promtool check metrics', { skip: promtoolMissing() }, () => {
    promtoolCheck(text);
  });
});
