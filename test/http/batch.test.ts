/**
 * POST /runs/batch over real HTTP: every item created in one request, idempotent per item, all or
 * nothing when an item is invalid (one detail per problem, its path naming the item), bounds on
 * the item count; and concurrent single POST /runs (written together, see group-commit.ts) each
 * get their own run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_BATCH_RUNS } from '../../src/domain/batch.ts';
import type { RunRecord, RunWithSteps } from '../../src/domain/records.ts';
import { http, plan, startTestRuntime, waitForRun } from './helpers.ts';
import type { TestRuntime } from './helpers.ts';

interface BatchResponse {
  runs: Array<{ id: string; created: boolean }>;
}

describe('POST /runs/batch', () => {
  let rt: TestRuntime;
  let url: string;
  before(async () => {
    rt = await startTestRuntime();
    url = rt.url;
  });
  after(async () => {
    await rt.close();
  });

  test('creates every run in order; a repeated idempotencyKey returns the run it names, in the batch and across requests', async () => {
    const key = `batch-key-${Date.now()}`;
    const body = {
      runs: [
        plan([{ name: 'a', tool: 'echo', inputs: { i: 0 } }]),
        plan([{ name: 'a', tool: 'echo', inputs: { i: 1 } }], { idempotencyKey: key }),
        plan([{ name: 'a', tool: 'echo', inputs: { i: 2 } }, { name: 'b', tool: 'echo', dependsOn: ['a'] }]),
        plan([{ name: 'a', tool: 'echo', inputs: { i: 3 } }], { idempotencyKey: key }),
      ],
    };
    const res = await http<BatchResponse>(url, '/runs/batch', { body });
    assert.equal(res.status, 201);
    assert.equal(res.body.runs.length, 4);
    assert.deepEqual(res.body.runs.map((r) => r.created), [true, true, true, false]);
    assert.equal(res.body.runs[3]?.id, res.body.runs[1]?.id, 'the second use of the key names the first');
    assert.equal(new Set(res.body.runs.map((r) => r.id)).size, 3);
    for (const [i, r] of res.body.runs.entries()) {
      const done = await waitForRun(url, r.id);
      assert.equal(done.status, 'succeeded');
      if (i !== 3) assert.deepEqual(done.steps[0]?.outputs, { i: i === 3 ? 1 : i });
    }
    const three = await http<RunWithSteps>(url, `/runs/${res.body.runs[2]?.id}`);
    assert.deepEqual(three.body.steps.map((s) => [s.name, s.status]), [['a', 'succeeded'], ['b', 'succeeded']]);

    const again = await http<BatchResponse>(url, '/runs/batch', { body: { runs: [plan([{ name: 'a', tool: 'echo' }], { idempotencyKey: key })] } });
    assert.equal(again.status, 200, 'nothing created');
    assert.deepEqual(again.body.runs, [{ id: res.body.runs[1]?.id, created: false }]);
  });

  test('an invalid item creates nothing: PLAN_INVALID with each problem of each bad item, its path naming the item', async () => {
    const tag = `bad-${Date.now()}`;
    const res = await http<{ error: { code: string; message: string; details: Array<{ code: string; path: string }> } }>(url, '/runs/batch', {
      body: {
        runs: [
          plan([{ name: 'a', tool: 'echo' }], { labels: { tag } }),
          plan([{ name: 'a', tool: 'teleport' }], { labels: { tag } }),
          plan([{ name: 'a', tool: 'echo' }, { name: 'a', tool: 'echo' }], { labels: { tag } }),
          { labels: { tag } },
        ],
      },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'PLAN_INVALID');
    const paths = res.body.error.details.map((d) => `${d.code} ${d.path}`);
    assert.ok(paths.includes('UNKNOWN_TOOL runs.1.plan.steps.0.tool'), paths.join('; '));
    assert.ok(paths.some((p) => p.startsWith('DUPLICATE_STEP runs.2.')), paths.join('; '));
    assert.ok(paths.some((p) => p.startsWith('SCHEMA runs.3')), paths.join('; '));
    assert.ok(!paths.some((p) => p.includes('runs.0')), 'the valid item has no problem');
    assert.match(res.body.error.message, /3 of 4 run requests/);
    const listed = await http<{ runs: RunRecord[] }>(url, `/runs?label=${encodeURIComponent(`tag:${tag}`)}`);
    assert.deepEqual(listed.body.runs, [], 'no run of the batch was created');
  });

  test('the body must hold 1 to MAX_BATCH_RUNS items', async () => {
    for (const [body, why] of [
      [{ runs: [] }, 'empty'],
      [{ runs: Array.from({ length: MAX_BATCH_RUNS + 1 }, () => ({})) }, 'too many'],
      [{ runs: 'x' }, 'not an array'],
      [[], 'an array body'],
    ] as const) {
      const res = await http<{ error: { code: string } }>(url, '/runs/batch', { body });
      assert.equal(res.status, 400, why);
      assert.equal(res.body.error.code, 'INVALID_BODY', why);
    }
    const empty = await http<{ error: { code: string } }>(url, '/runs/batch', { raw: '', headers: { 'content-type': 'application/json' } });
    assert.equal(empty.status, 400);
  });

  test('concurrent single POST /runs each get their own run', async () => {
    const n = 40;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => http<RunWithSteps & { created: boolean }>(url, '/runs', { body: plan([{ name: 's', tool: 'echo', inputs: { i } }]) })),
    );
    assert.deepEqual(results.map((r) => r.status), Array.from({ length: n }, () => 201));
    assert.equal(new Set(results.map((r) => r.body.id)).size, n);
    for (const [i, r] of results.entries()) {
      assert.deepEqual(r.body.steps[0]?.inputs, { i }, 'each response is its own run');
      const done = await waitForRun(url, r.body.id);
      assert.deepEqual(done.steps[0]?.outputs, { i });
    }
  });
});
