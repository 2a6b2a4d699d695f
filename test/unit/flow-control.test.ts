import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import { CLAIM_RANK_SQL, MAX_PRIORITY } from '../../src/domain/flow.ts';
import { flowOf, validateRunRequest } from '../../src/domain/plan.ts';
import { quantize } from '../../src/domain/quota.ts';
import { builtinTools } from '../../src/tools/builtin.ts';
import { ToolRegistry } from '../../src/tools/registry.ts';

const tools = new ToolRegistry();
for (const t of builtinTools) tools.register(t);
const limits = { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 };

async function rejected(body: unknown): Promise<string[]> {
  try {
    await validateRunRequest(body, tools, limits);
  } catch (err) {
    assert.ok(err instanceof RunwardenError);
    assert.equal(err.code, 'PLAN_INVALID');
    return (err.details ?? []).map((d) => d.path ?? '');
  }
  assert.fail('expected a 400');
}

describe('flow control fields', () => {
  test('priority and concurrency on the run and on a step; a step\'s own win', async () => {
    const v = await validateRunRequest(
      {
        plan: { steps: [{ name: 'a', tool: 'echo' }, { name: 'b', tool: 'echo', priority: -3, concurrency: { key: 'solo', limit: 1 } }] },
        priority: 7,
        concurrency: { key: 'tenant-a', limit: 2 },
      },
      tools,
      limits,
    );
    assert.deepEqual(v.flow, { priority: 7, concurrency: { key: 'tenant-a', limit: 2 }, queueTimeoutMs: null });
    const [a, b] = v.steps;
    assert.ok(a && b);
    assert.deepEqual(flowOf(a, v.flow), { priority: 7, concurrency: { key: 'tenant-a', limit: 2 }, queueTimeoutMs: null });
    assert.deepEqual(flowOf(b, v.flow), { priority: -3, concurrency: { key: 'solo', limit: 1 }, queueTimeoutMs: null });
    const plain = await validateRunRequest({ plan: { steps: [{ name: 'a', tool: 'echo' }] } }, tools, limits);
    assert.deepEqual(plain.flow, { priority: 0, concurrency: null, queueTimeoutMs: null });
  });

  test('queueTimeoutMs: the step\'s own, else the run\'s, else the configured default', async () => {
    const steps = [{ name: 'a', tool: 'echo' }, { name: 'b', tool: 'echo', queueTimeoutMs: 500 }];
    const withDefault = { ...limits, defaultQueueTimeoutMs: 60_000 };
    const v = await validateRunRequest({ plan: { steps }, queueTimeoutMs: 9000 }, tools, withDefault);
    const [a, b] = v.steps;
    assert.ok(a && b);
    assert.equal(flowOf(a, v.flow).queueTimeoutMs, 9000);
    assert.equal(flowOf(b, v.flow).queueTimeoutMs, 500);
    const byDefault = await validateRunRequest({ plan: { steps } }, tools, withDefault);
    assert.equal(flowOf(byDefault.steps[0] as typeof a, byDefault.flow).queueTimeoutMs, 60_000);
    assert.deepEqual(await rejected({ plan: { steps }, queueTimeoutMs: 0 }), ['queueTimeoutMs']);
    assert.deepEqual(await rejected({ plan: { steps: [{ name: 'a', tool: 'echo', queueTimeoutMs: 1.5 }] } }), ['plan.steps.0.queueTimeoutMs']);
  });

  test('bad values are a 400 naming the field', async () => {
    const steps = [{ name: 'a', tool: 'echo' }];
    assert.deepEqual(await rejected({ plan: { steps }, priority: 1.5 }), ['priority']);
    assert.deepEqual(await rejected({ plan: { steps }, priority: MAX_PRIORITY + 1 }), ['priority']);
    assert.deepEqual(await rejected({ plan: { steps }, concurrency: { key: 'a b', limit: 1 } }), ['concurrency.key']);
    assert.deepEqual(await rejected({ plan: { steps }, concurrency: { key: 'a', limit: 0 } }), ['concurrency.limit']);
    assert.deepEqual(await rejected({ plan: { steps }, concurrency: { key: 'a' } }), ['concurrency.limit']);
    assert.deepEqual(await rejected({ plan: { steps: [{ name: 'a', tool: 'echo', concurrency: { key: 'a', limit: 1, extra: 1 } }] } }), ['plan.steps.0.concurrency']);
  });

  test('the claim order index in both dialects is the expression the claim sorts by', () => {
    for (const dialect of ['sqlite', 'postgres']) {
      const sql = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'store', dialect, 'migrations', '000004_flow_control.sql'), 'utf8');
      assert.ok(sql.includes(`ON steps (${CLAIM_RANK_SQL}`), `${dialect}: the index is on ${CLAIM_RANK_SQL}`);
    }
  });

  test('per-minute limits become per-second ones', () => {
    assert.deepEqual(quantize(1200), { windowMs: 1000, cap: 20 });
    assert.deepEqual(quantize(90), { windowMs: 1000, cap: 1 });
    assert.deepEqual(quantize(60), { windowMs: 1000, cap: 1 });
    assert.deepEqual(quantize(20), { windowMs: 3000, cap: 1 });
    assert.deepEqual(quantize(7), { windowMs: 8572, cap: 1 });
  });
});
