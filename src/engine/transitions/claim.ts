/** claim: ready steps go to running under a fresh lease, each with a new attempt. */
import type { Tx } from '../../store/store.ts';
import { runEffect, type TxEffects } from './effects.ts';
import type { ClaimedStep } from './types.ts';

export async function claimSteps(tx: Tx, fx: TxEffects, workerId: string, limit: number, leaseMs: number): Promise<ClaimedStep[]> {
  const rows = await tx.claimReady({ workerId, limit, now: fx.now, leaseMs });
  if (rows.length === 0) return [];
  for (const r of rows) runEffect(fx, r.runId).start = true;
  // No attempt row yet: the attempt lives in its step's row until it ends (Tx.finishAttempts).
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
    readyAt: r.wasReadyAt,
    claimedAt: fx.now,
    queueTimeoutMs: r.queueTimeoutMs,
  }));
}
