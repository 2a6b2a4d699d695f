/**
 * The engine's transitions: create a run, claim ready steps, record what attempts did, reap expired
 * leases, cancel. Each is one store transaction; workers batch many claims or completions into one.
 */
import type { SerializedError } from '../domain/errors.ts';
import type { ValidatedRun } from '../domain/plan.ts';
import type { RunRow, Store, StepRow, NewArtifact, Tx } from '../store/store.ts';
import { finishStep, guarded, newEffects, runEffect, settleRuns, type TxEffects } from './advance.ts';
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

export class EngineCore {
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
    return this.#tx(async (tx, fx) => {
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
    });
  }

  /**
   * Writes step events and attempt results in one transaction. Outputs, artifacts, the state change
   * and the events of a completion commit together or not at all.
   */
  async flush(events: StepEvent[], completions: Completion[]): Promise<CompletionResult[]> {
    if (events.length === 0 && completions.length === 0) return [];
    return this.#tx(async (tx, fx) => {
      for (const e of events) {
        fx.events.push({ runId: e.runId, stepName: e.stepName, attempt: e.attempt, type: e.type, ts: e.ts, data: e.data });
        if (e.type === 'llm.usage') {
          const u = runEffect(fx, e.runId).usage;
          u.inputTokens += Number(e.data.inputTokens ?? 0) || 0;
          u.outputTokens += Number(e.data.outputTokens ?? 0) || 0;
          u.calls += 1;
        }
      }
      const results: CompletionResult[] = [];
      const rows = await tx.getSteps(completions.map((c) => ({ runId: c.runId, name: c.stepName })));
      const byKey = new Map(rows.map((r) => [`${r.runId}\u0000${r.name}`, r]));
      for (const c of completions) {
        const step = byKey.get(`${c.runId}\u0000${c.stepName}`);
        if (!step || step.status !== 'running' || step.leaseToken !== c.token || step.attempts !== c.attempt) {
          results.push({ applied: false });
          continue;
        }
        await this.#complete(tx, fx, step, c);
        results.push({ applied: true });
      }
      return results;
    });
  }

  async #complete(tx: Tx, fx: TxEffects, step: StepRow, c: Completion): Promise<void> {
    await tx.finishAttempts([
      {
        runId: c.runId,
        stepName: c.stepName,
        attempt: c.attempt,
        status: c.outcome,
        finishedAt: fx.now,
        error: c.error ?? null,
        hangReport: c.hangReport ?? null,
      },
    ]);
    if (c.hangReport) {
      fx.events.push({ runId: c.runId, stepName: c.stepName, attempt: c.attempt, type: 'step.hang_report', ts: fx.now, data: c.hangReport });
    }
    if (c.outcome === 'succeeded' && c.artifacts.length > 0) {
      await tx.insertArtifacts(c.artifacts);
      for (const a of c.artifacts) {
        fx.events.push({
          runId: c.runId,
          stepName: c.stepName,
          attempt: c.attempt,
          type: 'artifact.created',
          ts: fx.now,
          data: { id: a.id, name: a.name, mime: a.mime, size: a.content.byteLength },
        });
      }
    }
    if (c.outcome === 'succeeded') {
      await finishStep(tx, fx, step, 'succeeded', { outputs: c.outputs ?? null, from: ['running'], token: c.token });
      return;
    }
    if (c.outcome === 'cancelled' || step.cancelRequested) {
      await finishStep(tx, fx, step, 'cancelled', { error: c.error ?? null, from: ['running'], token: c.token });
      return;
    }
    const tries = step.attempts - step.lostAttempts;
    const retryable = c.outcome === 'timed_out' || c.error?.retryable !== false;
    if (retryable && tries <= step.retries.max) {
      await this.#retry(tx, fx, step, c.token, backoffDelay(step.retries, tries), c.error ?? null, {});
      return;
    }
    await finishStep(tx, fx, step, c.outcome, { error: c.error ?? null, from: ['running'], token: c.token });
  }

  async #retry(
    tx: Tx,
    fx: TxEffects,
    step: StepRow,
    token: string,
    delayMs: number,
    error: SerializedError | null,
    extra: { lostAttempts?: number },
  ): Promise<boolean> {
    const [ok] = await tx.updateSteps([
      guarded({
        runId: step.runId,
        name: step.name,
        expectStatus: ['running'],
        expectToken: token,
        patch: { status: 'queued', readyAt: fx.now + delayMs, leaseToken: null, leaseExpiresAt: null, workerId: null, error, ...extra },
      }),
    ]);
    if (!ok) return false;
    fx.queued++;
    fx.events.push({
      runId: step.runId,
      stepName: step.name,
      attempt: step.attempts,
      type: 'step.retrying',
      ts: fx.now,
      data: { nextAttempt: step.attempts + 1, delayMs, error },
    });
    return true;
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
      for (const step of rows) {
        const token = step.leaseToken as string;
        const error: SerializedError = {
          code: 'WORKER_LOST',
          message: `lease expired: worker ${step.workerId ?? '?'} stopped renewing it (crashed, was killed, or its event loop is blocked)`,
          retryable: true,
          data: { workerId: step.workerId, leaseExpiresAt: step.leaseExpiresAt },
        };
        const hangReport = lostAttemptReport({
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
        }) as unknown as Record<string, unknown>;
        await tx.finishAttempts([{ runId: step.runId, stepName: step.name, attempt: step.attempts, status: 'lost', finishedAt: fx.now, error, hangReport }]);
        fx.events.push({ runId: step.runId, stepName: step.name, attempt: step.attempts, type: 'step.hang_report', ts: fx.now, data: hangReport });
        const lost = step.lostAttempts + 1;
        if (step.cancelRequested) {
          await finishStep(tx, fx, step, 'cancelled', { error, from: ['running'], token, lostAttempts: lost });
        } else if (lost <= MAX_LOST_RETRIES + step.retries.max) {
          await this.#retry(tx, fx, step, token, 0, error, { lostAttempts: lost });
        } else {
          await finishStep(tx, fx, step, 'failed', { error, from: ['running'], token, lostAttempts: lost });
        }
      }
      return rows.length;
    });
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
      for (const step of await tx.runningByWorkers(workerIds)) {
        const token = step.leaseToken as string;
        const c = o.culprit;
        const isCulprit = c !== undefined && c.runId === step.runId && c.stepName === step.name && c.attempt === step.attempts;
        const { error, report, spared } = o.describe(step, isCulprit);
        if (isCulprit) {
          await this.#complete(tx, fx, step, {
            runId: step.runId,
            stepName: step.name,
            attempt: step.attempts,
            token,
            outcome: c.outcome,
            error,
            artifacts: [],
            hangReport: report,
          });
          out.push({ runId: step.runId, stepName: step.name, attempt: step.attempts, status: c.outcome });
          continue;
        }
        await tx.finishAttempts([{ runId: step.runId, stepName: step.name, attempt: step.attempts, status: 'lost', finishedAt: fx.now, error, hangReport: report }]);
        if (report) fx.events.push({ runId: step.runId, stepName: step.name, attempt: step.attempts, type: 'step.hang_report', ts: fx.now, data: report });
        out.push({ runId: step.runId, stepName: step.name, attempt: step.attempts, status: 'lost' });
        const lost = step.lostAttempts + 1;
        if (step.cancelRequested) {
          await finishStep(tx, fx, step, 'cancelled', { error, from: ['running'], token, lostAttempts: lost });
        } else if (spared === true || lost <= MAX_LOST_RETRIES + step.retries.max) {
          // lostAttempts still counts a spared attempt: `attempts - lostAttempts` is the step's tries.
          await this.#retry(tx, fx, step, token, 0, error, { lostAttempts: lost });
        } else {
          await finishStep(tx, fx, step, 'failed', { error, from: ['running'], token, lostAttempts: lost });
        }
      }
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
      for (const step of await tx.getSteps(items.map((i) => ({ runId: i.runId, name: i.stepName })))) {
        const item = items.find((i) => i.runId === step.runId && i.stepName === step.name);
        if (!item || step.status !== 'running' || step.leaseToken !== item.token) continue;
        await tx.finishAttempts([{ runId: step.runId, stepName: step.name, attempt: step.attempts, status: 'lost', finishedAt: fx.now, error }]);
        if (step.cancelRequested) await finishStep(tx, fx, step, 'cancelled', { error, from: ['running'], token: item.token });
        // Counted as lost (its own budget), not as one of the step's tries.
        else await this.#retry(tx, fx, step, item.token, 0, error, { lostAttempts: step.lostAttempts + 1 });
      }
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

