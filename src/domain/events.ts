/**
 * The events of a run as readers see them (API, SSE, CLI, the TypeScript client): one type per
 * `type`, each with the shape of its `data`. The engine, worker and LLM layer write these; the
 * OpenAPI document (src/http/openapi.ts) describes the same union, and test/http/event-schema.test.ts
 * checks that every type written anywhere in src/ is listed here and that real events match.
 */
import type { SerializedError } from './errors.ts';
import type { RunState, StepState } from './states.ts';
import type { UsageTotals } from './records.ts';
import type { HangReport } from './hang-report.ts';

export const EVENT_TYPES = [
  'run.created',
  'run.started',
  'step.added',
  'step.queued',
  'step.started',
  'step.retrying',
  'llm.request',
  'llm.usage',
  'step.log',
  'artifact.created',
  'step.hang_report',
  'step.awaiting',
  'step.awaiting_signal',
  'signal.received',
  'step.reused',
  'step.waiting',
  'step.finished',
  'run.finished',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What every event carries besides its type and data. */
interface EventBase<T extends EventType, D> {
  /** Position in the run, from 1, without gaps. */
  seq: number;
  ts: string;
  type: T;
  runId: string;
  stepName?: string;
  attempt?: number;
  data: D;
}

export interface EventData {
  /** `rerunOf`: the run this one reruns (POST /runs/:id/rerun). */
  'run.created': { goal: string | null; steps: number; labels: Record<string, string>; rerunOf?: string };
  'run.started': Record<string, never>;
  /** A step a tool added at runtime (docs/dynamic-runs.md); `outputsFrom` when its adder takes its outputs. */
  'step.added': { tool: string; dependsOn: string[]; addedBy: string; attempt: number; outputsFrom?: string };
  'step.queued': Record<string, never>;
  'step.started': { tool: string; workerId: string; deadlineAt: string };
  'step.retrying': { nextAttempt: number; delayMs: number; error: SerializedError | null };
  'llm.request': { provider: string; model: string; stream: boolean; attempt: number };
  /** `waitedMs`: the part of `totalMs` the call waited for capacity at its provider's gate (absent when it did not wait). */
  'llm.usage': { provider: string; model: string; inputTokens: number; outputTokens: number; ttfbMs: number; totalMs: number; retries: number; waitedMs?: number };
  /**
   * A line the tool logged, or one runwarden wrote about the step: `kind` says which of the latter
   * (`unhandled_rejection`, `uncaught_exception`, `loop.blocked`).
   */
  'step.log': { level: 'info' | 'warn' | 'error'; message: string; data?: Record<string, unknown>; kind?: string; frames?: string[] };
  'artifact.created': { id: string; name: string; mime: string; size: number };
  'step.hang_report': HangReport;
  /** The attempt succeeded and the step now waits, pending, for the outputs of `step`, which it added. */
  'step.awaiting': { step: string };
  /** A `wait` step's attempt ended; the step waits (pending, no worker) for `signal` until `deadlineAt`. */
  'step.awaiting_signal': { signal: string; since: string; deadlineAt: string; timeoutMs: number };
  /** A signal was sent to the run (no step name); `released`: the steps that were waiting for it. */
  'signal.received': { name: string; released: string[] };
  /** A step of a rerun that did not run again: its outputs and artifacts come from run `reusedFrom`. */
  'step.reused': { reusedFrom: string; rerunOf: string; artifacts: number };
  /**
   * The step waits for capacity (docs/flow-control.md#never-silent), once per wait. Either a call
   * of it waits at its provider's gate: which `limit` (`paused`, `concurrency`,
   * `requestsPerMinute`, `tokensPerMinute`), how full (`used` of `cap`), and when a slot is
   * expected; or the step is queued and ready while its concurrency `key` has `used` of `cap`
   * steps running (`limit: concurrencyKey`), a slot free by `slotBy` at the latest.
   */
  'step.waiting':
    | { provider: string; limit: string; used: number; cap: number; retryAt: string }
    | { key: string; limit: 'concurrencyKey'; used: number; cap: number; slotBy: string | null; since: string };
  'step.finished': { status: Exclude<StepState, 'pending' | 'queued' | 'running'>; error: SerializedError | null; durationMs: number; attempts: number };
  'run.finished': {
    status: Exclude<RunState, 'queued' | 'running'>;
    durationMs: number;
    steps: { total: number; notSucceeded: number };
    usage: UsageTotals;
  };
}

/**
 * An event a tool emitted itself (`ctx.emit('custom.<name>', data)`): stored and streamed like the
 * others, with the data the tool gave. The OpenAPI document leaves these out of its `Event` union
 * (a catch-all member would make every generated event type lose its `data` shape).
 */
export type CustomEventType = `custom.${string}`;
export type CustomEvent = Omit<EventBase<EventType, Record<string, unknown>>, 'type'> & { type: CustomEventType };

/** One event of a run; switch on `type` to get its `data` typed. */
export type RunEvent = { [T in EventType]: EventBase<T, EventData[T]> }[EventType] | CustomEvent;

/** The event of one type. */
export type EventOf<T extends EventType> = Extract<RunEvent, { type: T }>;
