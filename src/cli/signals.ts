/**
 * Graceful shutdown for long-running commands (`start`, `lab`): the first SIGINT/SIGTERM closes
 * the service and resolves 0; a second signal exits at once (130 for SIGINT, 143 for SIGTERM); a
 * close that does not finish within `closeTimeoutMs` exits 1 instead of hanging. Under npm, the
 * death of the launcher counts as SIGTERM (launcher-watch.ts).
 */
import { EXIT } from './io.ts';
import { shouldWatchLauncher, watchLauncher } from './launcher-watch.ts';
import type { Io } from './io.ts';

/** A repeat of the first signal within this window is taken as a duplicate delivery, not a second request. */
const DUPLICATE_WINDOW_MS = 250;

export interface ShutdownHandle {
  /** Resolves with the exit code once the service is closed. */
  done: Promise<number>;
  /** Call once the service has started; a signal that arrived during startup is honoured then. */
  started(close: () => Promise<void>): void;
  /** Remove the handlers (startup failed). */
  dispose(): void;
}

export function handleShutdownSignals(io: Io, what: string, closeTimeoutMs = 30_000): ShutdownHandle {
  let close: (() => Promise<void>) | undefined;
  let pending: NodeJS.Signals | undefined;
  let stopping = false;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });

  const stop = (signal: NodeJS.Signals): void => {
    if (!close) {
      pending = signal;
      io.err(`${signal}: stopping ${what} once it has started (send it again to exit at once)\n`);
      return;
    }
    stopping = true;
    io.err(`${signal}: stopping ${what} (send it again to exit at once)\n`);
    const timer = setTimeout(() => {
      io.err(`${what} did not stop within ${Math.round(closeTimeoutMs / 1000)}s; exiting\n`);
      process.exit(EXIT.FAILED);
    }, closeTimeoutMs);
    timer.unref();
    close().then(
      () => {
        clearTimeout(timer);
        dispose();
        io.err(`${what} stopped\n`);
        resolveDone(EXIT.OK);
      },
      (err: unknown) => {
        clearTimeout(timer);
        dispose();
        io.err(`${what} did not stop cleanly: ${err instanceof Error ? err.message : String(err)}\n`);
        resolveDone(EXIT.FAILED);
      },
    );
  };

  let firstAt = 0;
  let firstSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    // Ctrl-C reaches every process of the terminal's foreground group, and bin/runwarden.js also
    // forwards it to its child on old Node: the same signal twice within a few ms is one request.
    if (signal === firstSignal && Date.now() - firstAt < DUPLICATE_WINDOW_MS) return;
    if (firstSignal === undefined) {
      firstSignal = signal;
      firstAt = Date.now();
    }
    if (stopping || pending !== undefined) {
      io.err(`${signal} again: exiting now\n`);
      process.exit(signal === 'SIGINT' ? EXIT.SIGINT : EXIT.SIGTERM);
    }
    stop(signal);
  };
  // The launcher (npm, npx and their shell) died or was told to stop without passing it on.
  const stopWatching = shouldWatchLauncher(process.env)
    ? watchLauncher((pid) => {
        io.err(`the process that started ${what} (pid ${pid}) is gone\n`);
        onSignal('SIGTERM');
      }, { wrapped: process.env.RUNWARDEN_WRAPPED === '1' })
    : () => undefined;
  const dispose = (): void => {
    stopWatching();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  return {
    done,
    started(c) {
      close = c;
      if (pending !== undefined) stop(pending);
    },
    dispose,
  };
}
