/**
 * /openapi.json lists every status an operation answers: each documented operation is sent what
 * makes a route answer an error (a bad query parameter, an undecodable or overlong path parameter,
 * an unknown id, no token, an unsupported Expect, oversized headers, an oversized, non-JSON or
 * unreadable body), and whatever status comes back must be documented for that operation. 408 (the
 * 30 s request timeout) and 503 (the closing server's answer, src/http/app.ts) are documented on
 * every operation but not provoked here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rawHttp, type RawRequest } from './raw-http.ts';
import { startTestRuntime } from './helpers.ts';

type Op = { parameters?: Array<{ in: string; name: string }>; responses: Record<string, unknown>; security?: unknown[] };
type Doc = { paths: Record<string, Record<string, Op>> };

const TOKEN = 'statuses-token-0123456789';

function target(path: string, value: string): string {
  return path.replace(/\{[^}]+\}/g, value).replace('/*', '/assets/nope.js');
}

describe('every status an operation answers is documented', () => {
  test('bad requests of every kind, on every operation', async () => {
    const rt = await startTestRuntime({ token: TOKEN, bodyLimitBytes: 4096 });
    const port = Number(new URL(rt.url).port);
    const auth: [string, string] = ['authorization', `Bearer ${TOKEN}`];
    const doc = (await (await fetch(`${rt.url}/openapi.json`, { headers: { authorization: auth[1] }, signal: AbortSignal.timeout(5000) })).json()) as Doc;
    const seen: string[] = [];
    const undocumented: string[] = [];
    const send = async (path: string, method: string, op: Op, what: string, req: RawRequest): Promise<void> => {
      const res = await rawHttp(port, req);
      seen.push(`${res.status}`);
      if (!(String(res.status) in op.responses)) undocumented.push(`${method.toUpperCase()} ${path} (${what}) -> ${res.status} ${res.body.slice(0, 120)}`);
    };
    try {
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          const m = method.toUpperCase();
          const hasParams = path.includes('{');
          const cases: Array<[string, RawRequest]> = [
            ['as documented', { method: m, target: target(path, 'nope'), headers: [auth] }],
            ['an unknown query parameter', { method: m, target: `${target(path, 'nope')}?stauts=1`, headers: [auth] }],
            ['no token', { method: m, target: target(path, 'nope') }],
            ['Expect: teapot', { method: m, target: target(path, 'nope'), headers: [auth, ['expect', 'teapot']] }],
            ['20 KB of headers', { method: m, target: target(path, 'nope'), headers: [auth, ['x-big', 'x'.repeat(20_000)]] }],
          ];
          if (hasParams) {
            cases.push(['an undecodable path parameter', { method: m, target: target(path, '%zz'), headers: [auth] }]);
            cases.push(['a NUL in a path parameter', { method: m, target: target(path, 'a%00b'), headers: [auth] }]);
            cases.push(['a 600-character path parameter', { method: m, target: target(path, 'a'.repeat(600)), headers: [auth] }]);
          }
          if (m === 'POST') {
            cases.push(['a body over the limit', { method: m, target: target(path, 'nope'), headers: [auth, ['content-type', 'application/json']], body: JSON.stringify({ x: 'y'.repeat(8000) }) }]);
            cases.push(['a text/plain body', { method: m, target: target(path, 'nope'), headers: [auth, ['content-type', 'text/plain']], body: 'hello' }]);
            cases.push(['invalid JSON', { method: m, target: target(path, 'nope'), headers: [auth, ['content-type', 'application/json']], body: '{"plan":' }]);
            cases.push(['JSON 200 levels deep', { method: m, target: target(path, 'nope'), headers: [auth, ['content-type', 'application/json']], body: `${'['.repeat(200)}${']'.repeat(200)}` }]);
            cases.push(['an empty object', { method: m, target: target(path, 'nope'), headers: [auth, ['content-type', 'application/json']], body: '{}' }]);
          }
          for (const [what, req] of cases) await send(path, method, op, what, req);
        }
      }
      // The checks above must have produced the error statuses they aim at, or they prove nothing.
      for (const status of ['400', '401', '404', '413', '414', '415', '417', '431']) assert.ok(seen.includes(status), `no request produced ${status}`);
      assert.deepEqual(undocumented, []);
    } finally {
      await rt.close();
    }
  });

  test('503 (shutting down, database unavailable) is documented on every operation', async () => {
    const rt = await startTestRuntime();
    try {
      const doc = (await (await fetch(`${rt.url}/openapi.json`, { signal: AbortSignal.timeout(5000) })).json()) as Doc;
      for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) assert.ok('503' in op.responses, `${method.toUpperCase()} ${path} does not document 503`);
    } finally {
      await rt.close();
    }
  });
});
