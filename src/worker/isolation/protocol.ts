/**
 * What a worker and its tool threads say to each other (postMessage). A tool thread runs one attempt
 * at a time with the same StepRun the worker uses for inline tools; the worker keeps the hard
 * deadline and the means to stop the thread whatever it is doing.
 */
import type { CapacityWait } from '../attempt-clock.ts';
import type { TextDelta } from '../../domain/records.ts';
import type { ClaimedStep } from '../../engine/transitions.ts';
import type { ReportTrigger } from '../../forensics/report.ts';
import type { AbortCause, AttemptResult } from '../run-step.ts';

/** workerData of a tool thread. */
export interface ToolThreadData {
  /** Absolute paths of the tools modules to load. */
  modules: string[];
  cwd: string;
  /** Values the worker redacts (registered secrets): the thread redacts them too. */
  secrets: string[];
  /** The redacted configuration hang reports show. */
  reportConfig: Record<string, unknown>;
  /** Operation tracking on or off, as the worker has it. */
  forensics: boolean;
}

// ---- worker -> thread ----

export interface RunMessage {
  t: 'run';
  claim: ClaimedStep;
  graceMs: number;
  /** The attempt's process marker: the worker kills by it should the thread not answer. */
  marker: string;
}

export interface AbortMessage {
  t: 'abort';
  cause: AbortCause;
}

export type ToThread = RunMessage | AbortMessage;

// ---- thread -> worker ----

export interface ReadyMessage {
  t: 'ready';
  /** The thread's kernel thread id: /proc/<pid>/task/<tid> tells what it is doing and what it costs. */
  tid: number | null;
  tools: string[];
}

export interface StartFailedMessage {
  t: 'start_failed';
  message: string;
}

/** Text the tool streams (`ctx.streamText`), coalesced in the thread. */
export interface DeltaMessage {
  t: 'delta';
  delta: TextDelta;
}

export interface EventMessage {
  t: 'event';
  type: string;
  data: Record<string, unknown>;
}

/** A process the attempt started (sent at once: the worker can kill it even if the thread freezes). */
export interface SpawnedMessage {
  t: 'spawned';
  pid: number | undefined;
  command: string;
  sync: boolean;
}

/** The hang report written ahead of the end of the grace: the worker cuts with it if the tool does not settle. */
export interface DraftMessage {
  t: 'draft';
  trigger: ReportTrigger;
  report: Record<string, unknown>;
}

/** The thread's loop turned after an abort: it is not busy. */
export interface AbortSeenMessage {
  t: 'abort_seen';
}

export interface ResultMessage {
  t: 'result';
  result: AttemptResult;
}

export interface LogMessage {
  t: 'log';
  line: string;
}

/** What the attempt waits for at a provider's gate changed (null: nothing now); its clock stands still meanwhile. */
export interface WaitingMessage {
  t: 'waiting';
  waiting: CapacityWait | null;
}

export type FromThread =
  | ReadyMessage
  | StartFailedMessage
  | EventMessage
  | DeltaMessage
  | DraftMessage
  | SpawnedMessage
  | AbortSeenMessage
  | ResultMessage
  | LogMessage
  | WaitingMessage;
