/**
 * definePlan's compile-time checks, run by `npm run typecheck`: each `@ts-expect-error` line must
 * fail to compile (TypeScript reports an unused one as an error), so each mistake below stays a
 * compile error. test/package/pack.test.ts checks the same against the installed package, with
 * the error codes.
 */
import { builtins, definePlan, defineTool, jsonSchema, toolRef } from '../../src/index.ts';
import { z } from 'zod';

const shout = defineTool({
  name: 'shout',
  input: z.object({ text: z.string() }),
  run: (_ctx, input) => ({ text: input.text.toUpperCase(), length: input.text.length, words: input.text.split(' ').map((w) => ({ w })) }),
});
const double = defineTool({
  name: 'double',
  input: jsonSchema({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }),
  run: (_ctx, input) => ({ n: input.n * 2 }),
});

const first = definePlan({ goal: 'types' }).step('first', shout, { text: 'hello' });

// What is right compiles: references by name and path, interpolation, dependsOn, untyped tools.
export const ok = first
  .step('second', shout, (s) => ({ text: s.first.outputs.text }))
  .step('third', double, (s) => ({ n: s.first.outputs.length }), { dependsOn: ['second'], timeoutMs: 5000 })
  .step('fourth', shout, (s) => ({ text: `${s.second.outputs.text} then ${s.first.outputs.words[0]!.w}` }))
  .step('nap', builtins.sleep, (s) => ({ ms: s.third.outputs.n }))
  .step('any', toolRef('custom'), (s) => ({ x: s.nap.outputs.sleptMs }))
  .step('last', shout, (s) => ({ text: s.any.outputs.whatever.deep }))
  .build();

// @ts-expect-error a step that does not exist
first.step('x', shout, (s) => ({ text: s.frist.outputs.text }));
// @ts-expect-error an output field the tool does not return
first.step('x', shout, (s) => ({ text: s.first.outputs.txt }));
// @ts-expect-error an output of the wrong type (number into a string input)
first.step('x', shout, (s) => ({ text: s.first.outputs.length }));
// @ts-expect-error a literal of the wrong type
first.step('x', double, { n: 'two' });
// @ts-expect-error a missing required input
first.step('x', double, {});
// @ts-expect-error a name used twice
first.step('first', shout, { text: 'again' });
// @ts-expect-error dependsOn naming a step that does not exist
first.step('x', shout, { text: 'y' }, { dependsOn: ['nope'] });
// @ts-expect-error a reference to a later step is not possible either
definePlan().step('a', shout, (s) => ({ text: s.b.outputs.text })).step('b', shout, { text: 'b' });
// @ts-expect-error the tool's run sees its schema's type: n is a number
defineTool({ name: 'bad', input: jsonSchema({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }), run: (_ctx, input) => input.n.toUpperCase() });
// @ts-expect-error the same with zod
defineTool({ name: 'bad', input: z.object({ n: z.number() }), run: (_ctx, input) => input.n.toUpperCase() });
