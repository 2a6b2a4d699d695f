/**
 * The engine's transitions: create a run, claim ready steps, record what attempts did, reap expired
 * leases, cancel. Each is one store transaction; workers batch many claims or completions into one.
 */
import type { SerializedError } from '../domain/errors.ts';
import type { ValidatedRun } from '../domain/plan.ts';
import type { RunRow, Store, StepRow, NewArtifact, Tx } from '../store/store.ts';
import { finishStep, finishSteps, guarded, newEffects, runEffect, settleRuns, type FinishItem, type TxEffects } from './advance.ts';
import { backoffDelay, MAX_LOST_RETRIES } from './backoff.ts';
import { newRunId } from './ids.ts';
import { lostAttemptReport } from '../forensics/report.ts';

export interface ClaimedStep {
  runId: string;
  stepName: string;
  tool: string;
  attempt: number;
  token: string;
  inputs: Record<string, unknown>;
  timeoutMs: number;
  deadlineAt: number;
  leaseExpiresAt: number;
}

export type AttemptOutcome = 'succeeded' | 'failed' | 'timed_out' | 'cancelled';

export interface Completion {
  runId: string;
  stepName: string;
  attempt: number;
  token: string;
  outcome: AttemptOutcome;
  outputs?: unknown;
  error?: SerializedError;
  artifacts: NewArtifact[];
  hangReport?: Record<string, unknown> | null;
}

/** An event produced by a running step (a log line, LLM usage ...), written as it happens. */
export interface StepEvent {
  runId: string;
  stepName: string;
  attempt: number;
  type: string;
  ts: number;
  data: Record<string, unknown>;
}

/** An attempt whose worker is gone (see Transitions.#lose). */
interface LostItem {
  step: StepRow;
  token: string;
  error: SerializedError;
  report: Record<string, unknown> | null;
  spared: boolean;
}

/** A step going back to the queue for another attempt. */
interface RetryItem {
  step: StepRow;
  token: string;
  delayMs: number;
  error: SerializedError | null;
  extra: { lostAttempts?: number };
}

export interface CompletionResult {
  /** false: the lease had been lost (reaped or cancelled) and this result was discarded. */
  applied: boolean;
}

/** How `loseWorker` records the attempts of a worker that is gone. */
export interface LoseWorkerOptions {
  /**
   * The error and hang report of each attempt (the report is also emitted as `step.hang_report`).
   * `spared`: the attempt was lost only because another, known step brought the worker down; it
   * does not use up the step's lost-attempt budget (the culprit's attempts do use up its own).
   */
  describe(step: StepRow, culprit: boolean): { error: SerializedError; report: Record<string, unknown> | null; spared?: boolean };
  /**
   * The attempt whose own code brought the worker down (it blocked the event loop). It ends as a
   * failure of the step (`outcome`), counted against `retries.max` like any failed attempt, not
   * against the lost-attempt budget.
   */
  culprit?: { runId: string; stepName: string; attempt: number; outcome: 'failed' | 'timed_out' };
}

export interface LostAttempt {
  runId: string;
  stepName: string;
  attempt: number;
  /** What the attempt was recorded as. */
  status: 'lost' | 'failed' | 'timed_out';
}

/** A cycle whose claim failed after its flush committed: `results` are the flush's. */
export class CycleError extends Error {
  readonly results: CompletionResult[];

  constructor(cause: unknown, results: CompletionResult[]) {
    super(`claim failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.results = results;
  }
}

export class Transitions {
  readonly store: Store;
  readonly #now: () => number;

  constructor(store: Store, opts: { now?: () => number } = {}) {
    this.store = store;
    this.#now = opts.now ?? Date.now;
  }

  async #tx<T>(fn: (tx: Tx, fx: TxEffects) => Promise<T>): Promise<T> {
    const fx = newEffects(this.#now());
    let runIds: string[] = [];
    const result = await this.store.transaction(async (tx) => {
      fx.events.length = 0;
      fx.deltas.clear();
      fx.queued = 0;
      const r = await fn(tx, fx);
      runIds = await settleRuns(tx, fx);
      return r;
    });
    if (runIds.length > 0) this.store.publish({ kind: 'events', runIds });
    if (fx.queued > 0) this.store.publish({ kind: 'ready' });
    return result;
  }

  /** Inserts a validated run (or returns the existing one for a repeated idempotency key). */
  async createRun(run: ValidatedRun, rawPlan: unknown): Promise<{ runId: string; created: boolean }> {
    if (run.idempotencyKey) {
      const existing = await this.store.findRunByIdempotencyKey(run.idempotencyKey);
      if (existing) return { runId: existing.id, created: false };
    }
    const id = newRunId();
    return this.#tx(async (tx, fx) => {
      if (run.idempotencyKey) {
        // Re-checked inside the transaction: two concurrent submissions with one key create one run.
        const raced = await this.store.findRunByIdempotencyKey(run.idempotencyKey);
        if (raced) return { runId: raced.id, created: false };
      }
      await tx.insertRun({
        id,
        goal: run.goal,
        labels: run.labels,
        idempotencyKey: run.idempotencyKey,
        plan: rawPlan,
        stepsTotal: run.steps.length,
        createdAt: fx.now,
      });
      await tx.insertSteps(
        run.steps.map((s) => {
          const root = s.dependsOn.length === 0;
          return {
            runId: id,
            name: s.name,
            idx: s.idx,
            tool: s.tool,
            status: root ? ('queued' as const) : ('pending' as const),
            dependsOn: s.dependsOn,
            dependents: s.dependents,
            inputs: s.inputs,
            resolvedInputs: root ? s.inputs : null,
            pendingDeps: s.dependsOn.length,
            timeoutMs: s.timeoutMs,
            retries: s.retries,
            readyAt: root ? fx.now : null,
          };
        }),
      );
      fx.events.push({ runId: id, type: 'run.created', ts: fx.now, data: { goal: run.goal, steps: run.steps.length, labels: run.labels } });
      for (const s of run.steps) {
        if (s.dependsOn.length === 0) {
          fx.queued++;
          fx.events.push({ runId: id, stepName: s.name, type: 'step.queued', ts: fx.now, data: {} });
        }
      }
      return { runId: id, created: true };
    });
  }

  /** Claims up to `limit` ready steps for a worker, each with a fresh lease and attempt. */
  async claim(workerId: string, limit: number, leaseMs: number): Promise<ClaimedStep[]> {
    if (limit <= 0) return [];
    return this.#tx((tx, fx) => this.#claimIn(tx, fx, workerId, limit, leaseMs));
  }

  async #claimIn(tx: Tx, fx: TxEffects, workerId: string, limit: number, leaseMs: number): Promise<ClaimedStep[]> {
    const rows = await tx.claimReady({ workerId, limit, now: fx.now, leaseMs, token: () => '' });
    if (rows.length === 0) return [];
    for (const r of rows) runEffect(fx, r.runId).start = true;
    await tx.insertAttempts(
      rows.map((r) => ({ runId: r.runId, stepName: r.name, attempt: r.attempts, workerId, startedAt: fx.now, deadlineAt: fx.now + r.timeoutMs })),
    );
    for (const r of rows) {
      fx.events.push({
        runId: r.runId,
        stepName: r.name,
        attempt: r.attempts,
        type: 'step.started',
        ts: fx.now,
        data: { tool: r.tool, workerId, deadlineAt: new Date(fx.now + r.timeoutMs).toISOString() },
      });
    }
    return rows.map((r) => ({
      runId: r.runId,
      stepName: r.name,
      tool: r.tool,
      attempt: r.attempts,
      token: r.leaseToken as string,
      inputs: r.resolvedInputs ?? r.inputs,
      timeoutMs: r.timeoutMs,
      deadlineAt: fx.now + r.timeoutMs,
      leaseExpiresAt: fx.now + leaseMs,
    }));
  }

  /**
   * Writes step events and attempt results in one transaction. Outputs, artifacts, the state change
   * and the events of a completion commit together or not at all.
   */
  async flush(events: StepEvent[], completions: Completion[]): Promise<CompletionResult[]> {
    if (events.length === 0 && completions.length === 0) return [];
    return this.#tx((tx, fx) => this.#flushIn(tx, fx, events, completions));
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
        const results = await this.#flushIn(tx, fx, events, completions);
        const claimed = await this.#claimIn(tx, fx, claim.workerId, claim.limit, claim.leaseMs);
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

  async #flushIn(tx: Tx, fx: TxEffects, events: StepEvent[], completions: Completion[]): Promise<CompletionResult[]> {
    for (const e of events) {
      fx.events.push({ runId: e.runId, stepName: e.stepName, attempt: e.attempt, type: e.type, ts: e.ts, data: e.data });
      if (e.type === 'llm.usage') {
        const u = runEffect(fx, e.runId).usage;
        u.inputTokens += Number(e.data.inputTokens ?? 0) || 0;
        u.outputTokens += Number(e.data.outputTokens ?? 0) || 0;
        // One event per call; `calls` counts its HTTP attempts that reached the provider (a retried
        // 429 is two), each of which may be billed. Events without it count as one.
        u.calls += typeof e.data.calls === 'number' && e.data.calls >= 0 ? e.data.calls : 1;
      }
    }
    if (completions.length === 0) return [];
    const rows = await tx.getSteps(completions.map((c) => ({ runId: c.runId, name: c.stepName })));
    const byKey = new Map(rows.map((r) => [`${r.runId}\u0000${r.name}`, r]));
    const valid: Array<{ step: StepRow; c: Completion }> = [];
    const results = completions.map((c): CompletionResult => {
      const key = `${c.runId}\u0000${c.stepName}`;
      const step = byKey.get(key);
      if (!step || step.status !== 'running' || step.leaseToken !== c.token || step.attempts !== c.attempt) return { applied: false };
      // A step appears at most once in a batch (a second result for one lease is discarded).
      byKey.delete(key);
      valid.push({ step, c });
      return { applied: true };
    });
    await this.#complete(tx, fx, valid);
    return results;
  }

  /**
   * Records what a batch of attempts did: the attempts end, hang reports and artifacts are written,
   * and each step finishes or is queued for a retry — each kind of write once for the whole batch.
   */
  async #complete(tx: Tx, fx: TxEffects, items: ReadonlyArray<{ step: StepRow; c: Completion }>): Promise<void> {
    if (items.length === 0) return;
    await tx.finishAttempts(
      items.map(({ c }) => ({
        runId: c.runId,
        stepName: c.stepName,
        attempt: c.attempt,
        status: c.outcome,
        finishedAt: fx.now,
        error: c.error ?? null,
        hangReport: c.hangReport ?? null,
      })),
    );
    for (const { c } of items) {
      if (c.hangReport) fx.events.push({ runId: c.runId, stepName: c.stepName, attempt: c.attempt, type: 'step.hang_report', ts: fx.now, data: c.hangReport });
    }
    const artifacts = items.flatMap(({ c }) => (c.outcome === 'succeeded' ? c.artifacts : []));
    if (artifacts.length > 0) {
      await tx.insertArtifacts(artifacts);
      for (const a of artifacts) {
        fx.events.push({
          runId: a.runId,
          stepName: a.stepName,
          attempt: a.attempt,
          type: 'artifact.created',
          ts: fx.now,
          data: { id: a.id, name: a.name, mime: a.mime, size: a.content.byteLength },
        });
      }
    }
    const finishes: FinishItem[] = [];
    const retries: RetryItem[] = [];
    for (const { step, c } of items) {
      if (c.outcome === 'succeeded') {
        finishes.push({ step, status: 'succeeded', opts: { outputs: c.outputs ?? null, from: ['running'], token: c.token } });
        continue;
      }
      if (c.outcome === 'cancelled' || step.cancelRequested) {
        finishes.push({ step, status: 'cancelled', opts: { error: c.error ?? null, from: ['running'], token: c.token } });
        continue;
      }
      const tries = step.attempts - step.lostAttempts;
      const retryable = c.outcome === 'timed_out' || c.error?.retryable !== false;
      if (retryable && tries <= step.retries.max) {
        retries.push({ step, token: c.token, delayMs: backoffDelay(step.retries, tries), error: c.error ?? null, extra: {} });
        continue;
      }
      finishes.push({ step, status: c.outcome, opts: { error: c.error ?? null, from: ['running'], token: c.token } });
    }
    await finishSteps(tx, fx, finishes);
    await this.#retry(tx, fx, retries);
  }

  /** running -> queued for another attempt after `delayMs`, for each step still holding `token`. */
  async #retry(tx: Tx, fx: TxEffects, items: readonly RetryItem[]): Promise<void> {
    if (items.length === 0) return;
    const oks = await tx.updateSteps(
      items.map(({ step, token, delayMs, error, extra }) =>
        guarded({
          runId: step.runId,
          name: step.name,
          expectStatus: ['running'],
          expectToken: token,
          patch: { status: 'queued', readyAt: fx.now + delayMs, leaseToken: null, leaseExpiresAt: null, workerId: null, error, ...extra },
        }),
      ),
    );
    for (const [i, { step, delayMs, error }] of items.entries()) {
      if (oks[i] !== true) continue;
      fx.queued++;
      fx.events.push({
        runId: step.runId,
        stepName: step.name,
        attempt: step.attempts,
        type: 'step.retrying',
        ts: fx.now,
        data: { nextAttempt: step.attempts + 1, delayMs, error },
      });
    }
  }

  /**
   * Extends the leases a live worker holds. Returns the tokens still valid and, among them, the
   * ones whose run was cancelled.
   */
  async renew(workerId: string, tokens: string[], leaseMs: number, graceMs: number): Promise<{ renewed: string[]; cancel: string[] }> {
    if (tokens.length === 0) return { renewed: [], cancel: [] };
    const now = this.#now();
    return this.store.transaction((tx) => tx.renewLeases(workerId, tokens, now, now + leaseMs, graceMs));
  }

  /** Expired leases become `lost` attempts; the step is retried or fails. Returns how many. */
  async reap(limit = 500): Promise<number> {
    // Read before the transaction: what the store still knows of each worker goes into the report.
    const workers = new Map((await this.store.listWorkers()).map((w) => [w.id, w]));
    return this.#tx(async (tx, fx) => {
      const rows = await tx.expiredLeases(fx.now, limit);
      await this.#lose(
        tx,
        fx,
        rows.map((step) => ({
          step,
          token: step.leaseToken as string,
          spared: false,
          error: {
            code: 'WORKER_LOST',
            message: `lease expired: worker ${step.workerId ?? '?'} stopped renewing it (crashed, was killed, or its event loop is blocked)`,
            retryable: true,
            data: { workerId: step.workerId, leaseExpiresAt: step.leaseExpiresAt },
          },
          report: lostAttemptReport({
            runId: step.runId,
            stepName: step.name,
            attempt: step.attempts,
            tool: step.tool,
            timeoutMs: step.timeoutMs,
            startedAt: step.startedAt,
            workerId: step.workerId,
            leaseExpiresAt: step.leaseExpiresAt,
            worker: step.workerId ? (workers.get(step.workerId) ?? null) : null,
            now: fx.now,
          }),
        })),
      );
      return rows.length;
    });
  }

  /**
   * Attempts whose worker is gone (lease expired, process died, shut down) end as `lost`; each step
   * is queued again at once while its lost-attempt budget (MAX_LOST_RETRIES + retries.max) lasts,
   * or always when `spared`; otherwise it fails. A step of a cancelled run is cancelled instead.
   * `lostAttempts` counts every lost attempt: `attempts - lostAttempts` is the step's tries.
   */
  async #lose(tx: Tx, fx: TxEffects, items: readonly LostItem[]): Promise<void> {
    if (items.length === 0) return;
    await tx.finishAttempts(
      items.map(({ step, error, report }) => ({ runId: step.runId, stepName: step.name, attempt: step.attempts, status: 'lost', finishedAt: fx.now, error, hangReport: report })),
    );
    const finishes: FinishItem[] = [];
    const retries: RetryItem[] = [];
    for (const { step, token, error, report, spared } of items) {
      if (report) fx.events.push({ runId: step.runId, stepName: step.name, attempt: step.attempts, type: 'step.hang_report', ts: fx.now, data: report });
      const lost = step.lostAttempts + 1;
      if (step.cancelRequested) finishes.push({ step, status: 'cancelled', opts: { error, from: ['running'], token, lostAttempts: lost } });
      else if (spared || lost <= MAX_LOST_RETRIES + step.retries.max) retries.push({ step, token, delayMs: 0, error, extra: { lostAttempts: lost } });
      else finishes.push({ step, status: 'failed', opts: { error, from: ['running'], token, lostAttempts: lost } });
    }
    await finishSteps(tx, fx, finishes);
    await this.#retry(tx, fx, retries);
  }

  /**
   * A supervisor saw worker processes die or killed them: their running attempts end now instead of
   * when their leases expire. Every attempt held by `workerIds` becomes `lost` (retried at once
   * while the lost-attempt budget lasts, like the reaper's), except the culprit's (see
   * LoseWorkerOptions). Token-guarded like every transition: an attempt that completed or was reaped
   * meanwhile is left alone.
   */
  async loseWorker(workerIds: string[], o: LoseWorkerOptions): Promise<LostAttempt[]> {
    if (workerIds.length === 0) return [];
    return this.#tx(async (tx, fx) => {
      const out: LostAttempt[] = [];
      const lost: LostItem[] = [];
      const culprits: Array<{ step: StepRow; c: Completion }> = [];
      for (const step of await tx.runningByWorkers(workerIds)) {
        const token = step.leaseToken as string;
        const c = o.culprit;
        const isCulprit = c !== undefined && c.runId === step.runId && c.stepName === step.name && c.attempt === step.attempts;
        const { error, report, spared } = o.describe(step, isCulprit);
        if (isCulprit) {
          culprits.push({
            step,
            c: { runId: step.runId, stepName: step.name, attempt: step.attempts, token, outcome: c.outcome, error, artifacts: [], hangReport: report },
          });
          out.push({ runId: step.runId, stepName: step.name, attempt: step.attempts, status: c.outcome });
          continue;
        }
        lost.push({ step, token, error, report, spared: spared === true });
        out.push({ runId: step.runId, stepName: step.name, attempt: step.attempts, status: 'lost' });
      }
      await this.#complete(tx, fx, culprits);
      await this.#lose(tx, fx, lost);
      return out;
    });
  }

  /**
   * Hands steps back after a graceful shutdown aborted them: the attempt is recorded as lost
   * (WORKER_SHUTDOWN) and the step is queued again at once without using a retry.
   */
  async release(items: Array<{ runId: string; stepName: string; token: string; attempt: number }>): Promise<void> {
    if (items.length === 0) return;
    await this.#tx(async (tx, fx) => {
      const error: SerializedError = { code: 'WORKER_SHUTDOWN', message: 'the worker shut down; the step was handed back', retryable: true };
      const tokens = new Map(items.map((i) => [`${i.runId}\u0000${i.stepName}`, i.token]));
      const rows = await tx.getSteps(items.map((i) => ({ runId: i.runId, name: i.stepName })));
      const mine = rows.filter((step) => step.status === 'running' && step.leaseToken === tokens.get(`${step.runId}\u0000${step.name}`));
      // Counted as lost (its own budget), not as one of the step's tries; never fails the step.
      await this.#lose(tx, fx, mine.map((step) => ({ step, token: step.leaseToken as string, error, report: null, spared: true })));
    });
  }

  /** Cancels a run: pending and queued steps end now, running attempts are told to abort. */
  async cancel(runId: string): Promise<RunRow | null> {
    const hadRunning = await this.#tx(async (tx, fx) => {
      const run = await tx.getRun(runId);
      if (!run || (run.status !== 'queued' && run.status !== 'running')) return false;
      await tx.updateRun(runId, ['queued', 'running'], { cancelRequested: true });
      const steps = await tx.getRunSteps(runId);
      const error: SerializedError = { code: 'CANCELLED', message: 'run cancelled', retryable: false };
      let running = 0;
      for (const s of steps) {
        if (s.status === 'pending' || s.status === 'queued') {
          await finishStep(tx, fx, s, 'cancelled', { error, from: ['pending', 'queued'] });
        } else if (s.status === 'running') {
          running++;
          await tx.updateSteps([{ runId, name: s.name, expectStatus: ['running'], patch: { cancelRequested: true } }]);
        }
      }
      runEffect(fx, runId);
      return running > 0;
    });
    if (hadRunning) this.store.publish({ kind: 'cancel', runId });
    return this.store.getRun(runId);
  }
}

