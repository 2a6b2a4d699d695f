/**
 * /metrics passes `promtool check metrics` (Debian's prometheus package) after real traffic: a
 * successful LLM step, a timed-out step (a hang report), HTTP requests; and carries real histograms
 * for steps, LLM calls and HTTP requests and counters for tokens and hang classifications. promtool
 * missing: skipped, except with CI=true (fails).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';

const PROMTOOL = process.env.RUNWARDEN_PROMTOOL ?? '/usr/bin/promtool';
function promtoolMissing(): string | undefined {
  if (existsSync(PROMTOOL)) return undefined;
  if (process.env.CI === 'true') throw new Error(`promtool not found at ${PROMTOOL} (apt-get install -y prometheus): required with CI=true`);
  return `promtool not found at ${PROMTOOL}`;
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
    assert.match(text, /^runwarden_llm_call_duration_seconds_count\{provider="lab",model="[^"]+",outcome="ok"\} 1$/m);
    assert.match(text, /^runwarden_llm_tokens_total\{provider="lab",model="[^"]+",direction="output"\} [1-9]\d*$/m);
    assert.match(text, /^runwarden_hang_reports_total\{classification="[a-z_.]+"\} 1$/m);
    assert.match(text, /^runwarden_http_request_duration_seconds_bucket\{method="GET",route="\/runs\/:id",status="2xx",le="0\.005"\} \d+$/m);
    assert.match(text, /^# TYPE runwarden_event_loop_delay_seconds summary$/m);
    assert.match(text, /^runwarden_event_loop_delay_seconds_count \d+$/m);
    assert.doesNotMatch(text, /_sum counter/);
  });

  test('passes promtool check metrics', { skip: promtoolMissing() }, () => {
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `promtool:\n${r.stdout}${r.stderr}`);
  });
});
