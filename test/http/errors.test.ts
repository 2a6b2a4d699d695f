/**
 * The error format, unit-tested. The one place a stand-in engine is used: to make a route throw an
 * unexpected error on purpose (the real engine does not fail on demand) and check that the client
 * gets a generic 500 while the log gets the cause, and neither gets the token or a header.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import type { EngineFacade } from '../../src/engine/facade.ts';
import { buildApp } from '../../src/http/app.ts';
import { mapError } from '../../src/http/errors.ts';
import { contentDisposition } from '../../src/http/routes/artifacts.ts';
import { sseFrame } from '../../src/http/sse.ts';

describe('mapError', () => {
  test('RunwardenError keeps its status, code, message and details', () => {
    const m = mapError(new RunwardenError('PLAN_INVALID', 'bad plan', { status: 400, details: [{ code: 'X', path: 'plan', message: 'm' }] }));
    assert.deepEqual(m, { status: 400, internal: false, body: { error: { code: 'PLAN_INVALID', message: 'bad plan', details: [{ code: 'X', path: 'plan', message: 'm' }] } } });
  });

  test('a RunwardenError with status 500 is hidden; a deliberate 503 is not', () => {
    const hidden = mapError(new RunwardenError('STORE_FAILED', 'SQLITE_BUSY at /var/lib/x.db', { status: 500 }));
    assert.equal(hidden.status, 500);
    assert.equal(hidden.body.error.code, 'INTERNAL');
    assert.doesNotMatch(hidden.body.error.message, /SQLITE|\/var/);
    const unavailable = mapError(new RunwardenError('UNAVAILABLE', 'shutting down', { status: 503 }));
    assert.deepEqual([unavailable.status, unavailable.body.error.code, unavailable.body.error.message], [503, 'UNAVAILABLE', 'shutting down']);
  });

  test("Fastify's own codes map to stable codes", () => {
    const cases: Array<[string, number, string]> = [
      ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'BODY_TOO_LARGE'],
      ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'EMPTY_BODY'],
      ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'INVALID_JSON'],
      ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 'INVALID_CONTENT_LENGTH'],
      ['FST_ERR_BAD_URL', 400, 'BAD_URL'],
      ['FST_ERR_MAX_PARAM_LENGTH', 414, 'URI_TOO_LONG'],
      ['FST_ERR_NOT_FOUND', 404, 'NOT_FOUND'],
    ];
    for (const [code, status, ours] of cases) {
      const m = mapError(Object.assign(new Error('framework words'), { code, statusCode: status }));
      assert.equal(m.status, status, code);
      assert.equal(m.body.error.code, ours, code);
      assert.doesNotMatch(JSON.stringify(m.body), /FST_|framework words/, code);
    }
  });

  test("a 4xx from reading the request stream is the client's, anything else a generic 500", () => {
    const aborted = mapError(Object.assign(new Error('aborted'), { statusCode: 400 }));
    assert.deepEqual([aborted.status, aborted.body.error.code, aborted.internal], [400, 'BAD_REQUEST', false]);
    for (const thrown of [new TypeError("Cannot read properties of undefined (reading 'x')"), 'a string', null, { weird: true }]) {
      const m = mapError(thrown);
      assert.deepEqual([m.status, m.body.error.code, m.internal], [500, 'INTERNAL', true]);
      assert.doesNotMatch(m.body.error.message, /undefined|string|weird/);
    }
  });
});

describe('500 through the app', () => {
  const TOKEN = 'tok-unit-8c1d2e3f4a5b';
  const failing = new Proxy({} as EngineFacade, {
    get: (_t, prop) => {
      if (prop === 'onRunEvents') return () => () => undefined;
      return async () => {
        throw new Error(`database exploded while handling ${String(prop)}`);
      };
    },
  });

  test('an unexpected throw: generic 500 to the client, the cause (and no secret) to the log', async () => {
    const logs: string[] = [];
    const app = buildApp({ engine: failing, token: TOKEN, requireToken: true, bodyLimitBytes: 1 << 20, version: 'test', log: (l) => logs.push(l) });
    try {
      const res = await app.inject({ method: 'GET', url: '/runs?limit=5', headers: { authorization: `Bearer ${TOKEN}`, cookie: 'session=abc123' } });
      assert.equal(res.statusCode, 500);
      const body = res.json<{ error: { code: string; message: string; details: unknown[] } }>();
      assert.equal(body.error.code, 'INTERNAL');
      assert.deepEqual(body.error.details, []);
      assert.doesNotMatch(res.body, /exploded|listRuns|at /);
      assert.equal(logs.length, 1);
      assert.match(logs[0] ?? '', /GET \/runs -> 500: Error: database exploded while handling listRuns/);
      for (const l of logs) {
        assert.ok(!l.includes(TOKEN), 'no token in logs');
        assert.ok(!l.includes('abc123'), 'no header values in logs');
      }
      assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });
});

describe('helpers', () => {
  test('contentDisposition: ASCII fallback and exact UTF-8 name, no path, no header injection', () => {
    assert.equal(contentDisposition('report.md'), `attachment; filename="report.md"; filename*=UTF-8''report.md`);
    assert.equal(contentDisposition('docs/a "b".txt'), `attachment; filename="a _b_.txt"; filename*=UTF-8''a%20%22b%22.txt`);
    assert.doesNotMatch(contentDisposition('evil\r\nset-cookie: x=1'), /[\r\n]/);
    assert.match(contentDisposition('résumé.pdf'), /filename="r_sum_\.pdf"; filename\*=UTF-8''r%C3%A9sum%C3%A9\.pdf/);
  });

  test('sseFrame: one id, event and data line per event', () => {
    const frame = sseFrame({ seq: 7, ts: '2025-01-01T00:00:00.000Z', type: 'step.log', runId: 'r', stepName: 's', data: { message: 'two\nlines' } });
    assert.equal(frame.split('\n').length, 5);
    assert.match(frame, /^id: 7\nevent: step\.log\ndata: \{.*\}\n\n$/);
  });
});
