import assert from 'node:assert/strict';
import { MAX_LOST_RETRIES } from '../../src/engine/backoff.ts';
import type { ClaimedStep } from '../../src/engine/transitions.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, Clock, coreAt, createRun, done, events, failed } from './fixtures.ts';

conformance('claims, leases and completions', (it) => {
  it('a claim leases each ready step once, with a token, a deadline and an attempt', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a', timeoutMs: 5000 }, { name: 'b', timeoutMs: 7000 }, { name: 'c', dependsOn: ['a'] }]);
    clock.advance(10);
    const claims = await core.claim('w1', 10, 1000);
    assert.deepEqual(claims.map((c) => c.stepName).sort(), ['a', 'b']);
    assert.equal(new Set(claims.map((c) => c.token)).size, 2);
    for (const c of claims) {
      assert.ok(c.token.length >= 16, 'a token is long enough not to be guessed');
      assert.equal(c.attempt, 1);
      assert.equal(c.leaseExpiresAt, clock.t + 1000);
      assert.equal(c.deadlineAt, clock.t + (c.stepName === 'a' ? 5000 : 7000));
      assert.equal(c.runId, runId);
    }
    assert.deepEqual(await core.claim('w2', 10, 1000), [], 'nothing is claimed twice');
    const a = await ctx.store.getStep(runId, 'a');
    assert.equal(a?.status, 'running');
    assert.equal(a?.workerId, 'w1');
    assert.equal(a?.attempts, 1);
    assert.equal(a?.leaseToken, claims.find((c) => c.stepName === 'a')?.token);
    assert.equal(a?.leaseExpiresAt, new Date(clock.t + 1000).toISOString());
    assert.equal(a?.deadlineAt, new Date(clock.t + 5000).toISOString());
    assert.equal(a?.startedAt, new Date(clock.t).toISOString());
    assert.equal(a?.readyAt, null);
    const attempts = await ctx.store.listAttempts(runId, 'a');
    assert.deepEqual(
      attempts.map((x) => [x.attempt, x.status, x.workerId, x.deadlineAt]),
      [[1, 'running', 'w1', new Date(clock.t + 5000).toISOString()]],
    );
    const run = await ctx.store.getRun(runId);
    assert.equal(run?.status, 'running');
    assert.equal(run?.startedAt, new Date(clock.t).toISOString());
    const types = (await events(ctx.store, runId)).map((e) => e.type);
    assert.deepEqual(types, ['run.created', 'step.queued', 'step.queued', 'run.started', 'step.started', 'step.started']);
  });

  it('only the holder of the lease token completes a step', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }, { name: 'b', inputs: { got: '{{steps.a.outputs.value}}' }, dependsOn: ['a'] }]);
    const [claim] = await core.claim('w1', 1, 1000);
    assert.ok(claim);
    assert.deepEqual(await core.flush([], [done(claim, { token: 'forged-token', outputs: { value: 'bad' } })]), [{ applied: false, refused: 'lease_lost' }]);
    assert.deepEqual(await core.flush([], [done(claim, { attempt: 2, outputs: { value: 'bad' } })]), [{ applied: false, refused: 'wrong_attempt' }]);
    assert.equal((await ctx.store.getStep(runId, 'a'))?.status, 'running');
    assert.equal((await ctx.store.listAttempts(runId, 'a'))[0]?.status, 'running');

    clock.advance(5);
    assert.deepEqual(await core.flush([], [done(claim, { outputs: { value: 42 } })]), [{ applied: true }]);
    const a = await ctx.store.getStep(runId, 'a');
    assert.equal(a?.status, 'succeeded');
    assert.deepEqual(a?.outputs, { value: 42 });
    assert.equal(a?.leaseToken, null);
    assert.equal(a?.workerId, null);
    assert.equal(a?.finishedAt, new Date(clock.t).toISOString());
    assert.equal((await ctx.store.listAttempts(runId, 'a'))[0]?.status, 'succeeded');
    const b = await ctx.store.getStep(runId, 'b');
    assert.equal(b?.status, 'queued');
    assert.deepEqual(b?.resolvedInputs, { got: 42 });
    // The same completion again changes nothing.
    assert.deepEqual(await core.flush([], [done(claim, { outputs: { value: 7 } })]), [{ applied: false, refused: 'not_running' }]);
    assert.deepEqual((await ctx.store.getStep(runId, 'a'))?.outputs, { value: 42 });
  });

  it('two results for one lease in one batch: the first applies, the second is refused', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }]);
    const [claim] = await core.claim('w1', 1, 1000);
    assert.ok(claim);
    assert.deepEqual(await core.flush([], [done(claim, { outputs: { n: 1 } }), done(claim, { outputs: { n: 2 } })]), [
      { applied: true },
      { applied: false, refused: 'lease_lost' },
    ]);
    assert.deepEqual((await ctx.store.getStep(runId, 'a'))?.outputs, { n: 1 });
    const finished = (await events(ctx.store, runId)).filter((e) => e.type === 'step.finished');
    assert.equal(finished.length, 1);
  });

  it('a completion that arrives after its lease was reaped is discarded', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }]);
    const [first] = await core.claim('w1', 1, 1000);
    assert.ok(first);
    clock.advance(999);
    assert.equal(await core.reap(), 0, 'a live lease is not reaped');
    clock.advance(2);
    assert.equal(await core.reap(), 1);
    const lost = await ctx.store.getStep(runId, 'a');
    assert.equal(lost?.status, 'queued');
    assert.equal(lost?.lostAttempts, 1);
    assert.equal(lost?.error?.code, 'WORKER_LOST');
    assert.equal(await core.reap(), 0, 'reaped once');

    const [second] = await core.claim('w2', 1, 1000);
    assert.ok(second);
    assert.equal(second.attempt, 2);
    assert.notEqual(second.token, first.token);
    assert.deepEqual(await core.flush([], [done(first, { outputs: { stale: true } })]), [{ applied: false, refused: 'lease_lost' }]);
    assert.equal((await ctx.store.getStep(runId, 'a'))?.status, 'running');
    assert.deepEqual(await core.flush([], [done(second, { outputs: { fresh: true } })]), [{ applied: true }]);
    const a = await ctx.store.getStep(runId, 'a');
    assert.deepEqual(a?.outputs, { fresh: true });
    assert.deepEqual(
      (await ctx.store.listAttempts(runId, 'a')).map((x) => [x.attempt, x.status, x.workerId, x.error?.code ?? null]),
      [
        [1, 'lost', 'w1', 'WORKER_LOST'],
        [2, 'succeeded', 'w2', null],
      ],
    );
    const list = await assertRunBooks(ctx.store, runId);
    assert.deepEqual(
      list.filter((e) => e.type === 'step.retrying').map((e) => e.attempt),
      [1],
    );
    assert.equal((await ctx.store.getRun(runId))?.status, 'succeeded');
  });

  it('the reaper retries lost attempts within their budget, then fails the step', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }, { name: 'after', dependsOn: ['a'] }]);
    for (let i = 1; i <= MAX_LOST_RETRIES + 1; i++) {
      const [c] = await core.claim(`w${i}`, 1, 100);
      assert.equal(c?.attempt, i);
      clock.advance(101);
      assert.equal(await core.reap(), 1);
    }
    const a = await ctx.store.getStep(runId, 'a');
    assert.equal(a?.status, 'failed');
    assert.equal(a?.error?.code, 'WORKER_LOST');
    assert.equal(a?.lostAttempts, MAX_LOST_RETRIES + 1);
    assert.equal((await ctx.store.getStep(runId, 'after'))?.status, 'skipped');
    assert.deepEqual(
      (await ctx.store.listAttempts(runId, 'a')).map((x) => x.status),
      Array.from({ length: MAX_LOST_RETRIES + 1 }, () => 'lost'),
    );
    const run = await ctx.store.getRun(runId);
    assert.equal(run?.status, 'failed');
    assert.deepEqual(await ctx.store.stuckSteps(clock.t + 1_000_000), []);
    await assertRunBooks(ctx.store, runId);
  });

  it('renewal extends live leases of their holder only, and not past deadline + grace', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a', timeoutMs: 1000 }, { name: 'b', timeoutMs: 60_000 }]);
    const claims = await core.claim('w1', 2, 300);
    const tokens = claims.map((c) => c.token);
    const leases = claims.map((c) => ({ runId: c.runId, name: c.stepName, token: c.token }));
    const a = claims.find((c) => c.stepName === 'a');
    const b = claims.find((c) => c.stepName === 'b');
    assert.ok(a && b);
    clock.advance(200);
    const r1 = await ctx.store.transaction((tx) => tx.renewLeases('w1', leases, clock.t, clock.t + 300, 100));
    assert.deepEqual([...r1.renewed].sort(), [...tokens].sort());
    assert.deepEqual(r1.cancel, []);
    assert.equal((await ctx.store.getStep(runId, 'a'))?.leaseExpiresAt, new Date(clock.t + 300).toISOString());
    const other = await ctx.store.transaction((tx) => tx.renewLeases('w2', leases, clock.t, clock.t + 300, 100));
    assert.deepEqual(other.renewed, [], 'another worker cannot renew our leases');
    const unknown = await ctx.store.transaction((tx) => tx.renewLeases('w1', [{ runId, name: 'a', token: 'no-such-token' }], clock.t, clock.t + 300, 100));
    assert.deepEqual(unknown.renewed, [], 'a token the step does not hold renews nothing');
    const swapped = await ctx.store.transaction((tx) => tx.renewLeases('w1', [{ runId, name: 'a', token: b.token }], clock.t, clock.t + 300, 100));
    assert.deepEqual(swapped.renewed, [], "another step's token renews nothing");
    // a: deadline at claim + 1000; past deadline + grace (100) it is not renewed any more.
    clock.advance(901);
    const r2 = await ctx.store.transaction((tx) => tx.renewLeases('w1', leases, clock.t, clock.t + 300, 100));
    assert.deepEqual(r2.renewed, [b.token]);
    // Transitions.renew is the same operation with the core's clock.
    const r3 = await core.renew('w1', leases, 300, 100);
    assert.deepEqual(r3.renewed, [b.token]);
  });

  it('a worker holding thousands of leases renews them all in one call', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, Array.from({ length: 2500 }, (_, i) => ({ name: `s${i}`, timeoutMs: 60_000 })));
    const claims: ClaimedStep[] = [];
    for (;;) {
      const got = await core.claim('w-many', 1000, 300);
      if (got.length === 0) break;
      claims.push(...got);
    }
    assert.equal(claims.length, 2500);
    clock.advance(200);
    const leases = claims.map((c) => ({ runId: c.runId, name: c.stepName, token: c.token }));
    // One lease given with another step's token is not renewed; the rest are.
    const [first, second] = leases;
    assert.ok(first && second);
    const mixed = [{ ...first, token: second.token }, ...leases.slice(1)];
    const r = await core.renew('w-many', mixed, 300, 100);
    assert.deepEqual(new Set(r.renewed), new Set(leases.slice(1).map((l) => l.token)));
    assert.equal(r.renewed.length, 2499);
    assert.equal((await ctx.store.getStep(runId, 's2499'))?.leaseExpiresAt, new Date(clock.t + 300).toISOString());
    assert.equal((await ctx.store.getStep(runId, 's0'))?.leaseExpiresAt, new Date(clock.t - 200 + 300).toISOString(), 'the mismatched lease is not renewed');
  }, { timeout: 120_000 });

  it('a failed attempt is retried after its backoff and not before', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a', retries: { max: 1, backoffMs: 1000 } }]);
    const [c1] = await core.claim('w1', 1, 5000);
    assert.ok(c1);
    clock.advance(10);
    assert.deepEqual(await core.flush([], [failed(c1, { code: 'FLAKY', message: 'try again', retryable: true })]), [{ applied: true }]);
    const queued = await ctx.store.getStep(runId, 'a');
    assert.equal(queued?.status, 'queued');
    assert.equal(queued?.error?.code, 'FLAKY');
    const readyAt = Date.parse(queued?.readyAt ?? '');
    assert.ok(readyAt >= clock.t + 500 && readyAt <= clock.t + 1000, `backoff of ${readyAt - clock.t} ms is within [500, 1000]`);
    assert.equal(await ctx.store.nextReadyAt(), readyAt);
    assert.deepEqual(await core.claim('w1', 1, 5000), [], 'not before its backoff');
    clock.t = readyAt;
    const [c2] = await core.claim('w1', 1, 5000);
    assert.equal(c2?.attempt, 2);
    assert.ok(c2);
    assert.deepEqual(await core.flush([], [failed(c2, { code: 'FLAKY', message: 'again', retryable: true })]), [{ applied: true }]);
    const a = await ctx.store.getStep(runId, 'a');
    assert.equal(a?.status, 'failed');
    assert.equal(a?.attempts, 2);
    assert.deepEqual(
      (await ctx.store.listAttempts(runId, 'a')).map((x) => [x.status, x.error?.message]),
      [
        ['failed', 'try again'],
        ['failed', 'again'],
      ],
    );
    const list = await assertRunBooks(ctx.store, runId);
    assert.equal(list.filter((e) => e.type === 'step.retrying').length, 1);
    assert.equal((await ctx.store.getRun(runId))?.status, 'failed');
  });

  it('a claim says when each step became ready (the queue wait runs from there), not its claim rank', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const created = clock.t;
    const runId = await createRun(core, [
      { name: 'a', priority: 5, retries: { max: 1, backoffMs: 1000 } },
      { name: 'b', concurrency: { key: 'k', limit: 1 } },
      { name: 'c', concurrency: { key: 'k', limit: 1 } },
      { name: 'd', dependsOn: ['a'] },
    ]);
    clock.advance(40);
    const first = await core.claim('w1', 10, 5000);
    assert.deepEqual(first.map((c) => c.stepName).sort(), ['a', 'b'], 'c waits for the key b holds');
    // a is claimed as if ready 5 s earlier (its priority); it became ready when the run was created.
    for (const c of first) assert.deepEqual([c.stepName, c.readyAt, c.claimedAt], [c.stepName, created, created + 40]);
    const [a1, b] = [first.find((c) => c.stepName === 'a'), first.find((c) => c.stepName === 'b')];
    assert.ok(a1 && b);

    clock.advance(250);
    assert.deepEqual(await core.flush([], [done(b)]), [{ applied: true }]);
    clock.advance(60);
    const [c] = await core.claim('w1', 10, 5000);
    assert.deepEqual([c?.stepName, c?.readyAt, c?.claimedAt], ['c', created, created + 350], 'c was ready all the time the key was full');

    clock.advance(10);
    assert.deepEqual(await core.flush([], [failed(a1, { code: 'FLAKY', message: 'try again', retryable: true })]), [{ applied: true }]);
    const retryAt = Date.parse((await ctx.store.getStep(runId, 'a'))?.readyAt ?? '');
    assert.ok(retryAt >= clock.t + 500, 'the retry waits out its backoff');
    clock.t = retryAt + 30;
    const [a2] = await core.claim('w1', 10, 5000);
    assert.deepEqual([a2?.stepName, a2?.attempt, a2?.readyAt, a2?.claimedAt], ['a', 2, retryAt, retryAt + 30], "a retry is ready when its backoff ends: the backoff is not queue wait");
    assert.ok(a2);

    clock.advance(5);
    const aEnded = clock.t;
    assert.deepEqual(await core.flush([], [done(a2)]), [{ applied: true }]);
    clock.advance(20);
    const [d] = await core.claim('w1', 10, 5000);
    assert.deepEqual([d?.stepName, d?.readyAt, d?.claimedAt], ['d', aEnded, aEnded + 20], 'a dependent is ready when its last dependency ends');
    assert.equal((await ctx.store.getStep(runId, 'd'))?.readyAt, null, 'the claim still clears ready_at');
  });

  it('a non-retryable error fails the step at once, whatever its retry budget', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a', retries: { max: 5 } }]);
    const [c] = await core.claim('w1', 1, 5000);
    assert.ok(c);
    await core.flush([], [failed(c, { code: 'BAD_INPUT', message: 'no', retryable: false })]);
    assert.equal((await ctx.store.getStep(runId, 'a'))?.status, 'failed');
    await assertRunBooks(ctx.store, runId);
  });

  it('cancel ends waiting steps at once and tells running ones through their lease', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }, { name: 'b' }, { name: 'c', dependsOn: ['a'] }, { name: 'd' }]);
    const claims = await core.claim('w1', 2, 5000);
    assert.equal(claims.length, 2);
    const cancelled: string[] = [];
    const unsubscribe = ctx.store.subscribe((n) => {
      if (n.kind === 'cancel') cancelled.push(n.runId);
    });
    const run = await core.cancel(runId);
    unsubscribe();
    assert.deepEqual(cancelled, [runId], 'workers holding its steps are told');
    assert.equal(run?.cancelRequested, true);
    assert.equal(run?.status, 'running');
    const steps = new Map((await ctx.store.getRunSteps(runId)).map((s) => [s.name, s]));
    assert.equal(steps.get('c')?.status, 'cancelled');
    assert.equal(steps.get('d')?.status, 'cancelled');
    const [first, second] = claims;
    assert.ok(first && second);
    const renewal = await core.renew('w1', [first, second].map((c) => ({ runId: c.runId, name: c.stepName, token: c.token })), 5000, 1000);
    assert.deepEqual([...renewal.cancel].sort(), [first.token, second.token].sort());
    assert.deepEqual(await core.claim('w2', 10, 5000), []);
    await core.flush([], [{ ...done(first), outcome: 'cancelled', error: { code: 'CANCELLED', message: 'run cancelled' } }]);
    // A step that finished anyway before it heard of the cancel keeps its result.
    await core.flush([], [done(second)]);
    const after = new Map((await ctx.store.getRunSteps(runId)).map((s) => [s.name, s.status]));
    assert.equal(after.get(first.stepName), 'cancelled');
    assert.equal(after.get(second.stepName), 'succeeded');
    assert.equal((await ctx.store.getRun(runId))?.status, 'cancelled');
    await assertRunBooks(ctx.store, runId);
    // Cancelling a finished run changes nothing.
    assert.equal((await core.cancel(runId))?.status, 'cancelled');
    await assertRunBooks(ctx.store, runId);
  });

  it('a run cancelled before anything ran ends cancelled with every step cancelled', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }, { name: 'b', dependsOn: ['a'] }]);
    await core.cancel(runId);
    assert.equal((await ctx.store.getRun(runId))?.status, 'cancelled');
    assert.deepEqual(
      (await ctx.store.getRunSteps(runId)).map((s) => s.status),
      ['cancelled', 'cancelled'],
    );
    assert.deepEqual(await core.claim('w1', 10, 1000), []);
    await assertRunBooks(ctx.store, runId);
  });
});
