import type { LabExchange } from '../exchange.ts';
import type { LabState } from '../state.ts';
import { DEFAULT_HOLD_MS } from '../catalog.ts';

/** What a mode does once the latency has passed. */
export type Runner = () => Promise<void>;

/**
 * A mode reads and validates its parameters synchronously (a bad one throws ParamError, answered
 * with 400 before any byte of the mode is sent) and returns the runner.
 */
export type Mode = (ex: LabExchange, lab: LabState) => Runner;

// setTimeout's ceiling (~24.8 days); anything longer is "forever" for every client anyway.
const MAX_HOLD_MS = 2 ** 31 - 1;

export function holdParam(ex: LabExchange): number {
  return ex.params.int('hold_ms', DEFAULT_HOLD_MS, 0, MAX_HOLD_MS);
}

/** The first half of a body, in bytes: "some of it arrived", whatever the content. */
export function firstHalf(text: string): Buffer {
  const bytes = Buffer.from(text);
  return bytes.subarray(0, Math.floor(bytes.length / 2));
}
