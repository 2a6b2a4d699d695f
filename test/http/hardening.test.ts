/**
 * One regression test per input that used to reach a 5xx (issue 17), on both stores: label keys
 * that broke SQLite's JSON path, NUL in labels, path parameters, goals and idempotency keys
 * (PostgreSQL `text`), bodies nested past the stack, forged cursors (PostgreSQL's bigint cast), a
 * stored lone-surrogate label that made every later label query fail, and `Expect` answered with an
 * empty 417.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, postgresSkip, type TestDatabase } from '../helpers/postgres.ts';
import { createRun, http, plan, startTestRuntime, waitForRun, type TestRuntime } from './helpers.ts';
import { rawHttp } from './raw-http.ts';

function nestedInputs(depth: number, kind: 'array' | 'object'): string {
  const inner = kind === 'array' ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  return `{"plan":{"steps":[{"name":"a","tool":"echo","inputs":{"x":${inner}}}]}}`;
}

function cursorOf(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function cases(name: string, setup: () => Promise<TestRuntime>, teardown: () => Promise<void>, skip: string | false = false): void {
  describe(`hardening regressions (${name})`, { skip }, () => {
    let rt: TestRuntime;
    let port: number;
    before(async () => {
      rt = await setup();
      port = Number(new URL(rt.url).port);
    });
    after(teardown);

    test('GET /runs?label=a\\:c answers 200 and matches a key that ends in a backslash', async () => {
      const run = await createRun(rt.url, plan([{ name: 'a', tool: 'echo' }], { labels: { 'a\\': 'c' } }));
      const res = await http<{ runs: Array<{ id: string }> }>(rt.url, `/runs?label=${encodeURIComponent('a\\:c')}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.runs.map((r) => r.id), [run.id]);
    });

    test('a NUL in a label query is a 400 INVALID_QUERY', async () => {
      for (const q of ['%00:x', 'k:%00', 'a%00b=c']) {
        const res = await http(rt.url, `/runs?label=${q}`);
        assert.equal(res.status, 400, q);
        assert.equal(res.body.error.code, 'INVALID_QUERY');
        assert.equal(res.body.error.details[0].path, 'label');
      }
    });

    test('inputs nested 2,000 deep (objects or arrays) are a 400 BODY_TOO_DEEP; 90 deep is accepted', async () => {
      for (const kind of ['object', 'array'] as const) {
        const res = await http(rt.url, '/runs', { raw: nestedInputs(2000, kind), headers: { 'content-type': 'application/json' } });
        assert.equal(res.status, 400, kind);
        assert.equal(res.body.error.code, 'BODY_TOO_DEEP');
        const ok = await http(rt.url, '/runs', { raw: nestedInputs(90, kind), headers: { 'content-type': 'application/json' } });
        assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
      }
    });

    test('a NUL in any path parameter is a 400 BAD_URL', async () => {
      const run = await createRun(rt.url, plan([{ name: 'a', tool: 'echo' }]));
      for (const [method, path] of [
        ['GET', '/runs/ab%00c'],
        ['GET', `/runs/${run.id}/steps/a%00`],
        ['GET', '/runs/%00/events'],
        ['GET', '/runs/%00/events/stream'],
        ['GET', '/runs/%00/artifacts'],
        ['GET', '/artifacts/x%00'],
        ['POST', '/runs/%00/cancel'],
      ] as const) {
        const res = await http(rt.url, path, { method });
        assert.equal(res.status, 400, `${method} ${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'BAD_URL');
      }
    });

    test('a NUL or an unpaired surrogate in goal, idempotencyKey or a label is a 400 naming the field', async () => {
      const bodies: Array<[string, string]> = [
        ['plan.goal', '{"plan":{"goal":"a\\u0000b","steps":[{"name":"a","tool":"echo"}]}}'],
        ['idempotencyKey', '{"plan":{"steps":[{"name":"a","tool":"echo"}]},"idempotencyKey":"k\\u0000"}'],
        ['idempotencyKey', '{"plan":{"steps":[{"name":"a","tool":"echo"}]},"idempotencyKey":"k\\udc00"}'],
        ['labels.team', '{"plan":{"steps":[{"name":"a","tool":"echo"}]},"labels":{"team":"\\ud800"}}'],
      ];
      for (const [path, raw] of bodies) {
        const res = await http(rt.url, '/runs', { raw, headers: { 'content-type': 'application/json' } });
        assert.equal(res.status, 400, raw);
        assert.equal(res.body.error.code, 'PLAN_INVALID');
        assert.equal(res.body.error.details[0].path, path, JSON.stringify(res.body));
      }
      // Inputs are stored as JSON, where NUL and lone surrogates are escapes: they are accepted and round-trip.
      const run = await createRun(rt.url, JSON.parse('{"plan":{"steps":[{"name":"a","tool":"echo","inputs":{"m":"x\\u0000y\\ud800"}}]}}'));
      const done = await waitForRun(rt.url, run.id);
      assert.equal(done.status, 'succeeded');
      assert.equal((done.steps[0]?.outputs as { m?: string } | null)?.m, 'x\u0000y\ud800');
    });

    test('forged cursors are a 400 INVALID_CURSOR', async () => {
      for (const c of [cursorOf([1.5, 'x']), cursorOf([1e300, 'x']), cursorOf([-1, 'x']), cursorOf(['1', 'x']), cursorOf([1, 'x\u0000']), cursorOf([1, 'x'.repeat(500)]), cursorOf({}), 'not-base64!']) {
        const res = await http(rt.url, `/runs?cursor=${encodeURIComponent(c)}`);
        assert.equal(res.status, 400, c);
        assert.equal(res.body.error.code, 'INVALID_CURSOR');
      }
    });

    test('a lone surrogate in a label key is refused, and one already stored does not poison label queries', async () => {
      const res = await http(rt.url, '/runs', { raw: '{"plan":{"steps":[{"name":"a","tool":"echo"}]},"labels":{"k\\ud800":"v"}}', headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'PLAN_INVALID');
      // A row written before labels were validated (straight through the store, as an old version did).
      const store = rt.runtime.store;
      await store.transaction(async (tx) => {
        await tx.insertRun({ id: randomUUID(), goal: null, labels: { 'k\ud800': 'v', team: 'old' }, idempotencyKey: null, plan: null, stepsTotal: 0, createdAt: Date.now() });
      });
      const good = await createRun(rt.url, plan([{ name: 'a', tool: 'echo' }], { labels: { team: 'docs' } }));
      for (let i = 0; i < 3; i++) {
        const list = await http<{ runs: Array<{ id: string }> }>(rt.url, '/runs?label=team:docs');
        assert.equal(list.status, 200, JSON.stringify(list.body));
        assert.ok(list.body.runs.some((r) => r.id === good.id));
      }
      const old = await http<{ runs: Array<{ labels: Record<string, string> }> }>(rt.url, '/runs?label=team:old');
      assert.equal(old.status, 200);
      assert.equal(old.body.runs.length, 1);
    });

    test('Expect other than 100-continue is a 417 in the error format; 100-continue works', async () => {
      const res = await rawHttp(port, { method: 'GET', target: '/runs', headers: [['expect', 'foo']] });
      assert.equal(res.status, 417);
      assert.match(res.headers['content-type'] ?? '', /application\/json/);
      assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'EXPECTATION_FAILED');
      const cont = await rawHttp(port, {
        method: 'POST',
        target: '/runs',
        headers: [['expect', '100-continue'], ['content-type', 'application/json']],
        body: JSON.stringify(plan([{ name: 'a', tool: 'echo' }])),
      });
      assert.equal(cont.status, 201, cont.body);
    });

    test('a NUL in a name a tool produced is stored (as U+FFFD where the store cannot hold it)', async () => {
      const run = await createRun(rt.url, plan([{ name: 'w', tool: 'write_file', inputs: { name: 'a\u0000b.txt', content: 'x' } }]));
      const done = await waitForRun(rt.url, run.id);
      assert.equal(done.status, 'succeeded', JSON.stringify(done.steps[0]?.error));
      const list = await http<{ artifacts: Array<{ name: string }> }>(rt.url, `/runs/${run.id}/artifacts`);
      assert.equal(list.status, 200);
      assert.ok(['a\u0000b.txt', 'a\ufffdb.txt'].includes(list.body.artifacts[0]?.name ?? ''), JSON.stringify(list.body));
    });
  });
}

let sqlite: TestRuntime | undefined;
cases(
  'SQLite',
  async () => (sqlite = await startTestRuntime()),
  async () => sqlite?.close(),
);

const pgSkip = await postgresSkip();
let pgDb: TestDatabase | undefined;
let pgRt: TestRuntime | undefined;
cases(
  'PostgreSQL',
  async () => {
    pgDb = await createTestDatabase();
    return (pgRt = await startTestRuntime({ databaseUrl: pgDb.url }));
  },
  async () => {
    await pgRt?.close();
    await pgDb?.drop();
  },
  pgSkip,
);

describe('huge runs: steps inline are capped, the rest paged', () => {
  let rt: TestRuntime;
  before(async () => {
    rt = await startTestRuntime({ workers: 0 });
  });
  after(async () => rt.close());

  test('a 1,200-step run shows its first 500 steps with stepsTruncated, and GET /runs/:id/steps pages through all', async () => {
    const steps = Array.from({ length: 1200 }, (_, i) => ({ name: `s${i}`, tool: 'echo', inputs: { i } }));
    const created = await http(rt.url, '/runs', { body: { plan: { steps } } });
    assert.equal(created.status, 201);
    assert.equal(created.body.steps.length, 500);
    assert.equal(created.body.stepsTruncated, true);
    const run = await http(rt.url, `/runs/${created.body.id}`);
    assert.equal(run.body.steps.length, 500);
    assert.equal(run.body.stepsTotal, 1200);
    const names: string[] = [];
    let after: number | null = null;
    for (let page = 0; page < 10; page++) {
      const res: { status: number; body: { steps: Array<{ name: string }>; nextAfter: number | null } } = await http(rt.url, `/runs/${created.body.id}/steps?limit=500${after === null ? '' : `&after=${after}`}`);
      assert.equal(res.status, 200);
      names.push(...res.body.steps.map((s) => s.name));
      after = res.body.nextAfter;
      if (after === null) break;
    }
    assert.deepEqual(names, steps.map((s) => s.name));
    const small = await createRun(rt.url, plan([{ name: 'a', tool: 'echo' }]));
    assert.equal(small.stepsTruncated, undefined);
    assert.equal((await http(rt.url, '/runs/nope/steps')).status, 404);
    assert.equal((await http(rt.url, `/runs/${small.id}/steps?limit=501`)).status, 400);
  });
});
