/**
 * Retention: deleting runs that finished long enough ago, with their steps, attempts, events,
 * artifacts and the vectors they stored, then giving the space back (SQLite). Used by
 * `POST /runs/prune` (`runwarden runs prune`) and, with the `retention` setting, every hour by the
 * API process.
 *
 * Safe while workers run: only finished runs are deleted (a run ends with its last step, so none of
 * its steps can be claimed or running), each batch is its own short transaction, and the loop pauses
 * between batches for as long as a batch took, so writers get the store at least half the time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RunwardenError } from '../domain/errors.ts';
import type { PruneCounts, SpaceUsage, Store } from '../store/store.ts';

/** Runs per transaction: ~20-60 ms of SQLite's write lock for runs of a few steps (bench/prune.ts). */
export const PRUNE_BATCH = 500;
/** Pages per incremental_vacuum: 1,000 pages of 4 KiB, ~4 MB, a few ms. */
const RECLAIM_PAGES = 1000;
/** A request gives up this long after it started; the next one continues where it stopped. */
export const DEFAULT_PRUNE_BUDGET_MS = 10_000;
/** How often the `retention` setting prunes, and how long after start the first time. */
export const RETENTION_INTERVAL_MS = 3_600_000;
const RETENTION_FIRST_MS = 60_000;

export interface PruneRequest {
  /** Runs that finished more than this long ago. */
  olderThanMs: number;
  keepVectors?: boolean;
  /** Count what would go; delete nothing. */
  dryRun?: boolean;
  /** Stop after this long (the result says `done: false`). @default 10000 (the CLI waits 15 s for an answer) */
  budgetMs?: number;
  signal?: AbortSignal;
  now?: number;
  /** Runs per transaction. @default 500 */
  batchSize?: number;
}

export interface PruneResult extends PruneCounts {
  /** ISO time: runs that finished before it were pruned. */
  before: string;
  dryRun: boolean;
  /** Nothing older is left (and, on SQLite, the freed space was given back). */
  done: boolean;
  /** Runs left to prune (dry run: that would be pruned). */
  remaining: number;
  space: { before: SpaceUsage; after: SpaceUsage };
  durationMs: number;
}

export async function pruneRuns(store: Store, req: PruneRequest): Promise<PruneResult> {
  if (!Number.isSafeInteger(req.olderThanMs) || req.olderThanMs < 0) {
    throw new RunwardenError('INVALID_BODY', `olderThan must be a non-negative duration, got ${req.olderThanMs} ms`, { status: 400 });
  }
  const t0 = Date.now();
  const before = (req.now ?? t0) - req.olderThanMs;
  const until = t0 + (req.budgetMs ?? DEFAULT_PRUNE_BUDGET_MS);
  const spaceBefore = await store.spaceUsage();
  const total: PruneCounts = { runs: 0, steps: 0, attempts: 0, events: 0, artifacts: 0, vectors: 0, signals: 0 };
  const result = (done: boolean, remaining: number, after: SpaceUsage): PruneResult => ({
    ...total,
    before: new Date(before).toISOString(),
    dryRun: req.dryRun === true,
    done,
    remaining,
    space: { before: spaceBefore, after },
    durationMs: Date.now() - t0,
  });
  if (req.dryRun) {
    total.runs = await store.countPrunable(before);
    return result(true, total.runs, spaceBefore);
  }

  const limit = req.batchSize ?? PRUNE_BATCH;
  let deleted = false;
  while (Date.now() < until && !req.signal?.aborted) {
    const b0 = Date.now();
    const batch = await store.pruneRuns({ before, limit, keepVectors: req.keepVectors === true });
    for (const k of Object.keys(total) as Array<keyof PruneCounts>) total[k] += batch[k];
    if (batch.runs < limit) {
      deleted = true;
      break;
    }
    await pause(Date.now() - b0, req.signal);
  }
  let reclaimed = !deleted;
  while (deleted && Date.now() < until && !req.signal?.aborted) {
    const b0 = Date.now();
    if ((await store.reclaimSpace(RECLAIM_PAGES)) < RECLAIM_PAGES) {
      reclaimed = true;
      break;
    }
    await pause(Date.now() - b0, req.signal);
  }
  const done = deleted && reclaimed;
  return result(done, done ? 0 : await store.countPrunable(before), await store.spaceUsage());
}

/** As long as the last batch held the store (at least 5 ms), so other writers get their turn. */
async function pause(heldMs: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(Math.max(5, heldMs), undefined, signal ? { signal } : undefined);
  } catch {
    // Aborted: the loop sees the signal and stops.
  }
}

/** Every hour (the first time a minute after start): prune runs older than `retentionMs`. Returns a stop function. */
export function startRetention(store: Store, o: { retentionMs: number; log: (line: string) => void; intervalMs?: number; firstMs?: number }): () => Promise<void> {
  const controller = new AbortController();
  let running: Promise<void> | undefined;
  const tick = (): void => {
    if (running) return;
    running = pruneRuns(store, { olderThanMs: o.retentionMs, budgetMs: 60_000, signal: controller.signal })
      .then((r) => {
        if (r.runs > 0 || !r.done) o.log(`retention: ${describePrune(r)}`);
      })
      .catch((err: unknown) => o.log(`retention: pruning failed: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => (running = undefined));
  };
  const first = setTimeout(tick, o.firstMs ?? RETENTION_FIRST_MS);
  const every = setInterval(tick, o.intervalMs ?? RETENTION_INTERVAL_MS);
  first.unref();
  every.unref();
  return async () => {
    clearTimeout(first);
    clearInterval(every);
    controller.abort();
    await running;
  };
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/** One line: what went, and the database's size before and after. */
export function describePrune(r: PruneResult): string {
  const runs = `${r.runs} run${r.runs === 1 ? '' : 's'} finished before ${r.before}`;
  if (r.dryRun) return `would prune ${runs}; database ${mib(r.space.before.bytes)}${r.space.before.freeBytes > 0 ? `, ${mib(r.space.before.freeBytes)} free` : ''}`;
  const what = `${runs} (${r.steps} steps, ${r.events} events, ${r.artifacts} artifacts, ${r.vectors} vectors)`;
  const space = `database ${mib(r.space.before.bytes)} -> ${mib(r.space.after.bytes)}${r.space.after.freeBytes > 0 ? `, ${mib(r.space.after.freeBytes)} free` : ''}`;
  const rest = r.done ? '' : `; ${r.remaining} runs left, continuing next time`;
  return `pruned ${what}; ${space} in ${(r.durationMs / 1000).toFixed(1)} s${rest}`;
}
