/**
 * The operations a step can be waiting on: an outgoing HTTP request (global fetch / undici, or
 * node:http) or a raw TCP socket (net-ops.ts), a child process, a mutex, or a promise the tool
 * tracked by label.
 *
 * Each op costs a few listeners and one stack capture at creation; everything else (phase, time in
 * phase, peer, command line, the frames) is derived from the live objects when a report is built.
 * Byte counters are read from the socket; "time since the last byte" comes from a sampler that
 * looks at the counters every SAMPLE_MS while ops are live (exact for fetch, whose body chunks
 * arrive on a diagnostics channel).
 */
import { ChildProcess } from 'node:child_process';
import type { Worker as ThreadWorker } from 'node:worker_threads';
import net from 'node:net';
import { captureStack, type CaptureAbove, type StackCapture } from './frames.ts';
import { redactText } from './redact.ts';
import type { HangPendingOp } from '../domain/hang-report.ts';

export type OpKind = 'http' | 'socket' | 'child' | 'thread' | 'lock' | 'tracked';

export type Phase =
  | 'queued'
  | 'resolving'
  | 'connecting'
  | 'tls'
  | 'sending'
  | 'waiting_headers'
  | 'receiving_body'
  | 'waiting_reply'
  | 'idle'
  | 'running'
  | 'waiting';

/**
 * What a report shows of one pending operation: the report's own shape (domain/hang-report.ts) with
 * the kind and phase typed, before the report builder adds the frame.
 */
export interface OpView extends Omit<HangPendingOp, 'kind' | 'phase' | 'frame'> {
  kind: OpKind;
  phase: Phase;
}

export interface OpOwner {
  remove(op: Op): void;
  readonly capture: boolean;
}

/** ctx.track / ctx.checkpoint: the tool's own frame is the caller (~6 us instead of ~12 us). */
export const CAPTURE_SHALLOW = 4;
export const CAPTURE_LIMIT = 60;

/** How often live byte counters are sampled for "time since the last byte". */
export const SAMPLE_MS = 250;

/**
 * Live ops with something to sample: byte counters, and state changes read instead of listened to
 * (a listener costs an allocation on every request; a look every SAMPLE_MS costs nothing per request).
 */
const watched = new Set<Op>();
let sampler: NodeJS.Timeout | undefined;

/** Callbacks of forensics' own timers: never counted as a step's pending work by the timer scan. */
export const internalTimerCallbacks = new Set<unknown>();

function sampleAll(): void {
  const now = Date.now();
  for (const op of watched) op.tick(now);
  if (watched.size === 0 && sampler) {
    clearInterval(sampler);
    sampler = undefined;
  }
}
internalTimerCallbacks.add(sampleAll);

/** Byte counters of a socket (or a child's pipes) relative to when the op started using them. */
export class Meter {
  readonly #readIn: () => number;
  readonly #readOut: () => number;
  readonly #inBase: number;
  readonly #outBase: number;
  bytesIn = 0;
  bytesOut = 0;
  /** 0: never. */
  lastInAt = 0;
  lastOutAt = 0;

  /** `fresh`: the counters start at zero with this op (a new socket): no need to read them now. */
  constructor(readIn: () => number, readOut: () => number, fresh = false) {
    this.#readIn = readIn;
    this.#readOut = readOut;
    this.#inBase = fresh ? 0 : readIn();
    this.#outBase = fresh ? 0 : readOut();
  }

  sample(now: number): void {
    const i = this.#readIn() - this.#inBase;
    const o = this.#readOut() - this.#outBase;
    if (i !== this.bytesIn) {
      this.bytesIn = i;
      this.lastInAt = now;
    }
    if (o !== this.bytesOut) {
      this.bytesOut = o;
      this.lastOutAt = now;
    }
  }

  /** An exact "a byte arrived now" (fetch body chunks). */
  mark(now: number): void {
    this.lastInAt = now;
  }
}

/**
 * Stack captures are the main cost of tracking (~6 us plus ~0.6 us per frame on Node 24, so ~15 us
 * for an LLM request), so one capture serves every op that one synchronous call creates: node:http's
 * Agent connects a new socket inside the ClientRequest constructor just before
 * `http.client.request.created`, and `ctx.track('x', work())` sees the request `work()` made
 * synchronously. The mark lasts until the current synchronous run ends (a queued microtask clears
 * it), and is only used within one step. `undiciConnecting` marks the socket undici is about to open
 * for a fetch (`undici:client:beforeConnect`), which needs no capture of its own.
 */
export const marks: { recent: Op | undefined; undiciConnecting: boolean; noStacks: number } = { recent: undefined, undiciConnecting: false, noStacks: 0 };
let clearQueued = false;
const clearMarks = (): void => {
  marks.recent = undefined;
  marks.undiciConnecting = false;
  clearQueued = false;
};

export function clearMarksSoon(): void {
  if (clearQueued) return;
  clearQueued = true;
  queueMicrotask(clearMarks);
}

/**
 * Runs `fn` without capturing stacks for the operations it creates synchronously. For runwarden's
 * own clients, whose callers are known and which report their own phase (the LLM transport: the
 * `llm` tool's `ctx.track` call carries the frame). Saves one capture (~11 us) per request.
 */
export function withoutStacks<T>(fn: () => T): T {
  marks.noStacks++;
  try {
    return fn();
  } finally {
    marks.noStacks--;
  }
}

/** A capture for a new op of `owner`, or null (tracking off, or inside withoutStacks). */
export function opStack(owner: OpOwner, limit = CAPTURE_LIMIT, above?: CaptureAbove): StackCapture | null {
  return owner.capture && marks.noStacks === 0 ? captureStack(limit, above) : null;
}

/** Offers an op's capture to the next op of the same step in this synchronous run. */
export function noteCapture(op: Op): void {
  if (!op.stack) return;
  marks.recent = op;
  clearMarksSoon();
}

/** The capture made for `owner` earlier in this synchronous run, if any. */
export function recentCapture(owner: OpOwner): Op | undefined {
  const r = marks.recent;
  return r !== undefined && r.owner === owner && r.stack ? r : undefined;
}

let nextId = 0;

export abstract class Op {
  readonly id = ++nextId;
  abstract readonly kind: OpKind;
  readonly owner: OpOwner;
  readonly createdAt: number;
  stack: StackCapture | null;
  meter: Meter | undefined;
  endedAt = 0;

  /** `stack`: a capture made (or shared) by the subclass; undefined captures here. */
  constructor(owner: OpOwner, now: number, stack?: StackCapture | null) {
    this.owner = owner;
    this.createdAt = now;
    this.stack = !owner.capture ? null : stack !== undefined ? stack : opStack(owner);
  }

  end(): void {
    if (this.endedAt !== 0) return;
    this.endedAt = Date.now();
    watched.delete(this);
    this.owner.remove(this);
  }

  /** Sample counters and notice state changes; called every SAMPLE_MS and before a snapshot. */
  tick(now: number): void {
    this.meter?.sample(now);
  }

  protected watch(): void {
    watched.add(this);
    sampler ??= setInterval(sampleAll, SAMPLE_MS).unref();
  }

  /** Stop sampling (the attempt is over). */
  unwatch(): void {
    watched.delete(this);
  }

  get live(): boolean {
    return this.endedAt === 0;
  }

  abstract view(now: number): OpView;

  /** Facts that may have changed since a snapshot was taken (a child signalled after it). */
  lateFacts(): Partial<OpView> {
    return {};
  }

  protected base(now: number, what: string, phase: Phase, since: number): OpView {
    return { id: this.id, kind: this.kind, what, phase, msInPhase: Math.max(0, now - since), ageMs: now - this.createdAt };
  }

  protected bytes(v: OpView, _now: number): OpView {
    const m = this.meter;
    if (!m) return v;
    v.bytesIn = m.bytesIn;
    v.bytesOut = m.bytesOut;
    v.msSinceLastByte = m.lastInAt === 0 ? null : _now - m.lastInAt;
    return v;
  }
}

/** A child process spawned inside the step. */
export class ChildOp extends Op {
  readonly kind = 'child' as const;
  readonly proc: ChildProcess;
  killed: string | undefined;

  /** Published from the ChildProcess constructor. */
  constructor(owner: OpOwner, proc: ChildProcess, now: number) {
    super(owner, now, opStack(owner, CAPTURE_LIMIT, ChildProcess));
    this.proc = proc;
    // 'exit' and 'close' only: an 'error' listener would change what an unhandled spawn error does.
    proc.once('exit', () => this.end());
    proc.once('close', () => this.end());
    this.watch();
  }

  override tick(now: number): void {
    if (!this.meter && this.proc.pid !== undefined) {
      const p = this.proc;
      const read = (s: unknown): number => (s instanceof net.Socket ? s.bytesRead : 0);
      const written = (s: unknown): number => (s instanceof net.Socket ? s.bytesWritten : 0);
      this.meter = new Meter(
        () => read(p.stdout) + read(p.stderr),
        () => written(p.stdin),
        true,
      );
    }
    this.meter?.sample(now);
  }

  get running(): boolean {
    return this.proc.pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get command(): string {
    const args = this.proc.spawnargs ?? [];
    const text = args.length > 0 ? args.join(' ') : (this.proc.spawnfile ?? '?');
    const red = redactText(text);
    return red.length > 200 ? `${red.slice(0, 200)}...` : red;
  }

  /** Signals the child if it still runs; returns whether it did. */
  kill(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    try {
      if (!this.proc.kill(signal)) return false;
    } catch {
      return false; // already gone (ESRCH): nothing left to stop
    }
    this.killed = signal;
    return true;
  }

  override lateFacts(): Partial<OpView> {
    return this.killed ? { killed: this.killed } : {};
  }

  view(now: number): OpView {
    const v = this.base(now, `child process ${this.command}`, 'running', this.createdAt);
    v.command = this.command;
    if (this.proc.pid !== undefined) v.pid = this.proc.pid;
    if (this.killed) v.killed = this.killed;
    return this.bytes(v, now);
  }
}

/** A worker thread the step created (`new Worker(...)`): a step awaiting its message waits on it. */
export class ThreadOp extends Op {
  readonly kind = 'thread' as const;
  readonly thread: ThreadWorker;
  readonly #what: string;
  readonly threadId: number;
  killed: string | undefined;

  constructor(owner: OpOwner, thread: ThreadWorker, what: string, now: number) {
    super(owner, now);
    this.thread = thread;
    this.#what = redactText(what);
    this.threadId = thread.threadId;
    thread.once('exit', () => this.end());
  }

  override lateFacts(): Partial<OpView> {
    return this.killed ? { killed: this.killed } : {};
  }

  view(now: number): OpView {
    const v = this.base(now, `worker thread ${this.#what} (thread id ${this.threadId})`, 'running', this.createdAt);
    v.threadId = this.threadId;
    if (this.killed) v.killed = this.killed;
    return v;
  }
}

/** A promise awaited through `ctx.track(label, promise)`; labels starting with `lock:` are lock waits. */
export class TrackedOp extends Op {
  readonly kind: 'tracked' | 'lock';
  readonly #label: string;

  /**
   * `above`: the tracking function, so the capture starts at the tool's `ctx.track(...)` call.
   * `shared`: the capture of the request or socket the tracked work opened synchronously.
   */
  constructor(owner: OpOwner, label: string, now: number, above?: CaptureAbove, shared?: StackCapture | null) {
    super(owner, now, !owner.capture ? null : (shared ?? opStack(owner, CAPTURE_SHALLOW, above)));
    this.#label = label;
    this.kind = /^lock[: ]/i.test(label) ? 'lock' : 'tracked';
  }

  view(now: number): OpView {
    const label = redactText(this.#label);
    const what = this.kind === 'lock' ? `lock wait "${label.replace(/^lock[: ]\s*/i, '')}" (ctx.track)` : `tracked "${label}"`;
    const v = this.base(now, what, 'waiting', this.createdAt);
    v.label = label;
    return v;
  }
}

/** A wait for a runwarden Mutex; knows who holds it. */
export class LockOp extends Op {
  readonly kind = 'lock' as const;
  readonly name: string;
  readonly #holder: () => string | undefined;

  constructor(owner: OpOwner, name: string, holder: () => string | undefined, now: number) {
    super(owner, now);
    this.name = redactText(name);
    this.#holder = holder;
  }

  view(now: number): OpView {
    const holder = this.#holder();
    const v = this.base(now, `mutex "${this.name}"`, 'waiting', this.createdAt);
    v.label = this.name;
    if (holder) v.holder = holder;
    return v;
  }
}
