/**
 * How events are stored (migration 5): a transaction's consecutive events of one run share one row
 * of `event_batches`, up to BATCH_MAX of them, instead of a row each. A single-step run writes its
 * six events in three rows (one per transaction), a run whose 100 steps end in one worker pass
 * writes them in two. Both dialects use this module; only the INSERT differs.
 *
 * A row: (run_id, first_seq, last_seq, body), body a JSON array of {"ts", "type", "step"?,
 * "attempt"?, "data"} in seq order (element i has seq first_seq + i). Readers select rows with
 * last_seq > after (the primary key's order), expand them, and drop the seqs at or before `after`.
 */
import type { EventRecord } from '../domain/records.ts';
import { iso } from './rows.ts';
import type { NewEvent } from './store.ts';

/**
 * Events per row at most: a page of events (GET /runs/:id/events, an SSE catch-up) reads at most
 * one row more than it returns, and a row of a large fan-out's step.queued events stays a few KB.
 */
export const BATCH_MAX = 64;

export interface EventBatch {
  runId: string;
  firstSeq: number;
  lastSeq: number;
  /** JSON text. */
  body: string;
}

interface Stored {
  ts: number;
  type: string;
  step?: string | null;
  attempt?: number | null;
  data: Record<string, unknown>;
}

/** The rows for `events`: runs of consecutive seqs of one run, in the order given, cut at BATCH_MAX. */
export function toBatches(events: ReadonlyArray<NewEvent & { seq: number }>): EventBatch[] {
  const out: EventBatch[] = [];
  let i = 0;
  while (i < events.length) {
    const first = events[i] as NewEvent & { seq: number };
    let j = i + 1;
    while (j < events.length && j - i < BATCH_MAX) {
      const e = events[j] as NewEvent & { seq: number };
      const prev = events[j - 1] as NewEvent & { seq: number };
      if (e.runId !== first.runId || e.seq !== prev.seq + 1) break;
      j++;
    }
    const items: Stored[] = [];
    for (let k = i; k < j; k++) {
      const e = events[k] as NewEvent & { seq: number };
      const s: Stored = { ts: e.ts, type: e.type, data: e.data };
      if (e.stepName !== undefined) s.step = e.stepName;
      if (e.attempt !== undefined) s.attempt = e.attempt;
      items.push(s);
    }
    out.push({ runId: first.runId, firstSeq: first.seq, lastSeq: first.seq + (j - i) - 1, body: JSON.stringify(items) });
    i = j;
  }
  return out;
}

/**
 * Events of rows read in last_seq order (columns run_id, first_seq, body; body JSON text), those
 * after `afterSeq`, at most `limit`.
 */
export function fromBatches(rows: ReadonlyArray<Record<string, unknown>>, afterSeq: number, limit: number): EventRecord[] {
  const out: EventRecord[] = [];
  for (const r of rows) {
    const runId = r.run_id as string;
    const first = Number(r.first_seq);
    const items = JSON.parse(r.body as string) as Stored[];
    for (let i = 0; i < items.length && out.length < limit; i++) {
      const seq = first + i;
      if (seq <= afterSeq) continue;
      const s = items[i] as Stored;
      const e: EventRecord = { seq, ts: iso(s.ts) as string, type: s.type, runId, data: s.data ?? {} };
      if (s.step !== null && s.step !== undefined) e.stepName = s.step;
      if (s.attempt !== null && s.attempt !== undefined) e.attempt = s.attempt;
      out.push(e);
    }
    if (out.length >= limit) break;
  }
  return out;
}

/** Events in the rows deleted (their seq spans), for counting what a prune removed. */
export const EVENTS_IN_BATCH = 'last_seq - first_seq + 1';
