/**
 * A schedule every second on PostgreSQL with two `runwarden start` processes and three
 * `runwarden worker` hosts, every one of them running a scheduler (docs/schedules.md): for 10 s of
 * ticks, one of the APIs SIGKILLed halfway, every tick has exactly one run, none doubled and none
 * missed, and every run succeeds. Then every process stops for 15 s and one API comes back: the
 * missed ticks give one run, for the most recent of them, and the ticks after it fire as before.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { SCHEDULE_LABEL, SCHEDULE_LATE_MS, SCHEDULE_TICK_LABEL, type ScheduleRecord } from '../../src/domain/schedule.ts';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import type { RunRow } from '../../src/store/store.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/wait.ts';
import { api, startApi, startWorker, stopAll, type Proc } from './processes.ts';

const skip = await postgresSkip();

test('a per-second schedule across 2 APIs and 3 worker hosts: one run per tick for 10 s, an API killed halfway; after an outage one run', { skip, timeout: 240_000 }, async (t) => {
  const db = await createTestDatabase();
  const store = new PostgresStore({ url: db.url, poolMax: 2 });
  const procs: Proc[] = [];
  t.after(async () => {
    for (const p of procs) t.diagnostic(`--- ${p.kind} ${p.ref} (last lines)\n${p.output().split('\n').slice(-10).join('\n')}`);
    await stopAll();
    await store.close();
    await db.drop();
  });
  const apis = await Promise.all([startApi(db.url, ['--workers', '0']), startApi(db.url, ['--workers', '0'])]);
  const hosts = await Promise.all([startWorker(db.url), startWorker(db.url), startWorker(db.url)]);
  procs.push(...apis, ...hosts);
  const api0 = apis[0];

  const runsOf = async (id: string): Promise<RunRow[]> => {
    const runs = await store.listRuns({ limit: 10_000, label: { key: SCHEDULE_LABEL, value: id } });
    return runs.sort((a, b) => Date.parse(a.labels[SCHEDULE_TICK_LABEL] ?? '') - Date.parse(b.labels[SCHEDULE_TICK_LABEL] ?? ''));
  };
  const tickOf = (r: RunRow): number => Date.parse(r.labels[SCHEDULE_TICK_LABEL] ?? '');

  const created = await api<ScheduleRecord>(api0.ref, '/schedules', { body: { cron: '* * * * * *', plan: { goal: 'every second', steps: [{ name: 'a', tool: 'echo', inputs: { n: 1 } }] } } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const first = Date.parse(created.body.nextTickAt ?? '');

  // Halfway through the window, the API that created the schedule dies without a word.
  await waitFor(async () => ((await store.schedules.get(id))?.lastTickAt ?? 0) >= first + 4_000 || undefined, 60_000, 'five ticks fired');
  await api0.kill('SIGKILL');
  const window = await waitFor(async () => {
    const s = await store.schedules.get(id);
    return s && (s.lastTickAt ?? 0) >= first + 9_000 ? s : undefined;
  }, 60_000, 'ten ticks fired');
  assert.ok(window.runsCreated >= 10);

  // Every process stops; nothing fires ticks for 15 s, more than SCHEDULE_LATE_MS.
  await stopAll();
  const before = await runsOf(id);
  const stoppedAt = await store.schedules.get(id);
  assert.ok(stoppedAt?.lastTickAt);
  const lastBefore = stoppedAt.lastTickAt;
  // Every tick from the first to the last one fired has exactly one run: none doubled, none missed.
  const ticks = before.map(tickOf);
  assert.equal(new Set(ticks).size, ticks.length, `a tick has two runs: ${ticks.map((x) => new Date(x).toISOString()).join(', ')}`);
  assert.deepEqual(ticks, Array.from({ length: (lastBefore - first) / 1000 + 1 }, (_, i) => first + i * 1000));
  assert.equal(stoppedAt.runsCreated, ticks.length);
  assert.ok(ticks.length >= 10);
  assert.ok(before.every((r) => r.idempotencyKey === `schedule:${id}:${r.labels[SCHEDULE_TICK_LABEL]}`));

  await sleep(SCHEDULE_LATE_MS + 5_000);
  const restartedAt = Date.now();
  const back = await startApi(db.url, ['--workers', '1']);
  procs.push(back);
  const after = await waitFor(async () => {
    const runs = await runsOf(id);
    return runs.length >= before.length + 3 ? runs : undefined;
  }, 60_000, 'ticks fire again after the restart');
  const newTicks = after.slice(before.length).map(tickOf);
  const [caughtUp, ...rest] = newTicks as [number, ...number[]];
  // One run for the missed ticks: the most recent one at the restart; none of those before it.
  assert.ok(caughtUp - lastBefore > SCHEDULE_LATE_MS, `the catch-up tick ${new Date(caughtUp).toISOString()} follows the last one before the outage (${new Date(lastBefore).toISOString()}) by more than ${SCHEDULE_LATE_MS} ms`);
  assert.ok(caughtUp >= Math.floor(restartedAt / 1000) * 1000, 'the catch-up tick is one of the latest, not an old one');
  assert.deepEqual(rest, rest.map((_, i) => caughtUp + (i + 1) * 1000), 'after it, every tick fires');
  assert.match(back.output(), new RegExp(`schedule ${id} missed its ticks from ${new Date(lastBefore + 1000).toISOString()} .*fired only the most recent`));

  // Every run, those of the window and after the restart, succeeds (the restarted API has a worker).
  const deleted = await api<ScheduleRecord>(back.ref, `/schedules/${id}`, { method: 'DELETE' });
  assert.equal(deleted.status, 200);
  const all = await runsOf(id);
  await waitFor(async () => {
    const rows = await Promise.all(all.map((r) => store.getRun(r.id)));
    return rows.every((r) => r?.status === 'succeeded') || undefined;
  }, 90_000, 'every scheduled run succeeded');
  t.diagnostic(`ticks fired: ${ticks.length} in the window, ${newTicks.length} after the restart (the first one catching up)`);
});
