/** retrySteps: running -> queued for another attempt after a delay, for each step still holding its lease. */
import type { SerializedError } from '../../domain/errors.ts';
import type { StepRow, Tx } from '../../store/store.ts';
import { guarded, type TxEffects } from './effects.ts';

/** A step going back to the queue for another attempt. */
export interface RetryItem {
  step: StepRow;
  token: string;
  delayMs: number;
  error: SerializedError | null;
  extra: { lostAttempts?: number };
}

export async function retrySteps(tx: Tx, fx: TxEffects, items: readonly RetryItem[]): Promise<void> {
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
