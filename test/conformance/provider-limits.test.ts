/**
 * Provider limits in the store (src/flow/limit-store.ts), shared by claimers on separate
 * connections as separate processes would be: requests per window, calls in flight, tokens
 * charged and corrected, and a pause every store sees.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ProviderGate } from '../../src/flow/gate.ts';
import { MARGIN_MS } from '../../src/flow/slots.ts';
import type { Store } from '../../src/store/store.ts';
import { conformance } from './harness.ts';

async function stores(ctx: { store: Store; another(): Promise<Store> }, n: number): Promise<Store[]> {
  const out = [ctx.store];
  for (let i = 1; i < n; i++) out.push(await ctx.another());
  return out;
}

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The most of `times` within any `windowMs`. */
function busiest(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

conformance('provider limits', (it) => {
  it('requests per minute hold per second across stores: never more than rpm/60 granted in a window', async (ctx) => {
    const all = await stores(ctx, 3);
    const limits = { requestsPerMinute: 600 };
    const granted: number[] = [];
    const until = Date.now() + 2500;
    await Promise.all(
      all.map(async (store) => {
        while (Date.now() < until) {
          const now = Date.now();
          const answer = await store.providerLimits.take({ name: 'p', limits, id: randomUUID(), tokens: 1, now, leaseUntil: now + 60_000 });
          if (answer.granted) granted.push(answer.at ?? now);
          else {
            assert.equal(answer.limit, 'requestsPerMinute');
            assert.equal(answer.cap, 10);
            assert.ok(answer.retryAt > now);
            await new Promise((r) => setTimeout(r, Math.min(50, answer.retryAt - now)));
          }
        }
      }),
    );
    assert.ok(busiest(granted, 1000 + MARGIN_MS) <= 10, `at most 10 in any ${1000 + MARGIN_MS} ms (saw ${busiest(granted, 1000 + MARGIN_MS)})`);
    assert.ok(granted.length >= 10, `the quota was used (${granted.length} granted in 2.5 s)`);
    const state = await ctx.store.providerLimits.state('p', limits, Date.now());
    assert.ok(state.requestsInWindow <= 10);
  });

  it('gates of several stores send per-minute calls on their slots\' times: never over the cap in any second', async (ctx) => {
    const all = await stores(ctx, 3);
    const limits = { requestsPerMinute: 600 }; // 10 in any second, one every 110 ms
    const sent: number[] = [];
    await Promise.all(
      all.map(async (store) => {
        const gate = new ProviderGate({ store: store.providerLimits, provider: 'g', limits });
        // Every call of a process is queued at once, as a worker's steps are.
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            const slot = await gate.acquire({ signal: AbortSignal.timeout(20_000), tokens: 0, leaseUntil: Date.now() + 20_000 });
            sent.push(Date.now());
            slot.sent();
            slot.release();
          }),
        );
      }),
    );
    assert.equal(sent.length, 24);
    assert.ok((await ctx.store.providerLimits.state('g', limits, Date.now())).requestsInWindow <= 10);
    // A slot granted ahead of its time is not sent before it: the sends keep the cap, in the provider's own second too.
    assert.ok(busiest(sent, 1000) <= 10, `at most 10 sends in any second (saw ${busiest(sent, 1000)})`);
  });

  it('a call queued behind another at the gate is told what it waits for, and leaves at once when its signal aborts', async (ctx) => {
    const now = Date.now();
    await ctx.store.providerLimits.pause('w', now + 60_000);
    const gate = new ProviderGate({ store: ctx.store.providerLimits, provider: 'w', limits: { requestsPerMinute: 600 } });
    const first = new AbortController();
    const second = new AbortController();
    const told: string[] = [];
    const head = gate.acquire({ signal: first.signal, tokens: 0, leaseUntil: now + 60_000 });
    const queued = gate.acquire({ signal: second.signal, tokens: 0, leaseUntil: now + 60_000, onWait: (w) => told.push(w ? w.limit : 'go') });
    let headSettled = false;
    head.then(
      () => (headSettled = true),
      () => (headSettled = true),
    );
    await waitUntil(() => told.length > 0);
    assert.equal(told[0], 'paused', 'the queued call says it waits for the pause the first one was refused for');
    second.abort();
    await assert.rejects(queued, { code: 'llm.limit_wait' });
    assert.equal(headSettled, false, 'the queued call left while the first one still waited');
    assert.equal(gate.waiting, 1);
    first.abort();
    await assert.rejects(head, { code: 'llm.limit_wait' });
    assert.equal(gate.waiting, 0);
  });

  it('concurrency: at most `concurrency` calls in flight across stores; a release frees a slot at once', async (ctx) => {
    const all = await stores(ctx, 3);
    const limits = { concurrency: 2 };
    let inFlight = 0;
    let most = 0;
    let done = 0;
    await Promise.all(
      all.map(async (store) => {
        for (let n = 0; n < 8; ) {
          const now = Date.now();
          const id = randomUUID();
          const answer = await store.providerLimits.take({ name: 'c', limits, id, tokens: 0, now, leaseUntil: now + 60_000 });
          if (!answer.granted) {
            assert.equal(answer.limit, 'concurrency');
            await new Promise((r) => setTimeout(r, 3));
            continue;
          }
          inFlight++;
          most = Math.max(most, inFlight);
          await new Promise((r) => setTimeout(r, 10));
          // Counted down before the release commits: the store still counts the call.
          inFlight--;
          await store.providerLimits.release(id, null);
          n++;
          done++;
        }
      }),
    );
    assert.equal(done, 24);
    assert.ok(most <= 2, `at most 2 in flight (saw ${most})`);
    assert.equal(most, 2, 'both slots were used');
    // A call whose worker died holds its slot only until its lease.
    const now = Date.now();
    await ctx.store.providerLimits.take({ name: 'c', limits, id: randomUUID(), tokens: 0, now, leaseUntil: now + 50 });
    await ctx.store.providerLimits.take({ name: 'c', limits, id: randomUUID(), tokens: 0, now, leaseUntil: now + 50 });
    const held = await ctx.store.providerLimits.take({ name: 'c', limits, id: randomUUID(), tokens: 0, now, leaseUntil: now + 50 });
    assert.equal(held.granted, false);
    const later = await ctx.store.providerLimits.take({ name: 'c', limits, id: randomUUID(), tokens: 0, now: now + 60, leaseUntil: now + 1000 });
    assert.equal(later.granted, true, 'lapsed leases free their slots');
  });

  it('tokens are charged on the estimate and corrected by the release', async (ctx) => {
    const limits = { tokensPerMinute: 6000 }; // 100 a second
    const now = Date.now();
    const take = (id: string, tokens: number, at = now) => ctx.store.providerLimits.take({ name: 't', limits, id, tokens, now: at, leaseUntil: at + 60_000 });
    assert.equal((await take('a', 80)).granted, true);
    const full = await take('b', 80);
    assert.equal(full.granted, false);
    assert.ok(!full.granted && full.limit === 'tokensPerMinute' && full.used === 80 && full.cap === 100);
    await ctx.store.providerLimits.release('a', 10);
    assert.equal((await take('b', 80, now + 1)).granted, true, 'the usage replaced the estimate');
  });

  it('a pause recorded by one store holds every store until it ends, limits or not', async (ctx) => {
    const [a, b] = await stores(ctx, 2);
    assert.ok(a && b);
    const now = Date.now();
    await a.providerLimits.pause('q', now + 400);
    await a.providerLimits.pause('q', now + 100); // an earlier end never shortens a pause
    assert.equal(await b.providerLimits.pausedUntil('q'), now + 400);
    const answer = await b.providerLimits.take({ name: 'q', limits: { requestsPerMinute: 6000 }, id: randomUUID(), tokens: 1, now, leaseUntil: now + 1000 });
    assert.deepEqual(answer, { granted: false, limit: 'paused', retryAt: now + 400, used: 0, cap: 0 });
    // The gate of a provider without limits waits the pause out too, and says what it waits for.
    const gate = new ProviderGate({ store: b.providerLimits, provider: 'q' });
    const waits: string[] = [];
    const slot = await gate.acquire({ signal: AbortSignal.timeout(10_000), tokens: 0, leaseUntil: Date.now() + 10_000, onWait: (w) => waits.push(w ? w.limit : 'go') });
    slot.release();
    assert.ok(Date.now() >= now + 400, 'not before the pause ended');
    assert.deepEqual([waits[0], waits.at(-1)], ['paused', 'go']);
    // A wait ends with the call's signal.
    await a.providerLimits.pause('q', Date.now() + 60_000);
    await assert.rejects(gate.acquire({ signal: AbortSignal.timeout(200), tokens: 0, leaseUntil: Date.now() + 1000 }), { code: 'llm.limit_wait' });
  });
});
