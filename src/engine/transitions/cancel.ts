/** cancelRun: pending and queued steps end now; running attempts are asked to abort (their leases say so). */
import type { SerializedError } from '../../domain/errors.ts';
import type { Tx } from '../../store/store.ts';
import { runEffect, type TxEffects } from './effects.ts';
import { finishStep } from './finish.ts';

/** Returns null when the run does not exist or has ended, else whether it had running steps. */
export async function cancelRun(tx: Tx, fx: TxEffects, runId: string): Promise<{ hadRunning: boolean } | null> {
  const run = await tx.getRun(runId);
  if (!run || (run.status !== 'queued' && run.status !== 'running')) return null;
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
  return { hadRunning: running > 0 };
}
