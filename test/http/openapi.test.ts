/** /openapi.json covers every registered route; /metrics is valid Prometheus text. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildApp, registeredRoutes } from '../../src/http/app.ts';
import { createRun, http, plan, startTestRuntime, waitForRun } from './helpers.ts';
import type { TestRuntime } from './helpers.ts';

type Doc = { openapi: string; paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>; components: { schemas: Record<string, unknown> } };

const toOpenApiPath = (url: string): string => url.replace(/:([A-Za-z_]\w*)/g, '{$1}');

describe('openapi and metrics', () => {
  let rt: TestRuntime;
  before(async () => {
    rt = await startTestRuntime();
  });
  after(async () => {
    await rt.close();
  });

  test('every registered route is in /openapi.json, and every documented operation is a route', async () => {
    const app = buildApp({ engine: rt.runtime.engine, requireToken: false, bodyLimitBytes: 1 << 20, version: 'test' });
    await app.ready();
    const routes = registeredRoutes(app).map((r) => `${r.method} ${toOpenApiPath(r.url)}`);
    await app.close();
    // Every route seen (the two-way check below is what matters; this only proves routes were seen).
    assert.ok(routes.length >= 16, routes.join(', '));

    const { status, body: doc } = await http<Doc>(rt.url, '/openapi.json');
    assert.equal(status, 200);
    assert.equal(doc.openapi, '3.1.0');
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    for (const r of routes) assert.ok(documented.includes(r), `route ${r} is missing from openapi.json`);
    for (const d of documented) assert.ok(routes.includes(d), `openapi.json documents ${d}, which is not a route`);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) assert.ok(op.responses && Object.keys(op.responses).length > 0, `${method} ${path} has responses`);
    }
  });

  test('every $ref in the document resolves, and run/step/event/error schemas exist', async () => {
    const { body: doc } = await http<Doc>(rt.url, '/openapi.json');
    for (const name of ['Run', 'Step', 'StepDetail', 'Event', 'Error', 'Artifact', 'HealthDetailed']) assert.ok(doc.components.schemas[name], name);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1] ?? '');
    assert.ok(refs.length > 10);
    for (const r of refs) assert.ok(doc.components.schemas[r], `dangling $ref ${r}`);
  });

  test('/metrics is Prometheus text format 0.0.4', async () => {
    const run = await createRun(rt.url, plan([{ name: 'a', tool: 'echo' }]));
    await waitForRun(rt.url, run.id);
    const res = await fetch(`${rt.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.ok(text.endsWith('\n'), 'ends with a newline');
    const types = new Map<string, string>();
    const sampled = new Set<string>();
    const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
    const labels = `\\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*")*,?)?\\}`;
    const value = '(?:[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|NaN|[-+]?Inf)';
    const sample = new RegExp(`^(${name})(?:${labels})? ${value}(?: -?\\d+)?$`);
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const help = /^# HELP (\S+) .*$/.exec(line);
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (help) continue;
      if (type) {
        assert.ok(!types.has(type[1] ?? ''), `TYPE for ${type[1]} appears once`);
        assert.ok(!sampled.has(type[1] ?? ''), `TYPE for ${type[1]} comes before its samples`);
        types.set(type[1] ?? '', type[2] ?? '');
        continue;
      }
      assert.ok(!line.startsWith('#') || line.startsWith('# '), `comment line: ${line}`);
      if (line.startsWith('#')) continue;
      const m = sample.exec(line);
      assert.ok(m, `not a valid sample line: ${JSON.stringify(line)}`);
      sampled.add((m[1] ?? '').replace(/_(bucket|sum|count|total)$/, ''));
      sampled.add(m[1] ?? '');
    }
    assert.match(text, /^runwarden_http_requests_total\{method="POST",route="\/runs",status="2xx"\} \d+$/m);
    assert.match(text, /^runwarden_http_event_streams \d+$/m);
  });
});
