import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EventRecord } from '../../src/domain/records.ts';
import { defineTool } from '../../src/tools/types.ts';
import { startTestEngine, waitFor, type TestEngine } from '../helpers/engine.ts';

function diamondPlan(width: number, depth: number) {
  // source -> `depth` layers of `width` parallel steps -> sink; each step depends on the whole layer before.
  const steps: Array<Record<string, unknown>> = [{ name: 'source', tool: 'echo', inputs: { n: 1 } }];
  let prev = ['source'];
  for (let d = 0; d < depth; d++) {
    const layer: string[] = [];
    for (let w = 0; w < width; w++) {
      const name = `l${d}_${w}`;
      layer.push(name);
      steps.push(
        w % 2 === 0
          ? { name, tool: 'sleep', inputs: { ms: 5 + w }, dependsOn: prev }
          : { name, tool: 'echo', inputs: { from: `{{steps.${prev[0]}.outputs}}`, w }, dependsOn: prev },
      );
    }
    prev = layer;
  }
  steps.push({ name: 'sink', tool: 'echo', inputs: { last: `{{steps.${prev[1]}.outputs.w}}` }, dependsOn: prev });
  return { plan: { goal: 'diamond', steps } };
}

async function allEvents(t: TestEngine, runId: string): Promise<EventRecord[]> {
  return t.engine.listEvents(runId, 0, 10_000);
}

describe('engine on SQLite', () => {
  let t: TestEngine;
  const flaky = new Map<string, number>();
  before(async () => {
    t = await startTestEngine({
      tools: [
        defineTool({
          name: 'deaf',
          // Ignores its signal entirely: the engine must abandon it at deadline + grace.
          run: () => new Promise((resolve) => setTimeout(() => resolve({ late: true }), 5000)),
        }),
        defineTool({
          name: 'flaky',
          run: (_ctx, input: { key: string; failures: number }) => {
            const n = (flaky.get(input.key) ?? 0) + 1;
            flaky.set(input.key, n);
            if (n <= input.failures) throw new Error(`failure ${n} of ${input.failures}`);
            return { succeededOn: n };
          },
        }),
        defineTool({ name: 'boom', run: () => Promise.reject(Object.assign(new Error('nope'), { retryable: false })) }),
        defineTool({
          name: 'writer',
          run: (ctx) => {
            ctx.artifacts.put({ name: 'README.md', content: '# Hello World\n' });
            ctx.log('wrote the readme');
            return { files: 1 };
          },
        }),
      ],
    });
  });
  after(() => t.close());

  test('a 30-step diamond DAG: one step.finished per step, one run.finished, strictly increasing seq', async () => {
    const plan = diamondPlan(7, 4);
    assert.equal(plan.plan.steps.length, 30);
    const run = await t.submit(plan);
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'succeeded');
    assert.ok(done.steps.every((s) => s.status === 'succeeded'));
    const events = await allEvents(t, run.id);
    const finished = events.filter((e) => e.type === 'step.finished');
    assert.equal(finished.length, 30);
    assert.equal(new Set(finished.map((e) => e.stepName)).size, 30);
    assert.equal(events.filter((e) => e.type === 'run.finished').length, 1);
    assert.equal(events.at(-1)?.type, 'run.finished');
    events.forEach((e, i) => assert.equal(e.seq, i + 1));
    const sink = done.steps.find((s) => s.name === 'sink');
    assert.deepEqual(sink?.outputs, { last: 1 });
    // Layer steps ran in parallel: some started before others of the same layer finished.
    const l0 = events.filter((e) => e.stepName?.startsWith('l0_'));
    const firstFinish = l0.findIndex((e) => e.type === 'step.finished');
    assert.ok(l0.slice(firstFinish).some((e) => e.type === 'step.started') || l0.filter((e) => e.type === 'step.started').length === 7);
  });

  test('a 20 s sleep with timeoutMs 500 ends timed_out within 1.5 s', async () => {
    const t0 = Date.now();
    const run = await t.submit({ plan: { steps: [{ name: 'nap', tool: 'sleep', inputs: { ms: 20_000 }, timeoutMs: 500 }] } });
    const done = await t.waitRun(run.id, 5000);
    const elapsed = Date.now() - t0;
    assert.equal(done.status, 'failed');
    assert.equal(done.steps[0]?.status, 'timed_out');
    assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    const detail = await t.engine.getStep(run.id, 'nap');
    assert.equal(detail.attemptsDetail[0]?.status, 'timed_out');
    assert.equal(detail.error?.code, 'STEP_TIMEOUT');
  });

  test('a tool that ignores its signal is abandoned at deadline + grace and recorded as such', async () => {
    // The worker, not the reaper, must be the one to end it: its own engine with a lease (4 s) longer
    // than the abandonment takes on a loaded machine, so the 1 s lease of the shared engine cannot
    // lapse between the cut and the worker's write of it (the reaper would then record a lost attempt).
    const own = await startTestEngine({ tools: [t.tools.get('deaf')!], worker: { leaseMs: 4000 } });
    try {
      const t0 = Date.now();
      const run = await own.submit({ plan: { steps: [{ name: 'deaf', tool: 'deaf', timeoutMs: 300 }] } });
      const done = await own.waitRun(run.id, 5000);
      const elapsed = Date.now() - t0;
      assert.equal(done.steps[0]?.status, 'timed_out');
      // deadline 300 + grace 300 + bookkeeping (up to a second or two on a loaded 2-core machine); below the tool's own 5 s.
      assert.ok(elapsed < 3500, `took ${elapsed} ms`);
      const detail = await own.engine.getStep(run.id, 'deaf');
      assert.equal(detail.error?.data?.ignoredAbort, true);
      assert.equal(detail.attemptsDetail.length, 1);
      assert.equal((detail.hangReports[0]?.classification as { code: string }).code, 'handler.ignored_abort');
      const events = await allEvents(own, run.id);
      assert.equal(events.filter((e) => e.type === 'step.hang_report').length, 1);
    } finally {
      await own.close();
    }
  });

  test('retries with backoff until success', async () => {
    const run = await t.submit({
      plan: { steps: [{ name: 'f', tool: 'flaky', inputs: { key: 'r1', failures: 2 }, retries: { max: 2, backoffMs: 20 } }] },
    });
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.steps[0]?.outputs, { succeededOn: 3 });
    const attempts = await t.engine.listAttempts(run.id, 'f');
    assert.deepEqual(attempts.map((a) => a.status), ['failed', 'failed', 'succeeded']);
    const events = await allEvents(t, run.id);
    assert.equal(events.filter((e) => e.type === 'step.retrying').length, 2);
    assert.equal(events.filter((e) => e.type === 'step.finished').length, 1);
  });

  test('a non-retryable failure is not retried; downstream steps are skipped', async () => {
    const run = await t.submit({
      plan: {
        steps: [
          { name: 'a', tool: 'boom', retries: { max: 3, backoffMs: 10 } },
          { name: 'b', tool: 'echo', dependsOn: ['a'] },
          { name: 'c', tool: 'echo', dependsOn: ['b'] },
          { name: 'side', tool: 'echo' },
        ],
      },
    });
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'failed');
    const by = Object.fromEntries(done.steps.map((s) => [s.name, s.status]));
    assert.deepEqual(by, { a: 'failed', b: 'skipped', c: 'skipped', side: 'succeeded' });
    assert.equal((await t.engine.listAttempts(run.id, 'a')).length, 1);
    const events = await allEvents(t, run.id);
    assert.equal(events.filter((e) => e.type === 'step.finished').length, 4);
  });

  test('cancelling a run aborts running attempts and cancels pending steps', async () => {
    const run = await t.submit({
      plan: { steps: [{ name: 'long', tool: 'sleep', inputs: { ms: 30_000 } }, { name: 'after', tool: 'echo', dependsOn: ['long'] }] },
    });
    await waitFor(async () => ((await t.engine.getRun(run.id)).steps[0]?.status === 'running' ? true : undefined), 5000, 'step running');
    const t0 = Date.now();
    await t.engine.cancelRun(run.id);
    const done = await t.waitRun(run.id, 5000);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(done.status, 'cancelled');
    assert.deepEqual(done.steps.map((s) => s.status), ['cancelled', 'cancelled']);
    const events = await allEvents(t, run.id);
    assert.equal(events.filter((e) => e.type === 'step.finished').length, 2);
  });

  test('an unhandled rejection or throw after a tool returned is an event on its step; the result stands', async () => {
    // In a child process: node:test treats any stray rejection in its own process as a failure.
    const out = execFileSync(process.execPath, [join(import.meta.dirname, '../fixtures/stray-rejection.ts')], { encoding: 'utf8', timeout: 20_000 });
    const { status, outputs, events } = JSON.parse(out) as { status: string; outputs: unknown; events: EventRecord[] };
    assert.equal(status, 'succeeded');
    assert.deepEqual(outputs, { returned: true });
    const logs = events.filter((e) => e.type === 'step.log');
    const rejection = logs.find((e) => e.data.kind === 'unhandled_rejection');
    const thrown = logs.find((e) => e.data.kind === 'uncaught_exception');
    assert.equal(rejection?.stepName, 's');
    assert.match(String(rejection?.data.message), /stray rejection after return/);
    assert.equal(thrown?.stepName, 's');
    assert.match(String(thrown?.data.message), /stray throw after return/);
  });

  test('outputs, artifact and step.finished are written together', async () => {
    const run = await t.submit({ plan: { steps: [{ name: 'w', tool: 'writer' }] } });
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'succeeded');
    const arts = await t.engine.listArtifacts(run.id);
    assert.equal(arts.length, 1);
    assert.equal(arts[0]?.mime, 'text/markdown');
    const { content } = await t.engine.getArtifact(arts[0]?.id ?? '');
    assert.equal(content.toString(), '# Hello World\n');
    const types = (await allEvents(t, run.id)).map((e) => e.type);
    assert.ok(types.indexOf('artifact.created') < types.indexOf('step.finished'));
    assert.ok(types.includes('step.log'));
  });

  test('templates resolve from upstream outputs; a missing path fails the step, not the engine', async () => {
    const run = await t.submit({
      plan: {
        steps: [
          { name: 'a', tool: 'echo', inputs: { greeting: 'hi', nested: { list: [1, 2, 3] } } },
          { name: 'b', tool: 'echo', inputs: { text: '{{steps.a.outputs.greeting}} there', second: '{{steps.a.outputs.nested.list.1}}' }, dependsOn: ['a'] },
          { name: 'c', tool: 'echo', inputs: { x: '{{steps.a.outputs.missing}}' }, dependsOn: ['a'] },
          // Names a step two hops up, not a direct dependency.
          { name: 'd', tool: 'echo', inputs: { greeting: '{{steps.a.outputs.greeting}}', b: '{{steps.b.outputs.second}}' }, dependsOn: ['b'] },
        ],
      },
    });
    const done = await t.waitRun(run.id);
    const by = Object.fromEntries(done.steps.map((s) => [s.name, s]));
    assert.deepEqual(by.b?.outputs, { text: 'hi there', second: 2 });
    assert.deepEqual(by.d?.outputs, { greeting: 'hi', b: 2 });
    assert.equal(by.c?.status, 'failed');
    assert.equal(by.c?.error?.code, 'TEMPLATE_UNRESOLVED');
  });

  test('a lease held by a vanished worker expires; the reaper records a lost attempt and the step runs again', async () => {
    const other = await startTestEngine({ startWorker: false });
    try {
      const run = await other.submit({ plan: { steps: [{ name: 'x', tool: 'echo', inputs: { v: 1 } }] } });
      // A "worker" claims the step and then vanishes without ever renewing or completing.
      const [claimed] = await other.engine.core.claim('ghost', 1, 300);
      assert.equal(claimed?.stepName, 'x');
      other.worker.start();
      const done = await other.waitRun(run.id, 5000);
      assert.equal(done.status, 'succeeded');
      const attempts = await other.engine.listAttempts(run.id, 'x');
      assert.deepEqual(attempts.map((a) => a.status), ['lost', 'succeeded']);
      assert.equal(attempts[0]?.error?.code, 'WORKER_LOST');
      // The ghost never registered: the report says the worker is gone, not merely slow.
      assert.equal((attempts[0]?.hangReport?.classification as { code: string } | undefined)?.code, 'worker.lost');
      const events = await other.engine.listEvents(run.id, 0, 1000);
      assert.equal(events.filter((e) => e.type === 'step.hang_report').length, 1);
    } finally {
      await other.close();
    }
  });
});
