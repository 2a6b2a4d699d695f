/**
 * Trace and span ids derived from what they describe, so that every process (the API, each worker
 * process, a worker on another machine) names a run's spans the same way without carrying context
 * between them: the trace id is the run id (a UUIDv7 is 128 bits, the size of a trace id), and a
 * span id is the first 64 bits of SHA-256 over the run, step and attempt it stands for.
 */
import { createHash } from 'node:crypto';

export interface SpanRef {
  runId: string;
  stepName?: string;
  attempt?: number;
}

export function traceIdOf(runId: string): string {
  const hex = runId.replace(/-/g, '').toLowerCase();
  // Not a UUID (runs created by hand in tests): hash it into one.
  return /^[0-9a-f]{32}$/.test(hex) && !/^0+$/.test(hex) ? hex : createHash('sha256').update(runId).digest('hex').slice(0, 32);
}

export function spanIdOf(ref: SpanRef): string {
  const key = ref.stepName === undefined ? `run\u0000${ref.runId}` : ref.attempt === undefined ? `step\u0000${ref.runId}\u0000${ref.stepName}` : `attempt\u0000${ref.runId}\u0000${ref.stepName}\u0000${ref.attempt}`;
  const id = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return /^0+$/.test(id) ? '0000000000000001' : id;
}

/** The W3C `traceparent` of an attempt's span: what the `http` tool sends. */
export function traceparentOf(ref: Required<SpanRef>): string {
  return `00-${traceIdOf(ref.runId)}-${spanIdOf(ref)}-01`;
}
