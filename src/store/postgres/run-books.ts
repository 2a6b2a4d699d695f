/**
 * A transaction's run bookkeeping (advanceRun, which also finishes a run whose last step ended), locked
 * once and written once.
 *
 * The engine settles each run of a transaction with one advanceRun, one run after the other, each
 * awaited. As plain statements that was two or three round trips per run (lock, advance, finish):
 * for single-step runs, 3 of the 5 statements a step cost. Instead:
 * - The first advanceRun locks every run the transaction has touched so far, in one
 *   `SELECT ... ORDER BY id FOR NO KEY UPDATE` (sorted: two transactions lock their runs in the same order,
 *   so they cannot deadlock on them), and keeps the locked rows here.
 * - While a row is locked by this transaction nobody else can change it, so advanceRun computes
 *   its result (and the finish) from the kept row (exactly what the UPDATE would return) and only
 *   marks it dirty.
 * - Dirty rows are written in one `UPDATE ... FROM unnest(...)` with their final values, merged
 *   into the transaction's insertEvents statement (which settleRuns issues right after), or on its
 *   own before any other statement and before COMMIT.
 * Measured on no-op single-step runs (2 vCPUs, 1 worker process): 5.0 statements per step before,
 * 2.1 after (bench/postgres-engine.ts, cost-per-step).
 */
import type { RunState } from '../../domain/states.ts';
import type { RunDelta, RunProgress } from '../store.ts';
import type { TxQuery } from './tx.ts';

interface RunBook {
  status: RunState;
  startedAt: number | null;
  finishedAt: number | null;
  lastSeq: number;
  stepsDone: number;
  stepsTotal: number;
  stepsFailed: number;
  cancelRequested: boolean;
  createdAt: number;
  inputTokens: number;
  outputTokens: number;
  llmCalls: number;
  dirty: boolean;
}

const COLUMNS = 'id, status, started_at, finished_at, last_seq, steps_done, steps_total, steps_failed, cancel_requested, created_at, input_tokens, output_tokens, llm_calls';

const WRITE = `UPDATE runs r SET status = u.status, started_at = u.started_at, finished_at = u.finished_at, last_seq = u.last_seq,
    steps_done = u.steps_done, steps_failed = u.steps_failed, input_tokens = u.input_tokens, output_tokens = u.output_tokens, llm_calls = u.llm_calls
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::integer[], $7::integer[], $8::bigint[], $9::bigint[], $10::integer[])
    AS u(id, status, started_at, finished_at, last_seq, steps_done, steps_failed, input_tokens, output_tokens, llm_calls)
  WHERE r.id = u.id`;

function progress(b: RunBook, firstSeq: number, started: boolean): RunProgress {
  return {
    status: b.status,
    stepsDone: b.stepsDone,
    stepsTotal: b.stepsTotal,
    stepsFailed: b.stepsFailed,
    cancelRequested: b.cancelRequested,
    createdAt: b.createdAt,
    usage: { inputTokens: b.inputTokens, outputTokens: b.outputTokens, calls: b.llmCalls },
    firstSeq,
    started,
  };
}

export class RunBooks {
  readonly #q: TxQuery;
  /** Runs this transaction has touched: locked together at the first advanceRun. */
  readonly #known = new Set<string>();
  /** Runs locked by this transaction, as they are now (including unwritten changes). */
  readonly #locked = new Map<string, RunBook>();
  #lockedKnown = false;

  constructor(q: TxQuery) {
    this.#q = q;
  }

  touch(runId: string): void {
    this.#known.add(runId);
  }

  get dirty(): boolean {
    for (const b of this.#locked.values()) if (b.dirty) return true;
    return false;
  }

  /** Forget a run's kept row (after a statement this class did not make changed it). */
  forget(runId: string): void {
    this.#locked.delete(runId);
  }

  /** `SELECT <book columns> FROM runs WHERE <where> ORDER BY id FOR NO KEY UPDATE`. */
  static LOCK_SQL(where: string): string {
    // NO KEY UPDATE, the lock an UPDATE of non-key columns takes: it does not conflict with the
    // KEY SHARE locks foreign-key checks take on the run row (updating a step twice in one
    // transaction does), where FOR UPDATE would, and two transactions each holding KEY SHARE while
    // waiting to upgrade deadlock (test/postgres/store.test.ts).
    return `SELECT ${COLUMNS} FROM runs WHERE ${where} ORDER BY id FOR NO KEY UPDATE`;
  }

  async #lock(ids: string[]): Promise<void> {
    const want = ids.filter((id) => !this.#locked.has(id));
    if (want.length === 0) return;
    const res = await this.#q(RunBooks.LOCK_SQL('id = ANY($1::text[])'), [want]);
    this.seed(res.rows as Array<Record<string, unknown>>);
  }

  /** Rows this transaction has locked, as another statement returned them. */
  seed(rows: Array<Record<string, unknown>>): void {
    for (const r of rows) {
      if (this.#locked.has(r.id as string)) continue;
      this.#known.add(r.id as string);
      this.#locked.set(r.id as string, {
        status: r.status as RunState,
        startedAt: r.started_at === null ? null : Number(r.started_at),
        finishedAt: r.finished_at === null ? null : Number(r.finished_at),
        lastSeq: Number(r.last_seq),
        stepsDone: Number(r.steps_done),
        stepsTotal: Number(r.steps_total),
        stepsFailed: Number(r.steps_failed),
        cancelRequested: r.cancel_requested === true,
        createdAt: Number(r.created_at),
        inputTokens: Number(r.input_tokens),
        outputTokens: Number(r.output_tokens),
        llmCalls: Number(r.llm_calls),
        dirty: false,
      });
    }
  }

  /** A run this transaction inserts: its row as the insert leaves it. */
  seedNew(id: string, stepsTotal: number, createdAt: number): void {
    this.#known.add(id);
    this.#locked.set(id, {
      status: 'queued',
      startedAt: null,
      finishedAt: null,
      lastSeq: 0,
      stepsDone: 0,
      stepsTotal,
      stepsFailed: 0,
      cancelRequested: false,
      createdAt,
      inputTokens: 0,
      outputTokens: 0,
      llmCalls: 0,
      dirty: false,
    });
  }

  async #book(runId: string): Promise<RunBook | undefined> {
    if (!this.#locked.has(runId)) {
      if (!this.#lockedKnown) {
        this.#lockedKnown = true;
        this.#known.add(runId);
        await this.#lock([...this.#known]);
      } else {
        await this.#lock([runId]);
      }
    }
    return this.#locked.get(runId);
  }

  async advance(runId: string, d: RunDelta): Promise<RunProgress> {
    const b = await this.#book(runId);
    if (!b) throw new Error(`advanceRun: run ${runId} does not exist`);
    const started = d.startAt !== undefined && b.status === 'queued';
    const firstSeq = b.lastSeq + 1;
    if (started) {
      b.status = 'running';
      b.startedAt = d.startAt as number;
      b.lastSeq += 1;
    }
    b.lastSeq += d.events;
    b.stepsDone += d.stepsDone;
    b.stepsFailed += d.stepsFailed;
    b.inputTokens += d.usage?.inputTokens ?? 0;
    b.outputTokens += d.usage?.outputTokens ?? 0;
    b.llmCalls += d.usage?.calls ?? 0;
    if (started || d.events !== 0 || d.stepsDone !== 0 || d.stepsFailed !== 0 || (d.usage && d.usage.calls + d.usage.inputTokens + d.usage.outputTokens !== 0)) b.dirty = true;
    const p = progress(b, firstSeq, started);
    if (d.finishAt !== undefined && b.stepsDone >= b.stepsTotal && (b.status === 'queued' || b.status === 'running')) {
      const from = b.status;
      b.status = b.cancelRequested ? 'cancelled' : b.stepsFailed > 0 ? 'failed' : 'succeeded';
      b.finishedAt = d.finishAt;
      b.lastSeq += 1;
      b.dirty = true;
      p.finished = { status: b.status, from, seq: b.lastSeq };
    }
    return p;
  }

  /** The pending writes as unnest parameters ($1..$10), marking them written. */
  take(): { params: unknown[]; count: number } | null {
    const dirty = [...this.#locked.entries()].filter(([, b]) => b.dirty);
    if (dirty.length === 0) return null;
    for (const [, b] of dirty) b.dirty = false;
    const col = <T>(f: (b: RunBook) => T): T[] => dirty.map(([, b]) => f(b));
    return {
      count: dirty.length,
      params: [
        dirty.map(([id]) => id),
        col((b) => b.status),
        col((b) => b.startedAt),
        col((b) => b.finishedAt),
        col((b) => b.lastSeq),
        col((b) => b.stepsDone),
        col((b) => b.stepsFailed),
        col((b) => b.inputTokens),
        col((b) => b.outputTokens),
        col((b) => b.llmCalls),
      ],
    };
  }

  /** Writes pending changes on their own (before another statement, or before COMMIT). */
  async flush(): Promise<void> {
    const w = this.take();
    if (!w) return;
    const res = await this.#q(WRITE, w.params);
    if (res.rowCount !== w.count) throw new Error(`run bookkeeping: wrote ${res.rowCount} of ${w.count} locked runs`);
  }

  /** The write as a CTE named `books`, to run inside another statement (see insertEvents). */
  static readonly CTE = `books AS (${WRITE} RETURNING 1)`;
}
