/**
 * The scale-out deployment as users run it: one `runwarden start` (API, no workers of its own) and
 * three `runwarden worker` processes on one PostgreSQL database; one worker is SIGKILLed mid-run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptRecord, EventRecord, RunWithSteps } from '../../src/domain/records.ts';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/wait.ts';
import { api, startApi, startWorker, stopAll, type Proc } from './processes.ts';

const skip = await postgresSkip();


test('API + 3 worker processes run a 600-step DAG; one worker SIGKILLed mid-run; the run succeeds, every step finished once', { skip, timeout: 120_000 }, async (t) => {
  const db = await createTestDatabase();
  const store = new PostgresStore({ url: db.url, poolMax: 2 });
  const procs: Proc[] = [];
  t.after(async () => {
    // On failure, what the processes said is the first thing to read.
    for (const p of procs) t.diagnostic(`--- ${p.kind} ${p.ref} (last lines)\n${p.output().split('\n').slice(-15).join('\n')}`);
    await stopAll();
    await store.close();
    await db.drop();
  });
  const api0 = await startApi(db.url, ['--workers', '0']);
  procs.push(api0);
  // A 3 s lease: short enough that the killed worker's steps come back quickly, long enough that a
  // surviving worker whose loop a loaded machine stalls for a second or two keeps its leases.
  const workerArgs = ['--lease-ms', '3000', '--heartbeat-ms', '500', '--concurrency', '24'];
  const workers = await Promise.all([startWorker(db.url, workerArgs), startWorker(db.url, workerArgs), startWorker(db.url, workerArgs)]);
  procs.push(...workers);
  assert.equal(new Set(workers.map((w) => w.ref)).size, 3);

  const steps: Array<Record<string, unknown>> = [];
  for (let c = 0; c < 60; c++) {
    for (let i = 0; i < 10; i++) {
      // Durations differ per chain so that a worker's steps do not all finish at the same moment.
      steps.push({ name: `c${c}_${i}`, tool: 'sleep', inputs: { ms: 50 + ((c * 7 + i * 3) % 11) * 10 }, ...(i > 0 ? { dependsOn: [`c${c}_${i - 1}`] } : {}), timeoutMs: 20_000 });
    }
  }
  const created = await api<RunWithSteps>(api0.ref, '/runs', { body: { plan: { goal: '60 chains of 10', steps } } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const runId = created.body.id;

  // Kill the busiest worker once the run is well under way and that worker is holding steps.
  const victim = await waitFor(
    async () => {
      const rows = await store.getRunSteps(runId);
      const done = rows.filter((s) => s.status === 'succeeded').length;
      if (done < 150) return undefined;
      // Worker ids are `<process id>-<loop>`; count per process.
      const holding = new Map<string, number>();
      for (const s of rows) {
        const proc = s.status === 'running' ? workers.find((w) => s.workerId?.startsWith(`${w.ref}-`)) : undefined;
        if (proc) holding.set(proc.ref, (holding.get(proc.ref) ?? 0) + 1);
      }
      const [id, n] = [...holding.entries()].sort((a, b) => b[1] - a[1])[0] ?? [];
      return id && n && n >= 3 ? { id, n, done } : undefined;
    },
    60_000,
    'the run to be under way with a worker holding steps',
  );
  const killed = workers.find((w) => w.ref === victim.id);
  assert.ok(killed, `worker ${victim.id} is one of ours`);
  // `runwarden worker` is a supervisor and its worker process: kill both at once, as a machine that
  // dies would. The supervisor goes first, in the same tick as its worker: killed the other way
  // round, a supervisor that sees its worker's exit hands the attempts over at once, and the steps
  // are no longer the dead worker's when they are counted below.
  const victimPids = (await store.listWorkers()).filter((w) => w.id.startsWith(`${victim.id}-`)).map((w) => w.pid);
  assert.ok(victimPids.length > 0, 'the victim\'s worker process is registered');
  const supervisorGone = killed.kill('SIGKILL');
  for (const pid of new Set(victimPids)) process.kill(pid, 'SIGKILL');
  await supervisorGone;
  const killedAt = Date.now();
  // What the dead worker holds now is exactly what must come back as lost attempts.
  const ofVictim = (workerId: string | null): boolean => workerId?.startsWith(`${victim.id}-`) === true;
  const held = (await store.getRunSteps(runId)).filter((s) => s.status === 'running' && ofVictim(s.workerId)).length;
  assert.ok(held > 0, 'the worker was killed while holding steps');

  const run = await waitFor(
    async () => {
      const r = (await api<RunWithSteps>(api0.ref, `/runs/${runId}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    },
    90_000,
    'the run to finish',
  );
  // GET /runs/:id carries the first 500 steps inline; the rest are read a page at a time.
  const finalSteps: RunWithSteps['steps'] = [];
  for (let after: number | null = -1; after !== null; ) {
    const page: { steps: RunWithSteps['steps']; nextAfter: number | null } = (
      await api<{ steps: RunWithSteps['steps']; nextAfter: number | null }>(api0.ref, after < 0 ? `/runs/${runId}/steps` : `/runs/${runId}/steps?after=${after}`)
    ).body;
    finalSteps.push(...page.steps);
    after = page.nextAfter;
  }
  assert.equal(run.status, 'succeeded', JSON.stringify(finalSteps.filter((s) => s.status !== 'succeeded').slice(0, 3)));
  assert.equal(run.stepsTotal, 600);
  assert.equal(finalSteps.length, 600);
  assert.equal(new Set(finalSteps.map((s) => s.name)).size, 600);
  assert.ok(finalSteps.every((s) => s.status === 'succeeded'));

  const events = (await api<EventRecord[] | { events: EventRecord[] }>(api0.ref, `/runs/${runId}/events?limit=10000`)).body;
  const list = Array.isArray(events) ? events : events.events;
  list.forEach((e, i) => assert.equal(e.seq, i + 1, 'seq 1..n without gaps'));
  const finished = list.filter((e) => e.type === 'step.finished');
  assert.equal(finished.length, 600, 'exactly one step.finished per step');
  assert.equal(new Set(finished.map((e) => e.stepName)).size, 600);
  assert.equal(list.filter((e) => e.type === 'run.finished').length, 1);

  // No step had two attempts running at once, unless the first was lost (its worker was killed).
  let lost = 0;
  for (const s of finalSteps) {
    const attempts: AttemptRecord[] = await store.listAttempts(runId, s.name);
    assert.equal(attempts.at(-1)?.status, 'succeeded');
    for (let i = 0; i < attempts.length - 1; i++) {
      const a = attempts[i] as AttemptRecord;
      const next = attempts[i + 1] as AttemptRecord;
      if (a.status === 'lost') {
        lost++;
        assert.ok(ofVictim(a.workerId), `${s.name}: only the killed worker lost attempts (${a.workerId})`);
        continue;
      }
      assert.ok(a.finishedAt && Date.parse(a.finishedAt) <= Date.parse(next.startedAt), `${s.name}: attempt ${a.attempt} overlaps attempt ${next.attempt}`);
    }
  }
  assert.equal(lost, held, `the ${held} steps the killed worker held came back as lost attempts`);
  // Every surviving worker did work after the kill, and the reaper cleaned up: nothing is stuck.
  const stuck = (await api<{ steps: unknown[] }>(api0.ref, '/steps/stuck')).body;
  assert.deepEqual(stuck.steps, []);
  const lastFinish = Math.max(...finished.map((e) => Date.parse(e.ts)));
  t.diagnostic(`killed ${victim.id} holding ${held} steps after ${victim.done} were done; ${lost} lost attempts; run finished ${lastFinish - killedAt} ms after the kill`);
});
