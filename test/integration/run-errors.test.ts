/**
 * What a run says when something goes wrong: the status a step cut by its own deadline ends in,
 * the cause of a failed HTTP request, and the LLM calls a run paid for. Real lab, real sockets.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ProviderConfig } from '../../src/config/types.ts';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';

/** A loopback port nothing listens on: bound, then closed (the kernel refuses connects to it). */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('run errors', () => {
  let lab: Lab;
  let rt: TestRuntime;

  before(async () => {
    lab = await startLab({ port: 0 });
    const providers: Record<string, ProviderConfig> = {
      stall: { type: 'openai', baseUrl: `${lab.url}/headers_no_body/v1` },
      // The first request per key is refused with a 429 and `retry-after-ms`, the retry is answered.
      limited: { type: 'openai', baseUrl: `${lab.url}/rate_limited;retry_after=ms;wait_ms=50;count=1;key=usage-test/v1` },
    };
    rt = await startTestRuntime({ providers, defaultProvider: 'stall' });
  });
  after(async () => {
    await rt?.close();
    await lab?.close();
  });

  test('a non-streamed body cut by the step deadline ends timed_out (llm.body_stall), every time', async () => {
    // Eight steps at once: the provider's step-deadline timer and the worker's deadline timer fire
    // at the same moment, and whichever runs first used to decide the status.
    const steps = Array.from({ length: 8 }, (_, i) => ({
      name: `ask${i}`,
      tool: 'llm',
      inputs: { prompt: `question ${i}`, provider: 'stall', stream: false },
      timeoutMs: 700,
    }));
    const run = await rt.submit({ plan: { steps } });
    const done = await rt.waitRun(run.id, 15_000);
    for (const s of done.steps) {
      assert.equal(s.status, 'timed_out', `${s.name}: ${s.status} ${s.error?.code}: ${s.error?.message}`);
      assert.equal(s.error?.code, 'llm.body_stall', s.name);
    }
    const detail = await rt.engine.getStep(run.id, 'ask0');
    assert.equal(detail.attemptsDetail[0]?.status, 'timed_out');
    assert.equal((detail.hangReports[0] as { classification?: { code?: string } }).classification?.code, 'llm.body_stall');
  });

  test('the http tool names the cause of a refused connection: ECONNREFUSED and the address', async () => {
    const port = await refusedPort();
    const run = await rt.submit({ plan: { steps: [{ name: 'fetch', tool: 'http', inputs: { url: `http://127.0.0.1:${port}/x?key=secret` } }] } });
    const done = await rt.waitRun(run.id);
    const err = done.steps[0]?.error;
    assert.equal(done.steps[0]?.status, 'failed');
    assert.equal(err?.code, 'HTTP_REQUEST_FAILED');
    assert.match(err?.message ?? '', new RegExp(`^GET http://127\\.0\\.0\\.1:${port}/x\\?\\[redacted\\] failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`));
    assert.deepEqual(err?.data?.cause, { code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port });
    // The run says which step failed and why.
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'STEP_FAILED');
    assert.equal(done.error?.message, `step "fetch" failed: HTTP_REQUEST_FAILED: ${err?.message}`);
  });

  test('the http tool explains a port fetch refuses to use (9, the Fetch standard\'s blocked ports)', async () => {
    const run = await rt.submit({ plan: { steps: [{ name: 'fetch', tool: 'http', inputs: { url: 'http://127.0.0.1:9/' } }] } });
    const done = await rt.waitRun(run.id);
    assert.equal(done.steps[0]?.error?.message, 'GET http://127.0.0.1:9/ failed: fetch does not connect to port 9 (a blocked port in the Fetch standard)');
    assert.equal(done.steps[0]?.error?.retryable, false);
  });

  test('a call retried after a 429 counts both requests in llm.usage and the run totals', async () => {
    const run = await rt.submit({ plan: { steps: [{ name: 'ask', tool: 'llm', inputs: { prompt: 'hello', provider: 'limited' }, timeoutMs: 10_000 }] } });
    const done = await rt.waitRun(run.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.steps[0]?.error));
    const events = await rt.events(run.id);
    assert.equal(events.filter((e) => e.type === 'llm.request').length, 2, 'the 429 and its retry');
    const usage = events.filter((e) => e.type === 'llm.usage');
    assert.equal(usage.length, 1);
    assert.equal(usage[0]?.data.calls, 2);
    assert.equal(usage[0]?.data.retries, 1);
    assert.equal(done.usage.calls, 2);
    assert.ok(done.usage.outputTokens > 0);
  });

  test('a failed call that reached the provider is counted: llm.usage with failed: true', async () => {
    const run = await rt.submit({ plan: { steps: [{ name: 'ask', tool: 'llm', inputs: { prompt: 'hello', provider: 'stall', stream: false }, timeoutMs: 500 }] } });
    const done = await rt.waitRun(run.id);
    assert.equal(done.steps[0]?.status, 'timed_out');
    const usage = (await rt.events(run.id)).filter((e) => e.type === 'llm.usage');
    assert.equal(usage.length, 1);
    assert.equal(usage[0]?.data.failed, true);
    assert.equal(usage[0]?.data.code, 'llm.body_stall');
    assert.equal(done.usage.calls, 1);
  });
});
