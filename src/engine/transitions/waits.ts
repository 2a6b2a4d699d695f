/**
 * Waits for signals (docs/waits-and-reruns.md), three transitions:
 * - `parkWaits`: a `wait` step's attempt succeeded. If its signal was sent already, the step
 *   succeeds with the payload; else it goes back to `pending` with no lease and no worker
 *   (`awaitingSignal`, `awaitingSince`, `deadlineAt` the end of the wait) and `step.awaiting_signal`;
 * - `deliverSignal`: a signal is sent to a run: kept (one per name and run) and every step waiting
 *   for it succeeds with its payload (`signal.received`, then their `step.finished`);
 * - `expireWaits`: the reaper's pass over waits past their deadline: `timed_out` (SIGNAL_TIMEOUT),
 *   with a hang report on the attempt that began the wait, naming the signal and since when.
 * A send and a wait at the same moment are ordered by the signal's row (Tx.awaitSignals).
 */
import { RunwardenError, type SerializedError } from '../../domain/errors.ts';
import type { WaitTimeoutFacts } from '../../domain/hang-report.ts';
import { RUN_TERMINAL, type RunState } from '../../domain/states.ts';
import { waitRequest, type WaitRequest } from '../../domain/signals.ts';
import type { StepRow, Tx } from '../../store/store.ts';
import { guarded, runEffect, type TxEffects } from './effects.ts';
import { finishSteps } from './finish.ts';
import { TransactionRace } from './settle.ts';
import type { Completion } from './types.ts';

/** What a wait that timed out is known by, for its hang report (forensics builds it: waitTimeoutReport). */
export type ExpiredWait = WaitTimeoutFacts;

export type WaitReportBuilder = (w: ExpiredWait) => Record<string, unknown>;

export interface ParkOutcome {
  /** Steps now waiting (by key): their attempt ends, the step does not. */
  parked: Set<string>;
  /** Steps whose signal was there already: they succeed with its payload as outputs. */
  outputs: Map<string, unknown>;
}

const key = (runId: string, name: string): string => `${runId}\u0000${name}`;

/** The succeeded attempts of `wait` steps in a batch: each parks, or takes a signal sent before it waited. */
export async function parkWaits(tx: Tx, fx: TxEffects, items: ReadonlyArray<{ step: StepRow; c: Completion; wait: WaitRequest }>): Promise<ParkOutcome> {
  const out: ParkOutcome = { parked: new Set(), outputs: new Map() };
  if (items.length === 0) return out;
  const rows = await tx.awaitSignals(
    items.map(({ step, wait }) => ({ runId: step.runId, name: wait.signal })),
    fx.now,
  );
  const parking: Array<{ step: StepRow; c: Completion; wait: WaitRequest }> = [];
  items.forEach((item, i) => {
    const sig = rows[i];
    if (sig?.sentAt !== null && sig?.sentAt !== undefined) out.outputs.set(key(item.step.runId, item.step.name), sig.payload);
    else parking.push(item);
  });
  const oks = await tx.updateSteps(
    parking.map(({ step, c, wait }) =>
      guarded({
        runId: step.runId,
        name: step.name,
        expectStatus: ['running'],
        expectToken: c.token,
        patch: {
          status: 'pending',
          pendingDeps: 0,
          awaitingSignal: wait.signal,
          awaitingSince: fx.now,
          deadlineAt: fx.now + wait.timeoutMs,
          leaseToken: null,
          leaseExpiresAt: null,
          workerId: null,
          error: null,
        },
      }),
    ),
  );
  // The step was read as this attempt's in this transaction; on PostgreSQL the reaper may have
  // taken it in between: run again (and then the completion is refused).
  if (oks.includes(false)) throw new TransactionRace('a wait step lost its lease while it was parked');
  for (const { step, c, wait } of parking) {
    out.parked.add(key(step.runId, step.name));
    fx.events.push({
      runId: step.runId,
      stepName: step.name,
      attempt: c.attempt,
      type: 'step.awaiting_signal',
      ts: fx.now,
      data: { signal: wait.signal, since: new Date(fx.now).toISOString(), deadlineAt: new Date(fx.now + wait.timeoutMs).toISOString(), timeoutMs: wait.timeoutMs },
    });
  }
  return out;
}

/** The wait a `wait` step's succeeded attempt asks for, or the error that fails it. */
export function waitOf(c: Completion): { wait: WaitRequest } | { error: SerializedError } {
  try {
    return { wait: waitRequest(c.outputs) };
  } catch (err) {
    return { error: (err as RunwardenError).toJSON() };
  }
}

export type SignalOutcome =
  | { kind: 'not_found' }
  | { kind: 'finished'; status: RunState; cancelling: boolean }
  | { kind: 'duplicate'; sentAt: number }
  | { kind: 'sent'; sentAt: number; released: string[] };

export async function deliverSignal(tx: Tx, fx: TxEffects, runId: string, name: string, payload: unknown): Promise<SignalOutcome> {
  const run = await tx.getRun(runId);
  if (!run) return { kind: 'not_found' };
  if (RUN_TERMINAL.has(run.status) || run.cancelRequested) return { kind: 'finished', status: run.status, cancelling: !RUN_TERMINAL.has(run.status) };
  const { sent, row } = await tx.sendSignal({ runId, name, payload, sentAt: fx.now });
  if (!sent) return { kind: 'duplicate', sentAt: row.sentAt ?? fx.now };
  const waiting = await tx.stepsAwaiting(runId, name);
  const received = { runId, type: 'signal.received', ts: fx.now, data: { name, released: [] as string[] } };
  fx.events.push(received);
  runEffect(fx, runId);
  const applied = await finishSteps(
    tx,
    fx,
    waiting.map((step) => ({ step, status: 'succeeded' as const, opts: { outputs: payload ?? null, from: ['pending'] as const } })),
  );
  received.data.released = waiting.filter((_, i) => applied[i]).map((s) => s.name);
  return { kind: 'sent', sentAt: fx.now, released: received.data.released };
}

/** Waits past their deadline end `timed_out`, each with a hang report saying what it waited for. Returns how many. */
export async function expireWaits(tx: Tx, fx: TxEffects, limit: number, report: WaitReportBuilder | undefined): Promise<number> {
  const rows = await tx.expiredWaits(fx.now, limit);
  if (rows.length === 0) return 0;
  const waits = rows.map((step) => {
    const since = step.awaitingSince ? Date.parse(step.awaitingSince) : fx.now;
    const deadlineAt = step.deadlineAt ? Date.parse(step.deadlineAt) : fx.now;
    const signal = step.awaitingSignal as string;
    const error = new RunwardenError('SIGNAL_TIMEOUT', `no signal "${signal}" came within ${deadlineAt - since} ms (waited since ${new Date(since).toISOString()})`, {
      data: { signal, since: new Date(since).toISOString(), deadlineAt: new Date(deadlineAt).toISOString() },
    }).toJSON();
    return { step, signal, since, deadlineAt, error };
  });
  const at = fx.events.length;
  const applied = await finishSteps(
    tx,
    fx,
    waits.map(({ step, error }) => ({ step, status: 'timed_out' as const, opts: { error, from: ['pending'] as const } })),
  );
  const reports = waits.flatMap(({ step, signal, since, deadlineAt }, i) =>
    applied[i] && report ? [{ runId: step.runId, stepName: step.name, attempt: step.attempts, hangReport: report({ runId: step.runId, stepName: step.name, attempt: step.attempts, signal, since, deadlineAt, now: fx.now }) }] : [],
  );
  await tx.setAttemptReports(reports);
  // Each report goes before the step.finished it explains, as an attempt's own report does.
  fx.events.splice(at, 0, ...reports.map((r) => ({ runId: r.runId, stepName: r.stepName, attempt: r.attempt, type: 'step.hang_report', ts: fx.now, data: r.hangReport })));
  return applied.filter(Boolean).length;
}
