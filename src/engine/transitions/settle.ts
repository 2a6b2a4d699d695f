/** The end of every transaction: the run bookkeeping and the events, with their seqs. */
import type { NewEvent, RunBook, Tx } from '../../store/store.ts';
import type { SerializedError } from '../../domain/errors.ts';
import { advanceBook, runError } from '../run-books.ts';
import type { TxEffects } from './effects.ts';

/**
 * What this transaction read changed before it could lock it (PostgreSQL), and Transitions run it
 * again: steps were added to a run by another transaction between this one's read of the run's step
 * count and its lock on the run (the positions and the maxSteps check of its own additions used a
 * stale count), or a step adding steps lost its lease meanwhile.
 */
export class TransactionRace extends Error {}

/**
 * Writes the run bookkeeping of a transaction: the books of every run it touched are locked in one
 * call, advanced here (run-books.ts: seq block, counters, start, and the finish of runs whose last
 * step just ended), written back in one call, then the events with their seqs, including
 * `run.started` and `run.finished`.
 */
export async function settleRuns(tx: Tx, fx: TxEffects): Promise<string[]> {
  const byRun = new Map<string, NewEvent[]>();
  for (const e of fx.events) {
    const list = byRun.get(e.runId);
    if (list) list.push(e);
    else byRun.set(e.runId, [e]);
  }
  const runIds = [...new Set([...byRun.keys(), ...fx.deltas.keys()])];
  if (runIds.length === 0) return [];
  const books = new Map((await tx.lockRuns(runIds)).map((b) => [b.id, b]));
  const changed: RunBook[] = [];
  const out: Array<NewEvent & { seq: number }> = [];
  for (const runId of runIds) {
    const book = books.get(runId);
    // A run pruned after it finished (retention): what is left of it in this transaction can only
    // be late events of an attempt that outlived its step (an abandoned tool still logging), and
    // they have nowhere to go. Completions of its steps already found no step and applied nothing.
    if (!book) continue;
    const events = byRun.get(runId) ?? [];
    const d = fx.deltas.get(runId);
    if (d?.expectTotal !== undefined && d.expectTotal !== book.stepsTotal) throw new TransactionRace(`run ${runId} has ${book.stepsTotal} steps, not the ${d.expectTotal} this transaction added to`);
    const block = advanceBook(
      book,
      {
        events: events.length,
        stepsDone: d?.stepsDone ?? 0,
        stepsFailed: d?.stepsFailed ?? 0,
        ...(d?.stepsAdded ? { stepsAdded: d.stepsAdded } : {}),
        ...(d && d.usage.calls > 0 ? { usage: d.usage } : {}),
        ...(d?.start ? { startAt: fx.now } : {}),
      },
      fx.now,
    );
    if (block.changed) changed.push(book);
    // Only runs with a failed step pay for these statements: the first failure is kept as the
    // run's error, and run.finished of a failed run repeats it.
    let error: SerializedError | null = d?.failure ? await tx.setRunError(runId, runError(d.failure)) : null;
    if (block.finished?.status === 'failed' && error === null) error = (await tx.getRun(runId))?.error ?? null;
    if (block.started !== null) out.push({ runId, type: 'run.started', ts: fx.now, data: {}, seq: block.started });
    let seq = block.firstEvent;
    for (const e of events) out.push({ ...e, seq: seq++ });
    const fin = block.finished;
    if (!fin) continue;
    out.push({
      runId,
      type: 'run.finished',
      ts: fx.now,
      seq: fin.seq,
      data: {
        status: fin.status,
        durationMs: fx.now - book.createdAt,
        steps: { total: book.stepsTotal, notSucceeded: book.stepsFailed },
        usage: book.usage,
        ...(fin.status === 'failed' ? { error } : {}),
      },
    });
  }
  await tx.writeRuns(changed);
  await tx.insertEvents(out);
  fx.written = out;
  return [...new Set(out.map((e) => e.runId))];
}
