import { RunwardenError } from '../domain/errors.ts';
import type { LlmTimeouts } from './types.ts';

/**
 * Defaults of the layered deadlines. Every one is further capped by the step's deadline.
 * Stock clients wait 300 s for headers and forever between streamed bytes (FAILURES.md); these are
 * tighter because a step has better things to do than wait on a dead socket.
 */
export const DEFAULT_TIMEOUTS: Readonly<LlmTimeouts> = Object.freeze({
  /** DNS + TCP + TLS. A healthy connect takes < 300 ms even across an ocean. @default 10000 */
  connectMs: 10_000,
  /** Streaming servers answer within a second or two; non-streaming ones send headers when the
   *  completion is done, so this is also the budget of a non-streaming generation. @default 60000 */
  headersMs: 60_000,
  /** Reasoning models can think for tens of seconds before the first token. @default 60000 */
  firstContentMs: 60_000,
  /** A streaming model emits tokens every few tens of ms; 30 s without one is a stall. @default 30000 */
  idleMs: 30_000,
  /** The whole call, retries and backoff included. @default 600000 */
  totalMs: 600_000,
});

/** @default 2 */
export const DEFAULT_MAX_RETRIES = 2;
/** Largest response body accepted before `llm.too_large`. @default 32 MiB */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** Backoff: full jitter over min(cap, base * 2^retry). */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 10_000;
/** After `[DONE]`/`message_stop`, how long to wait for the server to end the response before the
 *  socket is destroyed instead of returned to the pool (the "hold after [DONE]" stall). */
export const DRAIN_GRACE_MS = 500;
/** Error bodies (4xx/5xx) are read up to this many bytes for their message. */
export const ERROR_BODY_MAX_BYTES = 64 * 1024;

const KEYS = ['connectMs', 'headersMs', 'firstContentMs', 'idleMs', 'totalMs'] as const;

/** Merge layers (later wins) over the defaults; rejects unknown keys and non-positive values. */
export function resolveTimeouts(...layers: Array<Partial<LlmTimeouts> | undefined>): LlmTimeouts {
  const out: LlmTimeouts = { ...DEFAULT_TIMEOUTS };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (!(KEYS as readonly string[]).includes(key)) {
        throw new RunwardenError('CONFIG_INVALID', `unknown timeout "${key}" (known: ${KEYS.join(', ')})`);
      }
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
        throw new RunwardenError('CONFIG_INVALID', `timeout "${key}" must be a positive number of milliseconds`);
      }
      out[key as keyof LlmTimeouts] = value;
    }
  }
  return out;
}
