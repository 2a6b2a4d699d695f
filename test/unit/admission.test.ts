/** Bounded admission of run submissions: at most maxActive at once, the rest in arrival order, a full queue refused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import { Admission } from '../../src/http/admission.ts';

test('runs at most maxActive at once, the waiting ones in arrival order, and refuses past maxQueued with OVERLOADED', async () => {
  const a = new Admission(2, 3);
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  const gates: Array<() => void> = [];
  const job = (i: number) =>
    a.run(async () => {
      active++;
      peak = Math.max(peak, active);
      order.push(i);
      await new Promise<void>((r) => gates.push(r));
      active--;
      return i;
    });
  const running = [0, 1, 2, 3, 4].map(job);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1]);
  assert.equal(a.queued, 3);
  await assert.rejects(job(5), (err: unknown) => err instanceof RunwardenError && err.code === 'OVERLOADED' && err.status === 503);
  while (gates.length > 0 || order.length < 5) {
    gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await Promise.all(running), [0, 1, 2, 3, 4]);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(peak, 2);
  // A failing job frees its slot too.
  await assert.rejects(a.run(() => Promise.reject(new Error('x'))));
  assert.equal(await a.run(async () => 'after'), 'after');
});
