/**
 * Traces against a real OTLP/HTTP receiver on a socket (a small one written here): one run exports
 * one trace of run → step → attempt → LLM call spans (GenAI attributes on the call), a hang report
 * as a span event, and the `http` tool sends the attempt's `traceparent`.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { waitFor } from '../helpers/engine.ts';
import { flushTracing } from '../../src/telemetry/tracing.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
  events?: Array<{ name: string; attributes?: Array<{ key: string; value: Record<string, unknown> }> }>;
}

function attr(s: { attributes?: OtlpSpan["attributes"] } | undefined, key: string): unknown {
  const v = s?.attributes?.find((a) => a.key === key)?.value;
  return v ? (v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? v.arrayValue) : undefined;
}

describe('OpenTelemetry export', () => {
  let receiver: Server;
  let url = '';
  const spans: OtlpSpan[] = [];
  const posts: string[] = [];
  const seenHeaders: IncomingHttpHeaders[] = [];
  let lab: Lab;
  let rt: TestRuntime;

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          posts.push(String(req.headers['content-type']));
          const doc = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
          for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else {
          seenHeaders.push(req.headers);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        }
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const addr = receiver.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    lab = await startLab({ host: '127.0.0.1', port: 0 });
    rt = await startTestRuntime({ otlpEndpoint: url, providers: { lab: { type: 'openai', baseUrl: `${lab.url}/v1` } } });
  });
  after(async () => {
    await rt?.close();
    await lab?.close();
    await new Promise((r) => receiver.close(r));
  });

  test('a run exports one trace: run → step → attempt → LLM call, a hang report event, traceparent on http', async () => {
    const run = await rt.submit({
      plan: {
        steps: [
          { name: 'ask', tool: 'llm', inputs: { prompt: 'hello tracing', provider: 'lab' } },
          { name: 'call', tool: 'http', inputs: { url: `${url}/echo`, method: 'GET' }, dependsOn: ['ask'] },
          { name: 'nap', tool: 'sleep', inputs: { ms: 5000 }, timeoutMs: 200 },
        ],
      },
    });
    const done = await rt.waitRun(run.id);
    assert.equal(done.status, 'failed', 'nap times out');
    await flushTracing();
    const traceId = run.id.replace(/-/g, '');
    const mine = await waitFor(() => {
      const s = spans.filter((x) => x.traceId === traceId);
      return s.some((x) => x.name === 'run') ? s : undefined;
    }, 10_000, 'the run span');
    assert.ok(posts.every((ct) => ct.startsWith('application/json')), 'OTLP/HTTP JSON');
    assert.equal(new Set(mine.map((s) => s.traceId)).size, 1, 'one trace');
    const root = mine.find((s) => s.name === 'run');
    assert.ok(root && !root.parentSpanId, 'the run span is the root');
    const byName = (n: string) => mine.find((s) => s.name === n);
    for (const step of ['ask', 'call', 'nap']) {
      const s = byName(`step ${step}`);
      assert.equal(s?.parentSpanId, root.spanId, `step ${step} under the run`);
      const a = byName(`attempt ${step} #1`);
      assert.equal(a?.parentSpanId, s.spanId, `attempt of ${step} under its step`);
    }
    const chat = mine.find((s) => s.name.startsWith('chat '));
    assert.equal(chat?.parentSpanId, byName('attempt ask #1')?.spanId, 'the LLM call under its attempt');
    assert.equal(attr(chat, 'gen_ai.operation.name'), 'chat');
    assert.equal(attr(chat, 'gen_ai.system'), 'openai');
    assert.ok(typeof attr(chat, 'gen_ai.request.model') === 'string');
    assert.ok(Number(attr(chat, 'gen_ai.usage.input_tokens')) > 0);
    assert.ok(Number(attr(chat, 'gen_ai.usage.output_tokens')) > 0);
    const hang = byName('attempt nap #1')?.events?.find((e) => e.name === 'runwarden.hang_report');
    assert.ok(hang, 'the hang report is an event on the attempt span');
    assert.ok(typeof attr(hang, 'runwarden.hang.classification') === 'string');
    // The http tool carried the attempt's context.
    const tp = String(seenHeaders.at(-1)?.traceparent ?? '');
    assert.equal(tp, `00-${traceId}-${byName('attempt call #1')?.spanId}-01`);
  });
});
