/**
 * Restarting crashed workers: a backoff that doubles per crash in a row, capped, reset by a stable
 * run; a crash-looping worker is restarted at that pace (not in a tight loop) and the supervisor
 * stops cleanly in the middle of it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Transitions } from '../../src/engine/transitions.ts';
import { SqliteStore } from '../../src/store/sqlite/index.ts';
import { RestartBackoff } from '../../src/supervisor/backoff.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import { testConfig } from '../helpers/runtime.ts';
import { assertNoOrphans, waitFor } from './helpers.ts';

test('RestartBackoff doubles per crash in a row up to its cap, and starts over after a stable run', () => {
  const b = new RestartBackoff({ initialMs: 100, maxMs: 1000, stableMs: 60_000 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.next(500)), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(b.streak, 6);
  assert.equal(b.next(60_000), 100, 'a worker that was up for a minute starts the sequence over');
  assert.equal(b.next(10), 200);
});

test('a worker that crashes at start is restarted with a growing delay, never in a tight loop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rw-sup-backoff-'));
  const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
  await store.migrate();
  const lines: string[] = [];
  const sup = new Supervisor({
    config: testConfig(dir, { restartBackoffMs: 50, restartBackoffMaxMs: 400 }),
    core: new Transitions(store),
    count: 1,
    env: { PATH: process.env.PATH },
    cwd: dir,
    log: (l) => lines.push(l),
    entry: join(import.meta.dirname, 'fixtures', 'crash-at-start.ts'),
  });
  t.after(async () => {
    await sup.stop();
    await store.close();
    await assertNoOrphans(dir, 5000);
    rmSync(dir, { recursive: true, force: true });
  });
  await sup.start();
  await waitFor(() => (sup.status().totals.restarts >= 5 ? true : undefined), 10_000, 'five restarts');
  const delays = lines.map((l) => /restarting in (\d+) ms/.exec(l)?.[1]).filter((x): x is string => x !== undefined).map(Number);
  assert.deepEqual(delays.slice(0, 6), [50, 100, 200, 400, 400, 400].slice(0, Math.min(6, delays.length)));
  assert.ok(lines.some((l) => l.includes('crashing at start on purpose')), 'the worker\'s own lines are passed on');
  const s = sup.status();
  assert.equal(s.workers[0]?.lastExit?.classification, 'worker.crashed');
  assert.equal(s.workers[0]?.lastExit?.code, 3);
  assert.equal(s.alive, 0);
});
