/**
 * Every failure mode of the hang lab, through the engine: an `llm` step with a 3 s deadline ends
 * within deadline + 2 s with the code that names what went wrong, and never succeeds on a broken
 * response.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ProviderConfig } from '../../src/config/types.ts';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';

const TIMEOUT = 3000;
const BOUND = TIMEOUT + 2000;

interface Case {
  mode: string;
  /** Extra `;key=value` tunables in the mode segment. */
  tune?: string;
  stream?: boolean;
  codes: string[];
}

const cases: Case[] = [
  { mode: 'no_headers', codes: ['llm.no_headers'] },
  { mode: 'headers_no_body', stream: false, codes: ['llm.body_stall'] },
  { mode: 'headers_no_body', codes: ['llm.body_stall', 'llm.stream_idle'] },
  { mode: 'stream_stall', codes: ['llm.stream_idle'] },
  { mode: 'trickle', tune: 'interval_ms=100', codes: ['llm.trickle'] },
  { mode: 'connect_blackhole', codes: ['net.connect_timeout'] },
  { mode: 'reset_mid_body', codes: ['llm.truncated'] },
  { mode: 'reset_mid_body', tune: 'how=fin', codes: ['llm.truncated'] },
  { mode: 'clean_close_no_done', codes: ['llm.truncated'] },
  { mode: 'malformed_sse', tune: 'kind=bad_json', codes: ['llm.malformed'] },
  { mode: 'malformed_sse', tune: 'kind=error_event', codes: ['llm.malformed', 'llm.provider_error', 'llm.overloaded'] },
  { mode: 'malformed_sse', tune: 'kind=no_final_blank', codes: ['llm.truncated', 'llm.malformed'] },
  { mode: 'rate_limited', tune: 'retry_after=3600', codes: ['llm.rate_limited'] },
  { mode: 'overloaded', codes: ['llm.overloaded'] },
  { mode: 'overloaded', tune: 'status=529;body=html', codes: ['llm.overloaded'] },
];

// Concurrent: most cases wait out the 3 s deadline, and they do not share state.
describe('llm steps against every lab mode', { concurrency: true }, () => {
  let lab: Lab;
  let rt: TestRuntime;
  const providerFor = new Map<string, string>();

  before(async () => {
    lab = await startLab({ port: 0 });
    const providers: Record<string, ProviderConfig> = {};
    const modes = new Map(lab.modes().map((m) => [m.name, m.baseUrl]));
    for (const c of [...cases, { mode: 'healthy' }, { mode: 'malformed_sse', tune: 'kind=split' }]) {
      const key = `${c.mode}${c.tune ? `;${c.tune}` : ''}`;
      if (providerFor.has(key)) continue;
      const base = modes.get(c.mode);
      assert.ok(base, `lab has no mode ${c.mode}`);
      // The mode's base URL ends in /<mode>/v1; tunables go into the mode segment.
      const url = c.tune ? base.replace(`/${c.mode}/v1`, `/${c.mode};${c.tune}/v1`) : base;
      const name = `p${providerFor.size}`;
      providerFor.set(key, name);
      providers[name] = { type: 'openai', baseUrl: url, apiKeyEnv: 'LAB_TEST_KEY' };
    }
    rt = await startTestRuntime({ providers, defaultProvider: 'p0' }, { LAB_TEST_KEY: 'not-a-real-key' });
  });
  after(async () => {
    await rt?.close();
    await lab?.close();
  });

  const llmStep = (provider: string, stream = true) => ({
    plan: { steps: [{ name: 'ask', tool: 'llm', inputs: { prompt: 'Say hello in five words.', provider, stream }, timeoutMs: TIMEOUT }] },
  });

  test('healthy: succeeds with llm.request and llm.usage events and run usage totals', async () => {
    const run = await rt.submit(llmStep(providerFor.get('healthy') as string));
    const done = await rt.waitRun(run.id, BOUND);
    assert.equal(done.status, 'succeeded');
    const out = done.steps[0]?.outputs as { text: string; usage: { outputTokens: number } };
    assert.ok(out.text.length > 0);
    const types = (await rt.events(run.id)).map((e) => e.type);
    assert.ok(types.includes('llm.request'));
    assert.ok(types.includes('llm.usage'));
    assert.ok(done.usage.calls >= 1 && done.usage.outputTokens > 0);
  });

  test('malformed_sse split across awkward chunk boundaries still parses (it is a parser test)', async () => {
    const run = await rt.submit(llmStep(providerFor.get('malformed_sse;kind=split') as string));
    const done = await rt.waitRun(run.id, BOUND);
    assert.equal(done.status, 'succeeded');
  });

  for (const c of cases) {
    const key = `${c.mode}${c.tune ? `;${c.tune}` : ''}`;
    test(`${key}${c.stream === false ? ' (non-streaming)' : ''}: ends within ${BOUND} ms as ${c.codes.join(' or ')}`, async () => {
      const t0 = Date.now();
      const run = await rt.submit(llmStep(providerFor.get(key) as string, c.stream ?? true));
      const done = await rt.waitRun(run.id, BOUND + 3000);
      const elapsed = Date.now() - t0;
      const step = done.steps[0];
      assert.ok(elapsed <= BOUND, `took ${elapsed} ms`);
      assert.notEqual(step?.status, 'succeeded');
      assert.ok(step?.status === 'failed' || step?.status === 'timed_out', `status ${step?.status}`);
      assert.ok(c.codes.includes(step?.error?.code ?? ''), `code ${step?.error?.code}: ${step?.error?.message}`);
      if (step?.status === 'timed_out') {
        const detail = await rt.engine.getStep(run.id, 'ask');
        const report = detail.hangReports[0] as { classification?: { code: string } } | undefined;
        assert.ok(c.codes.includes(report?.classification?.code ?? ''), `hang report ${JSON.stringify(report?.classification)}`);
      }
    });
  }
});

describe('the original failure report\'s plan and the examples, on the lab as default provider', () => {
  let rt: TestRuntime;
  before(async () => {
    rt = await startTestRuntime({ lab: 'on' });
  });
  after(() => rt?.close());

  test('the codegen plan of the failure report, verbatim, succeeds with its artifact and events', async () => {
    // Byte for byte, the plan of the bug report runwarden started from: a codegen step whose LLM
    // answered while the step stayed `running` with no artifact.
    const json = readFileSync(join(import.meta.dirname, '../fixtures/codegen-readme-plan.json'), 'utf8');
    const run = await rt.submit(JSON.parse(json));
    const done = await rt.waitRun(run.id);
    assert.equal(done.status, 'succeeded');
    const types = (await rt.events(run.id)).map((e) => e.type);
    for (const t of ['run.created', 'step.started', 'llm.usage', 'artifact.created', 'step.finished']) assert.ok(types.includes(t), `missing ${t}`);
    const artifacts = await rt.engine.listArtifacts(run.id);
    assert.equal(artifacts[0]?.name, 'README.md');
    const { content } = await rt.engine.getArtifact(artifacts[0]?.id);
    assert.match(content.toString(), /Hello World/i);
  });

  test('examples/rag.json: embed three texts, retrieve k=1 returns the right one', async () => {
    const plan = JSON.parse(readFileSync(join(import.meta.dirname, '../../examples/rag.json'), 'utf8'));
    const run = await rt.submit(plan);
    const done = await rt.waitRun(run.id);
    assert.equal(done.status, 'succeeded');
    const retrieve = done.steps.find((s) => s.tool === 'retrieve');
    const results = (retrieve?.outputs as { results: Array<{ text: string }> }).results;
    assert.equal(results.length, 1);
    assert.match(results[0]?.text ?? '', /cat/i);
  });

  test('examples/parallel-components.json: components generated in parallel, then summarised', async () => {
    const plan = JSON.parse(readFileSync(join(import.meta.dirname, '../../examples/parallel-components.json'), 'utf8'));
    const run = await rt.submit(plan);
    const done = await rt.waitRun(run.id, 30_000);
    assert.equal(done.status, 'succeeded');
    const events = await rt.events(run.id);
    const started = events.filter((e) => e.type === 'step.started').map((e) => e.stepName);
    const firstFinished = events.findIndex((e) => e.type === 'step.finished');
    // At least two codegen steps were running at the same time.
    assert.ok(events.slice(0, firstFinished).filter((e) => e.type === 'step.started').length >= 2, `started: ${started.join(',')}`);
    assert.ok((await rt.engine.listArtifacts(run.id)).length >= 2);
  });
});
