/**
 * Waits for signals on each dialect: a `wait` step parks with no lease and is released by its
 * signal (the payload as outputs), a signal sent before the wait is kept for it, a wait past its
 * deadline ends timed_out with a report naming the signal (found by whichever store looks first,
 * once), a send and a park at the same moment never miss each other, and prune takes the signals.
 */
import assert from 'node:assert/strict';
import { Transitions, type ClaimedStep } from '../../src/engine/transitions.ts';
import { waitTimeoutReport } from '../../src/forensics/report.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, Clock, createRun, done, events } from './fixtures.ts';

/** A wait attempt's completion: the tool hands its inputs back as its outputs. */
const waited = (claim: ClaimedStep) => done(claim, { outputs: claim.inputs });

async function claimOne(core: Transitions, name: string): Promise<ClaimedStep> {
  const [c] = await core.claim('w', 1, 60_000);
  assert.equal(c?.stepName, name);
  return c;
}

const PLAN = [
  { name: 'approve', tool: 'wait', inputs: { signal: 'approved', timeoutMs: 60_000 } },
  { name: 'ship', inputs: { by: '{{steps.approve.outputs.by}}' }, dependsOn: ['approve'] },
];

conformance('waits for signals', (it) => {
  it('a waiting step holds no lease; its signal releases it with the payload as outputs', async (ctx) => {
    const clock = new Clock();
    const core = new Transitions(ctx.store, { now: clock.now });
    const runId = await createRun(core, PLAN);
    const claim = await claimOne(core, 'approve');
    assert.deepEqual(await core.flush([], [waited(claim)]), [{ applied: true }]);

    const parked = await ctx.store.getStep(runId, 'approve');
    assert.equal(parked?.status, 'pending');
    assert.equal(parked?.leaseToken, null);
    assert.equal(parked?.workerId, null);
    assert.equal(parked?.awaitingSignal, 'approved');
    assert.equal(parked?.awaitingSince, new Date(clock.t).toISOString());
    assert.equal(parked?.deadlineAt, new Date(clock.t + 60_000).toISOString());
    assert.equal((await ctx.store.listAttempts(runId, 'approve'))[0]?.status, 'succeeded');
    assert.deepEqual(await core.claim('w', 10, 60_000), [], 'nothing to claim while it waits');
    // The reaper finds nothing before the deadline.
    assert.equal(await core.expireWaits(), 0);

    clock.advance(5_000);
    const sent = await core.signal(runId, 'approved', { by: 'ada' });
    assert.deepEqual(sent, { kind: 'sent', sentAt: clock.t, released: ['approve'] });
    const released = await ctx.store.getStep(runId, 'approve');
    assert.equal(released?.status, 'succeeded');
    assert.deepEqual(released?.outputs, { by: 'ada' });
    const ship = await claimOne(core, 'ship');
    assert.deepEqual(ship.inputs, { by: 'ada' });
    await core.flush([], [done(ship)]);
    assert.equal((await ctx.store.getRun(runId))?.status, 'succeeded');
    const list = await assertRunBooks(ctx.store, runId);
    const types = list.map((e) => e.type);
    assert.ok(types.indexOf('step.awaiting_signal') < types.indexOf('signal.received'));
    assert.deepEqual(list.find((e) => e.type === 'step.awaiting_signal')?.data, {
      signal: 'approved',
      since: new Date(clock.t - 5_000).toISOString(),
      deadlineAt: new Date(clock.t + 55_000).toISOString(),
      timeoutMs: 60_000,
    });
    assert.deepEqual(list.find((e) => e.type === 'signal.received')?.data, { name: 'approved', released: ['approve'] });

    assert.deepEqual(await core.signal(runId, 'approved', {}), { kind: 'finished', status: 'succeeded', cancelling: false });
    assert.deepEqual(await core.signal('no-such-run', 'approved', {}), { kind: 'not_found' });
  });

  it('a signal sent before the step waits is kept for it; a second send of one name is refused', async (ctx) => {
    const core = new Transitions(ctx.store);
    const runId = await createRun(core, [{ name: 'first' }, ...PLAN.map((s) => (s.name === 'approve' ? { ...s, dependsOn: ['first'] } : s))]);
    const early = await core.signal(runId, 'approved', { by: 'grace' });
    assert.equal(early.kind, 'sent');
    assert.deepEqual(early.kind === 'sent' && early.released, []);
    const again = await core.signal(runId, 'approved', { by: 'someone else' });
    assert.equal(again.kind, 'duplicate');
    await core.flush([], [done(await claimOne(core, 'first'))]);
    await core.flush([], [waited(await claimOne(core, 'approve'))]);
    const step = await ctx.store.getStep(runId, 'approve');
    assert.equal(step?.status, 'succeeded', 'it took the kept signal at once');
    assert.deepEqual(step?.outputs, { by: 'grace' });
    const ship = await claimOne(core, 'ship');
    assert.deepEqual(ship.inputs, { by: 'grace' });
    await core.flush([], [done(ship)]);
    const list = await assertRunBooks(ctx.store, runId);
    assert.equal(list.filter((e) => e.type === 'step.awaiting_signal').length, 0);
  });

  it('a wait past its deadline ends timed_out with a report naming its signal, once across two stores', async (ctx) => {
    const clock = new Clock();
    const a = new Transitions(ctx.store, { now: clock.now, waitReport: waitTimeoutReport });
    const b = new Transitions(await ctx.another(), { now: clock.now, waitReport: waitTimeoutReport });
    const runId = await createRun(a, [{ ...PLAN[0], inputs: { signal: 'approved', timeoutMs: 2_000 } } as (typeof PLAN)[0], PLAN[1] as (typeof PLAN)[1]]);
    const since = clock.t;
    await a.flush([], [waited(await claimOne(a, 'approve'))]);
    clock.advance(1_999);
    assert.equal(await a.expireWaits(), 0);
    clock.advance(2);
    const [na, nb] = await Promise.all([a.expireWaits(), b.expireWaits()]);
    assert.equal(na + nb, 1, 'one store ended it');

    const step = await ctx.store.getStep(runId, 'approve');
    assert.equal(step?.status, 'timed_out');
    assert.equal(step?.error?.code, 'SIGNAL_TIMEOUT');
    assert.match(step?.error?.message ?? '', /no signal "approved" came within 2000 ms/);
    const [attempt] = await ctx.store.listAttempts(runId, 'approve');
    const report = attempt?.hangReport as { classification: { code: string; summary: string }; waitedFor: { signal: string; since: string } } | null;
    assert.equal(report?.classification.code, 'signal.timeout');
    assert.match(report?.classification.summary ?? '', /waited for signal "approved" since/);
    assert.deepEqual(report?.waitedFor.signal, 'approved');
    assert.equal(report?.waitedFor.since, new Date(since).toISOString());
    assert.equal((await ctx.store.getStep(runId, 'ship'))?.status, 'skipped');
    const run = await ctx.store.getRun(runId);
    assert.equal(run?.status, 'failed');
    const list = await assertRunBooks(ctx.store, runId);
    const types = list.map((e) => `${e.type}:${e.stepName ?? ''}`);
    assert.ok(types.indexOf('step.hang_report:approve') < types.indexOf('step.finished:approve'), 'the report comes before the step ends');
    // A signal after the end is refused; a late one did not revive the step.
    assert.equal((await a.signal(runId, 'approved', {})).kind, 'finished');
  });

  it('a send and a park at the same moment never miss each other (two stores, 12 runs)', async (ctx) => {
    const sender = new Transitions(await ctx.another());
    const worker = new Transitions(ctx.store);
    for (let i = 0; i < 12; i++) {
      const runId = await createRun(worker, [PLAN[0] as (typeof PLAN)[0]]);
      const claim = await claimOne(worker, 'approve');
      const [sent, flushed] = await Promise.all([sender.signal(runId, 'approved', { i }), worker.flush([], [waited(claim)])]);
      assert.equal(sent.kind, 'sent');
      assert.deepEqual(flushed, [{ applied: true }]);
      const step = await ctx.store.getStep(runId, 'approve');
      assert.equal(step?.status, 'succeeded', `run ${i}: the wait and the send met`);
      assert.deepEqual(step?.outputs, { i });
      assert.equal((await ctx.store.getRun(runId))?.status, 'succeeded');
      await assertRunBooks(ctx.store, runId);
    }
  });

  it('a cancelled run ends its waiting step and refuses signals; prune deletes the signals of pruned runs', async (ctx) => {
    const core = new Transitions(ctx.store);
    const runId = await createRun(core, PLAN);
    await core.signal(runId, 'other', 'kept');
    await core.flush([], [waited(await claimOne(core, 'approve'))]);
    await core.cancel(runId);
    assert.equal((await ctx.store.getStep(runId, 'approve'))?.status, 'cancelled');
    assert.equal((await ctx.store.getRun(runId))?.status, 'cancelled');
    assert.equal((await core.signal(runId, 'approved', {})).kind, 'finished');
    await assertRunBooks(ctx.store, runId);
    const counts = await ctx.store.pruneRuns({ before: Date.now() + 60_000, limit: 10 });
    assert.equal(counts.runs, 1);
    // 'other' (sent) and 'approved' (awaited, never sent).
    assert.equal(counts.signals, 2);
    assert.equal((await events(ctx.store, runId)).length, 0);
  });
});
