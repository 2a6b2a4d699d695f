/**
 * The engine's transitions, one method each, each one store transaction: createRun, claim, flush
 * (complete attempts), cycle (flush + claim), renew, reap, loseWorker, release, cancel. Their bodies
 * live in transitions/, one file per transition; what they share (finishing steps and the DAG,
 * retries, the run books at the end of every transaction) beside them. Workers batch many claims or
 * completions into one transaction.
 */
import type { ValidatedRun } from '../domain/plan.ts';
import type { CapacityWaitUpdate, LeaseKey, RunRow, Store, Tx } from '../store/store.ts';
import { newRunId } from './ids.ts';
import { observeCommitted } from '../telemetry/hooks.ts';
import { cancelRun } from './transitions/cancel.ts';
import { claimSteps } from './transitions/claim.ts';
import { recordResults } from './transitions/complete.ts';
import { insertRuns, type NewRunItem } from './transitions/create-run.ts';
import { fireTick, type TickToFire } from './transitions/fire-schedule.ts';
import { GroupCommit } from './group-commit.ts';
import { newEffects, type TxEffects } from './transitions/effects.ts';
import { loseWorkerAttempts, reapExpired, releaseAttempts } from './transitions/lose.ts';
import { settleRuns, TransactionRace } from './transitions/settle.ts';
import { deliverSignal, expireWaits, type SignalOutcome, type WaitReportBuilder } from './transitions/waits.ts';
import { announceKeyWaits } from './transitions/key-waits.ts';
import { expireQueueWaits, type QueueReportBuilder } from './transitions/queue-timeouts.ts';
import { insertRerun } from './transitions/rerun.ts';
import { planRerun, type RerunPlan } from './rerun-plan.ts';
import { RunwardenError } from '../domain/errors.ts';
import { RUN_TERMINAL } from '../domain/states.ts';
import { CycleError, type ClaimedStep, type Completion, type CompletionResult, type LostAttempt, type LostReportBuilder, type LoseWorkerOptions, type StepEvent } from './transitions/types.ts';

export * from './transitions/types.ts';
export type { ExpiredWait, SignalOutcome, WaitReportBuilder } from './transitions/waits.ts';
export type { ExpiredQueueWait, QueueReportBuilder } from './transitions/queue-timeouts.ts';

export interface TransitionsOptions {
  /** The clock of every transition (tests pin it). @default Date.now */
  now?: () => number;
  /**
   * The hang report of an attempt the reaper finds with an expired lease (the process wires in
   * forensics' `lostAttemptReport`; without it such attempts carry no report).
   */
  lostReport?: LostReportBuilder;
  /** The hang report of a wait whose signal did not come in time (forensics' `waitTimeoutReport`). */
  waitReport?: WaitReportBuilder;
  /** The hang report of a queued step past its queueTimeoutMs (forensics' `queueTimeoutReport`). */
  queueReport?: QueueReportBuilder;
}

export class Transitions {
  readonly store: Store;
  readonly #now: () => number;
  readonly #lostReport: LostReportBuilder | undefined;
  readonly #waitReport: WaitReportBuilder | undefined;
  readonly #queueReport: QueueReportBuilder | undefined;

  /** Concurrent createRun calls, written together (at most 500 runs or 10,000 steps a transaction). */
  readonly #creates = new GroupCommit<{ run: ValidatedRun; rawPlan: unknown }, { runId: string; created: boolean }>({
    write: (items) => this.createRuns(items),
    maxItems: 500,
    weight: (i) => i.run.steps.length,
    maxWeight: 10_000,
  });

  constructor(store: Store, opts: TransitionsOptions = {}) {
    this.store = store;
    this.#now = opts.now ?? Date.now;
    this.#lostReport = opts.lostReport;
    this.#waitReport = opts.waitReport;
    this.#queueReport = opts.queueReport;
  }

  async #tx<T>(fn: (tx: Tx, fx: TxEffects) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#txOnce(fn, attempt > 1);
      } catch (err) {
        // Two transactions added steps to one run at once (see TransactionRace); rare, and the
        // second one to lock the run simply runs again with what the first one left.
        if (!(err instanceof TransactionRace) || attempt >= 8) throw err;
      }
    }
  }

  async #txOnce<T>(fn: (tx: Tx, fx: TxEffects) => Promise<T>, rerun: boolean): Promise<T> {
    const fx = newEffects(this.#now(), rerun);
    let runIds: string[] = [];
    const result = await this.store.transaction(async (tx) => {
      // A PostgreSQL transaction that lost a race runs again: its effects start over.
      fx.events.length = 0;
      fx.deltas.clear();
      fx.queued = 0;
      fx.written = [];
      const r = await fn(tx, fx);
      runIds = await settleRuns(tx, fx);
      return r;
    });
    if (runIds.length > 0) this.store.publish({ kind: 'events', runIds });
    if (fx.queued > 0) this.store.publish({ kind: 'ready' });
    observeCommitted(fx.written);
    return result;
  }

  /**
   * Inserts a validated run (or returns the existing one for a repeated idempotency key). Calls made
   * while another creation is being written share the next transaction (group-commit.ts).
   */
  createRun(run: ValidatedRun, rawPlan: unknown): Promise<{ runId: string; created: boolean }> {
    return this.#creates.submit({ run, rawPlan });
  }

  /** createRun calls so far and the transactions that wrote them. */
  groupStats(): { groups: number; items: number } {
    return { ...this.#creates.stats };
  }

  /**
   * Inserts validated runs in one transaction; for each, in order, its id and whether this call
   * created it. An item whose idempotency key is already taken (by a stored run, or an earlier item)
   * returns that run, `created: false`.
   */
  async createRuns(items: ReadonlyArray<{ run: ValidatedRun; rawPlan: unknown }>): Promise<Array<{ runId: string; created: boolean }>> {
    if (items.length === 0) return [];
    const ids = items.map(() => newRunId());
    return this.#tx(async (tx, fx) => {
      const keys = items.flatMap((i) => (i.run.idempotencyKey ? [i.run.idempotencyKey] : []));
      // Read inside the transaction: of two concurrent submissions with one key, one creates the run
      // (PostgreSQL: the other's insert conflicts, and its transaction runs again and finds it here).
      const taken = keys.length > 0 ? await this.store.findRunIdsByIdempotencyKeys(keys) : new Map<string, string>();
      const fresh: NewRunItem[] = [];
      const out = items.map(({ run, rawPlan }, i) => {
        const key = run.idempotencyKey;
        const existing = key ? taken.get(key) : undefined;
        if (existing !== undefined) return { runId: existing, created: false };
        const id = ids[i] as string;
        if (key) taken.set(key, id);
        fresh.push({ id, run, rawPlan });
        return { runId: id, created: true };
      });
      await insertRuns(tx, fx, fresh);
      return out;
    });
  }

  /** Fires one tick of a schedule (fire-schedule.ts): the run's id, or null when it was not this call's to fire. */
  async fireSchedule(t: TickToFire): Promise<string | null> {
    const id = newRunId();
    return this.#tx(async (tx, fx) => ((await fireTick(this.store, tx, fx, id, t)) ? id : null));
  }

  /** Claims up to `limit` ready steps for a worker, each with a fresh lease and attempt. */
  async claim(workerId: string, limit: number, leaseMs: number): Promise<ClaimedStep[]> {
    if (limit <= 0) return [];
    return this.#tx((tx, fx) => claimSteps(tx, fx, workerId, limit, leaseMs));
  }

  /**
   * Writes step events and attempt results in one transaction. Outputs, artifacts, the state change
   * and the events of a completion commit together or not at all.
   */
  async flush(events: StepEvent[], completions: Completion[]): Promise<CompletionResult[]> {
    if (events.length === 0 && completions.length === 0) return [];
    return this.#tx((tx, fx) => recordResults(tx, fx, events, completions));
  }

  /**
   * A worker's pass: flush its events and results, then claim up to `claim.limit` ready steps.
   * - SQLite: both share one transaction (one commit; steps the results just released are claimed
   *   at once).
   * - PostgreSQL: two transactions on two connections, sent together, so the server works on both
   *   at once instead of one after the other. They cannot deadlock: the claim waits on no row
   *   another transaction holds (it skips locked steps; it locks the runs of the steps it picked,
   *   which no transaction holding one of them waits for in turn). One transaction would take run
   *   locks in two batches (the claim's, then the flush's) out of order against another worker.
   * Either part may fail alone: `flushError` then says the results were not written (the caller
   * sends them again); a failed claim throws after the flush committed (its results are in
   * `CycleError.results`).
   */
  async cycle(
    events: StepEvent[],
    completions: Completion[],
    claim: { workerId: string; limit: number; leaseMs: number } | null,
  ): Promise<{ results: CompletionResult[]; claimed: ClaimedStep[]; flushError?: unknown }> {
    const wantClaim = claim !== null && claim.limit > 0;
    if (!wantClaim) return { results: await this.flush(events, completions), claimed: [] };
    if (this.store.dialect === 'sqlite') {
      return this.#tx(async (tx, fx) => {
        const results = await recordResults(tx, fx, events, completions);
        const claimed = await claimSteps(tx, fx, claim.workerId, claim.limit, claim.leaseMs);
        return { results, claimed };
      });
    }
    const [flushed, claimedOrNot] = await Promise.allSettled([this.flush(events, completions), this.claim(claim.workerId, claim.limit, claim.leaseMs)]);
    if (claimedOrNot.status === 'rejected') {
      if (flushed.status === 'fulfilled') throw new CycleError(claimedOrNot.reason, flushed.value);
      throw claimedOrNot.reason as Error;
    }
    if (flushed.status === 'rejected') return { results: [], claimed: claimedOrNot.value, flushError: flushed.reason };
    return { results: flushed.value, claimed: claimedOrNot.value };
  }

  /**
   * Extends the leases a live worker holds. Returns the tokens still valid and, among them, the
   * ones whose run was cancelled.
   */
  /**
   * Renews a worker's leases. `waits`: its attempts that wait, or waited, for capacity: their moved
   * deadlines are written first (a lease is renewed only before its deadline and grace).
   */
  async renew(workerId: string, leases: readonly LeaseKey[], leaseMs: number, graceMs: number, waits: readonly CapacityWaitUpdate[] = []): Promise<{ renewed: string[]; cancel: string[] }> {
    if (leases.length === 0) return { renewed: [], cancel: [] };
    const now = this.#now();
    return this.store.transaction(async (tx) => {
      if (waits.length > 0) await tx.setCapacityWaits(workerId, waits);
      return tx.renewLeases(workerId, leases, now, now + leaseMs, graceMs);
    });
  }

  /** Expired leases become `lost` attempts; the step is retried or fails. Returns how many. */
  async reap(limit = 500): Promise<number> {
    // Read before the transaction: what the store still knows of each worker goes into the report.
    const workers = new Map((await this.store.listWorkers()).map((w) => [w.id, w]));
    return this.#tx((tx, fx) => reapExpired(tx, fx, limit, workers, this.#lostReport));
  }

  /**
   * A supervisor saw worker processes die or killed them: their running attempts end now instead of
   * when their leases expire (see loseWorkerAttempts). Token-guarded like every transition: an
   * attempt that completed or was reaped meanwhile is left alone.
   */
  async loseWorker(workerIds: string[], o: LoseWorkerOptions): Promise<LostAttempt[]> {
    if (workerIds.length === 0) return [];
    return this.#tx((tx, fx) => loseWorkerAttempts(tx, fx, workerIds, o));
  }

  /**
   * Hands steps back after a graceful shutdown aborted them: the attempt is recorded as lost
   * (WORKER_SHUTDOWN) and the step is queued again at once without using a retry.
   */
  async release(items: Array<{ runId: string; stepName: string; token: string; attempt: number }>): Promise<void> {
    if (items.length === 0) return;
    await this.#tx((tx, fx) => releaseAttempts(tx, fx, items));
  }

  /**
   * Sends a signal to a run: kept for steps that wait for it later, and every step waiting for it
   * now succeeds with `payload` as its outputs. One send per name and run (`duplicate` after that).
   */
  async signal(runId: string, name: string, payload: unknown): Promise<SignalOutcome> {
    return this.#tx((tx, fx) => deliverSignal(tx, fx, runId, name, payload));
  }

  /** The reaper's other pass: waits past their deadline end `timed_out`, with a report. Returns how many. */
  async expireWaits(limit = 500): Promise<number> {
    return this.#tx((tx, fx) => expireWaits(tx, fx, limit, this.#waitReport));
  }

  /** The reaper's third pass: queued steps past their queueTimeoutMs fail with QUEUE_TIMEOUT. Returns how many. */
  async expireQueueWaits(limit = 500): Promise<number> {
    return this.#tx((tx, fx) => expireQueueWaits(tx, fx, limit, this.#queueReport));
  }

  /** The reaper's fourth pass: queued steps that their full concurrency key holds back get one `step.waiting` each. Returns how many. */
  async announceKeyWaits(limit = 500): Promise<number> {
    return this.#tx((tx, fx) => announceKeyWaits(tx, fx, limit));
  }

  /**
   * A new run from a finished one, reusing what succeeded upstream of `from` (rerun-plan.ts).
   * Null when the run does not exist; RUN_NOT_FINISHED, UNKNOWN_STEP, NOTHING_TO_RERUN otherwise.
   */
  async rerun(runId: string, from?: readonly string[]): Promise<{ runId: string; plan: RerunPlan } | null> {
    const run = await this.store.getRun(runId);
    if (!run) return null;
    if (!RUN_TERMINAL.has(run.status)) throw new RunwardenError('RUN_NOT_FINISHED', `run ${runId} is ${run.status}: only a finished run can be rerun`, { data: { status: run.status } });
    // A finished run no longer changes: what it holds can be read outside the transaction.
    const [steps, plan, artifacts] = await Promise.all([this.store.getRunSteps(runId), this.store.getPlan(runId), this.store.listArtifacts(runId)]);
    const p = planRerun(runId, steps, from);
    const id = newRunId();
    await this.#tx((tx, fx) => insertRerun(tx, fx, id, { run, plan, artifacts }, p));
    return { runId: id, plan: p };
  }

  /** Cancels a run: pending and queued steps end now, running attempts are told to abort. */
  async cancel(runId: string): Promise<RunRow | null> {
    const done = await this.#tx((tx, fx) => cancelRun(tx, fx, runId));
    if (done?.hadRunning) this.store.publish({ kind: 'cancel', runId });
    return this.store.getRun(runId);
  }
}
