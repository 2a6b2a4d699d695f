/**
 * loseAttempts: attempts whose worker is gone end as `lost`, from three places: the reaper (a lease
 * expired), a supervisor (it saw the worker process die or killed it) and a graceful shutdown (the
 * worker handed its steps back).
 */
import type { SerializedError } from '../../domain/errors.ts';
import type { WorkerRecord } from '../../domain/records.ts';
import type { StepRow, Tx } from '../../store/store.ts';
import { MAX_LOST_RETRIES } from '../backoff.ts';
import { completeAttempts } from './complete.ts';
import type { TxEffects } from './effects.ts';
import { finishSteps, type FinishItem } from './finish.ts';
import { retrySteps, type RetryItem } from './retry.ts';
import type { Completion, LostAttempt, LostReportBuilder, LoseWorkerOptions } from './types.ts';

/** An attempt whose worker is gone. */
export interface LostItem {
  step: StepRow;
  token: string;
  error: SerializedError;
  report: Record<string, unknown> | null;
  spared: boolean;
}

/**
 * Each attempt ends as `lost`; its step is queued again at once while its lost-attempt budget
 * (MAX_LOST_RETRIES + retries.max) lasts, or always when `spared`; otherwise it fails. A step of a
 * cancelled run is cancelled instead. `lostAttempts` counts every lost attempt: `attempts -
 * lostAttempts` is the step's tries.
 */
export async function loseAttempts(tx: Tx, fx: TxEffects, items: readonly LostItem[]): Promise<void> {
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
  await retrySteps(tx, fx, retries);
}

/** The reaper's pass: up to `limit` expired leases become lost attempts. Returns how many. */
export async function reapExpired(
  tx: Tx,
  fx: TxEffects,
  limit: number,
  workers: ReadonlyMap<string, WorkerRecord>,
  report: LostReportBuilder | undefined,
): Promise<number> {
  const rows = await tx.expiredLeases(fx.now, limit);
  await loseAttempts(
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
      report:
        report?.({
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
        }) ?? null,
    })),
  );
  return rows.length;
}

/**
 * Every attempt held by `workerIds` becomes `lost` (retried at once while the lost-attempt budget
 * lasts, like the reaper's), except the culprit's (see LoseWorkerOptions), which fails like an
 * attempt that ended on its own.
 */
export async function loseWorkerAttempts(tx: Tx, fx: TxEffects, workerIds: string[], o: LoseWorkerOptions): Promise<LostAttempt[]> {
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
  await completeAttempts(tx, fx, culprits);
  await loseAttempts(tx, fx, lost);
  return out;
}

/** Steps a shutting-down worker handed back: lost (WORKER_SHUTDOWN), queued again without using a retry. */
export async function releaseAttempts(tx: Tx, fx: TxEffects, items: Array<{ runId: string; stepName: string; token: string; attempt: number }>): Promise<void> {
  const error: SerializedError = { code: 'WORKER_SHUTDOWN', message: 'the worker shut down; the step was handed back', retryable: true };
  const tokens = new Map(items.map((i) => [`${i.runId}\u0000${i.stepName}`, i.token]));
  const rows = await tx.getSteps(items.map((i) => ({ runId: i.runId, name: i.stepName })));
  const mine = rows.filter((step) => step.status === 'running' && step.leaseToken === tokens.get(`${step.runId}\u0000${step.name}`));
  // Counted as lost (its own budget), not as one of the step's tries; never fails the step.
  await loseAttempts(tx, fx, mine.map((step) => ({ step, token: step.leaseToken as string, error, report: null, spared: true })));
}
