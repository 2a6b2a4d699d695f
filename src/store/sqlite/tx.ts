/** The write operations of one SQLite transaction (see Tx in ../store.ts). */
import { slicer, yieldToLoop } from '../../domain/slices.ts';
import type { SQLInputValue } from 'node:sqlite';
import type { SerializedError } from '../../domain/errors.ts';
import type { RunState } from '../../domain/states.ts';
import { CLAIM_RANK_SQL } from '../../domain/flow.ts';
import { RUN_COLUMNS, setClause, STEP_COLUMNS, type ParamStyle } from '../columns.ts';
import { BOOK_COLUMNS, toBook, toRun, toStep } from '../rows.ts';
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
  RunBook,
  RunPatch,
  RunRow,
  SignalRow,
  StepRow,
  StepUpdate,
  Tx,
} from '../store.ts';
import { toBatches, type EventBatch } from '../event-batches.ts';
import * as signals from './signals.ts';
import type { SqliteStore } from './index.ts';

/** Numbered parameters (?1, ?2 ...): a SET list and the WHERE after it can be built in any order. */
const SQLITE: ParamStyle = { placeholder: (n) => `?${n}`, bool: (v) => (v ? 1 : 0) };

const WRITE_BOOK = `UPDATE runs SET status = ?, started_at = ?, finished_at = ?, last_seq = ?, steps_done = ?, steps_total = ?, steps_failed = ?,
    input_tokens = ?, output_tokens = ?, llm_calls = ? WHERE id = ?`;

/** Leases renewed per statement. */
const RENEW_CHUNK = 1000;

/** The states in which a step has not ended (it can still gain dependents). */
const OPEN_STATES = "('pending', 'queued', 'running')";

/** Event rows per multi-row INSERT (4 parameters each, far below SQLite's limit of 32,766). */
const BATCH_CHUNK = 32;

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(',');
/** `?from, ?from+1, ...`, n of them. */
const numbered = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `?${from + i}`).join(',');

export class SqliteTx implements Tx {
  readonly #s: SqliteStore;

  constructor(store: SqliteStore) {
    this.#s = store;
  }

  async insertRun(run: NewRun): Promise<void> {
    this.#s
      .stmt(
        `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, max_steps, priority, concurrency_key, concurrency_limit, rerun_of, queue_timeout_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        run.id, 'queued', run.goal, JSON.stringify(run.labels), run.idempotencyKey, run.createdAt, run.stepsTotal, run.maxSteps ?? null,
        run.flow?.priority ?? 0, run.flow?.concurrency?.key ?? null, run.flow?.concurrency?.limit ?? null, run.rerunOf ?? null, run.flow?.queueTimeoutMs ?? null,
      );
    this.#s.stmt('INSERT INTO run_plans (run_id, plan) VALUES (?, ?)').run(run.id, JSON.stringify(run.plan));
  }

  async insertRuns(runs: readonly NewRun[]): Promise<void> {
    // Statements are calls into SQLite, not round trips: one per run costs little more than one for all.
    for (const r of runs) await this.insertRun(r);
  }

  async insertSteps(steps: NewStep[]): Promise<void> {
    const st = this.#s.stmt(
      `INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, ready_at, added_by, outputs_from,
                          priority, concurrency_key, concurrency_limit, queue_timeout_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // A 10,000-step plan is ~100 ms of inserts: in slices, so the loop turns meanwhile (the
    // transaction stays open and no other transaction of this process can start in between).
    const slice = slicer();
    for (const s of steps) {
      if (slice.due()) await slice.pause();
      st.run(
        s.runId,
        s.name,
        s.idx,
        s.tool,
        s.status,
        JSON.stringify(s.dependsOn),
        JSON.stringify(s.dependents),
        s.pendingDeps,
        JSON.stringify(s.inputs),
        s.resolvedInputs === null ? null : JSON.stringify(s.resolvedInputs),
        s.timeoutMs,
        JSON.stringify(s.retries),
        s.readyAt,
        s.addedBy ?? null,
        s.outputsFrom ?? null,
        s.flow?.priority ?? 0,
        s.flow?.concurrency?.key ?? null,
        s.flow?.concurrency?.limit ?? null,
        s.flow?.queueTimeoutMs ?? null,
      );
    }
  }

  async lockRuns(runIds: readonly string[]): Promise<RunBook[]> {
    // The transaction holds SQLite's write lock (BEGIN IMMEDIATE): reading is locking.
    if (runIds.length === 1) {
      const r = this.#s.get(`SELECT ${BOOK_COLUMNS} FROM runs WHERE id = ?`, runIds[0] as string);
      return r ? [toBook(r)] : [];
    }
    return this.#s.all(`SELECT ${BOOK_COLUMNS} FROM runs WHERE id IN (SELECT value FROM json_each(?))`, JSON.stringify(runIds)).map(toBook);
  }

  async writeRuns(books: readonly RunBook[]): Promise<void> {
    const st = this.#s.stmt(WRITE_BOOK);
    for (const b of books) {
      const changes = st.run(b.status, b.startedAt, b.finishedAt, b.lastSeq, b.stepsDone, b.stepsTotal, b.stepsFailed, b.usage.inputTokens, b.usage.outputTokens, b.usage.calls, b.id).changes;
      if (Number(changes) !== 1) throw new Error(`run bookkeeping: run ${b.id} does not exist`);
    }
  }

  async setRunError(runId: string, error: SerializedError): Promise<SerializedError | null> {
    const r = this.#s.get('UPDATE runs SET error = coalesce(error, ?) WHERE id = ? RETURNING error', JSON.stringify(error), runId);
    return r && typeof r.error === 'string' ? (JSON.parse(r.error) as SerializedError) : null;
  }

  async insertEvents(events: Array<NewEvent & { seq: number }>): Promise<void> {
    // Rows of BATCH_CHUNK per statement while there are that many (one call into SQLite instead of
    // BATCH_CHUNK: ~35 % less per row measured), the rest one by one.
    const rows = toBatches(events);
    let i = 0;
    if (rows.length >= BATCH_CHUNK) {
      const many = this.#s.stmt(`INSERT INTO event_batches (run_id, last_seq, first_seq, body) VALUES ${Array.from({ length: BATCH_CHUNK }, () => '(?, ?, ?, ?)').join(', ')}`);
      const params: SQLInputValue[] = new Array<SQLInputValue>(BATCH_CHUNK * 4);
      for (; i + BATCH_CHUNK <= rows.length; i += BATCH_CHUNK) {
        for (let j = 0; j < BATCH_CHUNK; j++) {
          const b = rows[i + j] as EventBatch;
          const o = j * 4;
          params[o] = b.runId;
          params[o + 1] = b.lastSeq;
          params[o + 2] = b.firstSeq;
          params[o + 3] = b.body;
        }
        many.run(...params);
      }
    }
    const one = this.#s.stmt('INSERT INTO event_batches (run_id, last_seq, first_seq, body) VALUES (?, ?, ?, ?)');
    for (; i < rows.length; i++) {
      const b = rows[i] as EventBatch;
      one.run(b.runId, b.lastSeq, b.firstSeq, b.body);
    }
  }

  async getRun(id: string): Promise<RunRow | null> {
    const r = this.#s.get('SELECT * FROM runs WHERE id = ?', id);
    return r ? toRun(r) : null;
  }

  async getSteps(keys: ReadonlyArray<{ runId: string; name: string }>): Promise<StepRow[]> {
    const st = this.#s.stmt('SELECT * FROM steps WHERE run_id = ? AND name = ?');
    const out: StepRow[] = [];
    for (const k of keys) {
      const r = st.get(k.runId, k.name) as Record<string, unknown> | undefined;
      if (r) out.push(toStep(r));
    }
    return out;
  }

  async getRunSteps(runId: string): Promise<StepRow[]> {
    return this.#s.all('SELECT * FROM steps WHERE run_id = ? ORDER BY idx', runId).map(toStep);
  }

  async updateSteps(updates: StepUpdate[]): Promise<boolean[]> {
    return updates.map((u) => {
      const params: unknown[] = [];
      const sets = setClause(u.patch, STEP_COLUMNS, params, SQLITE);
      const n = params.length;
      let sql = `UPDATE steps SET ${sets} WHERE run_id = ?${n + 1} AND name = ?${n + 2} AND status IN (${numbered(n + 3, u.expectStatus.length)})`;
      params.push(u.runId, u.name, ...u.expectStatus);
      if (u.expectToken !== undefined) {
        params.push(u.expectToken);
        sql += ` AND lease_token = ?${params.length}`;
      }
      return Number(this.#s.stmt(sql).run(...(params as SQLInputValue[])).changes) === 1;
    });
  }

  async endSteps(updates: Array<StepUpdate & { dependents: string[] }>): Promise<Array<string[] | null>> {
    // One writer at a time (BEGIN IMMEDIATE): nothing changed the rows since this transaction read them.
    return (await this.updateSteps(updates)).map((ok, i) => (ok ? (updates[i] as { dependents: string[] }).dependents : null));
  }

  async appendDependents(appends: DependentsAppend[]): Promise<boolean[]> {
    const st = this.#s.stmt(
      `UPDATE steps SET dependents = (SELECT json_group_array(value) FROM (SELECT value FROM json_each(steps.dependents) UNION ALL SELECT value FROM json_each(?1)))
       WHERE run_id = ?2 AND name = ?3 AND status IN ${OPEN_STATES} AND (?4 IS NULL OR lease_token = ?4)`,
    );
    return appends.map((a) => Number(st.run(JSON.stringify(a.add), a.runId, a.name, a.expectToken ?? null).changes) === 1);
  }

  async updateRun(id: string, expectStatus: readonly RunState[], patch: RunPatch): Promise<boolean> {
    const params: unknown[] = [];
    const sets = setClause(patch, RUN_COLUMNS, params, SQLITE);
    const sql = `UPDATE runs SET ${sets} WHERE id = ?${params.length + 1} AND status IN (${numbered(params.length + 2, expectStatus.length)})`;
    params.push(id, ...expectStatus);
    return Number(this.#s.stmt(sql).run(...(params as SQLInputValue[])).changes) === 1;
  }

  async decrementPending(runId: string, names: string[]): Promise<StepRow[]> {
    const st = this.#s.stmt("UPDATE steps SET pending_deps = pending_deps - 1 WHERE run_id = ? AND name = ? AND status = 'pending' RETURNING *");
    const out: StepRow[] = [];
    for (const n of names) {
      const r = st.get(runId, n) as Record<string, unknown> | undefined;
      if (r) out.push(toStep(r));
    }
    return out;
  }

  async claimReady(o: ClaimOptions): Promise<ClaimedRow[]> {
    // Two statements: the first picks the batch, the second leases it and counts the attempt. They
    // are apart because SQLite's RETURNING sees only the updated row, and the claim clears ready_at,
    // which the queue wait is measured from (wasReadyAt). Nothing writes between them: the store's
    // transactions are BEGIN IMMEDIATE. The token is minted by SQLite (randomblob) so it is unique
    // per row without a round trip per step. Only the columns a claim needs come back (the whole
    // row, mapped, cost ~10 % of a no-op step).
    // Picking (docs/flow-control.md): in claim order (priority, then readiness), steps of a key
    // that is full are passed over, and of a key with room only as many as it has. Writers take
    // turns on SQLite, so the count of a key's running steps cannot change under the claim. Ties
    // go in insertion order (rowid), which the index keeps.
    const picked = this.#s
      .stmt(
        `WITH running AS (
           SELECT concurrency_key AS k, count(*) AS n FROM steps WHERE status = 'running' AND concurrency_key IS NOT NULL GROUP BY concurrency_key),
         candidates AS (
           SELECT s.rowid AS id, s.ready_at, s.concurrency_key AS k, s.concurrency_limit AS lim, ${CLAIM_RANK_SQL} AS rank FROM steps s
           WHERE s.status = 'queued' AND s.ready_at <= ?
             AND (s.concurrency_key IS NULL OR s.concurrency_limit > coalesce((SELECT n FROM running WHERE running.k = s.concurrency_key), 0))
           ORDER BY ${CLAIM_RANK_SQL}, s.rowid LIMIT ?)
         SELECT id, ready_at FROM (SELECT id, ready_at, k, lim, row_number() OVER (PARTITION BY k ORDER BY rank, id) AS nth FROM candidates) c
         WHERE k IS NULL OR nth + coalesce((SELECT n FROM running WHERE running.k = c.k), 0) <= lim`,
      )
      .all(o.now, o.limit) as Array<{ id: number; ready_at: number }>;
    if (picked.length === 0) return [];
    const wasReady = new Map<number, number>();
    for (const p of picked) wasReady.set(p.id, p.ready_at);
    const rows = this.#s
      .stmt(
        `UPDATE steps SET status = 'running', attempts = attempts + 1, worker_id = ?, lease_token = lower(hex(randomblob(12))),
           lease_expires_at = ? + ?, deadline_at = ? + timeout_ms, started_at = coalesce(started_at, ?), attempt_started_at = ?, ready_at = NULL,
           key_wait_at = NULL
         WHERE rowid IN (SELECT value FROM json_each(?))
         RETURNING rowid AS id, run_id, name, tool, attempts, lease_token, inputs, resolved_inputs, timeout_ms, queue_timeout_ms`,
      )
      .all(o.workerId, o.now, o.leaseMs, o.now, o.now, o.now, JSON.stringify(picked.map((p) => p.id))) as Record<string, unknown>[];
    return rows.map((r) => {
      const resolved = r.resolved_inputs as string | null;
      return {
        runId: r.run_id as string,
        name: r.name as string,
        tool: r.tool as string,
        attempts: Number(r.attempts),
        leaseToken: r.lease_token as string,
        // A queued step has its inputs resolved; the raw inputs are read only if it has none.
        resolvedInputs: resolved === null ? null : (JSON.parse(resolved) as Record<string, unknown>),
        get inputs(): Record<string, unknown> {
          return JSON.parse(r.inputs as string) as Record<string, unknown>;
        },
        timeoutMs: Number(r.timeout_ms),
        wasReadyAt: Number(wasReady.get(r.id as number)),
        queueTimeoutMs: r.queue_timeout_ms === null ? null : Number(r.queue_timeout_ms),
      };
    });
  }

  async finishAttempts(updates: AttemptUpdate[]): Promise<boolean[]> {
    // The attempt's row, written once: what the step's row says of the attempt it is running, and
    // how it ended. A step that is no longer running that attempt inserts nothing.
    const st = this.#s.stmt(
      `INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at, error, hang_report)
         SELECT run_id, name, attempts, ?1, worker_id, attempt_started_at, ?2, deadline_at, ?3, ?4
         FROM steps WHERE run_id = ?5 AND name = ?6 AND attempts = ?7 AND status = 'running'
       ON CONFLICT DO NOTHING`,
    );
    return updates.map(
      (u) =>
        Number(
          st.run(
            u.status,
            u.finishedAt,
            u.error ? JSON.stringify(u.error) : null,
            u.hangReport ? JSON.stringify(u.hangReport) : null,
            u.runId,
            u.stepName,
            u.attempt,
          ).changes,
        ) === 1,
    );
  }

  async insertArtifacts(artifacts: NewArtifact[]): Promise<void> {
    const st = this.#s.stmt(
      'INSERT INTO artifacts (id, run_id, step_name, attempt, name, mime, size, content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    for (const a of artifacts) st.run(a.id, a.runId, a.stepName, a.attempt, a.name, a.mime, a.content.byteLength, a.content, a.createdAt);
  }

  async expiredLeases(now: number, limit: number): Promise<StepRow[]> {
    return this.#s
      .all("SELECT * FROM steps WHERE status = 'running' AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?", now, limit)
      .map(toStep);
  }

  async renewLeases(workerId: string, leases: readonly LeaseKey[], now: number, until: number, graceMs: number): Promise<RenewResult> {
    // One statement per RENEW_CHUNK leases (a worker may hold 10,000 LLM steps), each found by its
    // key (the primary key) with its token checked; the loop turns between chunks.
    const st = this.#s.stmt(
      `UPDATE steps SET lease_expires_at = ?1
       FROM (SELECT value ->> '$[0]' AS run_id, value ->> '$[1]' AS name, value ->> '$[2]' AS token FROM json_each(?2)) AS w
       WHERE steps.run_id = w.run_id AND steps.name = w.name AND steps.lease_token = w.token
         AND steps.worker_id = ?3 AND steps.status = 'running' AND steps.deadline_at + ?4 > ?5
       RETURNING steps.lease_token AS token, steps.cancel_requested AS cancel`,
    );
    const renewed: string[] = [];
    const cancel: string[] = [];
    for (let i = 0; i < leases.length; i += RENEW_CHUNK) {
      if (i > 0) await yieldToLoop();
      const keys = JSON.stringify(leases.slice(i, i + RENEW_CHUNK).map((l) => [l.runId, l.name, l.token]));
      for (const r of st.all(until, keys, workerId, graceMs, now) as Array<{ token: string; cancel: number }>) {
        renewed.push(r.token);
        if (Number(r.cancel) === 1) cancel.push(r.token);
      }
    }
    return { renewed, cancel };
  }

  async setCapacityWaits(workerId: string, waits: readonly CapacityWaitUpdate[]): Promise<void> {
    const st = this.#s.stmt(
      `UPDATE steps SET deadline_at = ?, waiting_for = ?
       WHERE run_id = ? AND name = ? AND lease_token = ? AND worker_id = ? AND status = 'running'`,
    );
    for (const w of waits) st.run(Math.round(w.deadlineAt), w.waitingFor === null ? null : JSON.stringify(w.waitingFor), w.runId, w.name, w.token, workerId);
  }

  async runningByWorkers(workerIds: string[]): Promise<StepRow[]> {
    if (workerIds.length === 0) return [];
    return this.#s
      .all(`SELECT * FROM steps WHERE status = 'running' AND worker_id IN (${placeholders(workerIds.length)}) ORDER BY run_id, idx`, ...workerIds)
      .map(toStep);
  }

  async awaitSignals(keys: ReadonlyArray<{ runId: string; name: string }>, at: number): Promise<SignalRow[]> {
    return signals.awaitSignals(this.#s, keys, at);
  }

  async sendSignal(s: { runId: string; name: string; payload: unknown; sentAt: number }): Promise<{ sent: boolean; row: SignalRow }> {
    return signals.sendSignal(this.#s, s);
  }

  async stepsAwaiting(runId: string, name: string): Promise<StepRow[]> {
    return signals.stepsAwaiting(this.#s, runId, name);
  }

  async expiredWaits(now: number, limit: number): Promise<StepRow[]> {
    return signals.expiredWaits(this.#s, now, limit);
  }

  async expiredQueueWaits(now: number, limit: number): Promise<Array<{ step: StepRow; keyRunning: number }>> {
    return signals.expiredQueueWaits(this.#s, now, limit);
  }

  async announceKeyWaits(now: number, limit: number): Promise<KeyWait[]> {
    return signals.announceKeyWaits(this.#s, now, limit);
  }

  async setAttemptReports(reports: AttemptReport[]): Promise<void> {
    signals.setAttemptReports(this.#s, reports);
  }

  async copyArtifacts(copies: ArtifactCopy[]): Promise<void> {
    signals.copyArtifacts(this.#s, copies);
  }
}
