/**
 * The forensics of one attempt: the operations it has pending, its last checkpoint, and what it
 * did after its signal aborted. Created by the worker for every attempt and put into the step's
 * AsyncLocalStorage scope, where the diagnostics-channel handlers (channels.ts) find it.
 */
import { captureStack, methodOf, type StackCapture } from './frames.ts';
import type { Socket } from 'node:net';
import type { Worker as ThreadWorker } from 'node:worker_threads';
import { FetchOp, HttpOp, SocketOp } from './net-ops.ts';
import { CAPTURE_SHALLOW, ChildOp, recentCapture, ThreadOp, TrackedOp, type Op, type OpOwner, type OpView } from './ops.ts';

export interface StepIdentity {
  runId: string;
  stepName: string;
  attempt: number;
  tool: string;
}

export interface Checkpoint {
  label: string;
  at: number;
  stack: StackCapture | null;
}

/** One pending operation as seen at one moment, with the op kept for lazy frame formatting. */
export interface OpSample {
  op: Op;
  view: OpView;
}

export interface Snapshot {
  at: number;
  ops: OpSample[];
}

export class StepForensics implements OpOwner {
  readonly id: StepIdentity;
  readonly startedAt: number;
  /** Whether stacks are captured (forensics on). */
  readonly capture: boolean;
  /** The tool's run function, for its source location (set when the tool is known). */
  toolFn: unknown;
  readonly ops = new Set<Op>();
  checkpoint: Checkpoint | null = null;
  abortedAt = 0;
  /** Things the tool did after its signal aborted: proof that it kept working. */
  readonly afterAbort: string[] = [];
  #disposed = false;

  constructor(id: StepIdentity, opts: { capture: boolean; toolFn?: unknown; startedAt?: number }) {
    this.id = id;
    this.capture = opts.capture;
    this.toolFn = opts.toolFn;
    this.startedAt = opts.startedAt ?? Date.now();
  }

  /** Called once if the attempt's code starts something after its end (it was cut, yet runs). */
  onZombie: ((what: string) => void) | undefined;

  add(op: Op): void {
    if (this.#disposed) {
      this.#zombie(`started ${op.kind} operation (${op.view(Date.now()).what})`);
      return;
    }
    this.ops.add(op);
    if (this.abortedAt !== 0) this.#activity(`started ${op.kind} operation #${op.id}`);
  }

  #zombie(what: string): void {
    const fn = this.onZombie;
    this.onZombie = undefined;
    fn?.(what);
  }

  remove(op: Op): void {
    this.ops.delete(op);
  }

  /** Cheap: the label is redacted with the rest of the report, if one is ever written. */
  setCheckpoint(label: string): void {
    const text = String(label);
    this.checkpoint = { label: text, at: Date.now(), stack: this.capture ? captureStack(CAPTURE_SHALLOW, SET_CHECKPOINT) : null };
    if (this.abortedAt !== 0) this.#activity(`checkpoint "${text}"`);
  }

  /** A log line, an event or an artifact from the tool. */
  noteActivity(what: string): void {
    if (this.#disposed) this.#zombie(what);
    else if (this.abortedAt !== 0) this.#activity(what);
  }

  #activity(what: string): void {
    if (this.afterAbort.length < 10) this.afterAbort.push(`${Date.now() - this.abortedAt} ms after the abort: ${what}`);
  }

  track<T>(label: string, promise: Promise<T>): Promise<T> {
    const op = new TrackedOp(this, String(label), Date.now(), TRACK, recentCapture(this)?.stack);
    this.add(op);
    const done = (): void => op.end();
    promise.then(done, done);
    return promise;
  }

  /** The pending operations now. Raw sockets an HTTP request claimed are folded into the request. */
  snapshot(now = Date.now()): Snapshot {
    // Fresh counters and states first (this may end ops that closed since the last sample).
    for (const op of [...this.ops]) op.tick(now);
    const samples: OpSample[] = [];
    const connecting: SocketOp[] = [];
    const fetches: FetchOp[] = [];
    for (const op of this.ops) {
      if (op instanceof SocketOp) {
        if (op.owned) continue;
        if (op.connecting) connecting.push(op);
      } else if (op instanceof FetchOp && !op.socket) {
        fetches.push(op);
      }
    }
    // undici connects before it tells which request a socket is for: a fetch without a socket and a
    // connecting socket of the same step to the same origin are one operation.
    const folded = new Map<FetchOp, SocketOp>();
    for (const f of fetches) {
      const i = connecting.findIndex((s) => s.target === undefined || s.target === f.originHostPort);
      if (i >= 0) folded.set(f, connecting.splice(i, 1)[0] as SocketOp);
    }
    const hidden = new Set<Op>(folded.values());
    for (const op of this.ops) {
      if (hidden.has(op) || (op instanceof SocketOp && op.owned)) continue;
      // A spawn that failed (ENOENT ...) never gets a pid and emits no 'exit': nothing to wait for.
      if (op instanceof ChildOp && op.proc.pid === undefined && now - op.createdAt > 1000) continue;
      const view = op.view(now);
      const sock = op instanceof FetchOp ? folded.get(op) : undefined;
      if (sock) {
        const sv = sock.view(now);
        view.phase = sv.phase;
        view.msInPhase = sv.msInPhase;
        if (sv.peer) view.peer = sv.peer;
      }
      samples.push({ op, view });
    }
    return { at: now, ops: samples };
  }

  /** A worker thread the step created (the containment guard saw it). */
  trackThread(thread: ThreadWorker, what: string): void {
    if (this.#disposed) return;
    this.add(new ThreadOp(this, thread, what, Date.now()));
  }

  /** Containment signalled one of the step's processes: the report says so. */
  noteSignalled(pid: number, signal: string): void {
    for (const op of this.ops) if (op instanceof ChildOp && op.proc.pid === pid) op.killed = signal;
  }

  noteThreadTerminated(thread: ThreadWorker): void {
    for (const op of this.ops) if (op instanceof ThreadOp && op.thread === thread) op.killed = 'terminated';
  }

  /** Sockets the step has open (raw, or under its HTTP requests): what containment closes on a cut. */
  liveSockets(): Socket[] {
    const out: Socket[] = [];
    for (const op of this.ops) {
      if (op instanceof SocketOp) out.push(op.socket);
      else if ((op instanceof HttpOp || op instanceof FetchOp) && op.socket) out.push(op.socket);
    }
    return out;
  }

  /** The signal aborted (deadline, cancel, shutdown, lost lease): what the tool does from now on is noted. */
  onAbort(): void {
    if (this.abortedAt === 0) this.abortedAt = Date.now();
  }

  /** The attempt is over: stop sampling its operations. */
  dispose(): void {
    this.#disposed = true;
    for (const op of this.ops) op.unwatch();
    this.ops.clear();
  }
}

// Capture markers: a capture starts below these, at the tool's own call.
const SET_CHECKPOINT = methodOf(StepForensics.prototype, 'setCheckpoint');
const TRACK = methodOf(StepForensics.prototype, 'track');
