/**
 * `runwarden schedules add|list|rm` against `runwarden start` (real processes, SQLite): a schedule
 * from a plan file fires, `list` shows its ticks and last run, `rm` stops it; bad input exits 2
 * with the API's code.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ScheduleRecord } from '../../src/domain/schedule.ts';
import { waitFor } from '../helpers/wait.ts';
import { killAll, runCli, startServer, type ServerProcess } from './helpers.ts';

describe('runwarden schedules', () => {
  let dir: string;
  let server: ServerProcess;
  let planFile: string;
  const cli = (...args: string[]) => runCli([...args, '--url', server.url]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rw-cli-sched-'));
    planFile = join(dir, 'plan.json');
    await writeFile(planFile, JSON.stringify({ plan: { goal: 'tick tock', steps: [{ name: 'a', tool: 'echo', inputs: { n: 1 } }] }, labels: { from: 'cli' } }));
    server = await startServer(['--data-dir', join(dir, 'data'), '--lab', 'off', '--workers', '1']);
  });
  after(async () => {
    killAll();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('add, list (next and last tick, last run), rm', async () => {
    const added = await cli('schedules', 'add', '--cron', '*/2 * * * * *', '--timezone', 'Europe/Oslo', planFile);
    assert.equal(added.code, 0, added.stderr);
    const [id, next] = added.stdout.trim().split('\n');
    assert.ok(id);
    assert.match(next ?? '', /^next tick \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(.+Z\)$/);

    const listed = await waitFor(async () => {
      const r = await cli('schedules', 'list', '--json');
      const s = (JSON.parse(r.stdout) as { schedules: ScheduleRecord[] }).schedules.find((x) => x.id === id);
      return s && s.runsCreated >= 1 ? s : undefined;
    }, 30_000, 'the schedule fired');
    const table = await cli('schedules', 'list');
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^ID\s+CRON\s+TIMEZONE\s+NEXT TICK\s+LAST TICK\s+LAST RUN\s+RUNS\s+GOAL$/);
    const row = lines.find((l) => l.startsWith(id));
    assert.ok(row, table.stdout);
    assert.match(row, /\*\/2 \* \* \* \* \*\s+Europe\/Oslo\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\S+\s+\d+\s+tick tock$/);

    const runs = await cli('runs', 'list', '--label', `schedule=${id}`, '--json');
    const page = JSON.parse(runs.stdout) as { runs: Array<{ id: string; labels: Record<string, string> }> };
    assert.ok(page.runs.some((r) => r.id === listed.lastRunId));
    assert.ok(page.runs.every((r) => r.labels.from === 'cli'));

    const removed = await cli('schedules', 'rm', id);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, new RegExp(`^deleted schedule ${id} \\(\\d+ runs? it created stay\\)$`, 'm'));
    assert.match((await cli('schedules', 'list')).stdout, /^no schedules$/m);
    const again = await cli('schedules', 'rm', id);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /NOT_FOUND/);
  });

  test('bad input exits 2: no --cron, a bad cron or time zone (with the API code), a plan file that is not JSON', async () => {
    const noCron = await cli('schedules', 'add', planFile);
    assert.equal(noCron.code, 2);
    assert.match(noCron.stderr, /--cron is required/);
    const badCron = await cli('schedules', 'add', '--cron', '* * *', planFile);
    assert.equal(badCron.code, 2);
    assert.match(badCron.stderr, /CRON_INVALID/);
    const badZone = await cli('schedules', 'add', '--cron', '0 9 * * *', '--timezone', 'Nowhere/Land', planFile);
    assert.equal(badZone.code, 2);
    assert.match(badZone.stderr, /TIMEZONE_UNKNOWN/);
    const notJson = join(dir, 'broken.json');
    await writeFile(notJson, '{ nope');
    const broken = await cli('schedules', 'add', '--cron', '0 9 * * *', notJson);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /not valid JSON/);
  });
});
