/**
 * The main-thread half of a worker process's watchdog: a heartbeat counter in shared memory bumped
 * every `beatMs` by a timer of the event loop (so it stops exactly when the loop stops), the probe
 * the watchdog thread evaluates on a paused frame, and the watchdog thread itself
 * (watchdog-thread.ts). Cost: one timer callback per `beatMs` (100 ms by default) and an idle
 * thread; no debugger is attached until a stall is seen.
 */
import { Worker } from 'node:worker_threads';
import { setSyncCallBoard, SYNC_MARKER_BYTES } from '../worker/containment/sync-calls.ts';
import type { StepRef } from './protocol.ts';
import type { WatchdogData } from './watchdog-thread.ts';
import { ownModuleUrl } from '../module-url.ts';

/** The global the probe expression calls; namespaced so no tool collides with it. */
export const PROBE_GLOBAL = '__runwardenWatchdogProbe';

export interface WatchdogOptions {
  beatMs: number;
  stallMs: number;
  reportFd: number;
  /** Evaluated on the blocked thread's top frame: the running step and whether a write transaction is open. */
  probe: () => { step: StepRef | null; inTransaction: boolean };
  onError?: (err: Error) => void;
}

export interface Watchdog {
  stop(): Promise<void>;
}

export function startWatchdog(o: WatchdogOptions): Watchdog {
  const shared = new SharedArrayBuffer(4);
  const beat = new Int32Array(shared);
  (globalThis as Record<string, unknown>)[PROBE_GLOBAL] = (): string => {
    try {
      return JSON.stringify(o.probe());
    } catch {
      return JSON.stringify({ step: null, inTransaction: false });
    }
  };
  // Steps inside blocking synchronous calls leave a note here for the watchdog (sync-calls.ts).
  const syncBoard = new SharedArrayBuffer(SYNC_MARKER_BYTES);
  setSyncCallBoard(syncBoard);
  const data: WatchdogData = { beat: shared, syncBoard, stallMs: o.stallMs, reportFd: o.reportFd, ppid: process.ppid, probe: PROBE_GLOBAL };
  const thread = new Worker(ownModuleUrl(import.meta.url, './watchdog-thread'), { workerData: data });
  thread.on('error', (err) => o.onError?.(err));
  // The watchdog never keeps the process alive; the worker's own handles do.
  thread.unref();
  const timer = setInterval(() => Atomics.add(beat, 0, 1), o.beatMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      setSyncCallBoard(undefined);
      await thread.terminate();
    },
  };
}
