/**
 * A transaction's run bookkeeping (Tx.lockRuns / Tx.writeRuns), locked once and written once. What
 * the books become is the engine's (src/engine/run-books.ts); this class only keeps the rows.
 *
 * The engine settles the runs of a transaction with one lockRuns and one writeRuns. As plain
 * statements that was two or three round trips per run (lock, advance, finish): for single-step
 * runs, 3 of the 5 statements a step cost. Instead:
 * - lockRuns locks the runs it does not hold yet in one `SELECT ... ORDER BY id FOR NO KEY UPDATE`
 *   (sorted: two transactions lock their runs in the same order, so they cannot deadlock on them),
 *   and keeps the locked rows here. A claim locks its runs in its own statement and seeds them
 *   (postgres/tx.ts claimReady); a run inserted by this transaction is seeded as inserted.
 * - While a row is locked by this transaction nobody else can change it, so the kept row is the row.
 * - writeRuns only marks rows dirty. Dirty rows are written in one `UPDATE ... FROM unnest(...)`,
 *   merged into the transaction's insertEvents statement (which settleRuns issues right after), or
 *   on their own before any other statement and before COMMIT.
 * Measured on no-op single-step runs (2 vCPUs, 1 worker process): 5.0 statements per step before,
 * 2.1 after (bench/postgres-engine.ts, cost-per-step).
 */
import { BOOK_COLUMNS, toBook } from '../rows.ts';
import type { RunBook } from '../store.ts';
import type { TxQuery } from './sql.ts';


const WRITE = `UPDATE runs r SET status = u.status, started_at = u.started_at, finished_at = u.finished_at, last_seq = u.last_seq,
    steps_done = u.steps_done, steps_failed = u.steps_failed, input_tokens = u.input_tokens, output_tokens = u.output_tokens, llm_calls = u.llm_calls,
    steps_total = u.steps_total
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::integer[], $7::integer[], $8::bigint[], $9::bigint[], $10::integer[], $11::integer[])
    AS u(id, status, started_at, finished_at, last_seq, steps_done, steps_failed, input_tokens, output_tokens, llm_calls, steps_total)
  WHERE r.id = u.id`;

const copy = (b: RunBook): RunBook => ({ ...b, usage: { ...b.usage } });

export class RunBooks {
  readonly #q: TxQuery;
  /** Runs locked by this transaction, as they are now (including unwritten changes). */
  readonly #locked = new Map<string, { book: RunBook; dirty: boolean }>();

  constructor(q: TxQuery) {
    this.#q = q;
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
    return `SELECT ${BOOK_COLUMNS} FROM runs WHERE ${where} ORDER BY id FOR NO KEY UPDATE`;
  }

  /** Rows this transaction has locked, as another statement returned them. */
  seed(rows: Array<Record<string, unknown>>): void {
    for (const r of rows) {
      if (!this.#locked.has(r.id as string)) this.#locked.set(r.id as string, { book: toBook(r), dirty: false });
    }
  }

  /** A run this transaction inserts: its row as the insert leaves it (nobody else can see it yet). */
  seedNew(id: string, stepsTotal: number, createdAt: number): void {
    this.#locked.set(id, {
      book: {
        id,
        status: 'queued',
        startedAt: null,
        finishedAt: null,
        lastSeq: 0,
        stepsDone: 0,
        stepsTotal,
        stepsFailed: 0,
        cancelRequested: false,
        createdAt,
        usage: { inputTokens: 0, outputTokens: 0, calls: 0 },
      },
      dirty: false,
    });
  }

  async lock(runIds: readonly string[]): Promise<RunBook[]> {
    const want = runIds.filter((id) => !this.#locked.has(id));
    if (want.length > 0) this.seed((await this.#q(RunBooks.LOCK_SQL('id = ANY($1::text[])'), [want])).rows as Array<Record<string, unknown>>);
    return runIds.flatMap((id) => {
      const kept = this.#locked.get(id);
      return kept ? [copy(kept.book)] : [];
    });
  }

  write(books: readonly RunBook[]): void {
    for (const b of books) {
      if (!this.#locked.has(b.id)) throw new Error(`run bookkeeping: run ${b.id} was not locked by this transaction`);
      this.#locked.set(b.id, { book: copy(b), dirty: true });
    }
  }

  /** The pending writes as unnest parameters ($1..$11), marking them written. */
  take(): { params: unknown[]; count: number } | null {
    const dirty = [...this.#locked.values()].filter((k) => k.dirty);
    if (dirty.length === 0) return null;
    for (const k of dirty) k.dirty = false;
    const col = <T>(f: (b: RunBook) => T): T[] => dirty.map((k) => f(k.book));
    return {
      count: dirty.length,
      params: [
        col((b) => b.id),
        col((b) => b.status),
        col((b) => b.startedAt),
        col((b) => b.finishedAt),
        col((b) => b.lastSeq),
        col((b) => b.stepsDone),
        col((b) => b.stepsFailed),
        col((b) => b.usage.inputTokens),
        col((b) => b.usage.outputTokens),
        col((b) => b.usage.calls),
        col((b) => b.stepsTotal),
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
