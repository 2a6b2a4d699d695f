/**
 * A worker: claims ready steps in batches, runs each under its deadline, renews its leases by
 * heartbeat, and writes results in batches. One pump loop owns all store writes of the worker, so
 * claims, step events and completions of a busy moment share transactions.
 *
 * Why one file of ~480 lines: the pump, the heartbeat and the shutdown all read and write the same
 * queues of claimed steps and pending results; the loops around it are in loops.ts, an attempt in
 * run-step.ts and isolation/.
 */
import { FailureLog } from './failure-log.ts';
import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;
import { CycleError, type ClaimedStep, type Completion, type CompletionResult, type Transitions, type StepEvent } from '../engine/transitions.ts';
import { newWorkerId } from '../engine/ids.ts';
import type { CapacityWaitUpdate, StoreNotification } from '../store/store.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import type { TextDelta } from '../domain/records.ts';
import { additionsRefused, validateAdditions, type StepAdditions } from '../domain/added-steps.ts';
import type { PlanLimits } from '../domain/plan.ts';
import { staticDefaults } from '../config/fields.ts';
import { attemptClaimed, attemptEnded } from '../telemetry/hooks.ts';
import { ThreadAttempt } from './isolation/thread-attempt.ts';
import { ToolThreadPool } from './isolation/pool.ts';
import { StepRun, type Attempt, type AttemptResult } from './run-step.ts';

export interface WorkerOptions {
  core: Transitions;
  tools: ToolRegistry;
  /** @default a random id */
  id?: string;
  /** Steps run at once. @default 256 */
  concurrency?: number;
  /** @default 3000 */
  leaseMs?: number;
  /** @default 1000 */
  heartbeatMs?: number;
  /** @default 1000 */
  abortGraceMs?: number;
  /** Fallback poll when no notification arrives (retries with a backoff, other processes). @default 200 */
  pollMs?: number;
  /** Most steps claimed in one transaction. @default 256 */
  claimBatch?: number;
  /**
   * Most claimed steps started in one turn of the event loop; the rest start in the next turns, so a
   * big claim (thousands of LLM calls) does not hold the loop for the time it takes to start them
   * all. @default 32
   */
  startSlice?: number;
  /**
   * Threads for tools that run isolated (`isolation: 'thread'`); a process shares one between its
   * claim loops. @default a pool of this worker's own, closed when it stops
   */
  threads?: ToolThreadPool;
  /** Tool threads of its own pool (no `threads` given) kept started ahead of need. @default 1 */
  warmThreads?: number;
  /**
   * A tool thread could not be stopped (it sits in a system call nothing can end): only replacing
   * the process stops it. A supervised worker asks its supervisor to do that. @default log it
   */
  onUncontained?: (why: string) => void;
  /** Deadlines steps added at runtime get and may ask for (as the API's for plans). @default the configuration's defaults */
  limits?: PlanLimits;
  log?: (line: string) => void;
}

type WorkerState = 'idle' | 'running' | 'draining' | 'stopped';

/** Results written per transaction at most (see #pump). */
const FLUSH_MAX = 256;

export class Worker {
  readonly id: string;
  readonly #core: Transitions;
  readonly #tools: ToolRegistry;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #heartbeatMs: number;
  readonly #graceMs: number;
  readonly #pollMs: number;
  readonly #claimBatch: number;
  readonly #startSlice: number;
  readonly #limits: PlanLimits;
  /** Claimed steps not started yet (see startSlice). */
  #starting: Attempt[] = [];
  #startScheduled = false;
  readonly #log: (line: string) => void;
  readonly #writeFailures: FailureLog;
  readonly #heartbeatFailures: FailureLog;
  readonly #inflight = new Map<string, Attempt>();
  /** Tokens of the attempts that waited for capacity at the last heartbeat. */
  #waitingAtBeat = new Set<string>();
  #events: StepEvent[] = [];
  #completions: Completion[] = [];
  #releases: Attempt[] = [];
  #pumping = false;
  #again = false;
  #wantClaim = true;
  #state: WorkerState = 'idle';
  #pollTimer: NodeJS.Timeout | undefined;
  #beatTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #loop: IntervalHistogram | undefined;
  #startedAt = Date.now();
  #idleWaiters: Array<() => void> = [];
  #abandoned = false;
  #threads: ToolThreadPool | undefined;
  #warming: Promise<void> = Promise.resolve();
  readonly #ownThreads: boolean;
  readonly #onUncontained: ((why: string) => void) | undefined;
  readonly #warmThreads: number;
  stats = { claimed: 0, completed: 0, discarded: 0, flushErrors: 0 };

  constructor(o: WorkerOptions) {
    this.id = o.id ?? newWorkerId();
    this.#core = o.core;
    this.#tools = o.tools;
    this.#concurrency = o.concurrency ?? 256;
    this.#leaseMs = o.leaseMs ?? 3000;
    this.#heartbeatMs = o.heartbeatMs ?? 1000;
    this.#graceMs = o.abortGraceMs ?? 1000;
    this.#pollMs = o.pollMs ?? 200;
    this.#claimBatch = o.claimBatch ?? 256;
    this.#startSlice = Math.max(1, o.startSlice ?? 32);
    const defaults = o.limits ?? staticDefaults();
    this.#limits = { defaultTimeoutMs: defaults.defaultTimeoutMs, maxTimeoutMs: defaults.maxTimeoutMs };
    this.#log = o.log ?? (() => undefined);
    this.#writeFailures = new FailureLog(`worker ${this.id}: store write`, this.#log);
    this.#heartbeatFailures = new FailureLog(`worker ${this.id}: heartbeat`, this.#log);
    this.#threads = o.threads;
    this.#ownThreads = o.threads === undefined;
    this.#warmThreads = o.warmThreads ?? 1;
    this.#onUncontained = o.onUncontained ?? ((why) => this.#log(`worker ${this.id}: could not contain a step: ${why}; restart this process to stop it`));
  }

  #threadPool(): ToolThreadPool {
    this.#threads ??= new ToolThreadPool({ modules: this.#tools.threadModules(), cwd: process.cwd(), log: this.#log, warm: this.#warmThreads });
    return this.#threads;
  }

  /** Resolves when the worker can run every tool it has: its first tool thread is up, if it needs one. */
  ready(): Promise<void> {
    return this.#warming;
  }

  get state(): WorkerState {
    return this.#state;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** The attempts running now (a supervisor's heartbeat and stall reports name them). */
  running(): Array<{ runId: string; stepName: string; attempt: number; tool: string; deadlineAt: number }> {
    return [...this.#inflight.values()].map((a) => ({ runId: a.claim.runId, stepName: a.claim.stepName, attempt: a.claim.attempt, tool: a.claim.tool, deadlineAt: a.deadlineAt }));
  }

  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'running';
    // A tool thread takes tens of milliseconds to load its modules (more on a busy machine): have
    // one started before the first step of such a tool is claimed (`ready()` waits for it).
    if (this.#tools.threadModules().length > 0) {
      this.#warming = this.#threadPool()
        .warm()
        .catch((err: unknown) => this.#log(`worker ${this.id}: a tool thread could not start: ${(err as Error).message}`));
    }
    this.#startedAt = Date.now();
    this.#loop = monitorEventLoopDelay({ resolution: 20 });
    this.#loop.enable();
    this.#unsubscribe = this.#core.store.subscribe((n) => this.#onNotify(n));
    this.#pollTimer = setInterval(() => {
      this.#wantClaim = true;
      this.#kick();
    }, this.#pollMs);
    this.#beatTimer = setInterval(() => {
      this.#heartbeat().then(
        () => this.#heartbeatFailures.ok(),
        (err: unknown) => void this.#heartbeatFailures.failed(err),
      );
    }, this.#heartbeatMs);
    this.#heartbeat().catch((err: unknown) => this.#log(`worker ${this.id}: first heartbeat failed: ${(err as Error).message}`));
    this.#kick();
  }

  #onNotify(n: StoreNotification): void {
    if (n.kind === 'ready') {
      this.#wantClaim = true;
      this.#kick();
    } else if (n.kind === 'cancel') {
      for (const r of this.#inflight.values()) if (r.claim.runId === n.runId) r.abort('cancelled');
    }
  }

  /** Schedules the pump; coalesces bursts of wake-ups into one pass. */
  #kick(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    setImmediate(() => {
      this.#pump()
        .then(
          () => this.#writeFailures.ok(),
          (err: unknown) => {
            this.stats.flushErrors++;
            // Results stay buffered; try again after a backoff. If the store never comes back the
            // leases expire and the reaper hands the steps to another worker.
            setTimeout(() => this.#kick(), this.#writeFailures.failed(err)).unref();
          },
        )
        .finally(() => {
          this.#pumping = false;
          if (this.#again) {
            this.#again = false;
            this.#kick();
          }
          this.#notifyIdle();
        });
    });
  }

  async #pump(): Promise<void> {
    for (;;) {
      if (this.#abandoned) return;
      const events = this.#events;
      // At most FLUSH_MAX results a pass: thousands of LLM answers arriving together are written in
      // several transactions, each a turn of the loop, instead of one long synchronous one. A
      // step's events are always in the same pass as its result or an earlier one.
      const completions = this.#completions.length <= FLUSH_MAX ? this.#completions : this.#completions.slice(0, FLUSH_MAX);
      const releases = this.#releases;
      this.#events = [];
      this.#completions = completions === this.#completions ? [] : this.#completions.slice(FLUSH_MAX);
      this.#releases = [];
      // Completions in this batch free their slots as it commits; claims made in the same pass may use them.
      const room = this.#concurrency - (this.#inflight.size - completions.length - releases.length);
      const want = this.#state === 'running' && this.#wantClaim && room > 0 ? Math.min(room, this.#claimBatch) : 0;
      let out: { results: CompletionResult[]; claimed: ClaimedStep[]; flushError?: unknown };
      let claimError: unknown;
      try {
        // Releases first (their own transaction, rare): what they hand back may be claimed below.
        if (releases.length > 0) await this.#core.release(releases.map((r) => ({ runId: r.claim.runId, stepName: r.claim.stepName, token: r.claim.token, attempt: r.claim.attempt })));
        out = await this.#core.cycle(events, completions, want > 0 ? { workerId: this.id, limit: want, leaseMs: this.#leaseMs } : null);
      } catch (err) {
        if (!(err instanceof CycleError)) {
          // Put the batch back in front so nothing is lost and order is kept.
          this.#requeue(events, completions, releases);
          throw err;
        }
        // The results were written; only the claim failed (reported below, after the bookkeeping).
        out = { results: err.results, claimed: [] };
        claimError = err;
      }
      const { results, claimed } = out;
      if (out.flushError !== undefined) this.#requeue(events, completions, []);
      else {
        for (const [i, c] of completions.entries()) {
          this.#inflight.delete(c.token);
          if (results[i]?.applied) this.stats.completed++;
          else this.stats.discarded++;
        }
      }
      for (const r of releases) this.#inflight.delete(r.claim.token);
      if (want > 0 && claimed.length < want) this.#wantClaim = false;
      this.stats.claimed += claimed.length;
      for (const c of claimed) {
        attemptClaimed(c);
        this.#startStep(c);
      }
      if (out.flushError !== undefined) throw out.flushError as Error;
      if (claimError !== undefined) throw claimError as Error;
      if (claimed.length === 0 && this.#events.length === 0 && this.#completions.length === 0 && this.#releases.length === 0) return;
    }
  }

  /** Puts an unwritten batch back in front, so nothing is lost and order is kept. */
  #requeue(events: StepEvent[], completions: Completion[], releases: Attempt[]): void {
    this.#events = events.concat(this.#events);
    this.#completions = completions.concat(this.#completions);
    this.#releases = releases.concat(this.#releases);
  }

  #startStep(claim: ClaimedStep): void {
    const record = (type: string, data: Record<string, unknown>): void => {
      this.#events.push({ runId: claim.runId, stepName: claim.stepName, attempt: claim.attempt, type, ts: Date.now(), data });
      this.#kick();
    };
    const publishText = (delta: TextDelta): void => this.#core.store.publish({ kind: 'delta', delta });
    const run: Attempt =
      this.#tools.isolation(claim.tool) === 'thread'
        ? new ThreadAttempt(claim, {
            pool: this.#threadPool(),
            graceMs: this.#graceMs,
            record,
            publishText,
            log: this.#log,
            // Only to find where the tool is defined; never called from here.
            toolFn: (this.#tools.get(claim.tool) as { run?: unknown } | undefined)?.run,
            ...(this.#onUncontained ? { onUncontained: this.#onUncontained } : {}),
          })
        : new StepRun(claim, record, this.#tools, this.#graceMs, { publishText, ...(this.#onUncontained ? { onUncontained: this.#onUncontained } : {}) });
    this.#inflight.set(claim.token, run);
    this.#starting.push(run);
    if (this.#startScheduled) return;
    this.#startScheduled = true;
    // Tools start in a macrotask of their own, never in the microtasks of the claim's transaction
    // pass: on SQLite a store transaction stays open across the microtasks of its awaits, and a tool
    // that blocked the loop there would hold the database's write lock (every other process waits).
    setImmediate(() => this.#startSome());
  }

  /** Starts up to `startSlice` claimed steps, and schedules the rest for the next turn of the loop. */
  #startSome(): void {
    this.#startScheduled = false;
    if (this.#abandoned) return;
    const slice = this.#starting.length <= this.#startSlice ? this.#starting : this.#starting.slice(0, this.#startSlice);
    this.#starting = slice === this.#starting ? [] : this.#starting.slice(this.#startSlice);
    for (const run of slice) void run.execute().then((result) => this.#finished(run, result));
    if (this.#starting.length > 0) {
      this.#startScheduled = true;
      setImmediate(() => this.#startSome());
    }
  }

  #finished(run: Attempt, result: AttemptResult): void {
    const { claim } = run;
    if (this.#abandoned) return;
    attemptEnded({ ...claim, startedAt: run.startedAt, outcome: result.abortCause === 'lease_lost' || result.abortCause === 'shutdown' ? 'lost' : result.outcome, error: result.error, hangReport: result.hangReport });
    if (result.abortCause === 'lease_lost') {
      // Someone else owns the step now; our result is void.
      this.#inflight.delete(claim.token);
      this.stats.discarded++;
      this.#notifyIdle();
      return;
    }
    if (result.abortCause === 'shutdown') {
      this.#releases.push(run);
    } else if (result.outcome === 'succeeded' && result.added) {
      // Steps the tool added are checked against this worker's tools first (its slot stays taken).
      void this.#withAdditions(claim, result, result.added).then((c) => {
        if (this.#abandoned) return;
        this.#completions.push(c);
        this.#kick();
      });
      return;
    } else {
      this.#completions.push(completionOf(claim, result));
    }
    this.#kick();
  }

  /** The completion of an attempt that added steps: with them checked, or failed (STEPS_INVALID). Never rejects. */
  async #withAdditions(claim: ClaimedStep, result: AttemptResult, additions: StepAdditions): Promise<Completion> {
    try {
      const added = await validateAdditions(additions, claim.stepName, this.#tools, this.#limits);
      return { ...completionOf(claim, result), added };
    } catch (err) {
      const error = additionsRefused(err).toJSON();
      return completionOf(claim, { ...result, outcome: 'failed', error, artifacts: [] });
    }
  }

  async #heartbeat(): Promise<void> {
    if (this.#abandoned) return;
    const tokens = [...this.#inflight.keys()];
    const leases = [...this.#inflight.values()].map(({ claim: c }) => ({ runId: c.runId, name: c.stepName, token: c.token }));
    const waits = this.#capacityWaits();
    const { renewed, cancel } = await this.#core.renew(this.id, leases, this.#leaseMs, this.#graceMs, waits);
    const ok = new Set(renewed);
    for (const t of tokens) {
      const run = this.#inflight.get(t);
      if (!run) continue;
      // Not renewed: the lease expired and was reaped, or the step is past deadline + grace.
      if (!ok.has(t) && !run.aborted) run.abort('lease_lost');
    }
    for (const t of cancel) this.#inflight.get(t)?.abort('cancelled');
    await this.#core.store.upsertWorker({
      id: this.id,
      pid: process.pid,
      host: hostname(),
      state: this.#state,
      startedAt: new Date(this.#startedAt).toISOString(),
      lastHeartbeatAt: new Date().toISOString(),
      info: {
        inflight: this.#inflight.size,
        concurrency: this.#concurrency,
        loopDelayP99Ms: this.#loop ? Math.round(this.#loop.percentile(99) / 1e4) / 100 : null,
        steps: [...this.#inflight.values()].slice(0, 50).map((r) => ({ runId: r.claim.runId, step: r.claim.stepName, attempt: r.claim.attempt })),
        ...this.stats,
      },
    });
    this.#loop?.reset();
  }

  /**
   * The attempts that wait for capacity now, or did at the last heartbeat: their deadlines moved, and
   * the store shows what they wait for (GET /runs/:id, doctor) until they go on.
   */
  #capacityWaits(): CapacityWaitUpdate[] {
    const out: CapacityWaitUpdate[] = [];
    const waitingNow = new Set<string>();
    for (const [token, a] of this.#inflight) {
      const w = a.waiting;
      if (!w && !this.#waitingAtBeat.has(token)) continue;
      if (w) waitingNow.add(token);
      const c = a.claim;
      out.push({
        runId: c.runId,
        name: c.stepName,
        token,
        deadlineAt: a.deadlineAt,
        waitingFor: w
          ? { kind: 'provider', provider: w.provider, limit: w.limit, used: w.used, cap: w.cap, nextSlotAt: new Date(w.retryAt).toISOString(), since: new Date(w.since).toISOString(), attempt: c.attempt }
          : null,
      });
    }
    this.#waitingAtBeat = waitingNow;
    return out;
  }

  #notifyIdle(): void {
    if (this.#inflight.size > 0 || this.#pumping || this.#completions.length > 0 || this.#releases.length > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Graceful stop: no new claims; running steps get `drainMs` to finish; what is still running
   * then is aborted and handed back (its attempt recorded as lost with WORKER_SHUTDOWN, the step
   * re-queued at once without using a retry).
   */
  async stop(opts: { drainMs?: number } = {}): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'idle') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'draining';
    clearInterval(this.#pollTimer);
    const drained = await this.#waitIdle(opts.drainMs ?? 10_000);
    if (!drained) {
      for (const r of this.#inflight.values()) r.abort('shutdown');
      await this.#waitIdle(this.#graceMs + 2000);
    }
    // Anything still running (a tool that ignored the shutdown abort) is handed back now.
    for (const r of this.#inflight.values()) if (!this.#releases.includes(r)) this.#releases.push(r);
    this.#kick();
    const flushed = await this.#waitIdle(5000);
    if (!flushed) this.#log(`worker ${this.id}: final flush did not finish; its leases will expire and be reaped`);
    clearInterval(this.#beatTimer);
    this.#unsubscribe?.();
    this.#loop?.disable();
    try {
      await this.#core.store.deleteWorker(this.id);
    } catch (err) {
      this.#log(`worker ${this.id}: could not deregister: ${(err as Error).message}`);
    }
    if (this.#ownThreads) await this.#threads?.close();
    this.#state = 'stopped';
  }

  /**
   * The process is going away with its supervisor (and so are its siblings, which could only claim
   * the steps to hand them back again): stop at once and write nothing more. Running attempts are
   * aborted, so that the processes their tools started are stopped; their leases stay in the store
   * and whoever runs next reaps them.
   */
  abandon(): void {
    this.#abandoned = true;
    this.#state = 'stopped';
    clearInterval(this.#pollTimer);
    clearInterval(this.#beatTimer);
    this.#unsubscribe?.();
    this.#loop?.disable();
    for (const r of this.#inflight.values()) r.abort('shutdown');
    // A thread pool of its own goes once the aborted attempts had their grace (their cut needs it).
    if (this.#ownThreads && this.#threads) {
      const pool = this.#threads;
      setTimeout(() => void pool.close(), this.#graceMs + 500).unref();
    }
    this.#starting = [];
    this.#events = [];
    this.#completions = [];
    this.#releases = [];
  }

  #waitIdle(ms: number): Promise<boolean> {
    if (this.#inflight.size === 0 && !this.#pumping) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      this.#idleWaiters.push(done);
    });
  }
}

function completionOf(claim: ClaimedStep, result: AttemptResult): Completion {
  return {
    runId: claim.runId,
    stepName: claim.stepName,
    attempt: claim.attempt,
    token: claim.token,
    outcome: result.outcome,
    ...(result.outcome === 'succeeded' ? { outputs: result.outputs } : {}),
    ...(result.error ? { error: result.error } : {}),
    artifacts: result.artifacts,
    hangReport: result.hangReport,
  };
}
