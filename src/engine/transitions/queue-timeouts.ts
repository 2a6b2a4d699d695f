/**
 * expireQueueWaits: the reaper's pass over queued steps that have been ready for longer than their
 * `queueTimeoutMs` without starting (docs/flow-control.md#waiting-for-capacity). Each fails with
 * QUEUE_TIMEOUT (not retried: more waiting is what it was bounded against), its error saying what
 * held it: its concurrency key at its limit, or no free worker. A `step.hang_report` event with the
 * same goes before its `step.finished`. No attempt started, so there is no attempt row to hold it.
 */
import { RunwardenError } from '../../domain/errors.ts';
import type { QueueTimeoutFacts } from '../../domain/hang-report.ts';
import type { StepRow, Tx } from '../../store/store.ts';
import type { TxEffects } from './effects.ts';
import { finishSteps } from './finish.ts';

/** What a queue timeout is known by, for its hang report (forensics builds it: queueTimeoutReport). */
export type ExpiredQueueWait = QueueTimeoutFacts;

export type QueueReportBuilder = (w: ExpiredQueueWait) => Record<string, unknown>;

function heldBy(step: StepRow, keyRunning: number): string {
  const c = step.concurrency;
  if (c && keyRunning >= c.limit) return `its concurrency key "${c.key}" had ${keyRunning} of ${c.limit} steps running`;
  const key = c ? ` (its concurrency key "${c.key}" had room: ${keyRunning} of ${c.limit} running)` : '';
  return `no worker claimed it${key}: every worker was busy with other steps (higher priority or earlier), or none was running`;
}

export async function expireQueueWaits(tx: Tx, fx: TxEffects, limit: number, report: QueueReportBuilder | undefined): Promise<number> {
  const rows = await tx.expiredQueueWaits(fx.now, limit);
  if (rows.length === 0) return 0;
  const waits = rows.map(({ step, keyRunning }) => {
    const since = step.readyAt ? Date.parse(step.readyAt) : fx.now;
    const queueTimeoutMs = step.queueTimeoutMs ?? 0;
    const held = heldBy(step, keyRunning);
    const summary = `ready since ${new Date(since).toISOString()} and not started after ${fx.now - since} ms (queueTimeoutMs ${queueTimeoutMs}): ${held}`;
    const concurrency = step.concurrency ? { key: step.concurrency.key, limit: step.concurrency.limit, running: keyRunning } : null;
    const error = new RunwardenError('QUEUE_TIMEOUT', `waited ${fx.now - since} ms in the queue, over its queueTimeoutMs of ${queueTimeoutMs} ms: ${held}`, {
      retryable: false,
      data: {
        classification: { code: 'queue.timeout', summary },
        waitedMs: fx.now - since,
        queueTimeoutMs,
        since: new Date(since).toISOString(),
        ...(concurrency ? { concurrency } : {}),
      },
    }).toJSON();
    const wait: ExpiredQueueWait = { runId: step.runId, stepName: step.name, tool: step.tool, attempt: step.attempts + 1, queueTimeoutMs, since, now: fx.now, concurrency, summary };
    return { step, error, wait };
  });
  const at = fx.events.length;
  const applied = await finishSteps(
    tx,
    fx,
    waits.map(({ step, error }) => ({ step, status: 'failed' as const, opts: { error, from: ['queued'] as const } })),
  );
  if (report) {
    const reports = waits.flatMap(({ wait }, i) =>
      applied[i] ? [{ runId: wait.runId, stepName: wait.stepName, attempt: wait.attempt, type: 'step.hang_report', ts: fx.now, data: report(wait) }] : [],
    );
    fx.events.splice(at, 0, ...reports);
  }
  return applied.filter(Boolean).length;
}
