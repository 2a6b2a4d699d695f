/**
 * The supervisor: keeps `count` worker processes (child.ts) running against the shared store, and
 * makes sure that one that hangs, spins, crashes or is killed takes nothing else with it.
 *
 * - Liveness. Each worker's event loop heartbeats to its in-process watchdog (every 100 ms) and to
 *   the supervisor over IPC (every 250 ms); its lease renewals are its heartbeat to the store. The
 *   watchdog reports a loop blocked for `loopStallMs` with the blocking frames and step (report
 *   pipe); a worker silent on IPC without such a report (the whole process frozen) is taken as
 *   stalled too. A stall that outlasts `loopKillMs`, or the blocking step's deadline, gets the worker
 *   killed (SIGTERM, SIGKILL `killGraceMs` later) and replaced. A stall inside a SQLite write
 *   transaction is killed at once: every other process waits on that lock.
 * - Attempts of a dead worker end at once, not when their leases expire (`Transitions.loseWorker`):
 *   the blocking step's attempt fails as `loop.blocked` (counted against its `retries.max`); the
 *   others are `lost` (`worker.crashed`) and retried elsewhere at once. For a stall this is done when
 *   the kill is decided: the frozen worker can no longer complete them, and the leases would
 *   otherwise expire first. Leases and the reaper remain the safety net for a supervisor that dies.
 * - Crashes (`process.exit`, a fatal error, out of memory, a signal from outside) are recorded on
 *   every attempt of the worker with the exit code or signal, the `process.exit` call site and the
 *   worker's last lines; the worker is restarted with a backoff (RestartBackoff).
 * - On SQLite, store notifications are relayed: 'ready'/'cancel' from this process to the workers,
 *   'events' and 'ready' from the workers to this process (SSE) and their siblings.
 * - Shutdown: workers are asked to drain (`drainMs`), then SIGTERM, then SIGKILL. A worker never
 *   outlives the supervisor: it exits when the IPC channel closes, its watchdog kills it if it is
 *   frozen when that happens, and the supervisor's exit hook SIGKILLs any still running.
 *
 * This file is the pool: spawning, messages, exits and restarts, in one class because every handler
 * reads and writes the same slots (~550 lines). What it decides lives elsewhere: the kill decision
 * liveness.ts (pure), the slot states slot-states.ts, why a worker is gone and the reports about it
 * reports.ts, the hand-over of its attempts handover.ts, the notification relay relay.ts, what the
 * API shows status.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { redactUrl } from '../config/redact.ts';
import type { RunwardenConfig } from '../config/types.ts';
import type { LostAttempt, Transitions } from '../engine/transitions.ts';
import type { SupervisedWorker, SupervisorStatus } from '../engine/facade.ts';
import { fmtMs } from '../forensics/classify.ts';
import { redactText } from '../forensics/redact.ts';
import { mergeSnapshots, type MetricSnapshot } from '../telemetry/metrics.ts';
import { RestartBackoff } from './backoff.ts';
import { announceStall, forgetDeadLocalWorkers, handOverAttempts } from './handover.ts';
import { blockingStep, killBound, liveness, stackLines } from './liveness.ts';
import { LastLines, type BeatMessage, type ExitReport, type FromWorker, type InitMessage, type PipeReport, type StallReport, type ToWorker } from './protocol.ts';
import { NotificationRelay } from './relay.ts';
import { slotStatus } from './status.ts';
import { departureOf, exitClassification, type Departure } from './reports.ts';
import { moveSlot, type SlotState } from './slot-states.ts';
import { workerEnvironment } from './worker-env.ts';
import { spawnWorkerProcess } from './spawn.ts';
import { killWorkerLeftovers, WORKER_TAG_ENV } from '../worker/containment/processes.ts';
import { loopsFor } from '../worker/loops.ts';
import { ownModuleUrl } from '../module-url.ts';

export const CHILD_ENTRY = fileURLToPath(ownModuleUrl(import.meta.url, './child'));

/** Heartbeat of a worker's event loop to its watchdog. */
export const BEAT_MS = 100;
/** Heartbeat of a worker to the supervisor (IPC). */
export const REPORT_MS = 250;
/** How often the supervisor looks at its workers. */
const CHECK_MS = 50;
/** A worker that has not said `ready` this long after its start is killed and restarted. */
const START_TIMEOUT_MS = 30_000;
/** Lines of a crashed or killed worker kept with its last exit (the workers page shows them). */
const LAST_EXIT_LINES = 12;
/** A worker up this long before it died restarts the backoff sequence. */
const STABLE_MS = 60_000;

export interface SupervisorOptions {
  config: Readonly<RunwardenConfig>;
  /** This process's engine core on the shared store (loseWorker, worker rows, notifications). */
  core: Transitions;
  /** Worker processes to keep running. */
  count: number;
  /** The workers' environment (provider keys and the rest). */
  env: Record<string, string | undefined>;
  cwd: string;
  labUrl?: string;
  log: (line: string) => void;
  /** Entry point of a worker process. @default child.ts */
  entry?: string;
  /**
   * false: no watchdog, no heartbeats to the supervisor, no stall detection (crashes are still
   * handled). Only for measuring what liveness costs (bench/supervisor.ts). @default true
   */
  liveness?: boolean;
}

interface Stall {
  since: number;
  report: StallReport | undefined;
  /**
   * Deadlines of the steps the worker holds, from the store: a step claimed just before the block
   * is in no heartbeat yet, and a block pinned on no step is killed by the earliest of them.
   */
  deadlines?: number[];
}

interface Slot {
  index: number;
  state: SlotState;
  proc: ChildProcess | undefined;
  pid: number | null;
  startedAt: number;
  lastBeatAt: number;
  beat: BeatMessage | undefined;
  /** The last metrics snapshot of the slot's current process. */
  metrics: MetricSnapshot[] | undefined;
  workerIds: string[];
  restarts: number;
  backoff: RestartBackoff;
  lines: LastLines;
  stall: Stall | undefined;
  /** A kill the supervisor decided, and what it means for the attempts. */
  kill: { departure: Departure; timers: NodeJS.Timeout[] } | undefined;
  stopAskedAt: number | undefined;
  exitReport: ExitReport | undefined;
  lastExit: SupervisedWorker['lastExit'];
  restartTimer: NodeJS.Timeout | undefined;
  /** Resolves when the current process is gone and its attempts are settled. */
  gone: Promise<void>;
  /** In the environment of the worker and of everything it starts: finds what it left behind. */
  tag: string;
  /** Being replaced (recycle): when it exits, it restarts at once, whatever its exit code. */
  recycling: boolean;
}

export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #slots: Slot[] = [];
  /** SQLite: notifications do not cross processes by themselves. */
  readonly #relay: NotificationRelay | undefined;
  #retiredMetrics: MetricSnapshot[] = [];
  #check: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  readonly #totals = { restarts: 0, crashes: 0, stalls: 0, stallKills: 0 };
  readonly #onProcessExit = (): void => {
    // The supervisor is exiting (a second signal, a fatal error): no worker outlives it.
    for (const s of this.#slots) if (s.proc && s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
  };

  constructor(o: SupervisorOptions) {
    this.#o = o;
    this.#relay = o.core.store.dialect === 'sqlite' ? new NotificationRelay(o.core.store, (i, msg) => this.#sendTo(i, msg)) : undefined;
    for (let i = 0; i < o.count; i++) {
      this.#slots.push({
        index: i,
        state: 'stopped',
        proc: undefined,
        pid: null,
        startedAt: 0,
        lastBeatAt: 0,
        beat: undefined,
        workerIds: [],
        restarts: 0,
        backoff: new RestartBackoff({ initialMs: o.config.restartBackoffMs, maxMs: o.config.restartBackoffMaxMs, stableMs: STABLE_MS }),
        lines: new LastLines(),
        stall: undefined,
        kill: undefined,
        stopAskedAt: undefined,
        exitReport: undefined,
        lastExit: null,
        restartTimer: undefined,
        metrics: undefined,
        gone: Promise.resolve(),
        tag: '',
        recycling: false,
      });
    }
  }

  get count(): number {
    return this.#slots.length;
  }

  /** Starts every worker process (does not wait for them to be ready). */
  async start(): Promise<void> {
    await forgetDeadLocalWorkers(this.#o.core.store, this.#o.log);
    process.on('exit', this.#onProcessExit);
    this.#relay?.start(this.#slots.map((s) => s.index));
    for (const s of this.#slots) this.#spawn(s);
    this.#check = setInterval(() => this.#tick(), CHECK_MS);
  }

  /** Resolves when every worker has said `ready` (or `timeoutMs` passed: false). */
  async ready(timeoutMs = 30_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.#slots.every((s) => s.state === 'running' || s.state === 'stalled')) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  /** Asks every worker to drain, then stops it (SIGTERM, SIGKILL) if it does not in time. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#check);
      this.#relay?.stop();
      const drainMs = this.#o.config.drainMs;
      // A worker drains for drainMs, then gives its tools abortGraceMs to settle and hands back.
      const patience = drainMs + this.#o.config.abortGraceMs + 3000;
      for (const s of this.#slots) {
        clearTimeout(s.restartTimer);
        const proc = s.proc;
        if (!proc) {
          moveSlot(s, 'stopped');
          continue;
        }
        if (s.state !== 'killing') moveSlot(s, 'stopping');
        s.stopAskedAt = Date.now();
        this.#send(s, { t: 'stop' });
        const term = setTimeout(() => {
          this.#o.log(`worker ${s.index} (pid ${s.pid}) did not stop within ${fmtMs(patience)}: SIGTERM`);
          proc.kill('SIGTERM');
        }, patience);
        const kill = setTimeout(() => proc.kill('SIGKILL'), patience + this.#o.config.killGraceMs);
        s.kill = { departure: { kind: 'shutdown_kill', signal: 'SIGKILL', waitedMs: patience }, timers: [term, kill] };
      }
      await Promise.all(this.#slots.map((s) => s.gone));
      process.removeListener('exit', this.#onProcessExit);
    })();
    return this.#stopping;
  }

  /** The worker processes' metrics: those of exited processes, then each live one's last snapshot. */
  metrics(): MetricSnapshot[][] {
    return [this.#retiredMetrics, ...this.#slots.flatMap((s) => (s.metrics ? [s.metrics] : []))];
  }

  status(): SupervisorStatus {
    const now = Date.now();
    return {
      desired: this.#slots.length,
      alive: this.#slots.filter((s) => s.state === 'running').length,
      workers: this.#slots.map((s) => slotStatus(s, this.#workerIds(s), now)),
      totals: { ...this.#totals },
    };
  }

  /** The pid of each slot's current process (tests and benchmarks kill them). */
  pids(): Array<number | null> {
    return this.#slots.map((s) => (s.proc ? s.pid : null));
  }

  // ---- processes ----

  #spawn(slot: Slot): void {
    // Workers run user code: they get neither the API's bearer token (in their environment, where
    // any tool or `ps e` can read it, or in their configuration) nor anything else only the API uses.
    const config = { ...this.#o.config, token: undefined };
    const env = workerEnvironment(this.#o.env);
    const init: InitMessage = {
      t: 'init',
      config,
      env,
      cwd: this.#o.cwd,
      ...(this.#o.labUrl ? { labUrl: this.#o.labUrl } : {}),
      slot: slot.index,
      idPrefix: this.id,
      relay: this.#relay !== undefined,
      beatMs: Math.max(10, Math.min(BEAT_MS, Math.floor(config.loopStallMs / 5))),
      reportMs: this.#o.liveness === false ? 0 : REPORT_MS,
      stallMs: this.#o.liveness === false ? 0 : config.loopStallMs,
    };
    // The arguments only say, in `ps`, whose worker this is (the worker takes its orders from IPC).
    const where = config.databaseUrl !== undefined ? redactUrl(config.databaseUrl) : config.dataDir;
    const args = [`--slot=${slot.index}`, `--supervisor=${process.pid}`, `--data=${where}`];
    let tag = `worker ${slot.index}`;
    const lines = new LastLines();
    const workerTag = `${process.pid}.${slot.index}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
    // Handlers check that the slot still runs this process: a late event of a replaced one is ignored.
    const { child, gone } = spawnWorkerProcess(
      { entry: this.#o.entry ?? CHILD_ENTRY, args, env: { ...env, [WORKER_TAG_ENV]: workerTag }, cwd: this.#o.cwd, init },
      {
        onLine: (line) => {
          lines.push(line);
          this.#o.log(`${tag}: ${line}`);
        },
        onReport: (r) => this.#onReport(slot, child, r),
        onMessage: (m) => this.#onMessage(slot, child, m),
        onExit: (code, signal) => this.#onExit(slot, child, code, signal),
        onError: (err) => this.#o.log(`${tag}: ${err.message}`),
      },
    );
    tag = `worker ${slot.index} (pid ${child.pid ?? '?'})`;
    const now = Date.now();
    moveSlot(slot, 'starting');
    Object.assign(slot, {
      proc: child,
      pid: child.pid ?? null,
      startedAt: now,
      lastBeatAt: now,
      beat: undefined,
      workerIds: [],
      lines,
      stall: undefined,
      kill: undefined,
      stopAskedAt: undefined,
      exitReport: undefined,
      gone,
      tag: workerTag,
      recycling: false,
    } satisfies Partial<Slot>);
    this.#relay?.reset(slot.index);
  }

  #sendTo(index: number, msg: ToWorker): void {
    const slot = this.#slots[index];
    if (slot) this.#send(slot, msg);
  }

  #send(slot: Slot, msg: ToWorker): void {
    const proc = slot.proc;
    if (!proc?.connected) return;
    proc.send(msg, (err: Error | null) => {
      if (err && proc.connected) this.#o.log(`worker ${slot.index} (pid ${slot.pid}): ipc send failed: ${err.message}`);
    });
  }

  /** `<host>-<pid>`: the prefix of every claim loop of its workers. */
  get id(): string {
    return `${hostname()}-${process.pid}`;
  }

  /** The claim loops of the slot's process (`<supervisor id>-<pid>-<i>`); known before the worker says so, should it die first. */
  #workerIds(slot: Slot): string[] {
    if (slot.workerIds.length > 0) return slot.workerIds;
    if (slot.pid === null) return [];
    const loops = loopsFor(this.#o.config.concurrency, this.#o.core.store.dialect);
    return Array.from({ length: loops }, (_, i) => `${this.id}-${slot.pid}-${i}`);
  }

  #onMessage(slot: Slot, child: ChildProcess, m: FromWorker): void {
    if (slot.proc !== child) return;
    const now = Date.now();
    if (m.t === 'ready') {
      slot.workerIds = m.workerIds;
      slot.lastBeatAt = now;
      if (slot.state === 'starting') moveSlot(slot, 'running');
    } else if (m.t === 'beat') {
      slot.beat = m;
      if (m.metrics) slot.metrics = m.metrics;
      slot.lastBeatAt = now;
      // A stall seen as IPC silence ends with the next beat sent after it began; one the watchdog
      // reported ends with the watchdog's 'unstall' (a beat sent just before the block may arrive late).
      if (slot.state === 'stalled' && slot.stall && !slot.stall.report && m.at > slot.stall.since) this.#unstalled(slot, now - slot.stall.since);
    } else if (m.t === 'notify') {
      if (this.#relay) this.#relay.up(slot.index, m);
      else {
        // Workers on PostgreSQL notify through the database; what they still send is published here.
        if (m.runIds && m.runIds.length > 0) this.#o.core.store.publish({ kind: 'events', runIds: m.runIds });
        for (const delta of m.deltas ?? []) this.#o.core.store.publish({ kind: 'delta', delta });
      }
    } else if (m.t === 'start_failed') {
      this.#o.log(`worker ${slot.index} (pid ${slot.pid}) could not start: ${m.message}`);
    } else if (m.t === 'recycle') {
      this.#recycle(slot, m.why);
    }
  }

  // ---- stalls ----

  #onReport(slot: Slot, child: ChildProcess, r: PipeReport): void {
    if (slot.proc !== child) return;
    if (r.t === 'exit') {
      slot.exitReport = r;
      return;
    }
    if (r.t === 'unstall') {
      if (slot.stall) this.#unstalled(slot, r.blockedMs);
      return;
    }
    this.#totals.stalls++;
    slot.stall = { since: r.blockedSince, report: r };
    this.#learnDeadlines(slot, slot.stall);
    if (slot.state === 'running' || slot.state === 'starting') moveSlot(slot, 'stalled');
    const where = stackLines(r.frames.slice(0, 1))[0]?.trim() ?? (r.native ? 'inside a system call' : 'no frame');
    const who = r.step ? `step ${r.step.stepName} (run ${r.step.runId}, attempt ${r.step.attempt})` : 'no step';
    this.#o.log(
      `worker ${slot.index} (pid ${slot.pid}): event loop blocked for ${fmtMs(r.detectedAt - r.blockedSince)}: ${who}, ${where}${r.inTransaction ? ', holding the database write lock' : ''}`,
    );
    const blamed = blockingStep(r);
    // A tool's code blocking the loop inside a SQLite write transaction: everyone waits on it.
    if (blamed && r.inTransaction && !slot.kill && slot.state !== 'stopping') {
      this.#killStalled(slot, 'write_lock');
      return;
    }
    // Said on the step right away (the report proper comes with the attempt's end, or not at all
    // if the loop turns again in time).
    if (blamed && !r.inTransaction) announceStall(this.#o.core, blamed, slot.pid, where, r.frames, this.#o.log);
    this.#tick();
  }

  /** Reads the deadlines of the attempts the stalled worker holds (see Stall.deadlines). */
  #learnDeadlines(slot: Slot, stall: Stall): void {
    const ids = this.#workerIds(slot);
    this.#o.core.store
      .transaction((tx) => tx.runningByWorkers(ids))
      .then((rows) => {
        stall.deadlines = rows.map((r) => (r.deadlineAt ? Date.parse(r.deadlineAt) : Number.NaN)).filter(Number.isFinite);
        this.#tick();
      })
      .catch((err: unknown) => this.#o.log(`worker ${slot.index}: could not read the deadlines of its steps: ${(err as Error).message}`));
  }

  #unstalled(slot: Slot, blockedMs: number): void {
    if (slot.kill) return;
    this.#o.log(`worker ${slot.index} (pid ${slot.pid}): event loop turning again after ${fmtMs(blockedMs)}`);
    slot.stall = undefined;
    slot.lastBeatAt = Date.now();
    if (slot.state === 'stalled') moveSlot(slot, 'running');
  }

  #tick(): void {
    const now = Date.now();
    const { config } = this.#o;
    const limits = { loopStallMs: config.loopStallMs, loopKillMs: config.loopKillMs, abortGraceMs: config.abortGraceMs, reportMs: REPORT_MS, startTimeoutMs: START_TIMEOUT_MS };
    for (const s of this.#slots) {
      const proc = s.proc;
      if (!proc || (this.#o.liveness === false && s.state !== 'starting')) continue;
      const verdict = liveness({ state: s.state, startedAt: s.startedAt, lastBeatAt: s.lastBeatAt, stall: s.stall, beatSteps: s.beat?.steps ?? [], killing: s.kill !== undefined }, limits, now);
      if (verdict.kind === 'start_timeout') {
        this.#o.log(`worker ${s.index} (pid ${s.pid}) did not start within ${fmtMs(START_TIMEOUT_MS)}: killing it`);
        s.kill = { departure: { kind: 'crash', code: null, signal: 'SIGKILL', exit: undefined }, timers: [] };
        proc.kill('SIGKILL');
      } else if (verdict.kind === 'silent') {
        this.#totals.stalls++;
        s.stall = { since: verdict.since, report: undefined };
        this.#learnDeadlines(s, s.stall);
        moveSlot(s, 'stalled');
        this.#o.log(`worker ${s.index} (pid ${s.pid}): no heartbeat for ${fmtMs(now - verdict.since)} and no watchdog report: the process is frozen`);
      } else if (verdict.kind === 'kill') {
        this.#killStalled(s, verdict.because);
      }
    }
  }

  #killStalled(slot: Slot, because: 'deadline' | 'bound' | 'write_lock'): void {
    const proc = slot.proc;
    const stall = slot.stall;
    if (!proc || !stall) return;
    const now = Date.now();
    const boundMs = killBound(stall.report, this.#o.config.loopKillMs);
    const departure: Departure = { kind: 'stall_kill', stall: stall.report, blockedSince: stall.since, blockedMs: now - stall.since, because, boundMs };
    this.#totals.stallKills++;
    moveSlot(slot, 'killing');
    this.#o.log(
      `worker ${slot.index} (pid ${slot.pid}): event loop blocked for ${fmtMs(now - stall.since)} (${because === 'deadline' ? "past the step's deadline" : because === 'write_lock' ? 'holding the database write lock' : 'loopKillMs'}): killing it`,
    );
    if (because === 'write_lock') {
      // Every other process (the API's included) waits on this lock: no grace. The attempts are
      // settled once the process is gone and the lock with it.
      slot.kill = { departure, timers: [] };
      proc.kill('SIGKILL');
      return;
    }
    // A frozen worker cannot complete anything: its attempts are handed over now, before their
    // leases expire; if it wakes up, it finds its leases gone and drops its results. One stuck in a
    // system call cannot run its SIGTERM handler: it gets SIGKILL at once.
    if (stall.report?.native) {
      slot.kill = { departure, timers: [] };
      proc.kill('SIGKILL');
    } else {
      proc.kill('SIGTERM');
      slot.kill = { departure, timers: [setTimeout(() => proc.kill('SIGKILL'), this.#o.config.killGraceMs)] };
    }
    this.#lose(slot, departure).catch((err: unknown) => this.#o.log(`worker ${slot.index}: could not hand over its attempts (their leases will expire): ${(err as Error).message}`));
  }

  /**
   * The worker cannot stop something one of its steps started (a tool thread stuck in a system
   * call): replace it. It drains like a stopping worker (its other steps get `drainMs`, then are
   * handed back), and a fresh process takes its slot when it is gone.
   */
  #recycle(slot: Slot, why: string): void {
    const proc = slot.proc;
    if (!proc || slot.kill || slot.state === 'stopping' || this.#stopping) return;
    this.#o.log(`worker ${slot.index} (pid ${slot.pid}): replacing it: ${why}`);
    moveSlot(slot, 'stopping');
    this.#send(slot, { t: 'stop' });
    const patience = this.#o.config.drainMs + this.#o.config.abortGraceMs + 3000;
    const term = setTimeout(() => proc.kill('SIGTERM'), patience);
    const kill = setTimeout(() => proc.kill('SIGKILL'), patience + this.#o.config.killGraceMs);
    slot.kill = { departure: { kind: 'shutdown_kill', signal: 'SIGKILL', waitedMs: patience }, timers: [term, kill] };
    slot.recycling = true;
  }

  // ---- exits ----

  async #onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (slot.proc !== child) return;
    for (const t of slot.kill?.timers ?? []) clearTimeout(t);
    // Whatever the worker started and left behind (a dead worker's children are re-parented to
    // init, out of any tree) dies with it.
    const left = await killWorkerLeftovers(slot.tag).catch(() => []);
    if (left.length > 0) this.#o.log(`worker ${slot.index} (pid ${slot.pid}) left ${left.length} process(es) behind, killed: ${left.map((p) => `${p.command} (pid ${p.pid})`).join(', ')}`);
    const upMs = Date.now() - slot.startedAt;
    const departure = departureOf({ decided: slot.kill?.departure, recycling: slot.recycling, stopAskedAt: slot.stopAskedAt, code, signal, exit: slot.exitReport }, Date.now());
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    if (departure) {
      if (departure.kind === 'crash') this.#totals.crashes++;
      const lost = await this.#lose(slot, departure).catch((err: unknown) => {
        this.#o.log(`worker ${slot.index}: could not hand over its attempts (their leases will expire): ${(err as Error).message}`);
        return [] as LostAttempt[];
      });
      const culprit = departure.kind === 'crash' && departure.exit?.step ? `; step ${departure.exit.step.stepName} called process.exit(${departure.exit.code})` : '';
      this.#o.log(`worker ${slot.index} (pid ${slot.pid}) ${how}${culprit}${lost.length > 0 ? `; ${lost.length} attempt(s) ended` : ''}`);
    }
    for (const id of this.#workerIds(slot)) {
      await this.#o.core.store.deleteWorker(id).catch((err: unknown) => this.#o.log(`could not remove worker ${id} from the workers table: ${(err as Error).message}`));
    }
    slot.lastExit = {
      at: new Date().toISOString(),
      code,
      signal,
      classification: exitClassification(departure),
      // What it printed last, for the dashboard's workers page (redacted like every report).
      lastLines: departure === undefined ? [] : slot.lines.list().slice(-LAST_EXIT_LINES).map((l) => redactText(l)),
    };
    // Its counts stay counted: a restarted process starts from zero, the sum must not go back.
    if (slot.metrics) this.#retiredMetrics = mergeSnapshots([this.#retiredMetrics, slot.metrics]);
    slot.metrics = undefined;
    slot.proc = undefined;
    slot.stall = undefined;
    slot.kill = undefined;
    if (this.#stopping || slot.stopAskedAt !== undefined) {
      moveSlot(slot, 'stopped');
      return;
    }
    // A recycled worker did nothing wrong: its replacement starts at once.
    const delay = slot.recycling ? 0 : slot.backoff.next(upMs);
    moveSlot(slot, 'restarting');
    this.#o.log(`worker ${slot.index}: restarting in ${fmtMs(delay)}${slot.backoff.streak > 1 ? ` (${slot.backoff.streak} exits in a row)` : ''}`);
    slot.restartTimer = setTimeout(() => {
      if (this.#stopping) return;
      slot.restarts++;
      this.#totals.restarts++;
      this.#spawn(slot);
    }, delay);
  }

  /** Ends the attempts the slot's process holds, with what is known about why it is gone. */
  async #lose(slot: Slot, d: Departure): Promise<LostAttempt[]> {
    const pid = slot.pid ?? 0;
    const facts = {
      pid,
      slot: slot.index,
      lastLines: slot.lines.list(),
      lastBeat: slot.beat ? { loopDelayP99Ms: slot.beat.loopDelayP99Ms, rssBytes: slot.beat.rssBytes, heapUsedBytes: slot.beat.heapUsedBytes } : undefined,
    };
    const lost = await handOverAttempts(this.#o.core, this.#workerIds(slot), d, facts);
    if (lost.length > 0) {
      this.#o.log(`worker ${slot.index} (pid ${pid}): attempts ended: ${lost.map((l) => `${l.stepName}#${l.attempt} ${l.status}`).join(', ')}`);
    }
    return lost;
  }
}
