/**
 * What only the PostgreSQL store has: cross-process notifications, connection loss and recovery,
 * one reaper at a time, transactions re-run after a deadlock. (Everything both dialects share is
 * in test/conformance.)
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { RunwardenError } from '../../src/domain/errors.ts';
import { advanceBook } from '../../src/engine/run-books.ts';
import { Transitions } from '../../src/engine/transitions.ts';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import { REAPER_LOCK } from '../../src/store/postgres/tx.ts';
import type { StoreNotification, Tx } from '../../src/store/store.ts';
import { createRun, validate } from '../conformance/fixtures.ts';
import { adminQuery, createTestDatabase, postgresSkip, terminateConnections, type TestDatabase } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = await postgresSkip();


test('an unreachable server is DATABASE_UNAVAILABLE (503, retryable), for reads and transactions alike', async () => {
  // Port 1 on loopback: connection refused at once.
  const store = new PostgresStore({ url: 'postgres://nobody:secret@127.0.0.1:1/none', connectTimeoutMs: 1000 });
  try {
    const check = (err: unknown): boolean => {
      assert.ok(err instanceof RunwardenError, String(err));
      assert.equal(err.code, 'DATABASE_UNAVAILABLE');
      assert.equal(err.status, 503);
      assert.equal(err.retryable, true);
      assert.doesNotMatch(err.message, /secret/, 'the password never appears in an error');
      return true;
    };
    await assert.rejects(store.getRun('x'), check);
    await assert.rejects(store.transaction(async (tx) => tx.getRun('x')), check);
    await assert.rejects(store.ping(), check);
    assert.equal(store.location, 'postgres://[redacted]@127.0.0.1:1/none', 'neither the user nor the password');
  } finally {
    await store.close();
  }
});

describe('PostgreSQL store', { skip }, () => {
  let db: TestDatabase;
  // Stores opened by a test are closed after it: the server is shared, connections are counted.
  let stores: PostgresStore[] = [];
  const open = (): PostgresStore => {
    const s = new PostgresStore({ url: db.url, poolMax: 3, channel: 'rw_test' });
    stores.push(s);
    return s;
  };
  before(async () => {
    db = await createTestDatabase();
    await open().migrate();
  });
  afterEach(async () => {
    const closing = stores;
    stores = [];
    for (const s of closing) await s.close();
  });
  after(() => db.drop());

  test('notifications reach the other processes, once, and not the sender twice', async () => {
    const a = open();
    const b = open();
    await Promise.all([a.listen(), b.listen()]);
    const gotA: StoreNotification[] = [];
    const gotB: StoreNotification[] = [];
    const offA = a.subscribe((n) => gotA.push(n));
    const offB = b.subscribe((n) => gotB.push(n));
    try {
      // More run ids than fit in one NOTIFY payload (8000 bytes): they arrive in several.
      const runIds = Array.from({ length: 400 }, (_, i) => `01a20000-0000-7000-8000-${String(i).padStart(12, '0')}`);
      a.publish({ kind: 'ready' });
      a.publish({ kind: 'events', runIds });
      a.publish({ kind: 'cancel', runId: 'r-cancel' });
      // Local subscribers hear at once, synchronously.
      assert.equal(gotA.length, 3);
      await waitFor(
        () => (gotB.some((n) => n.kind === 'cancel') && new Set(gotB.flatMap((n) => (n.kind === 'events' ? n.runIds : []))).size === 400 ? true : undefined),
        5000,
        'b to hear everything',
      );
      assert.equal(gotB.filter((n) => n.kind === 'ready').length, 1);
      assert.deepEqual(
        gotB.filter((n) => n.kind === 'cancel'),
        [{ kind: 'cancel', runId: 'r-cancel' }],
      );
      // a's own NOTIFYs must not come back to it. PostgreSQL delivers a channel's notifications in
      // commit order, and b sends this one after it heard a's: once a hears it, a's own would have
      // arrived before it, had they not been ignored.
      b.publish({ kind: 'ready' });
      await waitFor(() => gotA.length >= 4, 5000, 'a to hear b');
      assert.deepEqual(
        gotA.map((n) => n.kind),
        ['ready', 'events', 'cancel', 'ready'],
      );
    } finally {
      offA();
      offB();
    }
  });

  test('the LISTEN connection comes back after its backend is killed, and says so with a wake-up', async () => {
    const a = open();
    const b = open();
    await Promise.all([a.listen(), b.listen()]);
    const got: StoreNotification[] = [];
    b.subscribe((n) => got.push(n));
    const before = b.listenConnects;
    const killed = await adminQuery<{ n: number }>(
      "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE '%-listen'",
      [db.name],
    );
    assert.ok((killed[0]?.n ?? 0) >= 2);
    await waitFor(() => (b.listenConnects > before && b.listening ? true : undefined), 10_000, 'b to listen again');
    assert.ok(got.some((n) => n.kind === 'ready'), 'a wake-up after reconnecting: notifications may have been missed');
    got.length = 0;
    await waitFor(() => (a.listening ? true : undefined), 10_000, 'a to listen again');
    a.publish({ kind: 'events', runIds: ['after-reconnect'] });
    await waitFor(() => (got.some((n) => n.kind === 'events' && n.runIds.includes('after-reconnect')) ? true : undefined), 5000, 'b to hear a again');
  });

  test('after every connection is killed, the pool reconnects; the failure in between is DATABASE_UNAVAILABLE', async () => {
    const s = open();
    const core = new Transitions(s);
    const runId = await createRun(core, [{ name: 'a' }]);
    await terminateConnections(db.name);
    // Idle pooled connections are gone; the next operations get new ones (at most one may fail
    // first, with the retryable code, if it picked a connection the pool had not yet dropped).
    let failures = 0;
    const run = await waitFor(
      async () => {
        try {
          return (await s.getRun(runId)) ?? undefined;
        } catch (err) {
          assert.ok(err instanceof RunwardenError && err.code === 'DATABASE_UNAVAILABLE', String(err));
          failures++;
          return undefined;
        }
      },
      10_000,
      'the store to answer again',
    );
    assert.equal(run.id, runId);
    assert.ok(failures <= 1);
    const claimed = await core.claim('w1', 10, 60_000);
    assert.equal(claimed.length, 1);
  });

  test('one reaper at a time; a reaper that dies mid-reap hands over at once', async () => {
    const a = open();
    const b = open();
    // One clock for both processes: the leases (1 ms) have expired by the time anyone reaps.
    let now = Date.now();
    const clock = (): number => now;
    const core = new Transitions(a, { now: clock });
    const runId = await createRun(core, [{ name: 'x' }, { name: 'y' }]);
    assert.equal((await core.claim('w-dead', 2, 1)).length, 2);
    now += 5;
    // A reaper (on a raw connection, like a process frozen in the middle of its reap) holds the lock.
    const frozen = new pg.Client({ connectionString: db.url });
    frozen.on('error', () => undefined);
    await frozen.connect();
    await frozen.query('BEGIN');
    const leader = await frozen.query<{ ok: boolean; pid: number }>('SELECT pg_try_advisory_xact_lock($1) AS ok, pg_backend_pid() AS pid', [REAPER_LOCK]);
    assert.equal(leader.rows[0]?.ok, true);
    const coreB = new Transitions(b, { now: clock });
    assert.equal(await coreB.reap(), 0, 'another process is reaping: this one does not');
    assert.equal((await b.getStep(runId, 'x'))?.status, 'running');
    // That process dies: its lock goes with its session.
    await adminQuery('SELECT pg_terminate_backend($1)', [leader.rows[0]?.pid]);
    await frozen.end().catch(() => undefined);
    assert.equal(await coreB.reap(), 2);
    assert.deepEqual(
      (await b.getRunSteps(runId)).map((s) => s.status),
      ['queued', 'queued'],
    );
  });

  /** Locks the run's books and takes the next seq, as settleRuns does for one event. */
  async function nextSeq(tx: Tx, runId: string): Promise<number> {
    const [book] = await tx.lockRuns([runId]);
    assert.ok(book, runId);
    const { firstEvent } = advanceBook(book, { events: 1, stepsDone: 0, stepsFailed: 0 }, Date.now());
    await tx.writeRuns([book]);
    return firstEvent;
  }

  test('two transactions that deadlock on run rows: the server breaks it, the loser runs again, both commit', async () => {
    const a = open();
    const b = open();
    const core = new Transitions(a);
    const r1 = await createRun(core, [{ name: 's' }]);
    const r2 = await createRun(core, [{ name: 's' }]);
    let arrived = 0;
    let release: () => void = () => undefined;
    const barrier = new Promise<void>((r) => (release = r));
    const meet = async (): Promise<void> => {
      if (++arrived === 2) release();
      await Promise.race([barrier, new Promise((r) => setTimeout(r, 3000))]);
    };
    const write = (store: PostgresStore, first: string, second: string) =>
      store.transaction(async (tx) => {
        const seq1 = await nextSeq(tx, first);
        await meet();
        const seq2 = await nextSeq(tx, second);
        await tx.insertEvents([
          { runId: first, seq: seq1, ts: Date.now(), type: 'step.log', data: { by: first } },
          { runId: second, seq: seq2, ts: Date.now(), type: 'step.log', data: { by: first } },
        ]);
      });
    const before = { ...a.txRetries, ...b.txRetries };
    await Promise.all([write(a, r1, r2), write(b, r2, r1)]);
    const retries = (a.txRetries['40P01'] ?? 0) + (b.txRetries['40P01'] ?? 0) - (before['40P01'] ?? 0);
    assert.equal(retries, 1, 'exactly one of the two was re-run');
    for (const runId of [r1, r2]) {
      const list = await a.listEvents(runId, 0, 100);
      assert.deepEqual(
        list.map((e) => e.seq),
        [1, 2, 3, 4],
      );
    }
  });

  test('transactions that update a step twice (a foreign-key share lock on the run) and then advance the run do not deadlock', async () => {
    const a = open();
    const b = open();
    const core = new Transitions(a);
    const runId = await createRun(core, [{ name: 'x' }, { name: 'y' }]);
    let arrived = 0;
    let release: () => void = () => undefined;
    const barrier = new Promise<void>((r) => (release = r));
    const write = (store: PostgresStore, name: string) =>
      store.transaction(async (tx) => {
        // The second UPDATE of a row this transaction already updated fires the foreign-key check,
        // which takes KEY SHARE on the run row; both transactions then hold it when they advance.
        await tx.updateSteps([{ runId, name, expectStatus: ['queued'], patch: { readyAt: 1 } }]);
        await tx.updateSteps([{ runId, name, expectStatus: ['queued'], patch: { readyAt: 2 } }]);
        if (++arrived === 2) release();
        await Promise.race([barrier, new Promise((r) => setTimeout(r, 3000))]);
        const seq = await nextSeq(tx, runId);
        await tx.insertEvents([{ runId, seq, ts: Date.now(), type: 'step.log', data: { name } }]);
      });
    const deadlocksBefore = (a.txRetries['40P01'] ?? 0) + (b.txRetries['40P01'] ?? 0);
    await Promise.all([write(a, 'x'), write(b, 'y')]);
    assert.equal((a.txRetries['40P01'] ?? 0) + (b.txRetries['40P01'] ?? 0), deadlocksBefore, 'no deadlock');
    assert.deepEqual(
      (await a.listEvents(runId, 0, 100)).map((e) => e.seq),
      [1, 2, 3, 4, 5],
    );
  });

  test('a pipelined write that fails is the error reported, and the transaction leaves nothing behind', async () => {
    const s = open();
    const core = new Transitions(s);
    const runId = await createRun(core, [{ name: 'a' }]);
    // A batch of events ending at seq 2 exists (run.created, step.queued): the insert fails at the
    // server while the transaction goes on.
    const err = await s
      .transaction(async (tx) => {
        await tx.insertArtifacts([{ id: 'art_x', runId, stepName: 'a', attempt: 1, name: 'x', mime: 'text/plain', content: new Uint8Array([1]), createdAt: 1 }]);
        await tx.insertEvents([{ runId, seq: 2, ts: 1, type: 'step.log', data: {} }]);
        return tx.getRun(runId);
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    assert.equal((err as { code?: string } | null)?.code, '23505', `the unique violation, not "transaction is aborted": ${String(err)}`);
    assert.equal(await s.getArtifact('art_x'), null);
    assert.equal((await s.listEvents(runId, 0, 10)).length, 2);
    // The connection went back to the pool clean: the next transactions commit normally.
    for (let i = 0; i < 10; i++) {
      const id = await createRun(core, [{ name: 'a' }]);
      assert.equal((await s.listEvents(id, 0, 10)).length, 2);
    }
  });

  test('an idempotent submission racing in many processes returns the one run', async () => {
    const validated = await validate([{ name: 'a' }], { idempotencyKey: 'race-key' });
    const many = [open(), open(), open(), open()];
    await Promise.all(many.map((s) => s.ping()));
    const results = await Promise.all(many.map((s) => new Transitions(s).createRun(validated, {})));
    assert.equal(new Set(results.map((r) => r.runId)).size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
  });
});
