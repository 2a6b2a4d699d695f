/**
 * Waiting in tests, with a deadline and a name for what is awaited. `waitForRunEvent` wakes on the
 * engine's own notification (`onRunEvents`), so a test sees a run's state change when it is written;
 * `waitFor` asks again every few milliseconds, for conditions nothing announces (a process's
 * output, another process's database writes, a server's request count).
 */
import type { EventRecord } from '../../src/domain/records.ts';
import type { EngineFacade } from '../../src/engine/facade.ts';

export interface WaitOptions {
  /** How often to ask again. @default 10 */
  everyMs?: number;
}

/**
 * Resolves with the first value of `check` other than undefined and false. A check that throws is
 * asked again (a server may be briefly unreachable); the last error is in the timeout's message.
 */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
  opts: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 10));
  }
}

/**
 * Resolves with the first event of `runId` for which `match` holds (events already written count),
 * reading again each time the engine announces new events for the run, and every `pollMs` for
 * writers whose announcements do not reach this engine (another SQLite connection or process).
 */
export function waitForRunEvent(
  engine: Pick<EngineFacade, 'listEvents' | 'onRunEvents'>,
  runId: string,
  match: (e: EventRecord) => boolean,
  timeoutMs: number,
  what: string,
  opts: { pollMs?: number } = {},
): Promise<EventRecord> {
  return new Promise<EventRecord>((resolve, reject) => {
    let after = 0;
    let reading = false;
    let again = false;
    let done = false;
    const finish = (err: Error | null, e?: EventRecord): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      unsubscribe();
      if (err) reject(err);
      else resolve(e as EventRecord);
    };
    const read = async (): Promise<void> => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          for (const e of await engine.listEvents(runId, after, 1000)) {
            after = e.seq;
            if (match(e)) return finish(null, e);
          }
        } while (again && !done);
      } finally {
        reading = false;
      }
    };
    const onError = (err: unknown): void => finish(err instanceof Error ? err : new Error(String(err)));
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    const poll = setInterval(() => void read().catch(onError), opts.pollMs ?? 250);
    const unsubscribe = engine.onRunEvents(runId, () => void read().catch(onError));
    void read().catch(onError);
  });
}
