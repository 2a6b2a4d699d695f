/**
 * Bad input never produces a 5xx: each malformed request gets a coded 4xx in the one error format,
 * and the API stays healthy afterwards (it must not become unresponsive after a few bad requests).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'node:http';
import { http, plan, startTestRuntime } from './helpers.ts';
import type { TestRuntime } from './helpers.ts';

interface ErrorBody {
  error: { code: string; message: string; details: Array<{ code: string; path?: string; message: string }> };
}

function assertErrorShape(body: unknown, what: string): asserts body is ErrorBody {
  const e = (body as ErrorBody | null)?.error;
  assert.ok(e, `${what}: has an error object`);
  assert.match(e.code, /^[A-Z][A-Z_]+$/, `${what}: stable code`);
  assert.equal(typeof e.message, 'string');
  assert.ok(Array.isArray(e.details), `${what}: details is an array`);
  assert.doesNotMatch(JSON.stringify(body), /\n\s+at |node_modules|\.ts:\d+/, `${what}: no stack trace`);
}

const MB = 1024 * 1024;

describe('malformed requests', () => {
  let rt: TestRuntime;
  let url: string;
  before(async () => {
    rt = await startTestRuntime();
    url = rt.url;
  });
  after(async () => {
    await rt.close();
  });

  const cases: Array<{ name: string; raw?: string; body?: unknown; headers?: Record<string, string>; status: number; code: string; detail?: RegExp }> = [
    { name: 'not JSON', raw: '{"plan": nope', status: 400, code: 'INVALID_JSON' },
    { name: 'empty body', raw: '', status: 400, code: 'EMPTY_BODY' },
    { name: 'whitespace body', raw: '  \n ', status: 400, code: 'EMPTY_BODY' },
    { name: 'JSON null', raw: 'null', status: 400, code: 'INVALID_BODY' },
    { name: 'JSON array', raw: '[1,2]', status: 400, code: 'INVALID_BODY' },
    { name: '{}', body: {}, status: 400, code: 'EMPTY_BODY' },
    { name: '__proto__ key', raw: '{"plan":{"steps":[]},"__proto__":{"polluted":true}}', status: 400, code: 'INVALID_JSON' },
    { name: 'empty steps', body: plan([]), status: 400, code: 'PLAN_INVALID' },
    {
      name: 'duplicate names',
      body: plan([{ name: 'a', tool: 'echo' }, { name: 'a', tool: 'echo' }]),
      status: 400,
      code: 'PLAN_INVALID',
      detail: /duplicate|unique/i,
    },
    { name: 'unknown tool', body: plan([{ name: 'a', tool: 'teleport' }]), status: 400, code: 'PLAN_INVALID', detail: /teleport/ },
    { name: 'unknown dependency', body: plan([{ name: 'a', tool: 'echo', dependsOn: ['ghost'] }]), status: 400, code: 'PLAN_INVALID', detail: /ghost/ },
    {
      name: 'cycle',
      body: plan([
        { name: 'a', tool: 'echo', dependsOn: ['b'] },
        { name: 'b', tool: 'echo', dependsOn: ['a'] },
      ]),
      status: 400,
      code: 'PLAN_INVALID',
    },
    {
      name: 'bad template',
      body: plan([{ name: 'a', tool: 'echo', inputs: { x: '{{steps.nope.outputs.x}}' } }]),
      status: 400,
      code: 'PLAN_INVALID',
      detail: /nope/,
    },
    { name: 'wrong input type for sleep', body: plan([{ name: 'a', tool: 'sleep', inputs: { ms: 'soon' } }]), status: 400, code: 'PLAN_INVALID', detail: /ms/ },
    { name: 'negative timeoutMs', body: plan([{ name: 'a', tool: 'echo', timeoutMs: -5 }]), status: 400, code: 'PLAN_INVALID', detail: /timeoutMs/ },
    { name: 'text/plain', raw: '{"plan":{}}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'form body', raw: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'invalid content-type', raw: '{}', headers: { 'content-type': '////' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  ];

  for (const c of cases) {
    test(`POST /runs with ${c.name} -> ${c.status} ${c.code}`, async () => {
      const headers = { 'content-type': 'application/json', ...c.headers };
      const res = await http(url, '/runs', c.raw !== undefined ? { method: 'POST', raw: c.raw, headers } : { body: c.body, headers });
      assert.equal(res.status, c.status, JSON.stringify(res.body));
      assertErrorShape(res.body, c.name);
      assert.equal(res.body.error.code, c.code);
      if (c.detail) {
        assert.ok(
          res.body.error.details.some((d) => c.detail?.test(`${d.code} ${d.path ?? ''} ${d.message}`)),
          `a detail matching ${String(c.detail)}: ${JSON.stringify(res.body.error.details)}`,
        );
      }
    });
  }

  test('a plan with several problems reports one detail per problem', async () => {
    const res = await http<ErrorBody>(url, '/runs', {
      body: plan([
        { name: 'a', tool: 'teleport' },
        { name: 'b', tool: 'echo', dependsOn: ['ghost'] },
      ]),
    });
    assert.equal(res.status, 400);
    assert.ok(res.body.error.details.length >= 2, JSON.stringify(res.body.error.details));
  });

  test('a 50 MB body with content-length is refused before it is read (413), and the API stays healthy', async () => {
    const big = Buffer.alloc(50 * MB, 0x20);
    const res = await postRaw(url, big, { 'content-length': String(big.length) });
    assert.equal(res.status, 413);
    const body = res.body;
    assertErrorShape(body, '50 MB');
    assert.equal(body.error.code, 'BODY_TOO_LARGE');
    assert.match(body.error.message, /1048576 bytes/);
    assert.equal(res.connection, 'close', 'the connection is closed rather than drained');
    assert.ok(res.sent < 50 * MB, `the server answered before the upload finished (${res.sent} bytes sent)`);
    assert.equal((await http(url, '/health')).status, 200);
  });

  test('a 50 MB chunked body is cut off once it crosses the limit (413), and the API stays healthy', async () => {
    const res = await postRaw(url, Buffer.alloc(50 * MB, 0x20), { 'transfer-encoding': 'chunked' });
    assert.equal(res.status, 413);
    const body = res.body;
    assertErrorShape(body, '50 MB chunked');
    assert.equal(body.error.code, 'BODY_TOO_LARGE');
    assert.ok(res.sent < 50 * MB, `the server stopped reading early (${res.sent} bytes sent)`);
    assert.equal((await http(url, '/health')).status, 200);
  });

  test('unknown routes, bad query parameters and bad URLs are coded 4xx', async () => {
    const checks: Array<[string, string, number, string]> = [
      ['GET', '/nope', 404, 'NOT_FOUND'],
      ['DELETE', '/runs', 404, 'NOT_FOUND'],
      ['GET', '/runs?limit=abc', 400, 'INVALID_QUERY'],
      ['GET', '/runs?limit=0', 400, 'INVALID_QUERY'],
      ['GET', '/runs?limit=100000', 400, 'INVALID_QUERY'],
      ['GET', '/runs?status=sleeping', 400, 'INVALID_QUERY'],
      ['GET', '/runs?label=novalue', 400, 'INVALID_QUERY'],
      ['GET', '/runs?stauts=failed', 400, 'INVALID_QUERY'],
      ['GET', '/runs?status=failed&status=queued', 400, 'INVALID_QUERY'],
      ['GET', '/runs?cursor=not-a-cursor', 400, 'INVALID_CURSOR'],
      ['GET', '/runs/x/events?after=-1', 400, 'INVALID_QUERY'],
      ['GET', '/runs/%zz', 400, 'BAD_URL'],
    ];
    for (const [method, path, status, code] of checks) {
      const res = await http(url, path, { method });
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assertErrorShape(res.body, path);
      assert.equal(res.body.error.code, code, `${method} ${path}`);
    }
  });

  test('a malformed HTTP request line gets a coded 400 and the server keeps serving', async () => {
    const raw = await rawRequest(url, 'GARBAGE\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 400/);
    assert.match(raw, /"code":"BAD_REQUEST"/);
    assert.equal((await http(url, '/health')).status, 200);
  });

  test('forty bad requests in parallel: all 4xx, none 5xx, health still answers', async () => {
    const bodies = ['', 'nope', '{}', '[]', JSON.stringify(plan([{ name: 'a', tool: 'teleport' }]))];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => http(url, '/runs', { method: 'POST', raw: bodies[i % bodies.length] ?? '', headers: { 'content-type': 'application/json' } })),
    );
    for (const r of results) assert.ok(r.status >= 400 && r.status < 500, String(r.status));
    const t0 = Date.now();
    assert.equal((await http(url, '/health')).status, 200);
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(!rt.logs.some((l) => /-> 5\d\d/.test(l)), `no 5xx logged: ${rt.logs.join('\n')}`);
  });
});

/** POST /runs with node:http so the test sees how much of the body went out before the answer. */
async function postRaw(url: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: unknown; connection: string | undefined; sent: number }> {
  const u = new URL(`${url}/runs`);
  return new Promise((resolve, reject) => {
    let sent = 0;
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        req.destroy();
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), connection: res.headers.connection, sent });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', () => undefined); // EPIPE/ECONNRESET once the server closes: expected
    req.setTimeout(20_000, () => req.destroy(new Error('request timed out')));
    const chunk = 64 * 1024;
    const pump = (): void => {
      while (sent < body.length && !req.destroyed) {
        const ok = req.write(body.subarray(sent, sent + chunk));
        sent += chunk;
        if (!ok) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
}

async function rawRequest(url: string, text: string): Promise<string> {
  const { connect } = await import('node:net');
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => socket.write(text));
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (out += d));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('raw request timed out')));
  });
}
