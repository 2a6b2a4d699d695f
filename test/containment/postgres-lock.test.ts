/**
 * A tool that holds a PostgreSQL row lock in an open transaction, while a second session of its own
 * waits on that row, and ignores its signal: once the step is cut, neither session is left in
 * pg_stat_activity (the lock is released with the connection), and the step is timed_out.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { waitFor } from '../helpers/engine.ts';
import { adminQuery, createTestDatabase, postgresSkip, type TestDatabase } from '../helpers/postgres.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { STUBBORN_FILE } from './fixtures/stubborn.ts';

const skip = await postgresSkip();
let db: TestDatabase;
let rt: TestRuntime;
let inline: TestRuntime;

before(async () => {
  if (skip) return;
  db = await createTestDatabase();
  rt = await startTestRuntime({ tools: [STUBBORN_FILE], abortGraceMs: 500 });
  inline = await startTestRuntime({ tools: [STUBBORN_FILE], abortGraceMs: 500, toolIsolation: 'inline' });
});

after(async () => {
  await rt?.close();
  await inline?.close();
  await db?.drop();
});

const runtimes = (): { thread: TestRuntime; inline: TestRuntime } => ({ thread: rt, inline });

const sessions = async (app: string): Promise<Array<{ pid: number; state: string; wait_event_type: string | null }>> =>
  adminQuery('SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = $1', [app]);

for (const mode of ['thread', 'inline'] as const) test(`a row lock held by a cut step is released (${mode}): its sessions are gone from pg_stat_activity`, { skip }, async () => {
  const rt = mode === 'thread' ? runtimes().thread : runtimes().inline;
  const app = `rw_contain_${mode}_${process.pid}_${Date.now()}`;
  const run = await rt.submit({ plan: { steps: [{ name: 'lock', tool: 'pg_lock', inputs: { url: db.url, app }, timeoutMs: 2000, retries: { max: 0 } }] } });
  // Both sessions exist while the step runs: one holds the lock, the other waits on it.
  const live = await waitFor(async () => {
    const s = await sessions(app);
    return s.length === 2 && s.some((x) => x.wait_event_type === 'Lock') ? s : undefined;
  }, 15_000, 'the two sessions, one waiting on the lock');
  assert.equal(live.length, 2);
  const done = await rt.waitRun(run.id, 20_000);
  assert.equal(done.steps[0]?.status, 'timed_out');
  const step = await rt.engine.getStep(run.id, 'lock');
  const overshoot = Date.parse(step.finishedAt as string) - Date.parse(step.attemptsDetail[0]?.deadlineAt as string);
  assert.ok(overshoot <= 500 + 1000, `ended ${overshoot} ms after its deadline`);
  // The server ends a backend when its connection closes; give it a moment, bounded.
  await waitFor(async () => ((await sessions(app)).length === 0 ? true : undefined), 1000, 'no session of the step left');
  // And the row is free: a fresh session locks it at once (lock_timeout would fail it otherwise).
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query("SET lock_timeout = '500ms'");
    const r = await c.query('UPDATE contain_lock SET n = n + 1 WHERE id = 1');
    assert.equal(r.rowCount, 1);
  } finally {
    await c.end();
  }
  const report = step.hangReports[0] as { containment?: { toolThread?: { terminated: boolean }; socketsClosed: number }; pending: Array<{ kind: string; peer?: string }>; notes: string[] };
  // A tool thread's sockets close with it; on the worker's loop they are destroyed one by one.
  if (mode === 'thread') assert.equal(report.containment?.toolThread?.terminated, true);
  else assert.ok((report.containment?.socketsClosed ?? 0) >= 2, JSON.stringify(report.containment));
  // The report lists the database sockets (unless the tool thread was too slow to send its own,
  // and the worker wrote it from /proc).
  if (!report.notes.some((n) => n.includes('did not answer'))) assert.ok(report.pending.some((p) => p.kind === 'socket'), `the report lists the database sockets: ${JSON.stringify(report.pending)}`);
});
