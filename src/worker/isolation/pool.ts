/**
 * The tool threads of one worker process: each runs one attempt at a time, is reused when its
 * attempt settled, and is terminated (never reused) when its tool ignored an abort. Starting a
 * thread costs its module loads (~100-200 ms on an idle machine for runwarden's modules plus the
 * user's, seconds on a loaded one) and ~30 MB of memory, so `warm` threads are kept started ahead:
 * taking one starts the next. Idle threads beyond those retire after `idleMs`, and never keep the
 * process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ownModuleUrl } from '../../module-url.ts';
import { forensicsWanted } from '../../forensics/channels.ts';
import { registeredSecrets } from '../../forensics/redact.ts';
import { configSnapshotForReport } from '../../forensics/resources.ts';
import type { FromThread, ToThread, ToolThreadData } from './protocol.ts';

const ENTRY = ownModuleUrl(import.meta.url, './tool-thread');

/** How long a thread gets to load its modules before it counts as failed. */
const START_TIMEOUT_MS = 30_000;

/**
 * Threads started at once, at most. A start is module loading, CPU-bound: 64 concurrent starts on
 * 2 cores all finish late together, where starts one core at a time hand out the first threads
 * early, and short attempts are served by the threads already there (released ones go to waiting
 * attempts first). In the containment-cost bench, a start per concurrent no-op attempt ran 41
 * steps/s where inline ran 412.
 */
const MAX_STARTING = Math.max(1, availableParallelism());

export interface ToolThreadPoolOptions {
  /** Absolute paths of the tools modules whose tools run in threads. */
  modules: readonly string[];
  cwd: string;
  log?: (line: string) => void;
  /** Idle threads beyond `warm` retire after this long. @default 30000 */
  idleMs?: number;
  /** Threads kept started ahead of need (the `toolThreadsWarm` setting). @default 1 */
  warm?: number;
}

export class ToolThread {
  readonly worker: Worker;
  /** Kernel thread id (for /proc), known once the thread is ready. */
  tid: number | null = null;
  readonly ready: Promise<void>;
  /** Resolves when the thread is gone: its exit code, and the error that ended it, if any. */
  readonly exited: Promise<{ code: number; error: Error | undefined }>;
  idleSince = 0;
  /** Its modules are loaded: it can run an attempt now. */
  isReady = false;
  #listener: ((m: FromThread) => void) | undefined;
  #error: Error | undefined;
  #gone = false;

  constructor(data: ToolThreadData, log: (line: string) => void) {
    this.worker = new Worker(ENTRY, { workerData: data });
    this.worker.on('error', (err) => {
      this.#error = err;
    });
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        this.#gone = true;
        resolve({ code, error: this.#error });
      }),
    );
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tool thread did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const settle = (fn: () => void): void => {
        clearTimeout(timer);
        fn();
      };
      this.worker.on('message', (m: FromThread) => {
        if (m.t === 'ready') {
          this.tid = m.tid;
          this.isReady = true;
          settle(resolve);
        } else if (m.t === 'start_failed') {
          settle(() => reject(new Error(m.message)));
        } else if (m.t === 'log') {
          log(m.line);
        } else {
          this.#listener?.(m);
        }
      });
      this.exited
        .then(({ code, error }) => settle(() => reject(error ?? new Error(`tool thread exited with code ${code} while starting`))))
        .catch(() => undefined);
    });
    // Nobody may wait on `ready` (a spare): its failure is reported when it is taken.
    this.ready.catch(() => undefined);
  }

  get gone(): boolean {
    return this.#gone;
  }

  /** The one listener of the attempt the thread runs now (events, spawns, result). */
  listen(fn: ((m: FromThread) => void) | undefined): void {
    this.#listener = fn;
  }

  send(m: ToThread): void {
    if (!this.#gone) this.worker.postMessage(m);
  }
}

export class ToolThreadPool {
  readonly #o: ToolThreadPoolOptions;
  readonly #idleMs: number;
  readonly #idle: ToolThread[] = [];
  readonly #all = new Set<ToolThread>();
  /** Started ahead of need, perhaps not ready yet. */
  readonly #spares: ToolThread[] = [];
  readonly #warm: number;
  /** Threads whose start has not settled yet. */
  #starting = 0;
  /**
   * Attempts waiting for a thread: a released one is handed to the first, and a start that settles
   * wakes the first with undefined (it may start one itself now).
   */
  readonly #waiters: Array<(t: ToolThread | undefined) => void> = [];
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: ToolThreadPoolOptions) {
    this.#o = o;
    this.#idleMs = o.idleMs ?? 30_000;
    this.#warm = Math.max(0, o.warm ?? 1);
  }

  get size(): number {
    return this.#all.size;
  }

  /**
   * Starts the warm threads now, so that the first attempts do not pay for them; resolves when they
   * are ready (a thread that cannot start, e.g. a tools module that throws, rejects).
   */
  warm(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#topUp();
    return Promise.all(this.#spares.map((t) => t.ready)).then(() => undefined);
  }

  /** Keeps `warm` threads idle or starting. */
  #topUp(): void {
    while (!this.#closed && this.#starting < MAX_STARTING && this.#idle.length + this.#spares.length < this.#warm) this.#spares.push(this.#start());
  }

  /**
   * A ready thread for one attempt: an idle one, a spare, a new one while fewer than MAX_STARTING
   * are starting, else the next one released or the next chance to start one.
   */
  async acquire(): Promise<ToolThread> {
    for (;;) {
      if (this.#closed) throw new Error('the tool thread pool is closed');
      // A spare still starting is not taken: a thread released meanwhile may come first.
      const spare = this.#spares.findIndex((x) => x.isReady);
      let t = this.#idle.pop() ?? (spare >= 0 ? this.#spares.splice(spare, 1)[0] : undefined) ?? (this.#starting < MAX_STARTING ? this.#start() : undefined);
      if (!t) {
        t = await new Promise<ToolThread | undefined>((resolve) => this.#waiters.push(resolve));
        if (!t) continue;
      }
      t.worker.ref();
      // Whoever comes next finds threads started.
      this.#topUp();
      try {
        await t.ready;
      } catch (err) {
        this.#forget(t);
        throw err;
      }
      if (t.gone) {
        this.#forget(t);
        continue;
      }
      return t;
    }
  }

  /** The thread's attempt settled: it may run the next one (an attempt waiting for one first). */
  release(t: ToolThread): void {
    t.listen(undefined);
    if (this.#closed || t.gone) {
      this.#forget(t);
      void t.worker.terminate().catch(() => undefined);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter(t);
      return;
    }
    t.idleSince = Date.now();
    t.worker.unref();
    this.#idle.push(t);
    this.#sweeper ??= setInterval(() => this.#sweep(), Math.max(1000, Math.floor(this.#idleMs / 2))).unref();
  }

  /**
   * Terminates a thread whose attempt cannot be trusted (its tool ignored an abort). Resolves when
   * it is gone or `boundMs` passed (a thread inside a system call only goes when the call returns).
   */
  async discard(t: ToolThread, boundMs: number): Promise<{ terminated: boolean; ms: number }> {
    t.listen(undefined);
    this.#forget(t);
    const t0 = Date.now();
    if (t.gone) return { terminated: true, ms: 0 };
    t.worker.terminate().catch(() => undefined); // the exit is awaited below
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), boundMs);
    });
    const gone = await Promise.race([t.exited.then(() => true as const), bound]);
    clearTimeout(timer);
    // Still there: it must not keep the process alive while it waits in its system call.
    if (!gone) t.worker.unref();
    return { terminated: gone, ms: Date.now() - t0 };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    const all = [...this.#all];
    this.#all.clear();
    this.#idle.length = 0;
    this.#spares.length = 0;
    await Promise.all(all.map((t) => t.worker.terminate().catch(() => undefined)));
  }

  #start(): ToolThread {
    const data: ToolThreadData = {
      modules: [...this.#o.modules],
      cwd: this.#o.cwd,
      secrets: registeredSecrets(),
      reportConfig: configSnapshotForReport(),
      forensics: forensicsWanted(),
    };
    const t = new ToolThread(data, this.#o.log ?? (() => undefined));
    t.worker.unref();
    this.#all.add(t);
    this.#starting++;
    const started = (): void => {
      this.#starting--;
      const waiter = this.#waiters.shift();
      // Spares are topped up after a start that worked only: a tools module that throws must not
      // have threads started over and over.
      if (!waiter) return t.isReady ? this.#topUp() : undefined;
      // A spare now ready goes to the first waiting attempt; else there is room to start one.
      const i = t.isReady ? this.#spares.indexOf(t) : -1;
      if (i >= 0) this.#spares.splice(i, 1);
      waiter(i >= 0 ? t : undefined);
    };
    t.ready.then(started, started);
    t.exited.then(() => this.#forget(t)).catch(() => undefined);
    return t;
  }

  #forget(t: ToolThread): void {
    this.#all.delete(t);
    const i = this.#idle.indexOf(t);
    if (i >= 0) this.#idle.splice(i, 1);
    const j = this.#spares.indexOf(t);
    if (j >= 0) this.#spares.splice(j, 1);
  }

  #sweep(): void {
    const now = Date.now();
    // The oldest idle threads go first; `warm` stay.
    for (const t of [...this.#idle]) {
      if (this.#idle.length <= this.#warm) break;
      if (now - t.idleSince < this.#idleMs) continue;
      this.#forget(t);
      void t.worker.terminate().catch(() => undefined);
    }
    if (this.#idle.length === 0 && this.#all.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
