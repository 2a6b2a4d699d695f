/**
 * A run's events as an async iterator over `GET /runs/:id/events/stream`, resumed with
 * `Last-Event-ID` whenever the connection drops (server restart, proxy timeout, network), so every
 * event arrives once, in `seq` order; it ends after `run.finished`. Nothing here waits forever:
 * connecting has a deadline, a stream silent for three keepalive periods counts as dropped, and
 * reconnecting gives up (STREAM_LOST) after `giveUpAfterMs` without a working connection.
 */
import type { RunEvent } from '../domain/events.ts';
import type { TextDelta } from '../domain/records.ts';
import { SseParser, type SseEvent } from '../llm/sse.ts';
import { errorFromResponse, networkReason, RunwardenApiError } from './errors.ts';
import type { HttpCore } from './http.ts';

export interface StreamOptions {
  /** Start after this seq (events up to it are not sent). @default 0 */
  after?: number;
  /** Ends the iteration; the pending `next()` rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Deadline for the response headers of one connection. @default 15000 */
  connectTimeoutMs?: number;
  /** No byte for this long means the connection is dead (the server sends a keepalive every 15 s). @default 45000 */
  idleTimeoutMs?: number;
  /** Stop reconnecting after this long without a working connection. @default 60000 */
  giveUpAfterMs?: number;
  /** Told before each reconnect: the seq it resumes after, why, and the delay. */
  onReconnect?: (afterSeq: number, reason: string, delayMs: number) => void;
  /**
   * Each `llm.delta` frame: text a running LLM step generates, as it comes. Frames are not stored
   * events (no seq): they are not replayed on resume, and a slow reader may miss some.
   */
  onDelta?: (delta: TextDelta) => void;
}

/** A connection that ended in a way worth resuming from. */
class Dropped extends Error {}

const isTerminal = (status: unknown): boolean => status === 'succeeded' || status === 'failed' || status === 'cancelled';

export async function* streamRunEvents(http: HttpCore, runId: string, opts: StreamOptions = {}): AsyncGenerator<RunEvent, void, undefined> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 45_000;
  const giveUpAfterMs = opts.giveUpAfterMs ?? 60_000;
  const path = `/runs/${encodeURIComponent(runId)}/events/stream`;
  let lastSeq = opts.after ?? 0;
  let failingSince: number | undefined;
  let failures = 0;

  for (;;) {
    opts.signal?.throwIfAborted();
    const controller = new AbortController();
    const onOuterAbort = (): void => controller.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    let timer = setTimeout(() => controller.abort(new Dropped(`no response within ${Math.round(connectTimeoutMs / 1000)}s`)), connectTimeoutMs);
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new Dropped(`the stream was silent for ${Math.round(idleTimeoutMs / 1000)}s`)), idleTimeoutMs);
    };
    const dropped = (err: unknown): unknown => {
      if (opts.signal?.aborted) return opts.signal.reason;
      if (err instanceof Dropped || err instanceof RunwardenApiError) return err;
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof Dropped) return reason;
      return new Dropped(networkReason(err, connectTimeoutMs));
    };

    let reason: string;
    let delivered = 0;
    try {
      let res: Response;
      try {
        res = await http.fetch(`${http.baseUrl}${path}`, {
          headers: http.headers({ accept: 'text/event-stream', ...(lastSeq > 0 ? { 'last-event-id': String(lastSeq) } : {}) }),
          signal: controller.signal,
        });
      } catch (err) {
        throw dropped(err);
      }
      if (!res.ok) {
        const text = await res.text().catch((err: unknown) => `unreadable body: ${String(err)}`);
        if (res.status >= 500) throw new Dropped(`HTTP ${res.status}`);
        throw errorFromResponse(res.status, text, `the runwarden API at ${http.baseUrl}`);
      }
      if (!res.body) throw new Dropped('the response has no body');
      arm();
      const pending: SseEvent[] = [];
      const parser = new SseParser({ onEvent: (e) => pending.push(e) });
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          arm();
          parser.feed(chunk);
          for (const msg of pending.splice(0)) {
            if (msg.type === 'error') throw new Dropped('the server reported a stream error');
            if (msg.type === 'llm.delta') {
              const delta = parseDelta(msg.data);
              if (delta) opts.onDelta?.(delta);
              continue;
            }
            let event: RunEvent;
            try {
              event = JSON.parse(msg.data) as RunEvent;
            } catch {
              throw new Dropped('the server sent an event that is not JSON');
            }
            // The server starts after Last-Event-ID; skipping seen seqs keeps a duplicate out even so.
            if (typeof event.seq !== 'number' || event.seq <= lastSeq) continue;
            lastSeq = event.seq;
            delivered++;
            failingSince = undefined;
            failures = 0;
            yield event;
            if (event.type === 'run.finished') return;
          }
        }
      } catch (err) {
        throw dropped(err);
      }
      reason = 'the server ended the stream';
    } catch (err) {
      if (!(err instanceof Dropped)) throw err;
      reason = err.message;
    } finally {
      clearTimeout(timer);
      // Releases the connection whichever way this attempt ended (including the consumer's `break`).
      controller.abort(new Error('stream attempt over'));
      opts.signal?.removeEventListener('abort', onOuterAbort);
    }
    // A stream that ended cleanly and sent nothing new is what the server does when the run had
    // finished before the resume point: look at the run rather than reconnect forever.
    if (delivered === 0 && reason === 'the server ended the stream') {
      const run = await http.request<{ status?: unknown }>('GET', `/runs/${encodeURIComponent(runId)}`, undefined, opts.signal ? { signal: opts.signal } : {}).catch((err: unknown) => {
        if (err instanceof RunwardenApiError && err.status >= 400 && err.status < 500) throw err;
        return undefined;
      });
      if (run && isTerminal(run.body.status)) return;
    }
    failingSince ??= Date.now();
    if (Date.now() - failingSince > giveUpAfterMs) {
      throw new RunwardenApiError('STREAM_LOST', `lost the event stream of run ${runId} (${reason}) and could not resume it for ${Math.round(giveUpAfterMs / 1000)}s`);
    }
    const delay = Math.min(5000, 250 * 2 ** failures) + Math.floor(Math.random() * 100);
    failures++;
    opts.onReconnect?.(lastSeq, reason, delay);
    await sleep(delay, opts.signal);
  }
}

/** A delta frame, or undefined when it is not one (a frame that cannot be read is skipped: deltas are lossy). */
export function parseDelta(data: string): TextDelta | undefined {
  try {
    const d = JSON.parse(data) as Partial<TextDelta>;
    if (typeof d.text === 'string' && typeof d.stepName === 'string' && typeof d.attempt === 'number') return d as TextDelta;
  } catch {
    return undefined;
  }
  return undefined;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
