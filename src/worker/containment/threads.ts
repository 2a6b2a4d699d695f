/**
 * Worker threads a step creates (`new Worker(...)` from node:worker_threads) are noted on the
 * attempt, so that a hang report can name the thread a step waits on and the attempt's end can
 * terminate it. Threads created outside any step (runwarden's own) are untouched.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Worker as ThreadWorker, WorkerOptions } from 'node:worker_threads';

export interface ThreadOwner {
  threadStarted(thread: ThreadWorker, what: string): void;
}

let owner: (() => ThreadOwner | undefined) | undefined;

function describe(spec: unknown, options: WorkerOptions | undefined): string {
  if (options?.eval) return 'eval script';
  if (spec instanceof URL) return spec.protocol === 'file:' ? spec.pathname : `${spec.protocol} URL`;
  const text = String(spec);
  return text.length > 120 ? `${text.slice(0, 120)}...` : text;
}

/** Patches node:worker_threads for this thread (once); `current` names the attempt whose code runs. */
export function installThreadGuard(current: () => ThreadOwner | undefined): void {
  const first = owner === undefined;
  owner = current;
  if (!first) return;
  const wt = createRequire(import.meta.url)('node:worker_threads') as { Worker: typeof ThreadWorker };
  const Original = wt.Worker;
  class Worker extends Original {
    constructor(spec: string | URL, options?: WorkerOptions) {
      super(spec, options);
      owner?.()?.threadStarted(this, describe(spec, options));
    }
  }
  wt.Worker = Worker;
  syncBuiltinESMExports();
}
