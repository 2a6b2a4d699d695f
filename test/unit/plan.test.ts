import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import { validateRunRequest } from '../../src/domain/plan.ts';
import { findTemplates, literal, resolveTemplates } from '../../src/domain/templates.ts';
import { builtinTools } from '../../src/tools/builtin.ts';
import { ToolRegistry } from '../../src/tools/registry.ts';

const tools = new ToolRegistry();
for (const t of builtinTools) tools.register(t);
tools.register({ name: 'typed', input: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, run: () => null });
const limits = { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 };

async function problems(body: unknown): Promise<Array<{ code: string; path?: string; message: string }>> {
  try {
    await validateRunRequest(body, tools, limits);
  } catch (err) {
    assert.ok(err instanceof RunwardenError);
    assert.equal(err.status, 400);
    return err.details ?? [{ code: err.code, message: err.message }];
  }
  assert.fail('expected the plan to be rejected');
}

const plan = (steps: unknown[]) => ({ plan: { steps } });

describe('plan validation', () => {
  test('accepts a valid plan and fills defaults', async () => {
    const v = await validateRunRequest(
      plan([{ name: 'a', tool: 'echo' }, { name: 'b', tool: 'sleep', inputs: { ms: 1 }, dependsOn: ['a'], timeoutMs: 500 }]),
      tools,
      limits,
    );
    assert.equal(v.steps[0]?.timeoutMs, 60_000);
    assert.deepEqual(v.steps[0]?.dependents, ['b']);
    assert.deepEqual(v.steps[1]?.retries, { max: 0, backoffMs: 1000, maxBackoffMs: 60_000 });
  });

  const cases: Array<[string, unknown, string]> = [
    ['empty body', {}, 'SCHEMA'],
    ['no plan', { labels: {} }, 'SCHEMA'],
    ['empty steps', plan([]), 'SCHEMA'],
    ['unknown top-level key', { plan: { steps: [{ name: 'a', tool: 'echo' }] }, extra: 1 }, 'SCHEMA'],
    ['unknown tool', plan([{ name: 'a', tool: 'nope' }]), 'UNKNOWN_TOOL'],
    ['duplicate names', plan([{ name: 'a', tool: 'echo' }, { name: 'a', tool: 'echo' }]), 'DUPLICATE_STEP'],
    ['unknown dependency', plan([{ name: 'a', tool: 'echo', dependsOn: ['ghost'] }]), 'UNKNOWN_DEPENDENCY'],
    ['self dependency', plan([{ name: 'a', tool: 'echo', dependsOn: ['a'] }]), 'DEPENDENCY_CYCLE'],
    [
      'three-step cycle',
      plan([
        { name: 'a', tool: 'echo', dependsOn: ['c'] },
        { name: 'b', tool: 'echo', dependsOn: ['a'] },
        { name: 'c', tool: 'echo', dependsOn: ['b'] },
      ]),
      'DEPENDENCY_CYCLE',
    ],
    ['template syntax', plan([{ name: 'a', tool: 'echo', inputs: { x: '{{steps.a}}' } }]), 'BAD_TEMPLATE'],
    ['template to unknown step', plan([{ name: 'a', tool: 'echo', inputs: { x: '{{steps.nope.outputs.x}}' } }]), 'BAD_TEMPLATE'],
    [
      'template to a step that is not upstream',
      plan([{ name: 'a', tool: 'echo' }, { name: 'b', tool: 'echo', inputs: { x: '{{steps.a.outputs.v}}' } }]),
      'BAD_TEMPLATE',
    ],
    ['wrong input type', plan([{ name: 'a', tool: 'sleep', inputs: { ms: 'soon' } }]), 'INPUT_INVALID'],
    ['missing required input (JSON Schema tool)', plan([{ name: 'a', tool: 'typed', inputs: {} }]), 'INPUT_INVALID'],
    ['negative timeout', plan([{ name: 'a', tool: 'echo', timeoutMs: -5 }]), 'TIMEOUT_INVALID'],
    ['absurd timeout', plan([{ name: 'a', tool: 'echo', timeoutMs: 10 * 86_400_000 }]), 'TIMEOUT_INVALID'],
    ['bad step name', plan([{ name: 'has space', tool: 'echo' }]), 'SCHEMA'],
    ['retries out of range', plan([{ name: 'a', tool: 'echo', retries: { max: -1 } }]), 'SCHEMA'],
  ];
  for (const [name, body, code] of cases) {
    test(`rejects: ${name} (${code})`, async () => {
      const found = await problems(body);
      assert.ok(
        found.some((p) => p.code === code),
        `expected ${code}, got ${JSON.stringify(found)}`,
      );
      for (const p of found) assert.ok(p.message.length > 0);
    });
  }

  test('reports every problem, not just the first', async () => {
    const found = await problems(
      plan([
        { name: 'a', tool: 'nope' },
        { name: 'b', tool: 'sleep', inputs: { ms: 'x' }, timeoutMs: 0 },
        { name: 'c', tool: 'echo', dependsOn: ['zzz'] },
      ]),
    );
    assert.deepEqual(new Set(found.map((p) => p.code)), new Set(['UNKNOWN_TOOL', 'INPUT_INVALID', 'TIMEOUT_INVALID', 'UNKNOWN_DEPENDENCY']));
  });

  test('a templated input is not type-checked before it is known', async () => {
    const v = await validateRunRequest(
      plan([{ name: 'a', tool: 'echo', inputs: { ms: 5 } }, { name: 'b', tool: 'sleep', inputs: { ms: '{{steps.a.outputs.ms}}' }, dependsOn: ['a'] }]),
      tools,
      limits,
    );
    assert.equal(v.steps.length, 2);
  });

  test('a 10,000-step chain validates without recursion limits', async () => {
    const steps = Array.from({ length: 10_000 }, (_, i) => ({ name: `s${i}`, tool: 'echo', dependsOn: i ? [`s${i - 1}`] : [] }));
    const v = await validateRunRequest(plan(steps), tools, limits);
    assert.equal(v.steps.length, 10_000);
  });
});

describe('templates', () => {
  test('whole-string templates keep their JSON type; embedded ones interpolate', () => {
    const out = resolveTemplates({ a: '{{steps.x.outputs.n}}', b: 'n={{ steps.x.outputs.n }}', c: ['{{steps.x.outputs.obj}}'] }, () => ({
      n: 3,
      obj: { k: true },
    }));
    assert.deepEqual(out, { a: 3, b: 'n=3', c: [{ k: true }] });
  });

  test('literal(): text holding {{ resolves to itself, passes plan checks, and names no step', async () => {
    const text = ['{{steps.x.outputs.n}}', 'a {{name}} b {{{x}}} }}{{', '{', '{{lbrace}}', 'plain {single}'];
    const written = literal({ texts: text, nested: { k: '{{bad template}}' } });
    assert.equal(written.texts[4], 'plain {single}', 'a string without {{ is left as it is');
    assert.ok(findTemplates(written).every((t) => t.literal === true && t.step === null));
    assert.deepEqual(resolveTemplates(written, () => assert.fail('no step is read')), { texts: text, nested: { k: '{{bad template}}' } });
    // As inputs of a plan step: no BAD_TEMPLATE, and the echo tool accepts them.
    const v = await validateRunRequest(plan([{ name: 'a', tool: 'echo', inputs: written }]), tools, limits);
    assert.equal(v.steps.length, 1);
    await assert.rejects(validateRunRequest(plan([{ name: 'a', tool: 'echo', inputs: { t: '{{bad template}}' } }]), tools, limits), /BAD_TEMPLATE|not of the form/);
  });

  test('a missing path is a typed, non-retryable error', () => {
    assert.throws(
      () => resolveTemplates({ a: '{{steps.x.outputs.nope}}' }, () => ({})),
      (e: unknown) => e instanceof RunwardenError && e.code === 'TEMPLATE_UNRESOLVED' && !e.retryable,
    );
  });
});
