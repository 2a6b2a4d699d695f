/**
 * Tx.updateSteps with whole batches: "applies each update whose expectations hold; returns which
 * did (same order)", exactly as if the updates were applied one after another. PostgreSQL sends one
 * set-based UPDATE per patch shape; SQLite one statement per update. Written against the store
 * only (no engine), so the rows and tokens are the test's own.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { advanceBook } from '../../src/engine/run-books.ts';
import type { Store, StepPatch, StepRow, StepUpdate } from '../../src/store/store.ts';
import { conformance } from './harness.ts';

const T0 = 1_750_000_000_000;
const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const key = (r: { runId: string; name: string }): string => `${r.runId}/${r.name}`;

interface Seed {
  /** Steps claimed (running, with a lease token). */
  running: string[];
  /** Steps left queued but not ready (no token). */
  queued?: string[];
  /** Steps waiting on a dependency. */
  pending?: string[];
}

/** Inserts the runs and steps, claims the running ones; returns every step row by `run/name`. */
async function seed(store: Store, runs: Record<string, Seed>): Promise<Map<string, StepRow>> {
  await store.transaction(async (tx) => {
    for (const [runId, s] of Object.entries(runs)) {
      const names = [...s.running, ...(s.queued ?? []), ...(s.pending ?? [])];
      await tx.insertRun({ id: runId, goal: null, labels: {}, idempotencyKey: null, plan: {}, stepsTotal: names.length, createdAt: T0 });
      await tx.insertSteps(
        names.map((name, idx) => {
          const pending = s.pending?.includes(name) ?? false;
          return {
            runId,
            name,
            idx,
            tool: 'echo',
            status: pending ? 'pending' : 'queued',
            dependsOn: pending ? ['x'] : [],
            dependents: [],
            inputs: { name, idx },
            resolvedInputs: pending ? null : { name, idx },
            pendingDeps: pending ? 1 : 0,
            timeoutMs: 5000,
            retries: { max: 3, backoffMs: 10, maxBackoffMs: 100 },
            readyAt: s.running.includes(name) ? T0 : null,
          };
        }),
      );
    }
  });
  const claimed = await store.transaction((tx) => tx.claimReady({ workerId: 'w1', limit: 10_000, now: T0 + 10, leaseMs: 1000 }));
  assert.equal(claimed.length, Object.values(runs).reduce((n, s) => n + s.running.length, 0));
  const rows = new Map<string, StepRow>();
  for (const runId of Object.keys(runs)) for (const r of await store.getRunSteps(runId)) rows.set(key(r), r);
  return rows;
}

/** The row as the patch leaves it (what one UPDATE with this patch writes). */
function patched(row: StepRow, patch: StepPatch): StepRow {
  const out: StepRow = { ...row };
  for (const [k, v] of Object.entries(patch) as Array<[keyof StepPatch, unknown]>) {
    switch (k) {
      case 'readyAt':
      case 'startedAt':
      case 'finishedAt':
      case 'leaseExpiresAt':
      case 'deadlineAt':
        out[k] = iso(v as number | null);
        break;
      case 'outputs':
        out.outputs = v ?? null;
        break;
      default:
        (out as unknown as Record<string, unknown>)[k] = v ?? null;
    }
  }
  return out;
}

const token = (rows: Map<string, StepRow>, k: string): string => {
  const t = rows.get(k)?.leaseToken;
  assert.ok(t, `${k} holds a lease`);
  return t;
};

/** A completion as the engine writes it. */
const complete = (runId: string, name: string, expectToken: string, outputs: unknown, status: 'succeeded' | 'failed' = 'succeeded', error: StepPatch['error'] = null): StepUpdate => ({
  runId,
  name,
  expectStatus: ['running'],
  expectToken,
  patch: { status, outputs, error, finishedAt: T0 + 100, leaseToken: null, leaseExpiresAt: null, workerId: null },
});

/** A retry as the engine writes it (`lostAttempts` only when the lease was lost). */
const retry = (runId: string, name: string, expectToken: string, readyAt: number, error: StepPatch['error'], lostAttempts?: number): StepUpdate => ({
  runId,
  name,
  expectStatus: ['running'],
  expectToken,
  patch: { status: 'queued', readyAt, leaseToken: null, leaseExpiresAt: null, workerId: null, error, ...(lostAttempts !== undefined ? { lostAttempts } : {}) },
});

/** Every step of the runs, by `run/name`. */
async function rowsOf(store: Store, runIds: string[]): Promise<Map<string, StepRow>> {
  const rows = new Map<string, StepRow>();
  for (const runId of runIds) for (const r of await store.getRunSteps(runId)) rows.set(key(r), r);
  return rows;
}

/** Counts the `UPDATE steps` statements sent to PostgreSQL while `fn` runs (every pg query call is one). */
async function countStepUpdates<T>(fn: () => Promise<T>): Promise<{ result: T; statements: number }> {
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;
  let statements = 0;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: unknown } | null)?.text;
    if (typeof text === 'string' && /^\s*UPDATE steps\b/.test(text)) statements++;
    return original.apply(this, args);
  };
  try {
    return { result: await fn(), statements };
  } finally {
    proto.query = original;
  }
}

conformance('updateSteps batches', (it) => {
  it('a batch of mixed shapes applies exactly the updates whose expectations hold, in input order', async (ctx) => {
    const before = await seed(ctx.store, {
      r1: { running: ['a0', 'a1', 'a2', 'a3', 'a4', 'a5'], queued: ['q0'], pending: ['p0', 'p1'] },
      r2: { running: ['b0', 'b1', 'b2', 'b3', 'b4'] },
    });
    const tok = (k: string): string => token(before, k);
    const boom = { code: 'TOOL_FAILED', message: 'boom "quoted" \\ back\nslash ✓', retryable: true, data: { z: 1, a: [null, 2.5] } };
    const updates: StepUpdate[] = [
      // 0: a completion with a nested object (key order must survive).
      complete('r1', 'a0', tok('r1/a0'), { z: 'last', a: [1, 'two', { y: null }], text: 'héllo 🚀 \u0000 nul' }),
      // 1: a retry with an error object.
      retry('r2', 'b0', tok('r2/b0'), T0 + 200, boom),
      // 2: a completion with a token that is not the step's: not applied.
      complete('r1', 'a1', 'not-the-token', { bad: true }),
      // 3: a completion whose outputs are null: SQL null, read back as null.
      complete('r2', 'b1', tok('r2/b1'), null),
      // 4: a retry after a lost lease (one more key: another shape).
      retry('r1', 'a2', tok('r1/a2'), T0 + 300, null, 1),
      // 5: a completion with another running step's token: not applied.
      complete('r1', 'a5', tok('r2/b4'), { bad: true }),
      // 6: no token expected; the step is queued, not running: not applied.
      { runId: 'r1', name: 'q0', expectStatus: ['running'], patch: { cancelRequested: true } },
      // 7: the same shape on running steps: applied.
      { runId: 'r1', name: 'a3', expectStatus: ['running'], patch: { cancelRequested: true } },
      { runId: 'r2', name: 'b2', expectStatus: ['running'], patch: { cancelRequested: true } },
      // 9: a failure: the completions' shape, null outputs and an error.
      complete('r2', 'b3', tok('r2/b3'), null, 'failed', { code: 'E', message: 'no' }),
      // 10: a string output (JSON text of a string, not the string).
      complete('r2', 'b4', tok('r2/b4'), 'just a string'),
      // 11: queuing a pending step (expected states in either order are one set).
      { runId: 'r1', name: 'p0', expectStatus: ['pending'], patch: { status: 'queued', resolvedInputs: { got: { deep: [1] } }, readyAt: T0 + 400 } },
      // 12: the same shape on a running step: not applied.
      { runId: 'r1', name: 'a4', expectStatus: ['pending'], patch: { status: 'queued', resolvedInputs: { got: 2 }, readyAt: T0 + 500 } },
      // 13: skipping from one of two states.
      { runId: 'r1', name: 'p1', expectStatus: ['queued', 'pending'], patch: { status: 'skipped', finishedAt: T0 + 600, error: null } },
      // 14: a step that does not exist: not applied.
      complete('r9', 'nope', 'x', null),
    ];
    const expected = [true, true, false, true, true, false, false, true, true, true, true, true, false, true, false];
    const ok = await ctx.store.transaction((tx) => tx.updateSteps(updates));
    assert.deepEqual(ok, expected);

    const after = await rowsOf(ctx.store, ['r1', 'r2']);
    assert.equal(after.size, before.size);
    const want = new Map(before);
    updates.forEach((u, i) => {
      const k = key(u);
      const row = want.get(k);
      if (expected[i] && row) want.set(k, patched(row, u.patch));
    });
    for (const [k, row] of want) assert.deepEqual(after.get(k), row, `row ${k}`);

    // Spot checks on the encodings, beyond "as patched".
    assert.equal(JSON.stringify(after.get('r1/a0')?.outputs), JSON.stringify(updates[0]?.patch.outputs));
    assert.deepEqual(after.get('r2/b0')?.error, boom);
    assert.equal(after.get('r2/b0')?.status, 'queued');
    assert.equal(after.get('r2/b0')?.leaseToken, null);
    assert.equal(after.get('r2/b1')?.outputs, null);
    assert.equal(after.get('r2/b4')?.outputs, 'just a string');
    assert.equal(after.get('r1/a2')?.lostAttempts, 1);
    assert.equal(after.get('r1/a2')?.attempts, 1);
    assert.equal(after.get('r1/a3')?.cancelRequested, true);
    assert.equal(after.get('r1/q0')?.cancelRequested, false);
    assert.deepEqual(after.get('r1/a1'), before.get('r1/a1'));
    assert.deepEqual(after.get('r1/a5'), before.get('r1/a5'));
    assert.deepEqual(after.get('r1/a4'), before.get('r1/a4'));
  });

  it('a step listed more than once is updated as by one update after another', async (ctx) => {
    const before = await seed(ctx.store, { r1: { running: ['a0', 'a1', 'a2', 'a3'] } });
    const tok = (k: string): string => token(before, k);
    const updates: StepUpdate[] = [
      // a0: running -> queued, then (another shape) its ready time moves, then a completion
      // expecting it running no longer applies.
      retry('r1', 'a0', tok('r1/a0'), T0 + 50, null),
      { runId: 'r1', name: 'a0', expectStatus: ['queued'], patch: { readyAt: T0 + 60 } },
      complete('r1', 'a1', tok('r1/a1'), { n: 1 }),
      complete('r1', 'a0', tok('r1/a0'), { n: 0 }),
      // a2: the same shape twice, both applying: the second one's values win.
      { runId: 'r1', name: 'a2', expectStatus: ['running', 'queued'], patch: { status: 'queued', readyAt: T0 + 70, leaseToken: null } },
      { runId: 'r1', name: 'a2', expectStatus: ['running', 'queued'], patch: { status: 'queued', readyAt: T0 + 80, leaseToken: null } },
      // a3: completed, then a second completion with the same token finds it finished.
      complete('r1', 'a3', tok('r1/a3'), { first: true }),
      complete('r1', 'a3', tok('r1/a3'), { second: true }),
    ];
    const ok = await ctx.store.transaction((tx) => tx.updateSteps(updates));
    assert.deepEqual(ok, [true, true, true, false, true, true, true, false]);
    const after = await rowsOf(ctx.store, ['r1']);
    assert.equal(after.get('r1/a0')?.status, 'queued');
    assert.equal(after.get('r1/a0')?.readyAt, iso(T0 + 60));
    assert.equal(after.get('r1/a0')?.outputs, null);
    assert.equal(after.get('r1/a1')?.status, 'succeeded');
    assert.deepEqual(after.get('r1/a1')?.outputs, { n: 1 });
    assert.equal(after.get('r1/a2')?.status, 'queued');
    assert.equal(after.get('r1/a2')?.readyAt, iso(T0 + 80));
    assert.equal(after.get('r1/a2')?.leaseToken, null);
    assert.deepEqual(after.get('r1/a3')?.outputs, { first: true });
  });

  it('a worker-sized batch of completions and retries, then the run books, in one transaction', async (ctx) => {
    const names = Array.from({ length: 130 }, (_, i) => `s${String(i).padStart(3, '0')}`);
    const before = await seed(ctx.store, { r1: { running: names.slice(0, 65) }, r2: { running: names.slice(65) } });
    const runOf = (i: number): string => (i < 65 ? 'r1' : 'r2');
    // Newest first, not in key order: the booleans must still follow the input.
    const updates: StepUpdate[] = names
      .map((name, i) => {
        const t = token(before, `${runOf(i)}/${name}`);
        if (i % 10 === 3) return retry(runOf(i), name, t, T0 + 1000 + i, { code: 'RETRY', message: `attempt ${i}` });
        // Every 17th one carries a stale token: it does not apply.
        return complete(runOf(i), name, i % 17 === 5 ? `stale-${i}` : t, { i, name });
      })
      .reverse();
    const expected = updates.map((u) => u.expectToken === token(before, key(u)));
    const { result, statements } = await countStepUpdates(() =>
      ctx.store.transaction(async (tx) => {
        const ok = await tx.updateSteps(updates);
        const books = await tx.lockRuns(['r1', 'r2']);
        const seqs = books.map((book) => {
          const done = updates.filter((u, i) => ok[i] && u.runId === book.id && u.patch.status === 'succeeded').length;
          return { runId: book.id, seq: advanceBook(book, { events: 1, stepsDone: done, stepsFailed: 0, startAt: T0 + 10 }, T0 + 100).firstEvent };
        });
        await tx.writeRuns(books);
        await tx.insertEvents(seqs.map(({ runId, seq }) => ({ runId, seq, ts: T0 + 100, type: 'step.log', data: {} })));
        return ok;
      }),
    );
    assert.deepEqual(result, expected);
    if (ctx.dialect === 'postgres') assert.ok(statements <= 2, `one statement per shape, not per update (${statements})`);

    const after = await rowsOf(ctx.store, ['r1', 'r2']);
    updates.forEach((u, i) => {
      const k = key(u);
      const row = before.get(k) as StepRow;
      assert.deepEqual(after.get(k), expected[i] ? patched(row, u.patch) : row, `row ${k}`);
    });
    for (const runId of ['r1', 'r2']) {
      const run = await ctx.store.getRun(runId);
      const done = [...after.values()].filter((s) => s.runId === runId && s.status === 'succeeded').length;
      assert.ok(done > 0);
      assert.equal(run?.stepsDone, done);
      assert.equal(run?.status, 'running');
    }
  });

  it('an empty batch and a batch of one', async (ctx) => {
    const before = await seed(ctx.store, { r1: { running: ['a0'] } });
    assert.deepEqual(await ctx.store.transaction((tx) => tx.updateSteps([])), []);
    const t = token(before, 'r1/a0');
    assert.deepEqual(await ctx.store.transaction((tx) => tx.updateSteps([complete('r1', 'a0', 'wrong', null)])), [false]);
    assert.deepEqual(await ctx.store.transaction((tx) => tx.updateSteps([complete('r1', 'a0', t, { ok: 1 })])), [true]);
    assert.deepEqual((await ctx.store.getStep('r1', 'a0'))?.outputs, { ok: 1 });
  });
});
