/**
 * Server-Sent Events for one run. The stream sends the stored events after `afterSeq`, then waits
 * for `engine.onRunEvents` wake-ups (with a slow poll as a safety net, so a missed notification
 * delays an event by at most `pollMs` instead of stalling the stream) and ends after `run.finished`.
 *
 * The failure modes it is built against (an API that stops answering after a few requests because
 * SSE streams were never closed):
 * - a client that disconnects: the `close` event removes the engine listener and both timers;
 * - a client that stops reading: writes honour backpressure (`write() === false` waits for `drain`)
 *   and a client that has not drained for `drainTimeoutMs` is disconnected, so a stalled reader
 *   holds neither memory nor a listener forever;
 * - a server that shuts down: `SseHub.closeAll()` ends every open stream so `close()` never waits
 *   on a long-lived connection.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventRecord, TextDelta } from '../domain/records.ts';
import type { EngineFacade } from '../engine/facade.ts';
import { describeForLog } from './errors.ts';

export interface SseOptions {
  /** A `: keepalive` comment this often, so proxies and clients can tell a quiet stream from a dead one. @default 15000 */
  keepaliveMs: number;
  /** Re-read the events this often even without a wake-up. @default 5000 */
  pollMs: number;
  /** A client whose socket has not drained for this long is disconnected. @default 60000 */
  drainTimeoutMs: number;
  /** Events read from the engine per page. @default 500 */
  pageSize: number;
}

export const DEFAULT_SSE_OPTIONS: Readonly<SseOptions> = Object.freeze({
  keepaliveMs: 15_000,
  pollMs: 5_000,
  drainTimeoutMs: 60_000,
  pageSize: 500,
});

/** Tracks open streams so the server can end them on shutdown and count them for /metrics. */
export class SseHub {
  readonly #open = new Set<() => void>();
  get size(): number {
    return this.#open.size;
  }
  add(end: () => void): () => void {
    this.#open.add(end);
    return () => this.#open.delete(end);
  }
  closeAll(): void {
    for (const end of [...this.#open]) end();
  }
}

export function sseFrame(event: EventRecord): string {
  const type = String(event.type).replace(/[\r\n]/g, ' ');
  // JSON.stringify escapes newlines, so the payload always fits on one `data:` line.
  return `id: ${event.seq}\nevent: ${type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** A frame without an `id:`: deltas are not stored, so they must not move a reader's resume point. */
export function deltaFrame(delta: TextDelta): string {
  return `event: llm.delta\ndata: ${JSON.stringify({ type: 'llm.delta', ...delta })}\n\n`;
}

export interface StreamParams {
  engine: EngineFacade;
  runId: string;
  afterSeq: number;
  /** The run was already terminal before the stream started: once no newer event exists, end. */
  terminalAtStart: boolean;
  req: IncomingMessage;
  res: ServerResponse;
  hub: SseHub;
  options: SseOptions;
  log: (line: string) => void;
}

export async function streamRunEvents(p: StreamParams): Promise<void> {
  const { engine, runId, res, options } = p;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    // No `connection` header: Node sends keep-alive itself, and honours a client's `connection: close`
    // (an explicit keep-alive here kept such a client's socket open after the stream ended).
    'x-accel-buffering': 'no',
  });
  // Tells EventSource clients how soon to reconnect, and flushes the headers right away.
  res.write('retry: 2000\n\n');

  let closed = false;
  let woken = false;
  let wake: (() => void) | null = null;
  const signal = (): void => {
    woken = true;
    const w = wake;
    wake = null;
    w?.();
  };
  const onClose = (): void => {
    closed = true;
    signal();
  };
  const end = (): void => {
    if (!closed) {
      closed = true;
      // A client that is not reading would hold a graceful end (and so the server's close) open.
      if (res.writableNeedDrain) res.destroy();
      else res.end();
    }
    signal();
  };

  let unsubscribe = (): void => {};
  // Deltas are lossy by design: a reader that is behind (its socket buffer full) misses frames
  // rather than making anyone wait; the step's final text is in its step.finished outputs.
  const unsubscribeDeltas = engine.onRunDeltas(runId, (delta) => {
    if (!closed && !res.writableNeedDrain) res.write(deltaFrame(delta));
  });
  const removeFromHub = p.hub.add(end);
  res.on('close', onClose);
  // A write to a reset socket reports an error event; without a listener that would crash the process.
  res.on('error', onClose);
  // The client may have left while the run was being looked up: then 'close' has already fired.
  if (res.destroyed || p.req.socket.destroyed) closed = true;
  const keepalive = setInterval(() => {
    if (!closed && !res.writableNeedDrain) res.write(': keepalive\n\n');
  }, options.keepaliveMs);

  const waitForWake = async (): Promise<void> => {
    if (woken || closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, options.pollMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  };

  const waitForDrain = async (): Promise<boolean> => {
    return new Promise<boolean>((resolve) => {
      const done = (drained: boolean): void => {
        clearTimeout(timer);
        res.off('drain', onDrain);
        res.off('close', onGone);
        resolve(drained);
      };
      const onDrain = (): void => done(true);
      const onGone = (): void => done(false);
      const timer = setTimeout(() => done(false), options.drainTimeoutMs);
      res.on('drain', onDrain);
      res.on('close', onGone);
    });
  };

  let last = p.afterSeq;
  try {
    // Subscribed before the first read, so an event written between the read and the wait still wakes us.
    unsubscribe = engine.onRunEvents(runId, signal);
    stream: while (!closed) {
      woken = false;
      const events = await engine.listEvents(runId, last, options.pageSize);
      for (const event of events) {
        if (closed) break stream;
        const flushed = res.write(sseFrame(event));
        last = event.seq;
        if (event.type === 'run.finished') break stream;
        if (!flushed && !(await waitForDrain())) {
          // The client stopped reading (or left): free the connection rather than queue without bound.
          if (!closed) {
            closed = true;
            res.destroy();
          }
          break stream;
        }
      }
      if (events.length >= options.pageSize) continue;
      if (events.length === 0 && p.terminalAtStart) break;
      await waitForWake();
    }
  } catch (err) {
    p.log(`sse: run ${JSON.stringify(runId)} stream failed: ${describeForLog(err)}`);
    if (!closed && !res.writableNeedDrain) {
      res.write(`event: error\ndata: ${JSON.stringify({ error: { code: 'INTERNAL', message: 'event stream failed; reconnect with Last-Event-ID', details: [] } })}\n\n`);
    }
  } finally {
    clearInterval(keepalive);
    unsubscribe();
    unsubscribeDeltas();
    removeFromHub();
    res.off('close', onClose);
    if (!closed) {
      closed = true;
      res.end();
    }
  }
}
