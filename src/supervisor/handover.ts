/**
 * What the supervisor writes to the store about its workers' attempts. The attempts of a worker
 * process that is gone (or being killed) end at once, not when their
 * leases expire: the one that brought it down fails (`loop.blocked`, timed out if past its
 * deadline), every other one is `lost` and retried elsewhere, each with a hang report of why
 * (reports.ts).
 */
import { hostname } from 'node:os';
import type { LostAttempt, Transitions } from '../engine/transitions.ts';
import type { Store } from '../store/store.ts';
import { blockingStep, stackLines } from './liveness.ts';
import type { CapturedFrame, StepRef } from './protocol.ts';
import { departureError, departureReport, type Departure, type WorkerFacts } from './reports.ts';

export async function handOverAttempts(core: Transitions, workerIds: string[], d: Departure, facts: WorkerFacts, now = Date.now()): Promise<LostAttempt[]> {
  const blamed = d.kind === 'stall_kill' ? blockingStep(d.stall) : undefined;
  return core.loseWorker(workerIds, {
    ...(blamed
      ? { culprit: { runId: blamed.runId, stepName: blamed.stepName, attempt: blamed.attempt, outcome: blamed.deadlineAt !== undefined && now > blamed.deadlineAt ? 'timed_out' : 'failed' } }
      : {}),
    describe: (step, culprit) => {
      const report = departureReport(d, step, culprit, facts, now);
      // Another step is known to have brought the worker down: this one was only there.
      const cause = d.kind === 'stall_kill' ? blockingStep(d.stall) : d.kind === 'crash' ? d.exit?.step : undefined;
      const spared = cause != null && !(cause.runId === step.runId && cause.stepName === step.name && cause.attempt === step.attempts);
      return { error: departureError(d, report.classification, culprit, facts.pid), report, spared };
    },
  });
}

/** A stall pinned on a step is said on that step at once, as a log line with the blocking frames. */
export function announceStall(core: Transitions, step: NonNullable<StepRef>, pid: number | null, where: string, frames: readonly CapturedFrame[], log: (line: string) => void): void {
  core
    .flush(
      [
        {
          runId: step.runId,
          stepName: step.stepName,
          attempt: step.attempt,
          type: 'step.log',
          ts: Date.now(),
          data: { level: 'warn', kind: 'loop.blocked', message: `the event loop of worker pid ${pid} is blocked by this step (${where})`, frames: stackLines(frames.slice(0, 5)).map((l) => l.trim()) },
        },
      ],
      [],
    )
    .catch((err: unknown) => log(`could not record the stall of ${step.stepName}: ${(err as Error).message}`));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Rows of the workers table left by processes of this host that no longer exist (a crash of a whole deployment). */
export async function forgetDeadLocalWorkers(store: Store, log: (line: string) => void): Promise<void> {
  try {
    const host = hostname();
    for (const w of await store.listWorkers()) {
      if (w.host === host && w.pid !== process.pid && !isAlive(w.pid)) await store.deleteWorker(w.id);
    }
  } catch (err) {
    log(`could not clean up the workers table: ${(err as Error).message}`);
  }
}
