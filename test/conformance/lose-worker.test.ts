import assert from 'node:assert/strict';
import type { SerializedError } from '../../src/domain/errors.ts';
import { MAX_LOST_RETRIES } from '../../src/engine/backoff.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, Clock, coreAt, createRun, done, events } from './fixtures.ts';

const CRASHED: SerializedError = { code: 'WORKER_CRASHED', message: 'the worker died', retryable: true };
const BLOCKED: SerializedError = { code: 'LOOP_BLOCKED', message: 'the tool blocked the event loop', retryable: true };

conformance('a supervisor ends the attempts of a dead worker', (it) => {
  it('runningByWorkers lists the running steps those workers hold, and nothing else', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }]);
    await core.claim('w1', 2, 1000);
    const [third] = await core.claim('w2', 1, 1000);
    assert.ok(third);
    await core.claim('w3', 1, 1000);
    await core.flush([], [done(third)]);
    const names = async (ids: string[]): Promise<string[]> => (await ctx.store.transaction((tx) => tx.runningByWorkers(ids))).map((s) => s.name).sort();
    const w1 = await names(['w1']);
    assert.equal(w1.length, 2);
    assert.deepEqual(await names(['w2']), [], 'a step its worker completed is not running');
    assert.equal((await names(['w1', 'w3'])).length, 3);
    assert.deepEqual(await names([]), []);
    assert.deepEqual(await names(['nobody']), []);
    assert.ok((await ctx.store.getRunSteps(runId)).filter((s) => w1.includes(s.name)).every((s) => s.workerId === 'w1'));
  });

  it('loseWorker: the culprit fails as its retry policy says, the others are lost and queued at once, the dead worker can complete nothing', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [
      { name: 'spin', retries: { max: 1, backoffMs: 1000 } },
      { name: 'bystander' },
      { name: 'elsewhere' },
      { name: 'after', dependsOn: ['spin', 'bystander', 'elsewhere'] },
    ]);
    const claims = await core.claim('dead', 2, 1000);
    const spin = claims.find((c) => c.stepName === 'spin') ?? claims[0];
    const bystander = claims.find((c) => c !== spin);
    assert.ok(spin && bystander);
    const [other] = await core.claim('alive', 1, 1000);
    assert.ok(other);

    clock.advance(50);
    const lost = await core.loseWorker(['dead'], {
      culprit: { runId, stepName: spin.stepName, attempt: spin.attempt, outcome: 'failed' },
      describe: (step, culprit) => ({
        error: culprit ? BLOCKED : CRASHED,
        report: { classification: { code: culprit ? 'loop.blocked' : 'worker.crashed', summary: step.name } },
        spared: !culprit,
      }),
    });
    assert.deepEqual(lost.map((l) => [l.stepName, l.status]).sort(), [[bystander.stepName, 'lost'], [spin.stepName, 'failed']].sort());

    const s = await ctx.store.getStep(runId, spin.stepName);
    assert.equal(s?.status, 'queued', 'retried: one of its retries.max');
    assert.equal(s?.lostAttempts, 0, 'the culprit does not use the lost-attempt budget');
    assert.ok(s?.readyAt && Date.parse(s.readyAt) > clock.t, 'after its backoff');
    const b = await ctx.store.getStep(runId, bystander.stepName);
    assert.equal(b?.status, 'queued');
    assert.equal(b?.lostAttempts, 1);
    assert.equal(b?.readyAt, new Date(clock.t).toISOString(), 'at once');
    assert.equal((await ctx.store.getStep(runId, other.stepName))?.status, 'running', 'another worker\'s step is untouched');

    const attempts = await ctx.store.listAttempts(runId, spin.stepName);
    assert.deepEqual(attempts.map((a) => [a.status, a.error?.code]), [['failed', 'LOOP_BLOCKED']]);
    assert.equal((attempts[0]?.hangReport as { classification: { code: string } }).classification.code, 'loop.blocked');
    assert.deepEqual((await ctx.store.listAttempts(runId, bystander.stepName)).map((a) => [a.status, a.error?.code]), [['lost', 'WORKER_CRASHED']]);
    const reports = (await events(ctx.store, runId)).filter((e) => e.type === 'step.hang_report').map((e) => e.stepName).sort();
    assert.deepEqual(reports, [bystander.stepName, spin.stepName].sort());

    // Whatever the dead worker might still send is discarded; nothing is left to lose twice.
    assert.deepEqual(await core.flush([], [done(spin), done(bystander)]), [
      { applied: false, refused: 'not_running' },
      { applied: false, refused: 'not_running' },
    ]);
    assert.deepEqual(await core.loseWorker(['dead'], { describe: () => ({ error: CRASHED, report: null }) }), []);

    // The rest of the run goes on normally.
    await core.flush([], [done(other)]);
    const again = await core.claim('alive', 10, 1000);
    assert.deepEqual(again.map((c) => c.stepName), [bystander.stepName]);
    await core.flush([], [done(again[0] as (typeof again)[number])]);
    clock.advance(2000);
    const retried = await core.claim('alive', 10, 1000);
    assert.deepEqual(retried.map((c) => [c.stepName, c.attempt]), [[spin.stepName, 2]]);
    await core.flush([], [done(retried[0] as (typeof retried)[number])]);
    const [last] = await core.claim('alive', 10, 1000);
    assert.ok(last);
    await core.flush([], [done(last)]);
    assert.equal((await ctx.store.getRun(runId))?.status, 'succeeded');
    await assertRunBooks(ctx.store, runId);
  });

  it('loseWorker: lost attempts use the lost-attempt budget, unless another known step brought the worker down', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }]);
    for (let i = 1; i <= MAX_LOST_RETRIES + 1; i++) {
      const [c] = await core.claim(`w${i}`, 1, 1000);
      assert.equal(c?.attempt, i);
      await core.loseWorker([`w${i}`], { describe: () => ({ error: CRASHED, report: null }) });
    }
    const a = await ctx.store.getStep(runId, 'a');
    assert.equal(a?.status, 'failed', 'out of lost-attempt budget');
    assert.equal(a?.error?.code, 'WORKER_CRASHED');
    await assertRunBooks(ctx.store, runId);

    const runId2 = await createRun(core, [{ name: 'b' }]);
    for (let i = 1; i <= MAX_LOST_RETRIES + 2; i++) {
      const [c] = await core.claim(`v${i}`, 1, 1000);
      assert.equal(c?.attempt, i);
      await core.loseWorker([`v${i}`], { describe: () => ({ error: CRASHED, report: null, spared: true }) });
    }
    assert.equal((await ctx.store.getStep(runId2, 'b'))?.status, 'queued', 'a bystander keeps being retried');
  });
});
