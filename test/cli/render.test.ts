/** Pure pieces of the CLI: the SSE parser, event lines, the TTY progress table, hang-report text, API errors. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EventRecord, RunWithSteps, StepRecord } from '../../src/domain/records.ts';
import { apiUrl, networkReason, toCliError } from '../../src/cli/client.ts';
import { CliError } from '../../src/cli/io.ts';
import { errorFromResponse } from '../../src/client/errors.ts';
import { formatReport } from '../../src/forensics/format.ts';
import { duration, eventLine, table, visibleLength } from '../../src/cli/format.ts';
import { EXIT } from '../../src/cli/io.ts';
import { ProgressView, Redrawer } from '../../src/cli/progress.ts';

const ev = (seq: number, type: string, extra: Partial<EventRecord> = {}): EventRecord => ({ seq, ts: '2025-03-04T12:00:01.234Z', type, runId: 'r1', data: {}, ...extra });

describe('format', () => {
  test('eventLine: time, type, step and what happened', () => {
    const local = new Date('2025-03-04T12:00:01.234Z');
    const hh = String(local.getHours()).padStart(2, '0');
    const mm = String(local.getMinutes()).padStart(2, '0');
    assert.equal(eventLine(ev(5, 'step.finished', { stepName: 'build', data: { status: 'succeeded', durationMs: 132 } })), `${hh}:${mm}:01.234 step.finished build succeeded 132ms`);
    assert.match(eventLine(ev(6, 'step.finished', { stepName: 'b', data: { status: 'failed', durationMs: 2500, error: { code: 'TOOL_ERROR', message: 'boom' } } })), /step\.finished b failed 2\.5s TOOL_ERROR: boom$/);
    assert.match(eventLine(ev(7, 'step.started', { stepName: 'b', attempt: 2 })), /step\.started b attempt 2$/);
    assert.match(eventLine(ev(8, 'llm.usage', { stepName: 'g', data: { provider: 'lab', model: 'm', inputTokens: 10, outputTokens: 20, totalMs: 900 } })), /llm\.usage g lab\/m tokens in=10 out=20 total 900ms$/);
    assert.match(eventLine(ev(9, 'step.hang_report', { stepName: 'g', data: { classification: { code: 'llm.body_stall', summary: 'no body' } } })), /step\.hang_report g llm\.body_stall: no body$/);
    assert.match(eventLine(ev(10, 'custom.thing', { data: { k: 'v' } })), /custom\.thing \{"k":"v"\}$/);
    assert.match(eventLine(ev(11, 'step.added', { stepName: 'c1', data: { tool: 'echo', dependsOn: ['split', 'x'], addedBy: 'split', attempt: 1 } })), /step\.added c1 echo added by split after split, x$/);
    assert.match(eventLine(ev(12, 'step.awaiting', { stepName: 'agent', attempt: 1, data: { step: 'agent-turn-1' } })), /step\.awaiting agent waits for agent-turn-1$/);
    assert.match(
      eventLine(ev(13, 'step.waiting', { stepName: 'q', data: { key: 'tenant-a', limit: 'concurrencyKey', used: 2, cap: 2, slotBy: '2025-03-04T12:05:00.000Z', since: '2025-03-04T12:00:00.000Z' } })),
      /step\.waiting q waits for concurrency key tenant-a \(2\/2 running; a slot frees by 2025-03-04T12:05:00\.000Z\)$/,
    );
    assert.match(
      eventLine(ev(14, 'step.waiting', { stepName: 'g', data: { provider: 'quota', limit: 'requestsPerMinute', used: 20, cap: 20, retryAt: '2025-03-04T12:00:02.000Z' } })),
      /step\.waiting g waits for provider quota \(requestsPerMinute 20\/20; next slot 2025-03-04T12:00:02\.000Z\)$/,
    );
  });

  test('duration and table', () => {
    assert.deepEqual([duration(0), duration(999), duration(1500), duration(61_000), duration(3_700_000), duration(null)], ['0ms', '999ms', '1.5s', '1m01s', '1h01m', '-']);
    assert.deepEqual(table(['A', 'BB'], [['xxx', 'y'], ['z', '']]), ['A    BB', 'xxx  y', 'z']);
  });
});

describe('ProgressView (TTY)', () => {
  const step = (name: string, over: Partial<StepRecord> = {}): StepRecord =>
    ({
      runId: 'r1', name, idx: 0, tool: 'echo', status: 'pending', dependsOn: [], inputs: {}, resolvedInputs: null, outputs: null, error: null,
      timeoutMs: 1000, retries: { max: 0, backoffMs: 0, maxBackoffMs: 0 }, attempts: 0, lostAttempts: 0, readyAt: null, startedAt: null,
      finishedAt: null, addedBy: null, outputsFrom: null, priority: 0, concurrency: null, queueTimeoutMs: null, waitingFor: null, awaitingSignal: null, awaitingSince: null, reusedFrom: null, workerId: null, leaseExpiresAt: null, deadlineAt: null, ...over,
    });
  const run = {
    id: 'r1', status: 'queued', goal: null, labels: {}, idempotencyKey: null, createdAt: '2025-03-04T12:00:00.000Z', startedAt: null, finishedAt: null,
    stepsTotal: 2, stepsDone: 0, usage: { inputTokens: 0, outputTokens: 0, calls: 0 }, error: null, steps: [step('fetch'), step('summarize')],
  } as RunWithSteps;

  test('steps added at runtime join the table as their events arrive', () => {
    const v = new ProgressView(run);
    v.apply(ev(1, 'step.added', { stepName: 'extra', data: { tool: 'echo', dependsOn: ['fetch'], addedBy: 'fetch', attempt: 1 } }));
    v.apply(ev(2, 'step.awaiting', { stepName: 'fetch', attempt: 1, data: { step: 'extra' } }));
    const lines = v.render({ now: Date.parse('2025-03-04T12:00:02.000Z'), color: false });
    assert.match(lines[0] ?? '', /0\/3 steps/);
    assert.match(lines[2] ?? '', /^fetch\s+pending\s+-\s+-\s+waits for extra$/);
    assert.match(lines[4] ?? '', /^extra\s+pending\s+-\s+-\s+added by fetch$/);
  });

  test('a queued step behind its full key shows what it waits for until it starts', () => {
    const v = new ProgressView(run);
    v.apply(ev(1, 'step.queued', { stepName: 'fetch' }));
    v.apply(ev(2, 'step.waiting', { stepName: 'fetch', data: { key: 'tenant-a', limit: 'concurrencyKey', used: 2, cap: 2, slotBy: null, since: '2025-03-04T12:00:00.000Z' } }));
    const at = { now: Date.parse('2025-03-04T12:00:02.000Z'), color: false };
    assert.match(v.render(at)[2] ?? '', /^fetch\s+queued\s+.*waits for concurrency key tenant-a \(2\/2 running\)$/);
    v.apply(ev(3, 'step.started', { stepName: 'fetch', attempt: 1 }));
    assert.doesNotMatch(v.render(at)[2] ?? '', /waits for/);
  });

  test('a row per step with status, attempt, elapsed and error; redrawn in place', () => {
    const v = new ProgressView(run);
    v.apply(ev(1, 'run.started', { ts: '2025-03-04T12:00:00.000Z' }));
    v.apply(ev(2, 'step.started', { stepName: 'fetch', attempt: 1, ts: '2025-03-04T12:00:00.000Z' }));
    let lines = v.render({ now: Date.parse('2025-03-04T12:00:02.000Z'), color: false });
    assert.equal(lines[0], 'run r1  running  0/2 steps  2.0s');
    assert.match(lines[1] ?? '', /^STEP\s+STATUS\s+ATTEMPT\s+ELAPSED\s+ERROR$/);
    assert.match(lines[2] ?? '', /^fetch\s+running\s+1\s+2\.0s$/);
    assert.match(lines[3] ?? '', /^summarize\s+pending\s+-\s+-$/);
    v.apply(ev(3, 'step.finished', { stepName: 'fetch', data: { status: 'failed', durationMs: 1200, error: { code: 'HTTP_ERROR', message: '503 from upstream' } } }));
    v.apply(ev(4, 'step.finished', { stepName: 'summarize', data: { status: 'skipped' } }));
    v.apply(ev(5, 'run.finished', { ts: '2025-03-04T12:00:03.000Z', data: { status: 'failed' } }));
    lines = v.render({ now: Date.parse('2025-03-04T12:00:09.000Z'), color: false });
    assert.equal(lines[0], 'run r1  failed  2/2 steps  3.0s');
    assert.match(lines[2] ?? '', /^fetch\s+failed\s+1\s+1\.2s\s+HTTP_ERROR: 503 from upstream$/);
    const colored = v.render({ color: true, columns: 30 });
    assert.ok(colored.every((l) => visibleLength(l) <= 29), 'lines are cut to the terminal width');

    let out = '';
    const r = new Redrawer((s) => (out += s));
    r.draw(['a', 'b']);
    r.draw(['c', 'd', 'e']);
    assert.equal(out, `a\nb\n\x1b[2A\r\x1b[0Jc\nd\ne\n`);
  });
});

describe('report formatting (runwarden report)', () => {
  test('the cause first, then the evidence', () => {
    const lines = formatReport({
      attempt: 2,
      classification: { code: 'llm.body_stall', summary: 'the provider sent headers, then nothing for 30 s' },
      timeoutMs: 30000,
      pending: [{ kind: 'http', what: 'POST https://api.example/v1/chat/completions', phase: 'receiving_body', msInPhase: 30000 }],
      lastLogs: ['12:00:00 info calling the model'],
      eventLoop: { delayP99Ms: 12 },
    }, { step: 'generate' }).split('\n');
    assert.equal(lines[0], 'generate attempt 2: llm.body_stall - the provider sent headers, then nothing for 30 s');
    assert.ok(lines.some((l) => l.includes('12:00:00 info calling the model')));
    assert.ok(lines.some((l) => l.includes('api.example/v1/chat/completions')), lines.join('\n'));
    assert.match(formatReport({}, { step: 's' }).split('\n')[0] ?? '', /^s: unclassified/);
  });

  test('readable after its first line: no repeated words, no summary twice, the config in short lines', () => {
    const summary = 'Response headers arrived, then the body stopped for 1467 ms when the step deadline passed.';
    const providers = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`p${i}`, { type: 'openai', baseUrl: `http://127.0.0.1:${9000 + i}/some/long/path/v1` }]));
    const text = formatReport({
      attempt: 1,
      classification: { code: 'llm.body_stall', summary },
      pending: [{ kind: 'tracked', what: 'tracked "llm.chat stalling"', phase: 'waiting', msInPhase: 1500 }],
      operation: { classification: { code: 'llm.body_stall', summary }, phase: 'body', provider: 'stalling', elapsedMs: 1489, limit: 'step_deadline' },
      config: {
        node: 'v24.21.0',
        platform: 'linux-x64',
        execArgv: [],
        env: { NODE_OPTIONS: '--max-old-space-size=4096' },
        runwarden: { port: 7400, host: '127.0.0.1', dataDir: '/srv/app/.runwarden', workers: 2, concurrency: 256, leaseMs: 3000, heartbeatMs: 1000, drainMs: 5000, loopStallMs: 500, loopKillMs: 1500, killGraceMs: 1000, restartBackoffMs: 100, restartBackoffMaxMs: 10_000, reaperIntervalMs: 500, abortGraceMs: 1000, defaultTimeoutMs: 300_000, maxTimeoutMs: 86_400_000, providers },
      },
    }, { step: 'gen' });
    const lines = text.split('\n');
    assert.ok(!/\btracked tracked\b/.test(text), text);
    assert.ok(lines.some((l) => l.includes('- tracked "llm.chat stalling"')), text);
    assert.equal(text.split(summary).length - 1, 1, 'the summary appears once, on the first line');
    assert.ok(lines.some((l) => /^ {2}operation: phase=body provider=stalling elapsedMs=1489 limit=step_deadline$/.test(l)), text);
    const config = lines.slice(lines.indexOf('  config:'));
    assert.ok(config.length >= 6, text);
    for (const l of lines.slice(1)) assert.ok(l.length <= 100, `line of ${l.length} characters: ${l}`);
    assert.ok(config.some((l) => /^ {4}runwarden: port=7400 /.test(l)));
    assert.ok(config.some((l) => /^ {4}provider p3: type=openai baseUrl=http:\/\/127\.0\.0\.1:9003\//.test(l)));
  });
});

describe('client errors', () => {
  test('4xx: exit 2 with code, message and each detail; 5xx: exit 1; not JSON: the status', () => {
    const apiError = (status: number, text: string, base: string): CliError => toCliError(errorFromResponse(status, text, `the runwarden API at ${base}`)) as CliError;
    const e = apiError(400, JSON.stringify({ error: { code: 'PLAN_INVALID', message: 'bad', details: [{ code: 'UNKNOWN_TOOL', path: 'plan.steps.0.tool', message: 'unknown tool "x"' }] } }), 'http://h:1');
    assert.equal(e.exitCode, EXIT.USAGE);
    assert.equal(e.message, 'PLAN_INVALID: bad');
    assert.deepEqual(e.lines, ['  - plan.steps.0.tool: unknown tool "x" (UNKNOWN_TOOL)']);
    assert.equal(apiError(500, '{"error":{"code":"INTERNAL","message":"x","details":[]}}', 'http://h:1').exitCode, EXIT.FAILED);
    assert.equal(apiError(502, '<html>', 'http://h:1').message, 'the runwarden API at http://h:1 answered HTTP 502 without an error body (is it a runwarden API?)');
    assert.equal(apiError(502, '<html>', 'http://h:1').exitCode, EXIT.FAILED);
  });

  test('apiUrl: flag, then RUNWARDEN_URL, then the default; refuses credentials', () => {
    assert.equal(apiUrl(undefined, {}), 'http://127.0.0.1:7400');
    assert.equal(apiUrl(undefined, { RUNWARDEN_URL: 'http://box:9000/' }), 'http://box:9000');
    assert.equal(apiUrl('https://x.example', { RUNWARDEN_URL: 'http://box:9000' }), 'https://x.example');
    assert.throws(() => apiUrl('http://u:p@x', {}), /credentials/);
    assert.throws(() => apiUrl('not a url', {}), /not a valid API URL/);
  });

  test('networkReason names the failure', () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    assert.equal(networkReason(refused, 15_000), 'connection refused (ECONNREFUSED)');
    assert.equal(networkReason(new DOMException('timeout', 'TimeoutError'), 15_000), 'no answer within 15s');
  });
});
