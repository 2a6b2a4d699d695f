/**
 * Cron expressions, time zones and the catch-up rule (src/domain/schedule.ts), without a store.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import { canonicalTimezone, CronSchedule, parseSchedule, planTicks, SCHEDULE_LATE_MS } from '../../src/domain/schedule.ts';

const NOW = Date.parse('2026-03-01T12:00:00.400Z');
const at = (iso: string): number => Date.parse(iso);
const isoAll = (ts: number[]): string[] => ts.map((t) => new Date(t).toISOString());

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RunwardenError, String(err));
    assert.equal(err.status, 400);
    return err.code;
  }
  return undefined;
}

describe('cron expressions', () => {
  test('5 fields tick on minutes, 6 fields (seconds first) on seconds', () => {
    assert.equal(new Date(parseSchedule('*/15 * * * *', 'UTC', NOW).next(NOW) ?? 0).toISOString(), '2026-03-01T12:15:00.000Z');
    assert.equal(new Date(parseSchedule('*/20 * * * * *', 'UTC', NOW).next(NOW) ?? 0).toISOString(), '2026-03-01T12:00:20.000Z');
    assert.equal(parseSchedule('  0   9 * *   1-5 ', 'UTC', NOW).cron, '0 9 * * 1-5');
  });

  test('bad expressions are CRON_INVALID, with the reason', () => {
    for (const bad of ['* * * *', '* * * * * * *', '61 * * * *', 'every day', '0 0 30 2 *']) assert.equal(code(() => parseSchedule(bad, 'UTC', NOW)), 'CRON_INVALID', bad);
    assert.throws(() => parseSchedule('61 * * * *', 'UTC', NOW), /minute: 61/);
    assert.throws(() => parseSchedule('0 0 30 2 *', 'UTC', NOW), /never fires/);
  });

  test('time zones are IANA names, spelled canonically; others are TIMEZONE_UNKNOWN', () => {
    assert.equal(canonicalTimezone('europe/oslo'), 'Europe/Oslo');
    assert.equal(canonicalTimezone('UTC'), 'UTC');
    for (const bad of ['Mars/Base', 'CEST+1', '']) assert.equal(code(() => parseSchedule('* * * * *', bad, NOW)), 'TIMEZONE_UNKNOWN', bad);
  });

  test('daylight saving: 09:00 in New York is 14:00 UTC in winter and 13:00 in summer', () => {
    const s = parseSchedule('0 9 * * *', 'America/New_York', NOW);
    assert.deepEqual(isoAll([s.next(at('2026-03-07T00:00:00Z')) ?? 0, s.next(at('2026-03-08T00:00:00Z')) ?? 0]), ['2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z']);
  });

  test('daylight saving: a time skipped in spring fires once (an hour on), one repeated in autumn fires once', () => {
    const s = new CronSchedule('30 2 * * *', 'Europe/Oslo');
    // 29 March 2026: 02:00 -> 03:00. 25 October 2026: 03:00 -> 02:00.
    assert.deepEqual(isoAll([s.next(at('2026-03-28T12:00:00Z')) ?? 0, s.next(at('2026-03-29T12:00:00Z')) ?? 0]), ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    assert.deepEqual(isoAll([s.next(at('2026-10-24T12:00:00Z')) ?? 0, s.next(at('2026-10-25T00:30:00Z')) ?? 0]), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });
});

describe('the catch-up rule', () => {
  const everySecond = new CronSchedule('* * * * * *', 'UTC');
  const due = at('2026-03-01T12:00:00Z');

  test('nothing before the due tick; the due tick itself at once', () => {
    assert.deepEqual(planTicks(everySecond, due, due - 1), { fire: [], skipped: false });
    assert.deepEqual(planTicks(everySecond, due, due), { fire: [due], skipped: false });
  });

  test('a scheduler late by up to SCHEDULE_LATE_MS fires every tick since, oldest first', () => {
    const plan = planTicks(everySecond, due, due + SCHEDULE_LATE_MS);
    assert.equal(plan.fire.length, SCHEDULE_LATE_MS / 1000 + 1);
    assert.deepEqual(plan.fire.slice(0, 2), [due, due + 1000]);
    assert.equal(plan.skipped, false);
  });

  test('later than that, only the most recent missed tick fires', () => {
    assert.deepEqual(planTicks(everySecond, due, due + 86_400_000 + 700), { fire: [due + 86_400_000], skipped: true });
    const hourly = new CronSchedule('0 * * * *', 'UTC');
    // Due at 12:00, down until 12:20: the 12:00 tick is the most recent, and fires late.
    assert.deepEqual(planTicks(hourly, due, due + 1_200_000), { fire: [due], skipped: false });
    assert.deepEqual(planTicks(hourly, due, due + 3 * 3_600_000 + 5), { fire: [due + 3 * 3_600_000], skipped: true });
  });
});
