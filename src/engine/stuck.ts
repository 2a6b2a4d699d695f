/** How a stuck step is shown (GET /steps/stuck, `runwarden doctor`). */
import type { StepRow } from '../store/store.ts';
import type { StuckStep } from './facade.ts';

/** A running step past its deadline or on an expired lease, and which of the two. */
export function stuckStep(s: StepRow, now: number): StuckStep {
  return {
    runId: s.runId,
    stepName: s.name,
    attempt: s.attempts,
    workerId: s.workerId,
    reason: s.leaseExpiresAt && Date.parse(s.leaseExpiresAt) < now ? 'lease_expired' : 'past_deadline',
    deadlineAt: s.deadlineAt,
    leaseExpiresAt: s.leaseExpiresAt,
  };
}
