/**
 * Flow control fields of a run request and of a step (docs/flow-control.md): `priority` and
 * `concurrency`. How claims order by priority and count a key's running steps is the stores'
 * claim (sqlite/tx.ts, postgres/claim.ts); what those rules are is decided here.
 */
import { z } from 'zod';

/**
 * One point of priority is worth this much waiting: a ready step is claimed as if it had become
 * ready `priority` seconds earlier. Higher priorities go first, equal ones in the order they became
 * ready, and a step of lower priority waits at most `(p - q)` seconds behind work of priority `p`
 * that arrives after it: it ages past it, so it is never starved forever.
 */
export const PRIORITY_STEP_MS = 1000;
export const MAX_PRIORITY = 100_000;

/** The claim order of a queued step, as SQL over its row (both dialects; indexed as written). */
export const CLAIM_RANK_SQL = `(ready_at - priority * ${PRIORITY_STEP_MS})`;

export const MAX_CONCURRENCY_LIMIT = 100_000;

export const prioritySchema = z.number().int().min(-MAX_PRIORITY).max(MAX_PRIORITY);

export const concurrencySchema = z
  .object({
    key: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[\x21-\x7e]+$/, 'concurrency keys are printable ASCII without spaces'),
    limit: z.number().int().min(1).max(MAX_CONCURRENCY_LIMIT),
  })
  .strict();

export interface ConcurrencyKey {
  key: string;
  limit: number;
}

/** The longest a step may wait for capacity, in ms (a day: a longer wait is a stuck queue, not a plan). */
export const MAX_QUEUE_TIMEOUT_MS = 86_400_000;

export const queueTimeoutSchema = z.number().int().min(1).max(MAX_QUEUE_TIMEOUT_MS);

/** What a step runs under: its own fields, else its run's (or, for a step added at runtime, its adder's). */
export interface FlowFields {
  priority: number;
  concurrency: ConcurrencyKey | null;
  /**
   * How long the step may wait for capacity before it fails with QUEUE_TIMEOUT
   * (docs/flow-control.md#waiting-for-capacity); null: as long as it takes.
   */
  queueTimeoutMs: number | null;
}

export const NO_FLOW: FlowFields = Object.freeze({ priority: 0, concurrency: null, queueTimeoutMs: null });
