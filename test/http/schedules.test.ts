/**
 * Schedules over real HTTP against a real runtime (SQLite, its own scheduler, an in-process
 * worker): a per-second schedule creates runs that succeed and are found by its label; bad
 * requests are coded 400s; unknown ids 404; a deleted schedule fires no more.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunRecord } from '../../src/domain/records.ts';
import type { ScheduleRecord } from '../../src/domain/schedule.ts';
import { createClient, isApiError } from '../../src/client/index.ts';
import { http, startTestRuntime, waitFor } from './helpers.ts';
import type { TestRuntime } from './helpers.ts';

const PLAN = { goal: 'nightly', steps: [{ name: 'a', tool: 'echo', inputs: { hi: 1 } }] };

describe('schedules API', () => {
  let rt: TestRuntime;
  let url: string;
  before(async () => {
    rt = await startTestRuntime();
    url = rt.url;
  });
  after(async () => {
    await rt.close();
  });

  const runsOf = async (id: string): Promise<RunRecord[]> => (await http<{ runs: RunRecord[] }>(url, `/runs?label=schedule:${id}&limit=500`)).body.runs;

  test('a schedule every second creates runs that succeed, each with its tick; list, get and delete', async () => {
    const res = await http<ScheduleRecord>(url, '/schedules', { body: { cron: '* * * * * *', timezone: 'Europe/Oslo', plan: PLAN, labels: { team: 'ops' } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const s = res.body;
    assert.equal(res.headers.get('location'), `/schedules/${s.id}`);
    assert.equal(s.cron, '* * * * * *');
    assert.equal(s.timezone, 'Europe/Oslo');
    assert.ok(Date.parse(s.nextTickAt ?? '') > Date.parse(s.createdAt));

    const runs = await waitFor(async () => {
      const r = await runsOf(s.id);
      return r.filter((x) => x.status === 'succeeded').length >= 2 ? r : undefined;
    }, 30_000, 'two scheduled runs succeeded');
    const ticks = runs.map((r) => r.labels.scheduleTick ?? '');
    assert.equal(new Set(ticks).size, ticks.length, `a tick ran twice: ${ticks.join(', ')}`);
    for (const r of runs) {
      assert.equal(r.labels.team, 'ops');
      assert.equal(r.goal, 'nightly');
      assert.equal(r.idempotencyKey, `schedule:${s.id}:${r.labels.scheduleTick}`);
    }

    const listed = await http<{ schedules: ScheduleRecord[] }>(url, '/schedules');
    assert.equal(listed.status, 200);
    const mine = listed.body.schedules.find((x) => x.id === s.id);
    assert.ok(mine && mine.runsCreated >= 2 && mine.lastRunId !== null && mine.lastTickAt !== null);
    const got = await http<ScheduleRecord>(url, `/schedules/${s.id}`);
    assert.deepEqual(got.body.plan, PLAN);

    const del = await http<ScheduleRecord>(url, `/schedules/${s.id}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(del.body.id, s.id);
    const count = (await runsOf(s.id)).length;
    assert.equal((await http(url, `/schedules/${s.id}`)).status, 404);
    // Two more seconds of ticks would have fired by now; none did.
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal((await runsOf(s.id)).length, count);
  });

  test('bad requests are 400 with a code and the path of the problem', async () => {
    const cases: Array<[unknown, string, string]> = [
      [{ cron: '* * * *', plan: PLAN }, 'CRON_INVALID', 'cron'],
      [{ cron: '0 0 30 2 *', plan: PLAN }, 'CRON_INVALID', 'cron'],
      [{ cron: '0 9 * * *', timezone: 'Mars/Olympus', plan: PLAN }, 'TIMEZONE_UNKNOWN', 'timezone'],
      [{ cron: '0 9 * * *', plan: { steps: [{ name: 'a', tool: 'nope' }] } }, 'PLAN_INVALID', 'plan.steps.0.tool'],
      [{ cron: '0 9 * * *', plan: PLAN, labels: { schedule: 'x' } }, 'PLAN_INVALID', 'labels.schedule'],
      [{ cron: '0 9 * * *' }, 'INVALID_BODY', 'plan'],
      [{ plan: PLAN }, 'INVALID_BODY', 'cron'],
      [{ cron: '0 9 * * *', plan: PLAN, idempotencyKey: 'k' }, 'INVALID_BODY', 'idempotencyKey'],
      [{ cron: '0 9 * * *', plan: PLAN, color: 'red' }, 'PLAN_INVALID', ''],
      [[1], 'INVALID_BODY', ''],
    ];
    for (const [body, code, path] of cases) {
      const res = await http<{ error: { code: string; details?: Array<{ path?: string }> } }>(url, '/schedules', { body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, code, JSON.stringify(res.body));
      assert.ok((res.body.error.details ?? []).some((d) => (d.path ?? '') === path), `${JSON.stringify(body)}: ${JSON.stringify(res.body.error.details)}`);
    }
    const empty = await http<{ error: { code: string } }>(url, '/schedules', { method: 'POST' });
    assert.equal(empty.body.error.code, 'EMPTY_BODY');
    assert.equal((await http<{ schedules: unknown[] }>(url, '/schedules')).body.schedules.length, 0, 'nothing was stored');
  });

  test('the TypeScript client creates, lists, reads and deletes schedules; refusals are typed', async () => {
    const client = createClient({ baseUrl: url });
    const s = await client.schedules.create({ cron: '0 6 * * *', timezone: 'Asia/Tokyo', plan: PLAN, priority: 5, concurrency: { key: 'nightly', limit: 1 } });
    assert.equal(s.priority, 5);
    assert.deepEqual(s.concurrency, { key: 'nightly', limit: 1 });
    // 06:00 in Tokyo is 21:00 UTC.
    assert.match(s.nextTickAt ?? '', /T21:00:00\.000Z$/);
    assert.deepEqual((await client.schedules.list()).map((x) => x.id), [s.id]);
    assert.equal((await client.schedules.get(s.id)).cron, '0 6 * * *');
    assert.equal((await client.schedules.delete(s.id)).id, s.id);
    await assert.rejects(client.schedules.get(s.id), (err: unknown) => isApiError(err) && err.code === 'NOT_FOUND' && err.status === 404);
    await assert.rejects(client.schedules.create({ cron: '0 6 * * *', timezone: 'Tokyo', plan: PLAN }), (err: unknown) => isApiError(err) && err.code === 'TIMEZONE_UNKNOWN');
  });

  test('unknown schedules are 404 NOT_FOUND', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await http<{ error: { code: string } }>(url, '/schedules/nope', { method });
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'NOT_FOUND');
    }
  });
});
