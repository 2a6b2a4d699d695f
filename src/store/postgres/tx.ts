/**
 * The write operations of one PostgreSQL transaction (see Tx in ../store.ts).
 *
 * The engine calls these one after another, each awaited, so what costs is the number of
 * statements and of waits: every operation is one statement, set-based over its whole batch
 * (unnest arrays; updateSteps: one per patch shape); inserts, whose results nobody reads, are
 * pipelined (sent without waiting, their errors reported by the next statement that is waited
 * for); the run bookkeeping is kept in run-books.ts and written once, inside the transaction's
 * last insert. Measured on no-op runs (bench/postgres-engine.ts, cost-per-step): 5.05 statements
 * per step at first, 2.05 with the run books, 0.06 since the engine passes whole batches (a worker
 * pass of ~128 completions is a handful of statements). Concurrency rules:
 * - `claimReady` picks with `FOR UPDATE SKIP LOCKED`: concurrent claimers never wait on each other
 *   and never get the same step; the lease token is minted by the database.
 * - `lockRuns` locks the run rows (run-books.ts: all the transaction's runs at once, in id order)
 *   and holds the locks until commit. Every transaction that writes events of a run goes
 *   through them, so the events of one run commit in the order of their seq numbers: a reader that
 *   has seen seq n never later finds a smaller one.
 * - `expiredLeases` is the reaper's entry: it takes a transaction-scoped advisory lock first and
 *   returns nothing if another process holds it, so one process reaps at a time; the lock dies
 *   with its transaction, so a reaper that crashes or is killed hands over at the next tick.
 * - `renewLeases` skips rows another transaction holds (normally the same worker completing that
 *   step) instead of waiting: waiting there is how a heartbeat and a completion deadlock.
 */
import type pg from 'pg';
import type { SerializedError } from '../../domain/errors.ts';
import type { RunState } from '../../domain/states.ts';
import type {
  ArtifactCopy,
  AttemptReport,
  AttemptUpdate,
  CapacityWaitUpdate,
  ClaimedRow,
  ClaimOptions,
  DependentsAppend,
  KeyWait,
  LeaseKey,
  NewArtifact,
  NewEvent,
  NewRun,
  NewStep,
  RenewResult,
  RunPatch,
  RunBook,
  RunRow,
  SignalRow,
  StepRow,
  StepUpdate,
  Tx,
} from '../store.ts';
import * as signals from './signals.ts';
import { json, RUN_COLUMNS, setClause } from '../columns.ts';
import { toRun, toStep } from '../rows.ts';
import { CLAIM_SQL, LOCK_KEYS_SQL } from './claim.ts';
import { RunBooks } from './run-books.ts';
import { appendDependents, endSteps, updateSteps } from './step-updates.ts';
import { toBatches } from '../event-batches.ts';
import { BATCHES_UNNEST, PG, type TxQuery } from './sql.ts';

/** A transaction-scoped advisory lock key: "one reaper at a time" (any constant unique to runwarden). */
export const REAPER_LOCK = 0x72_77_72_65_61_70; // 'rwreap'


export class PgTx implements Tx {
  readonly #send: TxQuery;
  readonly #books: RunBooks;
  /** Statements sent but not awaited (pipelined writes whose result nobody needs). */
  #pending: Array<Promise<unknown>> = [];
  #deferredError: unknown;

  /**
   * `send` must pipeline: put the statement on the wire at once, in call order, without waiting
   * for the ones before it (pg's `pipeline: true` connections do).
   */
  constructor(send: TxQuery) {
    this.#send = send;
    this.#books = new RunBooks((sql, params) => this.#awaited(sql, params));
  }

  /**
   * A write whose result the engine does not need (inserts): sent now, not waited for. Its
   * failure aborts the transaction, so the next awaited statement (or COMMIT) fails; that
   * statement then reports this error, the cause, instead of "transaction is aborted".
   */
  #defer(sql: string, params: unknown[]): void {
    this.#pending.push(
      this.#send(sql, params).catch((err: unknown) => {
        this.#deferredError ??= err;
      }),
    );
  }

  async #awaited(sql: string, params: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.#send(sql, params);
    } catch (err) {
      await this.settle();
      throw err;
    }
  }

  /** Every awaited statement but the one that carries them writes pending run bookkeeping first. */
  readonly #q: TxQuery = async (sql, params) => {
    if (this.#books.dirty) await this.#books.flush();
    return this.#awaited(sql, params);
  };

  /** Sends BEGIN, not waiting for it: the first statement that is awaited goes right behind. */
  begin(): void {
    this.#defer('BEGIN', []);
  }

  /** Runs a statement inside this transaction (the store's own reads go through here). */
  query(sql: string, params: unknown[]): Promise<pg.QueryResult> {
    return this.#q(sql, params);
  }

  /** Sends what is still pending (run bookkeeping); the store calls it before COMMIT. */
  async flush(): Promise<void> {
    await this.#books.flush();
  }

  /** Waits for the pipelined writes; throws the first one's error, if any failed. */
  async settle(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    await Promise.all(pending);
    if (this.#deferredError !== undefined) throw this.#deferredError as Error;
  }

  async insertRun(run: NewRun): Promise<void> {
    // Nobody else can see this row before we commit: its bookkeeping starts here, without a lock.
    this.#books.seedNew(run.id, run.stepsTotal, run.createdAt);
    this.#defer(
      `WITH r AS (
         INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, max_steps, priority, concurrency_key, concurrency_limit, rerun_of, queue_timeout_ms)
         VALUES ($1, 'queued', $2, $3::json, $4, $5, $6, $8, $9, $10, $11, $12, $13) RETURNING id)
       INSERT INTO run_plans (run_id, plan) SELECT id, $7::json FROM r`,
      [
        run.id, run.goal, JSON.stringify(run.labels), run.idempotencyKey, run.createdAt, run.stepsTotal, JSON.stringify(run.plan ?? null), run.maxSteps ?? null,
        run.flow?.priority ?? 0, run.flow?.concurrency?.key ?? null, run.flow?.concurrency?.limit ?? null, run.rerunOf ?? null, run.flow?.queueTimeoutMs ?? null,
      ],
    );
  }

  async insertRuns(runs: readonly NewRun[]): Promise<void> {
    if (runs.length === 0) return;
    if (runs.length === 1) return this.insertRun(runs[0] as NewRun);
    for (const r of runs) this.#books.seedNew(r.id, r.stepsTotal, r.createdAt);
    this.#defer(
      `WITH r AS (
         INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, max_steps, priority, concurrency_key, concurrency_limit, rerun_of, queue_timeout_ms)
         SELECT id, 'queued', goal, labels, key, created_at, total, max_steps, priority, ckey, climit, rerun_of, qtimeout
         FROM unnest($1::text[], $2::text[], $3::json[], $4::text[], $5::bigint[], $6::integer[], $7::integer[], $8::integer[], $9::text[], $10::integer[], $12::text[], $13::bigint[])
           AS u(id, goal, labels, key, created_at, total, max_steps, priority, ckey, climit, rerun_of, qtimeout)
         RETURNING id)
       INSERT INTO run_plans (run_id, plan) SELECT p.id, p.plan FROM unnest($1::text[], $11::json[]) AS p(id, plan) WHERE p.id IN (SELECT id FROM r)`,
      [
        runs.map((r) => r.id),
        runs.map((r) => r.goal),
        runs.map((r) => JSON.stringify(r.labels)),
        runs.map((r) => r.idempotencyKey),
        runs.map((r) => r.createdAt),
        runs.map((r) => r.stepsTotal),
        runs.map((r) => r.maxSteps ?? null),
        runs.map((r) => r.flow?.priority ?? 0),
        runs.map((r) => r.flow?.concurrency?.key ?? null),
        runs.map((r) => r.flow?.concurrency?.limit ?? null),
        runs.map((r) => JSON.stringify(r.plan ?? null)),
        runs.map((r) => r.rerunOf ?? null),
        runs.map((r) => r.flow?.queueTimeoutMs ?? null),
      ],
    );
  }

  async insertSteps(steps: NewStep[]): Promise<void> {
    if (steps.length === 0) return;
    this.#defer(
      `INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, ready_at, added_by, outputs_from,
                          priority, concurrency_key, concurrency_limit, queue_timeout_ms)
       SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::json[], $7::json[], $8::integer[],
                            $9::json[], $10::json[], $11::bigint[], $12::json[], $13::bigint[], $14::text[], $15::text[],
                            $16::integer[], $17::text[], $18::integer[], $19::bigint[])`,
      [
        steps.map((s) => s.runId),
        steps.map((s) => s.name),
        steps.map((s) => s.idx),
        steps.map((s) => s.tool),
        steps.map((s) => s.status),
        steps.map((s) => JSON.stringify(s.dependsOn)),
        steps.map((s) => JSON.stringify(s.dependents)),
        steps.map((s) => s.pendingDeps),
        steps.map((s) => JSON.stringify(s.inputs)),
        steps.map((s) => json(s.resolvedInputs)),
        steps.map((s) => s.timeoutMs),
        steps.map((s) => JSON.stringify(s.retries)),
        steps.map((s) => s.readyAt),
        steps.map((s) => s.addedBy ?? null),
        steps.map((s) => s.outputsFrom ?? null),
        steps.map((s) => s.flow?.priority ?? 0),
        steps.map((s) => s.flow?.concurrency?.key ?? null),
        steps.map((s) => s.flow?.concurrency?.limit ?? null),
        steps.map((s) => s.flow?.queueTimeoutMs ?? null),
      ],
    );
  }

  async lockRuns(runIds: readonly string[]): Promise<RunBook[]> {
    return this.#books.lock(runIds);
  }

  async writeRuns(books: readonly RunBook[]): Promise<void> {
    this.#books.write(books);
  }

  async setRunError(runId: string, error: SerializedError): Promise<SerializedError | null> {
    const res = await this.#q('UPDATE runs SET error = coalesce(error, $1::json) WHERE id = $2 RETURNING error', [JSON.stringify(error), runId]);
    const r = res.rows[0] as { error?: unknown } | undefined;
    return (r?.error as SerializedError | null | undefined) ?? null;
  }

  async insertEvents(events: Array<NewEvent & { seq: number }>): Promise<void> {
    const rows = toBatches(events);
    const columns = [rows.map((b) => b.runId), rows.map((b) => b.lastSeq), rows.map((b) => b.firstSeq), rows.map((b) => b.body)];
    const books = this.#books.take();
    if (!books) {
      if (rows.length > 0) this.#defer(`INSERT INTO event_batches (run_id, last_seq, first_seq, body) SELECT * FROM ${BATCHES_UNNEST(1)}`, columns);
      return;
    }
    // The run bookkeeping of the transaction rides along: one statement for both, pipelined with
    // the COMMIT that normally follows; its check runs when the transaction settles.
    const sent = this.#send(
      `WITH ${RunBooks.CTE}, ev AS (INSERT INTO event_batches (run_id, last_seq, first_seq, body) SELECT * FROM ${BATCHES_UNNEST(12)} RETURNING 1)
       SELECT (SELECT count(*) FROM books)::int AS runs`,
      [...books.params, ...columns],
    ).then((res) => {
      const written = (res.rows[0] as { runs: number } | undefined)?.runs;
      if (written !== books.count) throw new Error(`run bookkeeping: wrote ${written} of ${books.count} locked runs`);
    });
    this.#pending.push(
      sent.catch((err: unknown) => {
        this.#deferredError ??= err;
      }),
    );
  }

  async getRun(id: string): Promise<RunRow | null> {
    const res = await this.#q('SELECT * FROM runs WHERE id = $1', [id]);
    const r = res.rows[0] as Record<string, unknown> | undefined;
    return r ? toRun(r) : null;
  }

  async getSteps(keys: ReadonlyArray<{ runId: string; name: string }>): Promise<StepRow[]> {
    if (keys.length === 0) return [];
    const res = await this.#q(
      `SELECT s.* FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(run_id, name, ord)
       JOIN steps s ON s.run_id = k.run_id AND s.name = k.name ORDER BY k.ord`,
      [keys.map((k) => k.runId), keys.map((k) => k.name)],
    );
    return res.rows.map(toStep);
  }

  async getRunSteps(runId: string): Promise<StepRow[]> {
    const res = await this.#q('SELECT * FROM steps WHERE run_id = $1 ORDER BY idx', [runId]);
    return res.rows.map(toStep);
  }

  async updateSteps(updates: StepUpdate[]): Promise<boolean[]> {
    return updateSteps(this.#q, updates);
  }

  async endSteps(updates: Array<StepUpdate & { dependents: string[] }>): Promise<Array<string[] | null>> {
    return endSteps(this.#q, updates);
  }

  async appendDependents(appends: DependentsAppend[]): Promise<boolean[]> {
    return appendDependents(this.#q, appends);
  }

  async updateRun(id: string, expectStatus: readonly RunState[], patch: RunPatch): Promise<boolean> {
    const params: unknown[] = [];
    const sets = setClause(patch, RUN_COLUMNS, params, PG);
    params.push(id, expectStatus);
    const sql = `UPDATE runs SET ${sets} WHERE id = $${params.length - 1} AND status = ANY($${params.length}::text[])`;
    const ok = (await this.#q(sql, params)).rowCount === 1;
    // The row changed behind the kept copy: read it again if the transaction advances the run.
    this.#books.forget(id);
    return ok;
  }

  async decrementPending(runId: string, names: string[]): Promise<StepRow[]> {
    if (names.length === 0) return [];
    const res = await this.#q(
      `WITH u AS (
         UPDATE steps SET pending_deps = pending_deps - 1 WHERE run_id = $1 AND name = ANY($2::text[]) AND status = 'pending' RETURNING *)
       SELECT * FROM u ORDER BY array_position($2::text[], u.name)`,
      [runId, names],
    );
    return res.rows.map(toStep);
  }

  async claimReady(o: ClaimOptions): Promise<Array<StepRow & ClaimedRow>> {
    // Picking, leasing and counting the attempt in one statement, which also locks the claimed
    // steps' runs (in id order) and returns them for the run bookkeeping that follows. Locking runs
    // here is safe because the claim itself never waits on a step (SKIP LOCKED) or a concurrency
    // key (try-locks), so it holds nothing another transaction waits for while it queues for a run
    // row. The keys' locks come first, in a statement of their own (claim.ts says why).
    const locked = await this.#q(LOCK_KEYS_SQL, [o.now]);
    const keys = (locked.rows[0] as { keys: string[] } | undefined)?.keys ?? [];
    const res = await this.#q(CLAIM_SQL, [o.now, o.limit, o.workerId, o.leaseMs, keys]);
    const first = res.rows[0] as { books?: string | null } | undefined;
    if (first?.books) this.#books.seed(JSON.parse(first.books) as Array<Record<string, unknown>>);
    return res.rows.map((r: Record<string, unknown>) => Object.assign(toStep(r), { wasReadyAt: Number(r.was_ready_at) }));
  }

  async finishAttempts(updates: AttemptUpdate[]): Promise<boolean[]> {
    if (updates.length === 0) return [];
    const [only] = updates;
    if (updates.length === 1 && only) {
      // A batch of one (a single completion, a cancelled attempt): plain parameters cost less than unnest.
      const one = await this.#q(
        `INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at, error, hang_report)
           SELECT run_id, name, attempts, $4, worker_id, attempt_started_at, $5, deadline_at, $6::json, $7::json
           FROM steps WHERE run_id = $1 AND name = $2 AND attempts = $3 AND status = 'running'
         ON CONFLICT DO NOTHING`,
        [only.runId, only.stepName, only.attempt, only.status, only.finishedAt, json(only.error), json(only.hangReport ?? null)],
      );
      return [one.rowCount === 1];
    }
    // The attempt's row, written once, from what the step's row says of the attempt it is running.
    // A step no longer running that attempt inserts nothing; two transactions ending one attempt at
    // once meet on the primary key, and the second inserts nothing once the first commits.
    const res = await this.#q(
      `INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at, error, hang_report)
         SELECT s.run_id, s.name, s.attempts, u.status, s.worker_id, s.attempt_started_at, u.finished_at, s.deadline_at, u.error, u.hang_report
         FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::bigint[], $6::json[], $7::json[])
           AS u(run_id, step_name, attempt, status, finished_at, error, hang_report)
         JOIN steps s ON s.run_id = u.run_id AND s.name = u.step_name AND s.attempts = u.attempt AND s.status = 'running'
       ON CONFLICT DO NOTHING
       RETURNING run_id, step_name, attempt`,
      [
        updates.map((u) => u.runId),
        updates.map((u) => u.stepName),
        updates.map((u) => u.attempt),
        updates.map((u) => u.status),
        updates.map((u) => u.finishedAt),
        updates.map((u) => json(u.error)),
        updates.map((u) => json(u.hangReport ?? null)),
      ],
    );
    const done = new Set((res.rows as Array<{ run_id: string; step_name: string; attempt: number }>).map((r) => `${r.run_id}\u0000${r.step_name}\u0000${r.attempt}`));
    // Like one statement per item: a key listed twice ends its attempt once.
    return updates.map((u) => done.delete(`${u.runId}\u0000${u.stepName}\u0000${u.attempt}`));
  }

  async insertArtifacts(artifacts: NewArtifact[]): Promise<void> {
    // One statement per artifact: a Buffer parameter travels in binary, where a bytea[] array
    // literal would be hex text twice its size.
    for (const a of artifacts) {
      const content = Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength);
      this.#defer(
        'INSERT INTO artifacts (id, run_id, step_name, attempt, name, mime, size, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [a.id, a.runId, a.stepName, a.attempt, a.name, a.mime, a.content.byteLength, content, a.createdAt],
      );
    }
  }

  async expiredLeases(now: number, limit: number): Promise<StepRow[]> {
    const res = await this.#q(
      `WITH leader AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($3) AS ok)
       SELECT s.* FROM steps s, leader
       WHERE leader.ok AND s.status = 'running' AND s.lease_expires_at < $1
       ORDER BY s.lease_expires_at LIMIT $2
       FOR UPDATE OF s SKIP LOCKED`,
      [now, limit, REAPER_LOCK],
    );
    const rows = res.rows.map(toStep).sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
    return rows;
  }

  async renewLeases(workerId: string, leases: readonly LeaseKey[], now: number, until: number, graceMs: number): Promise<RenewResult> {
    if (leases.length === 0) return { renewed: [], cancel: [] };
    const res = await this.#q(
      `WITH wanted AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS w(run_id, name, token)),
       mine AS (
         SELECT s.run_id, s.name FROM steps s JOIN wanted w ON s.run_id = w.run_id AND s.name = w.name AND s.lease_token = w.token
         WHERE s.worker_id = $4 AND s.status = 'running' AND s.deadline_at + $5::bigint > $6
         FOR NO KEY UPDATE OF s SKIP LOCKED),
       renewed AS (
         UPDATE steps s SET lease_expires_at = $7 FROM mine m WHERE s.run_id = m.run_id AND s.name = m.name
         RETURNING s.lease_token, s.cancel_requested)
       SELECT lease_token, cancel_requested FROM renewed
       UNION ALL
       -- Held by another transaction right now (our own completion, normally): still ours as far
       -- as this snapshot knows; the next heartbeat extends it or finds it gone.
       SELECT s.lease_token, s.cancel_requested FROM steps s JOIN wanted w ON s.run_id = w.run_id AND s.name = w.name AND s.lease_token = w.token
       WHERE s.worker_id = $4 AND s.status = 'running' AND s.deadline_at + $5::bigint > $6
         AND s.lease_token NOT IN (SELECT lease_token FROM renewed)`,
      [leases.map((l) => l.runId), leases.map((l) => l.name), leases.map((l) => l.token), workerId, graceMs, now, until],
    );
    const renewed: string[] = [];
    const cancel: string[] = [];
    for (const r of res.rows as Array<{ lease_token: string; cancel_requested: boolean }>) {
      renewed.push(r.lease_token);
      if (r.cancel_requested) cancel.push(r.lease_token);
    }
    return { renewed, cancel };
  }

  async setCapacityWaits(workerId: string, waits: readonly CapacityWaitUpdate[]): Promise<void> {
    if (waits.length === 0) return;
    await this.#q(
      `UPDATE steps s SET deadline_at = w.deadline_at, waiting_for = w.waiting_for
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::json[]) AS w(run_id, name, token, deadline_at, waiting_for)
       WHERE s.run_id = w.run_id AND s.name = w.name AND s.lease_token = w.token AND s.worker_id = $6 AND s.status = 'running'`,
      [
        waits.map((w) => w.runId),
        waits.map((w) => w.name),
        waits.map((w) => w.token),
        waits.map((w) => Math.round(w.deadlineAt)),
        waits.map((w) => (w.waitingFor === null ? null : JSON.stringify(w.waitingFor))),
        workerId,
      ],
    );
  }

  /** Running steps held by these workers (a supervisor saw them die); transitions stay token-guarded. */
  async runningByWorkers(workerIds: string[]): Promise<StepRow[]> {
    if (workerIds.length === 0) return [];
    const res = await this.#q("SELECT * FROM steps WHERE status = 'running' AND worker_id = ANY($1::text[]) ORDER BY run_id, idx", [workerIds]);
    return res.rows.map((r: Record<string, unknown>) => Object.assign(toStep(r), { wasReadyAt: Number(r.was_ready_at) }));
  }

  async awaitSignals(keys: ReadonlyArray<{ runId: string; name: string }>, at: number): Promise<SignalRow[]> {
    return signals.awaitSignals(this.#q, keys, at);
  }

  async sendSignal(s: { runId: string; name: string; payload: unknown; sentAt: number }): Promise<{ sent: boolean; row: SignalRow }> {
    return signals.sendSignal(this.#q, s);
  }

  async stepsAwaiting(runId: string, name: string): Promise<StepRow[]> {
    return signals.stepsAwaiting(this.#q, runId, name);
  }

  async expiredWaits(now: number, limit: number): Promise<StepRow[]> {
    return signals.expiredWaits(this.#q, now, limit);
  }

  async expiredQueueWaits(now: number, limit: number): Promise<Array<{ step: StepRow; keyRunning: number }>> {
    return signals.expiredQueueWaits(this.#q, now, limit);
  }

  async announceKeyWaits(now: number, limit: number): Promise<KeyWait[]> {
    return signals.announceKeyWaits(this.#q, now, limit);
  }

  async setAttemptReports(reports: AttemptReport[]): Promise<void> {
    await signals.setAttemptReports(this.#q, reports);
  }

  async copyArtifacts(copies: ArtifactCopy[]): Promise<void> {
    await signals.copyArtifacts(this.#q, copies);
  }
}
