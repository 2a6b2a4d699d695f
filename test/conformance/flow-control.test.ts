/**
 * Flow control in the claim (docs/flow-control.md): priority order with aging, FIFO within a
 * priority, and concurrency keys held across claimers on separate connections.
 */
import assert from 'node:assert/strict';
import { Transitions, type ClaimedStep } from '../../src/engine/transitions.ts';
import { PRIORITY_STEP_MS } from '../../src/domain/flow.ts';
import type { Store } from '../../src/store/store.ts';
import { conformance } from './harness.ts';
import { Clock, coreAt, createRun, done, events, failed, type PlanStep } from './fixtures.ts';

const steps = (n: number, prefix = 's', extra: Partial<PlanStep> = {}): PlanStep[] => Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, tool: 'noop', ...extra }));
const names = (claimed: ClaimedStep[]): string[] => claimed.map((c) => c.stepName);
/** Claims one step at a time (a batch comes back in run and plan order, not in claim order). */
async function claimOrder(core: Transitions, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(...names(await core.claim('w', 1, 60_000)));
  return out;
}

conformance('flow control', (it) => {
  it('claims take higher priority first, equal priorities in the order they became ready', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const low = await createRun(core, steps(3, 'low'));
    clock.advance(10);
    const high = await createRun(core, steps(2, 'high'), { priority: 5 });
    clock.advance(10);
    // A step's own priority wins over its run's.
    const mixed = await createRun(core, [{ name: 'urgent', tool: 'noop', priority: 9 }, { name: 'plain', tool: 'noop' }]);
    clock.advance(10);
    const batch = await core.claim('w', 3, 60_000);
    assert.deepEqual(names(batch).sort(), ['high0', 'high1', 'urgent'], 'a batch takes the highest first');
    assert.deepEqual(await claimOrder(core, 5), ['low0', 'low1', 'low2', 'plain'], 'priority 0 in FIFO order');
    assert.equal((await ctx.store.getStep(low, 'low0'))?.status, 'running');
    const run = await ctx.store.getRun(high);
    assert.equal(run?.priority, 5);
    assert.equal((await ctx.store.getStep(mixed, 'urgent'))?.priority, 9);
    assert.equal((await ctx.store.getStep(mixed, 'plain'))?.priority, 0);
  });

  it('a low priority ages: work of higher priority arriving later passes it for `priority` seconds at most', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    await createRun(core, [{ name: 'old', tool: 'noop' }]);
    clock.advance(3 * PRIORITY_STEP_MS);
    // Priority 2 is worth 2 s of waiting; 'old' has waited 3 s.
    await createRun(core, [{ name: 'p2', tool: 'noop', priority: 2 }]);
    // Priority 5 is worth 5 s: it goes ahead of 'old'.
    await createRun(core, [{ name: 'p5', tool: 'noop', priority: 5 }]);
    assert.deepEqual(await claimOrder(core, 3), ['p5', 'old', 'p2']);
  });

  it('a concurrency key holds at most `limit` running steps; other keys and unkeyed steps are not held back', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const tenantA = { key: 'tenant-a', limit: 2 };
    for (let r = 0; r < 3; r++) await createRun(core, steps(20, `a${r}-`), { concurrency: tenantA });
    const b = await createRun(core, steps(5, 'b'), { concurrency: { key: 'tenant-b', limit: 3 } });
    const free = await createRun(core, steps(4, 'free'));
    // A step's own key: 'solo' runs alone on its key whatever its run says.
    const own = await createRun(core, [{ name: 'solo', tool: 'noop', concurrency: { key: 'solo', limit: 1 } }, { name: 'solo2', tool: 'noop', concurrency: { key: 'solo', limit: 1 } }], { concurrency: tenantA });
    clock.advance(1);
    const claimed = await core.claim('w', 200, 60_000);
    const byKey = (prefix: string) => claimed.filter((c) => c.stepName.startsWith(prefix));
    assert.equal(byKey('a').length, 2, 'tenant-a: two of its 60 steps');
    assert.equal(byKey('b').length, 3, 'tenant-b: its own limit');
    assert.equal(byKey('free').length, 4, 'unkeyed steps all run');
    assert.deepEqual(names(byKey('solo')), ['solo']);
    assert.deepEqual((await ctx.store.getStep(own, 'solo'))?.concurrency, { key: 'solo', limit: 1 });
    assert.deepEqual((await ctx.store.getStep(b, 'b0'))?.concurrency, { key: 'tenant-b', limit: 3 });
    assert.equal((await ctx.store.getStep(free, 'free0'))?.concurrency, null);
    assert.deepEqual(await core.claim('w', 200, 60_000), [], 'every key is full');
    // One of tenant-a ends: one more of tenant-a may start, the oldest queued.
    const aDone = byKey('a')[0] as ClaimedStep;
    await core.flush([], [done(aDone)]);
    const next = await core.claim('w', 200, 60_000);
    assert.equal(next.length, 1);
    assert.equal(next[0]?.stepName, 'a0-2');
  });

  it('concurrent claimers on separate connections never run more than a key allows', async (ctx) => {
    const setup = new Transitions(ctx.store);
    const limit = 3;
    const total = 3 * 20;
    for (let r = 0; r < 3; r++) await createRun(setup, steps(20, `t${r}-`), { concurrency: { key: 'tenant-a', limit } });
    await createRun(setup, steps(20, 'other'));
    const stores: Store[] = [ctx.store];
    for (let i = 1; i < 4; i++) stores.push(await ctx.another());
    let running = 0;
    let most = 0;
    let finishedKeyed = 0;
    let finishedAll = 0;
    const claimedKeys: string[] = [];
    await Promise.all(
      stores.map(async (store, i) => {
        const core = new Transitions(store);
        let idle = 0;
        while (finishedAll < total + 20 && idle < 2000) {
          const batch = await core.claim(`w${i}`, 1 + i, 60_000);
          if (batch.length === 0) {
            idle++;
            await new Promise((r) => setTimeout(r, 2));
            continue;
          }
          idle = 0;
          const keyed = batch.filter((c) => c.stepName.startsWith('t'));
          running += keyed.length;
          most = Math.max(most, running);
          claimedKeys.push(...batch.map((c) => `${c.runId}/${c.stepName}`));
          // Hold them a moment so the other claimers try while the key is full.
          await new Promise((r) => setTimeout(r, 5));
          // Counted down before the completion commits: the store still counts them as running.
          running -= keyed.length;
          await core.flush([], batch.map((c) => done(c)));
          finishedKeyed += keyed.length;
          finishedAll += batch.length;
        }
      }),
    );
    assert.equal(finishedKeyed, total, 'every keyed step ran');
    assert.equal(new Set(claimedKeys).size, total + 20, 'each step once');
    assert.ok(most <= limit, `at most ${limit} of the key ran at once (saw ${most})`);
    assert.ok(most >= 2, `the key was used concurrently (saw ${most})`);
  }, { timeout: 120_000 });
  it('a queued step its full key holds back gets one step.waiting per wait; a step queued again after a retry gets another', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const solo = { key: 'solo', limit: 1 };
    const holder = await createRun(core, [{ name: 'h', tool: 'noop', timeoutMs: 5000 }], { concurrency: solo });
    const [h] = await core.claim('w', 10, 60_000);
    assert.equal(h?.runId, holder);
    clock.advance(10);
    const b = await createRun(core, [{ name: 'b', tool: 'noop', retries: { max: 1, backoffMs: 1000 } }], { concurrency: solo });
    const c = await createRun(core, [{ name: 'c', tool: 'noop' }], { concurrency: solo });
    // Not held: a key with room, and no key at all.
    await createRun(core, [{ name: 'roomy', tool: 'noop' }], { concurrency: { key: 'roomy', limit: 5 } });
    await createRun(core, [{ name: 'free', tool: 'noop' }]);
    const waitingOf = async (runId: string) => (await events(ctx.store, runId)).filter((e) => e.type === 'step.waiting');

    assert.equal(await core.announceKeyWaits(), 2, 'b and c wait for solo');
    const [wb] = await waitingOf(b);
    assert.equal(wb?.stepName, 'b');
    assert.deepEqual(wb?.data, {
      key: 'solo',
      limit: 'concurrencyKey',
      used: 1,
      cap: 1,
      slotBy: new Date(clock.t - 10 + 5000).toISOString(),
      since: new Date(clock.t).toISOString(),
    });
    assert.equal((await waitingOf(c)).length, 1);
    assert.equal(await core.announceKeyWaits(), 0, 'once per wait');

    // h ends: b (the older) starts; c is still held, and was told already.
    await core.flush([], [done(h)]);
    const [cb] = (await core.claim('w', 10, 60_000)).filter((x) => x.runId === b);
    assert.equal(cb?.stepName, 'b');
    assert.equal(await core.announceKeyWaits(), 0);
    // b fails and is queued again for a retry in 1 s; c takes the key meanwhile.
    await core.flush([], [failed(cb, { code: 'FLAKY', message: 'try again', retryable: true })]);
    const [cc] = await core.claim('w', 10, 60_000);
    assert.equal(cc?.runId, c);
    assert.equal(await core.announceKeyWaits(), 0, 'b is not ready until its backoff ends');
    clock.advance(1001);
    assert.equal(await core.announceKeyWaits(), 1, 'b waits again, and is told again');
    assert.equal((await waitingOf(b)).length, 2);
    assert.equal((await waitingOf(b)).at(-1)?.attempt, 2);
  });
});
