/**
 * Property: no request, however malformed, gets a 5xx or leaks a stack trace, on either store.
 *
 * Every route comes from /openapi.json. Each generated request picks a route and method (or an odd
 * method), fills its path parameters with real ids or hostile text (NUL, unpaired surrogates,
 * percent garbage, traversal, 600 characters), adds query parameters (documented names with hostile
 * values, unknown and repeated names, forged cursors), odd headers (`Expect`, content types,
 * `Last-Event-ID`, authorization) and a body (random JSON, truncated JSON, nesting up to 3,000
 * deep, raw bytes, plans with hostile strings everywhere a string goes). Requests are written byte
 * for byte on a socket (raw-http.ts). RUNWARDEN_FUZZ_RUNS sets the count per store (default 3,000).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { createTestDatabase, postgresSkip, type TestDatabase } from '../helpers/postgres.ts';
import { createRun, http, plan, startTestRuntime, waitForRun, type TestRuntime } from './helpers.ts';
import { rawHttp, type RawRequest } from './raw-http.ts';

const RUNS = Number(process.env.RUNWARDEN_FUZZ_RUNS ?? 3000);

type OpenApi = { paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>> };

interface Known {
  runId: string;
  stepName: string;
  artifactId: string;
  cursor: string;
  /** Ids of the runs the fuzzer's own requests created. */
  created: string[];
}

const TRICKY_UNITS = ['\0', '\ud800', '\udfff', '\ud83d', '\ude00', '\u{1F600}', '\u202e', '\ufeff', '\r', '\n', '"', '\\', '{{', '}}', ':', '=', '%', '/', '..', '\x7f', 'é'];

/** Any string, weighted towards what breaks storage and parsers. */
const hostileText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.array(fc.constantFrom(...TRICKY_UNITS), { minLength: 1, maxLength: 6 }).map((a) => a.join('')),
  fc.constantFrom('', ' ', '__proto__', 'constructor', 'prototype', 'x'.repeat(600), '{{steps.a.outputs.x}}', '{{steps.zz.outputs}}', 'a\\', 'a\\:c', 'k\ud800'),
);

/** Percent-encodes, tolerating unpaired surrogates (encodeURIComponent throws on those). */
function pct(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

const forgedCursor = fc.oneof(
  fc.tuple(fc.oneof(fc.double(), fc.integer(), fc.string(), fc.constant(1e300), fc.constant(-1), fc.constant(null)), fc.oneof(hostileText, fc.integer())).map((t) => Buffer.from(JSON.stringify(t)).toString('base64url')),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')),
  fc.string({ maxLength: 40 }),
);

function pathValue(known: Known, kind: string): fc.Arbitrary<string> {
  const real = kind === 'name' ? known.stepName : kind === 'artifact' ? known.artifactId : known.runId;
  // Runs the fuzzer itself created (with hostile inputs): reading them back must work too.
  const created = fc.nat().map((i) => (kind === 'id' && known.created.length > 0 ? (known.created[i % known.created.length] as string) : real));
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(real) },
    { weight: 2, arbitrary: created },
    { weight: 4, arbitrary: hostileText.map(pct) },
    { weight: 1, arbitrary: fc.constantFrom('%zz', '%', '%ED%A0%80', '%00', '%2F', '..', '.', '%2e%2e', real + '%00', real.toUpperCase(), '%C0%AF', '%FF') },
    // Unencoded: spaces and raw bytes in the request line are the server's parser's problem, never a 500.
    { weight: 1, arbitrary: hostileText },
  );
}

const queryPart = (names: string[], known: Known): fc.Arbitrary<string> =>
  fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...names, 'status', 'label', 'cursor', 'limit', 'after', 'stauts'), hostileText),
        fc.oneof(hostileText, forgedCursor, fc.constantFrom(known.cursor, 'team:docs', 'a\\:c', '%00:x', '-1', '0', '1e3', '99999999999999999999', 'queued', 'k\ud800:v')),
        fc.boolean(),
      ),
      { maxLength: 4 },
    )
    .chain((pairs) => fc.oneof(fc.constant([] as typeof pairs), fc.constant(pairs)))
    .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v, encode]) => (encode ? `${pct(k)}=${pct(v)}` : `${k}=${v}`)).join('&')}`));

const headerValue = (s: string): string => s.replace(/[\r\n]/g, ' ');

const oddHeaders = fc.array(
  fc.oneof(
    fc.tuple(fc.constant('expect'), fc.oneof(fc.constantFrom('100-continue', '200-ok', 'foo', '', '100-continue, foo'), hostileText.map(headerValue))),
    fc.tuple(fc.constant('content-type'), fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json;;', '', 'application/jsonx')),
    fc.tuple(fc.constant('last-event-id'), hostileText.map(headerValue)),
    fc.tuple(fc.constant('accept'), fc.constantFrom('text/event-stream', '*/*', 'application/xml', '')),
    fc.tuple(fc.constant('authorization'), fc.constantFrom('Bearer x', 'Basic Zm9vOmJhcg==', 'Bearer', '')),
    fc.tuple(fc.constant('accept-encoding'), fc.constantFrom('gzip', 'br', 'identity;q=0', '*')),
    fc.tuple(fc.constantFrom('x-forwarded-for', 'origin', 'x-request-id', 'cookie'), hostileText.map(headerValue)),
  ),
  { maxLength: 4 },
);

function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

const anyJson = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, hostileText, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(hostileText, tie('value'), { maxKeys: 3 })),
})).value;

const hostilePlan = fc.record(
  {
    plan: fc.record(
      {
        goal: fc.oneof(hostileText, anyJson),
        steps: fc.oneof(
          fc.array(
            fc.record(
              {
                name: fc.oneof(fc.constantFrom('a', 'b', 'c'), hostileText),
                tool: fc.oneof(fc.constantFrom('echo', 'echo', 'nope'), hostileText),
                inputs: fc.oneof(fc.dictionary(hostileText, anyJson, { maxKeys: 4 }), anyJson),
                dependsOn: fc.oneof(fc.array(fc.oneof(fc.constantFrom('a', 'b', 'c'), hostileText), { maxLength: 3 }), anyJson),
                timeoutMs: fc.oneof(fc.integer(), fc.double(), hostileText),
                retries: fc.oneof(fc.record({ max: fc.integer({ min: -1, max: 200 }), backoffMs: fc.integer() }, { requiredKeys: [] }), anyJson),
              },
              { requiredKeys: ['name', 'tool'] },
            ),
            { minLength: 0, maxLength: 4 },
          ),
          anyJson,
        ),
      },
      { requiredKeys: ['steps'] },
    ),
    labels: fc.oneof(fc.dictionary(hostileText, hostileText, { maxKeys: 3 }), anyJson),
    idempotencyKey: fc.oneof(hostileText, anyJson),
  },
  { requiredKeys: ['plan'] },
);

/** A plan the server accepts, with hostile text where a client may put any (inputs, label values). */
const acceptablePlan = fc.record({
  plan: fc.record({
    goal: fc.string({ maxLength: 20 }),
    steps: fc.tuple(fc.dictionary(hostileText, anyJson, { maxKeys: 3 }), fc.dictionary(hostileText, anyJson, { maxKeys: 3 })).map(([a, b]) => [
      { name: 'a', tool: 'echo', inputs: a },
      { name: 'b', tool: 'echo', inputs: { ...b, up: '{{steps.a.outputs}}' }, dependsOn: ['a'] },
    ]),
  }),
  labels: fc.dictionary(fc.constantFrom('team', 'env', 'k'), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
});

const body = fc.oneof(
  { weight: 2, arbitrary: acceptablePlan.map((p) => JSON.stringify(p)) },
  { weight: 4, arbitrary: hostilePlan.map((p) => JSON.stringify(p)) },
  { weight: 2, arbitrary: fc.json() },
  { weight: 2, arbitrary: fc.tuple(hostilePlan.map((p) => JSON.stringify(p)), fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1))) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 50, max: 3000 }), fc.constantFrom('array' as const, 'object' as const)).map(([d, k]) => `{"plan":{"steps":[{"name":"a","tool":"echo","inputs":{"x":${nested(d, k)}}}]}}`) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', '[]', '{}', '"x"', '{"__proto__":{}}', '{"constructor":{"prototype":{}}}', '\ufeff{}', Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d])) },
);

function requestArb(doc: OpenApi, known: Known): fc.Arbitrary<RawRequest> {
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name) })),
  );
  assert.ok(ops.length >= 14, `openapi.json lists ${ops.length} operations`);
  // POST /runs takes the most input: a quarter of the requests go there.
  const createRun = ops.find((o) => o.method === 'POST' && o.path === '/runs');
  assert.ok(createRun);
  return fc
    .record({
      op: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...ops) }, { weight: 1, arbitrary: fc.constant(createRun) }),
      method: fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 2, arbitrary: fc.constantFrom('HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'POST', 'GET') }),
      params: fc.record({ id: pathValue(known, 'id'), name: pathValue(known, 'name'), artifact: pathValue(known, 'artifact') }),
      headers: fc.option(oddHeaders, { freq: 2 }).map((h) => h ?? []),
      body: fc.option(body, { freq: 3 }),
      chunked: fc.boolean(),
      jsonType: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    })
    .chain((r) =>
      queryPart(r.op.query, known).map((query): RawRequest => {
        const target = r.op.path.replace('{id}', r.op.path.startsWith('/artifacts') ? r.params.artifact : r.params.id).replace('{name}', r.params.name) + query;
        const method = r.method === '' ? r.op.method : r.method;
        const headers = [...r.headers.map(([k, v]) => [k, v] as [string, string])];
        if (r.body !== null && r.jsonType && !headers.some(([k]) => k === 'content-type')) headers.push(['content-type', 'application/json']);
        return { method, target, headers, ...(r.body === null ? {} : { body: r.body, chunked: r.chunked }) };
      }),
    );
}

/** Lines that only a stack trace, a source location or a server path would put in a response. */
const LEAK = /\n\s+at\s|node:internal|file:\/\/|\.ts:\d+|\/src\/|\/work\/|RangeError|TypeError|SyntaxError: Unexpected end/;

async function fuzzStore(rt: TestRuntime, t: { diagnostic(s: string): void }): Promise<void> {
  const port = Number(new URL(rt.url).port);
  const seeded = await createRun(rt.url, plan([{ name: 'writer', tool: 'write_file', inputs: { name: 'a.txt', content: 'hello' } }, { name: 'b', tool: 'echo', dependsOn: ['writer'] }], { labels: { team: 'docs' } }));
  await createRun(rt.url, plan([{ name: 'a', tool: 'echo' }]));
  await waitForRun(rt.url, seeded.id);
  const artifacts = await http<{ artifacts: Array<{ id: string }> }>(rt.url, `/runs/${seeded.id}/artifacts`);
  const page = await http<{ nextCursor: string }>(rt.url, '/runs?limit=1');
  const known: Known = { runId: seeded.id, stepName: 'writer', artifactId: artifacts.body.artifacts[0]?.id ?? 'none', cursor: page.body.nextCursor, created: [] };
  assert.ok(known.cursor, 'a real cursor to mutate');
  const doc = (await http<OpenApi>(rt.url, '/openapi.json')).body;

  const statuses = new Map<number, number>();
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(requestArb(doc, known), async (req) => {
      const res = await rawHttp(port, req);
      sent++;
      if (res.status === 201) known.created.push((JSON.parse(res.body) as { id: string }).id);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `${res.status} ${res.body.slice(0, 300)}`);
      if (res.status >= 400 && req.method !== 'HEAD') {
        assert.doesNotMatch(res.body, LEAK);
        const parsed = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
        assert.match(String(parsed.error?.code), /^[A-Z][A-Z_]+$/, res.body.slice(0, 300));
        assert.equal(typeof parsed.error?.message, 'string');
        assert.ok(Array.isArray(parsed.error?.details));
      }
    }),
    { numRuns: RUNS, ...(process.env.RUNWARDEN_FUZZ_SEED ? { seed: Number(process.env.RUNWARDEN_FUZZ_SEED) } : {}) },
  );
  t.diagnostic(`${sent} requests; statuses ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ')}`);
  assert.ok(sent >= RUNS);

  // Whatever the fuzzer stored, every query still answers: no row can poison a later request.
  for (const path of ['/runs?label=team:docs', '/runs?label=a%5C:c', '/runs?limit=500', `/runs/${known.runId}`, '/health/detailed', '/steps/stuck', '/metrics']) {
    const res = await http(rt.url, path);
    assert.ok(res.status === 200, `${path} -> ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  }
  const labelled = await http<{ runs: Array<{ id: string }> }>(rt.url, '/runs?label=team:docs&limit=500');
  assert.ok(labelled.body.runs.some((r) => r.id === known.runId), 'the label filter still finds the seeded run');
  assert.equal(rt.logs.filter((l) => / -> 5\d\d/.test(l)).length, 0, rt.logs.join('\n'));
}

describe('fuzz: no input reaches a 5xx (SQLite)', () => {
  let rt: TestRuntime;
  before(async () => {
    rt = await startTestRuntime();
  });
  after(async () => {
    await rt.close();
  });
  test(`${RUNS} generated requests over every route`, async (t) => {
    await fuzzStore(rt, t);
  });
});

describe('fuzz: no input reaches a 5xx (PostgreSQL)', async () => {
  const skip = await postgresSkip();
  let rt: TestRuntime;
  let db: TestDatabase;
  before(async () => {
    if (skip) return;
    db = await createTestDatabase();
    rt = await startTestRuntime({ databaseUrl: db.url });
  });
  after(async () => {
    if (skip) return;
    await rt.close();
    await db.drop();
  });
  test(`${RUNS} generated requests over every route`, { skip }, async (t) => {
    await fuzzStore(rt, t);
  });
});
