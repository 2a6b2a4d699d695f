/**
 * The provider calls in flight in this process, for hang reports: what each is waiting for right
 * now (phase, time in phase, bytes, time since the last byte). Entries are added when an attempt or a
 * backoff sleep starts and removed when it settles, so a snapshot taken *before* the step's signal is
 * aborted shows where a stuck step is stuck; after the abort, the error's `data` says the same.
 *
 * Match a step by its AbortSignal: `pendingCalls(ctx.signal)`.
 */
import type { CallPhase } from './errors.ts';

export interface PendingCall {
  provider: string;
  model: string;
  method: string;
  /** Redacted. */
  url: string;
  phase: CallPhase;
  attempt: number;
  startedAt: number;
  msInPhase: number;
  bytesIn: number;
  bytesOut: number;
  /** -1 when no byte was ever received. */
  msSinceLastByte: number;
  /** Streaming only: whether any content arrived, and how long ago. */
  contentSeen?: boolean;
  msSinceContent?: number;
  /** Phase `limit`: the provider limit the call waits for, how full it is, when a slot is expected. */
  waitingFor?: { limit: string; used: number; cap: number; retryAt: string };
}

export interface PendingSource {
  readonly signal: AbortSignal;
  snapshot(now: number): PendingCall;
}

const live = new Set<PendingSource>();

export function registerPending(source: PendingSource): () => void {
  live.add(source);
  return () => {
    live.delete(source);
  };
}

/** Snapshots of the calls in flight, optionally only those running under `signal`. */
export function pendingCalls(signal?: AbortSignal): PendingCall[] {
  const now = Date.now();
  const out: PendingCall[] = [];
  for (const s of live) if (signal === undefined || s.signal === signal) out.push(s.snapshot(now));
  return out;
}
