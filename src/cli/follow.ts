/**
 * Follow a run's event stream until `run.finished`, resuming with `Last-Event-ID` whenever the
 * connection drops. Nothing here can wait forever: connecting has a deadline, a stream that is
 * silent for longer than three keepalive periods is treated as dead, and reconnecting gives up
 * (exit 3) after `giveUpAfterMs` without a working connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventRecord, RunWithSteps, TextDelta } from '../domain/records.ts';
import { RUN_TERMINAL } from '../domain/states.ts';
import type { ApiClient } from './client.ts';
import { apiError, unreachable } from './client.ts';
import { CliError, EXIT } from './io.ts';
import { SseParser, type SseEvent } from '../llm/sse.ts';

export interface FollowOptions {
  /** Deadline for the response headers of one connection. @default 15000 */
  connectTimeoutMs?: number;
  /** No byte for this long means the stream is dead (the server sends a keepalive every 15 s). @default 45000 */
  idleTimeoutMs?: number;
  /** Stop reconnecting after this long without a working connection. @default 60000 */
  giveUpAfterMs?: number;
  /** Resume after this seq. @default 0 */
  afterSeq?: number;
  /** Told before each reconnect. */
  onReconnect?: (afterSeq: number, reason: string, delayMs: number) => void;
  /** Aborts following (Ctrl-C). */
  signal?: AbortSignal;
  /** Each `llm.delta` frame (text a running step generates; not stored, so never replayed on resume). */
  onDelta?: (delta: TextDelta) => void;
}

class StreamDropped extends Error {}

export async function followRunEvents(
  client: ApiClient,
  runId: string,
  onEvent: (event: EventRecord) => void,
  opts: FollowOptions = {},
): Promise<EventRecord> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 45_000;
  const giveUpAfterMs = opts.giveUpAfterMs ?? 60_000;
  let lastSeq = opts.afterSeq ?? 0;
  let failingSince: number | undefined;
  let failures = 0;

  for (;;) {
    opts.signal?.throwIfAborted();
    let reason: string;
    try {
      const finished = await streamOnce();
      if (finished) return finished;
      reason = 'the server ended the stream';
    } catch (err) {
      if (!(err instanceof StreamDropped)) throw err;
      reason = err.message;
    }
    failingSince ??= Date.now();
    if (Date.now() - failingSince > giveUpAfterMs) {
      throw unreachable(client.baseUrl, new Error(`lost the event stream (${reason}) and could not resume it for ${Math.round(giveUpAfterMs / 1000)}s`), connectTimeoutMs);
    }
    const delay = Math.min(5000, 250 * 2 ** failures) + Math.floor(Math.random() * 100);
    failures++;
    opts.onReconnect?.(lastSeq, reason, delay);
    await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
  }

  /** One connection. Returns run.finished, or undefined when the stream ended without it; throws StreamDropped to retry. */
  async function streamOnce(): Promise<EventRecord | undefined> {
    const controller = new AbortController();
    const onOuterAbort = (): void => controller.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    let timer = setTimeout(() => controller.abort(new StreamDropped(`no response within ${Math.round(connectTimeoutMs / 1000)}s`)), connectTimeoutMs);
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new StreamDropped(`the stream was silent for ${Math.round(idleTimeoutMs / 1000)}s`)), idleTimeoutMs);
    };
    try {
      let res: Response;
      try {
        res = await fetch(`${client.baseUrl}/runs/${encodeURIComponent(runId)}/events/stream`, {
          headers: client.headers({ accept: 'text/event-stream', ...(lastSeq > 0 ? { 'last-event-id': String(lastSeq) } : {}) }),
          signal: controller.signal,
        });
      } catch (err) {
        throw dropped(err);
      }
      if (!res.ok) {
        const text = await res.text().catch((err: unknown) => `unreadable body: ${String(err)}`);
        if (res.status >= 500) throw new StreamDropped(`HTTP ${res.status}`);
        throw apiError(res.status, text, client.baseUrl);
      }
      if (!res.body) throw new StreamDropped('the response has no body');
      arm();
      const pending: SseEvent[] = [];
      const parser = new SseParser({ onEvent: (e) => pending.push(e) });
      try {
        for await (const chunk of res.body) {
          arm();
          parser.feed(chunk as Uint8Array);
          for (const msg of pending.splice(0)) {
            if (msg.type === 'error') throw new StreamDropped('the server reported a stream error');
            if (msg.type === 'llm.delta') {
              const delta = parseDelta(msg.data);
              if (delta) opts.onDelta?.(delta);
              continue;
            }
            let event: EventRecord;
            try {
              event = JSON.parse(msg.data) as EventRecord;
            } catch {
              throw new StreamDropped('the server sent an event that is not JSON');
            }
            // After a resume the server starts after Last-Event-ID; skipping seen seqs keeps a
            // duplicate from ever reaching the display.
            if (typeof event.seq !== 'number' || event.seq <= lastSeq) continue;
            lastSeq = event.seq;
            failingSince = undefined;
            failures = 0;
            onEvent(event);
            if (event.type === 'run.finished') return event;
          }
        }
      } catch (err) {
        throw dropped(err);
      }
      // The server ends a stream after run.finished, or at once for a run that had already
      // finished when the stream started. If no run.finished reached us, ask the run itself: a
      // finished run must end the follow, not loop on reconnects.
      return await finishedFromRun();
    } finally {
      clearTimeout(timer);
      // Releases the connection whichever way this attempt ended.
      controller.abort(new Error('stream attempt over'));
      opts.signal?.removeEventListener('abort', onOuterAbort);
    }

    async function finishedFromRun(): Promise<EventRecord | undefined> {
      let run: RunWithSteps;
      try {
        run = await client.get<RunWithSteps>(`/runs/${encodeURIComponent(runId)}`);
      } catch (err) {
        if (err instanceof CliError && err.exitCode === EXIT.USAGE) throw err;
        return undefined;
      }
      if (!RUN_TERMINAL.has(run.status)) return undefined;
      return { seq: lastSeq, ts: run.finishedAt ?? new Date().toISOString(), type: 'run.finished', runId, data: { status: run.status, error: run.error } };
    }

    function dropped(err: unknown): Error {
      if (err instanceof StreamDropped) return err;
      if (opts.signal?.aborted) return err instanceof Error ? err : new Error(String(err));
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof StreamDropped) return reason;
      const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
      const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
      return new StreamDropped(`${err instanceof Error ? err.message : String(err)}${code}`);
    }
  }
}

/** A delta frame, or undefined when it is not one (a frame we cannot read is skipped: deltas are lossy). */
export function parseDelta(data: string): TextDelta | undefined {
  try {
    const d = JSON.parse(data) as Partial<TextDelta>;
    if (typeof d.text === 'string' && typeof d.stepName === 'string' && typeof d.attempt === 'number') return d as TextDelta;
  } catch {
    return undefined;
  }
  return undefined;
}
