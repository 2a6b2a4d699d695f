/** The engine and real workers on each dialect: the store contract as the product uses it. */
import assert from 'node:assert/strict';
import { Transitions } from '../../src/engine/transitions.ts';
import { EngineApi } from '../../src/engine/api.ts';
import type { Store } from '../../src/store/store.ts';
import { Worker } from '../../src/worker/worker.ts';
import { waitForRunEvent } from '../helpers/wait.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, LIMITS, tools } from './fixtures.ts';

function startWorker(store: Store, id: string): Worker {
  const w = new Worker({ core: new Transitions(store), tools, id, leaseMs: 2000, heartbeatMs: 200, abortGraceMs: 300, pollMs: 50 });
  w.start();
  return w;
}

async function finished(engine: EngineApi, runId: string, timeoutMs = 30_000): Promise<string> {
  const e = await waitForRunEvent(engine, runId, (ev) => ev.type === 'run.finished', timeoutMs, `run ${runId} to finish`);
  return (e.data as { status: string }).status;
}

conformance('engine on the store', (it) => {
  it('a DAG with templates runs to completion, every step finished once', async (ctx) => {
    const engine = new EngineApi({ store: ctx.store, tools, limits: LIMITS, reaperIntervalMs: 100 });
    engine.start();
    const worker = startWorker(ctx.store, 'w-main');
    try {
      const steps: Array<Record<string, unknown>> = [{ name: 'source', tool: 'echo', inputs: { n: 1, label: 'src' } }];
      const layer = Array.from({ length: 6 }, (_, i) => `mid${i}`);
      for (const name of layer) steps.push({ name, tool: 'echo', inputs: { from: '{{steps.source.outputs.label}}', name }, dependsOn: ['source'] });
      steps.push({ name: 'sink', tool: 'echo', inputs: { last: '{{steps.mid5.outputs.name}}', first: '{{steps.source.outputs.n}}' }, dependsOn: layer });
      const { run } = await engine.createRun({ plan: { goal: 'diamond', steps }, labels: { kind: 'dag' } });
      assert.equal(await finished(engine, run.id), 'succeeded');
      const sink = await engine.getStep(run.id, 'sink');
      assert.deepEqual(sink.outputs, { last: 'mid5', first: 1 });
      const list = await assertRunBooks(ctx.store, run.id);
      assert.deepEqual(
        list.slice(0, 2).map((e) => e.type),
        ['run.created', 'step.queued'],
      );
    } finally {
      await worker.stop({ drainMs: 1000 });
      await engine.stop();
    }
  });

  it("a failed run's error names the first step that failed and why; run.finished repeats it", async (ctx) => {
    const engine = new EngineApi({ store: ctx.store, tools, limits: LIMITS, reaperIntervalMs: 100 });
    engine.start();
    const worker = startWorker(ctx.store, 'w-fail');
    try {
      const { run } = await engine.createRun({
        plan: {
          steps: [
            // Times out first; `later` times out after it and must not replace it; `fine` finishes last.
            { name: 'stuck', tool: 'sleep', inputs: { ms: 10_000 }, timeoutMs: 150 },
            { name: 'later', tool: 'sleep', inputs: { ms: 10_000 }, timeoutMs: 600 },
            { name: 'fine', tool: 'sleep', inputs: { ms: 900 } },
            { name: 'after', tool: 'echo', inputs: {}, dependsOn: ['stuck'] },
          ],
        },
      });
      assert.equal(await finished(engine, run.id), 'failed');
      const done = await engine.getRun(run.id);
      assert.equal(done.error?.code, 'STEP_FAILED');
      assert.match(done.error?.message ?? '', /^step "stuck" timed out: STEP_TIMEOUT: step exceeded its 150 ms deadline/);
      assert.deepEqual({ step: done.error?.data?.step, status: done.error?.data?.status }, { step: 'stuck', status: 'timed_out' });
      const events = await engine.listEvents(run.id, 0, 1000);
      assert.deepEqual(events.at(-1)?.data.error, done.error);
    } finally {
      await worker.stop({ drainMs: 1000 });
      await engine.stop();
    }
  });

  it('two workers on two connections share runs; no step runs twice', async (ctx) => {
    const other = await ctx.another();
    const engine = new EngineApi({ store: ctx.store, tools, limits: LIMITS, reaperIntervalMs: 100 });
    engine.start();
    const workers = [startWorker(ctx.store, 'w-a'), startWorker(other, 'w-b')];
    try {
      const runs: string[] = [];
      for (let r = 0; r < 3; r++) {
        const steps: Array<Record<string, unknown>> = Array.from({ length: 40 }, (_, i) => ({ name: `s${i}`, tool: 'sleep', inputs: { ms: i % 5 } }));
        steps.push({ name: 'join', tool: 'echo', inputs: {}, dependsOn: steps.map((s) => s.name as string) });
        runs.push((await engine.createRun({ plan: { steps } })).run.id);
      }
      for (const runId of runs) {
        assert.equal(await finished(engine, runId), 'succeeded');
        await assertRunBooks(ctx.store, runId);
        for (const s of await ctx.store.getRunSteps(runId)) assert.equal(s.attempts, 1, `${s.name} ran once`);
      }
      assert.equal(workers.reduce((n, w) => n + w.stats.completed, 0), 3 * 41);
      assert.equal(workers.reduce((n, w) => n + w.stats.discarded, 0), 0);
    } finally {
      for (const w of workers) await w.stop({ drainMs: 1000 });
      await engine.stop();
    }
  });
});
