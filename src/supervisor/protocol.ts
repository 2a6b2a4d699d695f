/**
 * What a supervisor and its worker processes say to each other, over two channels:
 *
 * - the IPC channel (`process.send`, stdio index 4): init and stop orders, heartbeats, store
 *   notifications relayed both ways. It needs the worker's main thread, so it goes quiet when the
 *   worker's event loop is blocked: that silence is itself a signal.
 * - the report pipe (stdio index 3 in the worker): newline-delimited JSON written with
 *   `fs.writeSync` by the watchdog thread (stall reports, while the main thread is frozen) and by
 *   the main thread's `exit` hook (which step called `process.exit`, from where). It works when the
 *   IPC channel cannot.
 */
import type { RunwardenConfig } from '../config/types.ts';
import type { TextDelta } from '../domain/records.ts';
import type { MetricSnapshot } from '../telemetry/metrics.ts';
import type { SyncCall } from '../worker/containment/sync-calls.ts';

/** The worker's fd of the report pipe. */
export const REPORT_FD = 3;
/** stdio layout of a worker process: stdin ignored, stdout, stderr, report pipe, IPC. */
export const WORKER_STDIO = ['ignore', 'pipe', 'pipe', 'pipe', 'ipc'] as const;

/** A step as the worker knows it: enough to name it in a report and to know its deadline. */
export interface StepRef {
  runId: string;
  stepName: string;
  attempt: number;
  tool?: string;
  /** Epoch ms. */
  deadlineAt?: number;
}

// ---- supervisor -> worker (IPC) ----

export interface InitMessage {
  t: 'init';
  config: RunwardenConfig;
  /** The environment the worker's providers read their keys from (the supervisor's). */
  env: Record<string, string | undefined>;
  /** Where relative tool module paths resolve. */
  cwd: string;
  /** The hang lab of the API process, for the `lab` provider. */
  labUrl?: string;
  slot: number;
  /**
   * The supervisor's id (`<host>-<pid>`). A worker's claim loops are `<idPrefix>-<its pid>-<i>`, so
   * the workers table and every lease say which deployment and which process hold a step.
   */
  idPrefix: string;
  /** Relay store notifications over IPC (SQLite: they do not cross processes by themselves). */
  relay: boolean;
  /** Main-thread heartbeat period for the watchdog, ms. */
  beatMs: number;
  /** IPC heartbeat period to the supervisor, ms. */
  reportMs: number;
  /** The watchdog reports a blocked loop after this long without a heartbeat, ms. */
  stallMs: number;
}

/** Drain (`drainMs` of the configuration), hand back what still runs, exit. */
export interface StopMessage {
  t: 'stop';
}

export interface NotifyDown {
  t: 'notify';
  ready?: boolean;
  cancel?: string[];
}

export type ToWorker = InitMessage | StopMessage | NotifyDown;

// ---- worker -> supervisor (IPC) ----

export interface ReadyMessage {
  t: 'ready';
  pid: number;
  /** The claim loops of this process, as the store's workers table and leases name them. */
  workerIds: string[];
}

export interface BeatMessage {
  t: 'beat';
  /** Epoch ms at which the worker's main thread sent it. */
  at: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  rssBytes: number;
  heapUsedBytes: number;
  steps: StepRef[];
  /** The process's own metrics (step durations, LLM calls, hang reports), on every 4th beat (~1 s). */
  metrics?: MetricSnapshot[];
}

export interface NotifyUp {
  t: 'notify';
  ready?: boolean;
  runIds?: string[];
  /** Streamed text of running steps, for the API process's event streams (never stored). */
  deltas?: TextDelta[];
}

export interface StartFailedMessage {
  t: 'start_failed';
  message: string;
}

/** Something a step started cannot be stopped inside the process (a tool thread in a system call): replace me. */
export interface RecycleMessage {
  t: 'recycle';
  why: string;
}

export type FromWorker = ReadyMessage | BeatMessage | NotifyUp | StartFailedMessage | RecycleMessage;

// ---- worker -> supervisor (report pipe) ----

/** A frame of the blocked main thread, as the inspector gave it (1-based line and column). */
export interface CapturedFrame {
  fn: string;
  url: string;
  line: number;
  column: number;
}

export interface StallReport {
  t: 'stall';
  /** Epoch ms of the last heartbeat the watchdog saw. */
  blockedSince: number;
  detectedAt: number;
  /** Innermost first; empty when the thread was inside native code (see `native`). */
  frames: CapturedFrame[];
  /** The step whose code was running, from its AsyncLocalStorage context, if any. */
  step: StepRef | null;
  /** The main thread had a SQLite write transaction open: every other writer waits on it. */
  inTransaction: boolean;
  /** The inspector could not pause the thread: it is in a system call (execSync, a blocking read, a lock wait). */
  native: boolean;
  captureMs: number;
  resources: { rssBytes: number; cpuUserMs: number; cpuSystemMs: number };
  /** The step inside a blocking synchronous call (execSync, readFileSync ...) when the block was seen. */
  syncCall?: SyncCall | null;
  /** What Linux says about the blocked main thread, and the worker's child processes. */
  os?: OsFacts | null;
}

/** The blocked thread as /proc shows it (src/forensics/procfs.ts). */
export interface OsFacts {
  state: string;
  /** e.g. 'wait4', 'read', 'openat'. */
  syscall?: string;
  /** What the call's file descriptor is, for calls on one. */
  fd?: string;
  /** Kernel function the thread sleeps in. */
  wchan?: string;
  children: Array<{ pid: number; command: string }>;
  openFiles: Array<{ fd: number; target: string }>;
}

export interface UnstallReport {
  t: 'unstall';
  blockedMs: number;
}

export interface ExitReport {
  t: 'exit';
  code: number;
  /** The step whose code called `process.exit`, if any. */
  step: StepRef | null;
  /** The JavaScript stack at the `process.exit` call. */
  stack: string;
}

export type PipeReport = StallReport | UnstallReport | ExitReport;

/** Splits a byte stream into complete lines; keeps the partial tail for the next chunk. */
export class LineSplitter {
  #tail = '';

  push(chunk: Buffer | string): string[] {
    const text = this.#tail + chunk.toString();
    const lines = text.split('\n');
    this.#tail = lines.pop() ?? '';
    // A runaway line (no newline in megabytes) must not grow without bound.
    if (this.#tail.length > 1 << 20) this.#tail = this.#tail.slice(-(1 << 16));
    return lines;
  }

  /** The unterminated last line, if any (when the stream ends). */
  flush(): string[] {
    const rest = this.#tail;
    this.#tail = '';
    return rest === '' ? [] : [rest];
  }
}

export function parseReport(line: string): PipeReport | undefined {
  try {
    const v = JSON.parse(line) as { t?: unknown };
    return v && (v.t === 'stall' || v.t === 'unstall' || v.t === 'exit') ? (v as PipeReport) : undefined;
  } catch {
    return undefined;
  }
}

/** The last `size` lines a process wrote (stdout and stderr together), for crash reports. */
export class LastLines {
  readonly #lines: string[] = [];
  readonly #size: number;

  constructor(size = 30) {
    this.#size = size;
  }

  push(line: string): void {
    this.#lines.push(line.length > 2000 ? `${line.slice(0, 2000)}...` : line);
    if (this.#lines.length > this.#size) this.#lines.shift();
  }

  list(): string[] {
    return [...this.#lines];
  }
}
