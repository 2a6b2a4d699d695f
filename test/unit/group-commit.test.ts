/** GroupCommit: calls arriving during a write go together in the next one; a failing group is retried item by item. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from '../../src/engine/group-commit.ts';

test('the first call is written alone; the calls that arrive meanwhile share the next write, within the limits', async () => {
  const groups: number[][] = [];
  const g = new GroupCommit<number, string>({
    write: async (items) => {
      groups.push(items);
      await new Promise((r) => setTimeout(r, 5));
      return items.map((i) => `r${i}`);
    },
    maxItems: 4,
    weight: (i) => (i === 9 ? 100 : 1),
    maxWeight: 10,
  });
  const results = await Promise.all([0, 1, 2, 3, 4, 5, 6, 9, 7].map((i) => g.submit(i)));
  assert.deepEqual(results, ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r9', 'r7']);
  // 0 goes at once; 1-4 (maxItems), 5-6 (9 would pass maxWeight), 9 alone, then 7.
  assert.deepEqual(groups, [[0], [1, 2, 3, 4], [5, 6], [9], [7]]);
  assert.deepEqual(g.stats, { groups: 5, items: 9 });
});

test('a group whose write fails is written again one item at a time: only the bad item fails', async () => {
  const g = new GroupCommit<number, number>({
    write: async (items) => {
      await new Promise((r) => setTimeout(r, 1));
      if (items.includes(13)) throw new Error('13 is refused');
      return items.map((i) => i * 2);
    },
  });
  const settled = await Promise.allSettled([1, 2, 13, 4].map((i) => g.submit(i)));
  assert.deepEqual(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    [2, 4, '13 is refused', 8],
  );
});
