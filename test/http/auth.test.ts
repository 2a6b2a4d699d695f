/** Bearer-token auth: required on every route but GET /health when the API is not loopback-only. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { resolveConfig } from '../../src/config/resolve.ts';
import { buildApp } from '../../src/http/app.ts';
import { startRuntime } from '../../src/runtime.ts';
import { http, plan, startTestRuntime } from './helpers.ts';
import type { TestRuntime } from './helpers.ts';

const TOKEN = 'tok-3f9a7c1e5b2d4a6f8e0c';

describe('auth', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  const logs: string[] = [];
  before(async () => {
    rt = await startTestRuntime();
    app = buildApp({ engine: rt.runtime.engine, token: TOKEN, requireToken: true, bodyLimitBytes: 1 << 20, version: 'test', log: (l) => logs.push(l) });
  });
  after(async () => {
    await app.close();
    await rt.close();
  });

  test('buildApp refuses requireToken without a token', () => {
    assert.throws(() => buildApp({ engine: rt.runtime.engine, requireToken: true, bodyLimitBytes: 1 << 20, version: 'test' }), /token/);
  });

  test('inject: 401 UNAUTHORIZED without, or with a wrong, token; the token is never echoed', async () => {
    for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, 'Bearer', `bearer  ${TOKEN.slice(0, -1)}`]) {
      const res = await app.inject({ method: 'GET', url: '/runs', headers: authorization === undefined ? {} : { authorization } });
      assert.equal(res.statusCode, 401, String(authorization));
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'UNAUTHORIZED');
      assert.ok(!res.body.includes(TOKEN.slice(4)), 'token not echoed');
      assert.ok(!res.body.includes('wrong'), 'presented credentials not echoed');
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="runwarden"');
    }
  });

  test('inject: the right token opens every route; GET /health needs none', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/runs', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/runs', headers: { authorization: `bearer ${TOKEN}` } })).statusCode, 200);
    for (const url of ['/health/detailed', '/metrics', '/openapi.json', '/steps/stuck', '/runs/x', '/nope']) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 401, url);
    }
    const created = await app.inject({ method: 'POST', url: '/runs', headers: { authorization: `Bearer ${TOKEN}` }, payload: plan([{ name: 'a', tool: 'echo' }]) });
    assert.equal(created.statusCode, 201);
  });

  test('an unauthenticated upload is refused before its body is read', async () => {
    const res = await app.inject({ method: 'POST', url: '/runs', headers: { 'content-type': 'application/json' }, payload: 'x'.repeat(2 << 20) });
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers.connection, 'close');
  });

  test('a real listener on 127.0.0.1 with requireToken enforces the token over the socket', async () => {
    const listening = buildApp({ engine: rt.runtime.engine, token: TOKEN, requireToken: true, bodyLimitBytes: 1 << 20, version: 'test', log: (l) => logs.push(l) });
    await listening.listen({ host: '127.0.0.1', port: 0 });
    try {
      const url = `http://127.0.0.1:${(listening.server.address() as AddressInfo).port}`;
      assert.equal((await http(url, '/health')).status, 200);
      const denied = await http(url, '/runs');
      assert.equal(denied.status, 401);
      assert.equal(denied.body.error.code, 'UNAUTHORIZED');
      const stream = await http(url, '/runs/x/events/stream');
      assert.equal(stream.status, 401);
      const ok = await http(url, '/runs', { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.status, 200);
      assert.ok(Array.isArray(ok.body.runs));
    } finally {
      await listening.close();
    }
    assert.ok(!logs.some((l) => l.includes(TOKEN)), 'the token never reaches a log line');
  });

  test('startRuntime on a non-loopback host without a token refuses to start', async () => {
    const config = await resolveConfig({ flags: { port: 0, host: '0.0.0.0', dataDir: `${rt.dir}/other`, workers: 0, lab: 'off' }, env: {}, cwd: rt.dir });
    await assert.rejects(startRuntime(config, { env: {} }), /token/i);
  });

  test('a runtime with a token on loopback enforces it too', async () => {
    const secured = await startTestRuntime({}, { RUNWARDEN_TOKEN: TOKEN });
    try {
      assert.equal((await http(secured.url, '/runs')).status, 401);
      assert.equal((await http(secured.url, '/runs', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
      assert.equal((await http(secured.url, '/health')).status, 200);
    } finally {
      await secured.close();
    }
  });
});
