/**
 * Schedules on each dialect: the table's reads and writes, ticks fired once each by schedulers in
 * several stores (as several processes would), the catch-up rule after an outage, and deletion.
 * Times come from a pinned clock.
 */
import assert from 'node:assert/strict';
import { SCHEDULE_LABEL, SCHEDULE_TICK_LABEL } from '../../src/domain/schedule.ts';
import { Schedules } from '../../src/engine/schedules.ts';
import { startScheduler } from '../../src/engine/scheduler.ts';
import { Transitions } from '../../src/engine/transitions.ts';
import type { RunRow, Store } from '../../src/store/store.ts';
import { conformance } from './harness.ts';
import { Clock, LIMITS, tools } from './fixtures.ts';

const PLAN = { goal: 'tick', steps: [{ name: 'a', tool: 'echo', inputs: { x: 1 } }, { name: 'b', tool: 'echo', dependsOn: ['a'] }] };

function schedulerOn(store: Store, clock: Clock, log: string[] = []) {
  return startScheduler(new Transitions(store, { now: clock.now }), { manual: true, now: clock.now, log: (l) => log.push(l) });
}

async function scheduledRuns(store: Store, scheduleId: string): Promise<RunRow[]> {
  const runs = await store.listRuns({ limit: 10_000, label: { key: SCHEDULE_LABEL, value: scheduleId } });
  return runs.sort((a, b) => (a.labels[SCHEDULE_TICK_LABEL] ?? '').localeCompare(b.labels[SCHEDULE_TICK_LABEL] ?? ''));
}

const tickOf = (r: RunRow): number => Date.parse(r.labels[SCHEDULE_TICK_LABEL] ?? '');

conformance('schedules', (it) => {
  it('a schedule is stored with its first tick, listed, read and deleted', async (ctx) => {
    const clock = new Clock();
    const schedules = new Schedules({ store: ctx.store, tools, limits: LIMITS, now: clock.now });
    const created = await schedules.create({ cron: '0 9 * * 1-5', timezone: 'europe/oslo', plan: PLAN, labels: { team: 'ops' } });
    // 1_750_000_000_000 is Sunday 2025-06-15 15:06:40 UTC; the next weekday 09:00 in Oslo (CEST) is Monday 07:00 UTC.
    assert.equal(created.nextTickAt, '2025-06-16T07:00:00.000Z');
    assert.equal(created.timezone, 'Europe/Oslo');
    assert.deepEqual(created.plan, PLAN);
    assert.deepEqual(created.labels, { team: 'ops' });
    assert.equal(created.runsCreated, 0);
    assert.equal(created.lastTickAt, null);
    const other = await ctx.another();
    assert.deepEqual((await other.schedules.get(created.id))?.cron, '0 9 * * 1-5');
    assert.deepEqual((await schedules.list()).map((s) => s.id), [created.id]);
    assert.equal(await ctx.store.schedules.nextTickAt(), Date.parse('2025-06-16T07:00:00.000Z'));
    assert.deepEqual(await ctx.store.schedules.due(clock.now(), 10), []);
    assert.equal((await schedules.delete(created.id)).id, created.id);
    assert.equal(await ctx.store.schedules.get(created.id), null);
    assert.equal(await ctx.store.schedules.delete(created.id), false);
    assert.equal(await ctx.store.schedules.nextTickAt(), null);
  });

  it('each tick creates one run carrying the schedule and the tick, with the plan as validated', async (ctx) => {
    const clock = new Clock();
    const schedules = new Schedules({ store: ctx.store, tools, limits: LIMITS, now: clock.now });
    const s = await schedules.create({ cron: '*/10 * * * * *', plan: PLAN, labels: { team: 'ops' } });
    const scheduler = schedulerOn(ctx.store, clock);
    assert.deepEqual(await scheduler.pass(), []);
    clock.t = Date.parse(s.nextTickAt ?? '') + 250;
    const [runId, ...more] = await scheduler.pass();
    assert.ok(runId);
    assert.deepEqual(more, []);
    assert.deepEqual(await scheduler.pass(), [], 'the same tick fires once');
    const run = await ctx.store.getRun(runId);
    assert.deepEqual(run?.labels, { team: 'ops', [SCHEDULE_LABEL]: s.id, [SCHEDULE_TICK_LABEL]: s.nextTickAt });
    assert.equal(run?.idempotencyKey, `schedule:${s.id}:${s.nextTickAt}`);
    assert.equal(run?.goal, 'tick');
    assert.deepEqual((await ctx.store.getRunSteps(runId)).map((st) => [st.name, st.status, st.dependsOn]), [['a', 'queued', []], ['b', 'pending', ['a']]]);
    assert.deepEqual((await ctx.store.listEvents(runId, 0, 100)).map((e) => [e.seq, e.type, e.stepName ?? null]), [[1, 'run.created', null], [2, 'step.queued', 'a']]);
    const after = await schedules.get(s.id);
    assert.equal(after.lastTickAt, s.nextTickAt);
    assert.equal(after.lastRunId, runId);
    assert.equal(after.runsCreated, 1);
    assert.equal(Date.parse(after.nextTickAt ?? '') - Date.parse(s.nextTickAt ?? ''), 10_000);
  });

  it('schedulers in several stores racing over 30 ticks create exactly one run per tick', async (ctx) => {
    const clock = new Clock();
    const schedules = new Schedules({ store: ctx.store, tools, limits: LIMITS, now: clock.now });
    const s = await schedules.create({ cron: '* * * * * *', plan: PLAN });
    const stores = [ctx.store, await ctx.another(), await ctx.another()];
    const schedulers = stores.map((st) => schedulerOn(st, clock));
    const first = Date.parse(s.nextTickAt ?? '');
    const created: string[] = [];
    for (let i = 0; i < 30; i++) {
      clock.t = first + i * 1000 + 5;
      // Every scheduler passes at once, twice: they all see the tick due.
      const fired = await Promise.all([...schedulers, ...schedulers].map((sc) => sc.pass()));
      assert.equal(fired.flat().length, 1, `tick ${i}: ${JSON.stringify(fired)}`);
      created.push(...fired.flat());
    }
    const runs = await scheduledRuns(ctx.store, s.id);
    assert.equal(runs.length, 30);
    assert.deepEqual(runs.map(tickOf), Array.from({ length: 30 }, (_, i) => first + i * 1000));
    assert.deepEqual(new Set(runs.map((r) => r.id)), new Set(created));
    assert.equal((await schedules.get(s.id)).runsCreated, 30);
  });

  it('late ticks (10 s at most) all fire in order; after an outage only the most recent missed tick does', async (ctx) => {
    const clock = new Clock();
    const schedules = new Schedules({ store: ctx.store, tools, limits: LIMITS, now: clock.now });
    const s = await schedules.create({ cron: '* * * * * *', plan: PLAN });
    const log: string[] = [];
    const scheduler = schedulerOn(ctx.store, clock, log);
    const first = Date.parse(s.nextTickAt ?? '');
    // 4.5 s late: the scheduler was slow, not down. Every tick fires.
    clock.t = first + 4_500;
    assert.equal((await scheduler.pass()).length, 5);
    assert.deepEqual((await scheduledRuns(ctx.store, s.id)).map(tickOf), [0, 1, 2, 3, 4].map((i) => first + i * 1000));
    assert.deepEqual(log, []);
    // Everything down for an hour: one run, for the most recent tick, not 3,600.
    clock.t = first + 4_500 + 3_600_000;
    const fired = await scheduler.pass();
    assert.equal(fired.length, 1);
    const runs = await scheduledRuns(ctx.store, s.id);
    assert.equal(runs.length, 6);
    assert.equal(tickOf(runs[5] as RunRow), first + 3_604_000);
    assert.match(log.join('\n'), /missed its ticks .* fired only the most recent/);
    assert.equal((await schedules.get(s.id)).nextTickAt, new Date(first + 3_605_000).toISOString());
    // A daily schedule down across its tick fires that tick once when the scheduler comes back.
    const daily = await schedules.create({ cron: '30 2 * * *', timezone: 'America/New_York', plan: PLAN });
    clock.t = Date.parse(daily.nextTickAt ?? '') + 3 * 3_600_000;
    await scheduler.pass();
    assert.deepEqual((await scheduledRuns(ctx.store, daily.id)).map((r) => r.labels[SCHEDULE_TICK_LABEL]), [daily.nextTickAt]);
  });

  it('a deleted schedule fires no more ticks; its runs stay', async (ctx) => {
    const clock = new Clock();
    const schedules = new Schedules({ store: ctx.store, tools, limits: LIMITS, now: clock.now });
    const s = await schedules.create({ cron: '* * * * * *', plan: PLAN });
    const scheduler = schedulerOn(ctx.store, clock);
    clock.t = Date.parse(s.nextTickAt ?? '') + 10;
    const [runId] = await scheduler.pass();
    assert.ok(runId);
    await schedules.delete(s.id);
    clock.advance(5_000);
    assert.deepEqual(await scheduler.pass(), []);
    assert.equal((await scheduledRuns(ctx.store, s.id)).length, 1);
    assert.ok(await ctx.store.getRun(runId));
  });
});
