/**
 * Several processes on one SQLite data directory, each running a scheduler (docs/schedules.md):
 * two `runwarden start` APIs and one `runwarden worker` host. A per-second schedule fires for 6 s:
 * every tick has exactly one run, and every run succeeds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SCHEDULE_TICK_LABEL, type ScheduleRecord } from '../../src/domain/schedule.ts';
import type { RunRecord } from '../../src/domain/records.ts';
import { waitFor } from '../helpers/wait.ts';
import { BIN, cleanEnv, killAll, NODE, startServer, type ServerProcess } from './helpers.ts';

const dirs: string[] = [];
after(async () => {
  killAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function json<T>(url: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } }),
    signal: AbortSignal.timeout(15_000),
  });
  return (await res.json()) as T;
}

test('two APIs and a worker host on one SQLite file: a per-second schedule has one run per tick', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rw-sched-sqlite-'));
  dirs.push(dir);
  const data = join(dir, 'data');
  const servers: ServerProcess[] = [];
  servers.push(await startServer(['--data-dir', data, '--lab', 'off', '--workers', '1']));
  servers.push(await startServer(['--data-dir', data, '--lab', 'off', '--workers', '0']));
  const host = spawn(NODE, [BIN, 'worker', '--data-dir', data, '--workers', '1'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let hostOut = '';
  host.stdout.on('data', (d: Buffer) => (hostOut += d.toString()));
  host.stderr.on('data', (d: Buffer) => (hostOut += d.toString()));
  const hostExit = new Promise((resolve) => host.once('close', resolve));
  t.after(async () => {
    host.kill('SIGTERM');
    await hostExit;
    for (const s of servers) await s.stop();
  });
  await waitFor(() => /ready/.test(hostOut) || undefined, 30_000, 'the worker host is ready');
  const [a, b] = servers.map((s) => s.url) as [string, string];

  const s = await json<ScheduleRecord>(a, '/schedules', { body: { cron: '* * * * * *', plan: { steps: [{ name: 'a', tool: 'echo' }] } } });
  const first = Date.parse(s.nextTickAt ?? '');
  await waitFor(async () => ((await json<ScheduleRecord>(b, `/schedules/${s.id}`)).lastTickAt ?? '') >= new Date(first + 5_000).toISOString() || undefined, 60_000, 'six ticks fired');
  const removed = await json<ScheduleRecord>(b, `/schedules/${s.id}`, { method: 'DELETE' });
  const runs = (await json<{ runs: RunRecord[] }>(a, `/runs?label=schedule:${s.id}&limit=500`)).runs;
  const ticks = runs.map((r) => Date.parse(r.labels[SCHEDULE_TICK_LABEL] ?? '')).sort((x, y) => x - y);
  assert.equal(new Set(ticks).size, ticks.length, 'no tick has two runs');
  assert.deepEqual(ticks, Array.from({ length: ticks.length }, (_, i) => first + i * 1000), 'no tick is missing');
  assert.equal(ticks.length, removed.runsCreated);
  assert.ok(ticks.length >= 6);
  await waitFor(async () => {
    const all = await Promise.all(runs.map((r) => json<RunRecord>(a, `/runs/${r.id}`)));
    return all.every((r) => r.status === 'succeeded') || undefined;
  }, 60_000, 'every run succeeded');
});
