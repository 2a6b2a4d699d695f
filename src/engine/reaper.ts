/**
 * The reaper, for every process that runs one (the API's EngineApi, `runwarden worker`): every
 * `intervalMs`, expired leases become lost attempts (Transitions.reap), then waits for a signal past
 * their deadline end `timed_out` (Transitions.expireWaits: a waiting step has no worker, so the
 * store's deadline index is what ends it, whichever process looks first), then queued steps past
 * their queueTimeoutMs fail (Transitions.expireQueueWaits), and queued steps held back by a full
 * concurrency key are announced (Transitions.announceKeyWaits). One pass at a time; a failed
 * pass is logged and retried at the next tick. Returns the function that stops it.
 */
import type { Transitions } from './transitions.ts';

export function startReaper(core: Transitions, o: { intervalMs: number; log: (line: string) => void; onReaped?: (n: number) => void }): () => void {
  let reaping = false;
  const timer = setInterval(() => {
    if (reaping) return;
    reaping = true;
    core
      .reap()
      .then(
        (n) => {
          o.onReaped?.(n);
          if (n > 0) o.log(`reaper: ${n} expired lease(s) turned into lost attempts`);
          return core.expireWaits();
        },
      )
      .then((n) => {
        if (n > 0) o.log(`reaper: ${n} wait(s) for a signal timed out`);
        return core.expireQueueWaits();
      })
      .then((n) => {
        if (n > 0) o.log(`reaper: ${n} queued step(s) failed with QUEUE_TIMEOUT`);
        return core.announceKeyWaits();
      })
      .then(
        () => undefined,
        (err: unknown) => o.log(`reaper failed, will retry: ${(err as Error).message}`),
      )
      .finally(() => {
        reaping = false;
      });
  }, o.intervalMs);
  return () => clearInterval(timer);
}
