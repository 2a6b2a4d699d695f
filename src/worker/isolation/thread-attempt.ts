/**
 * One attempt of a tool that runs in a thread of its own, driven from the worker. The thread runs
 * the attempt with its own deadline and forensics (tool-thread.ts), and sends its hang report ahead
 * (300 ms before the grace ends) when the tool has not settled by then. The worker keeps what the
 * thread cannot be trusted with:
 * - the abort: sent at the deadline (or on cancel, shutdown, lost lease); a thread that does not
 *   answer it within ACK_MS is busy in JavaScript, and a short CPU profile says where;
 * - the cut, the moment the grace ends with the tool unsettled (or when the thread reports it
 *   abandoned, or died): the worker measures what the tool did after its abort (CPU, writes:
 *   /proc), terminates the thread (its JavaScript, timers, sockets, database connections and the
 *   threads it created end with it) and kills every process of the attempt by its marker. A thread
 *   stuck in a system call is released where that is possible (unblock.ts); one that cannot be
 *   stopped is reported, and the worker process is replaced.
 *
 * Why one file of ~450 lines: the abort, the report lead, the cut and the measurements of one
 * thread's attempt are steps of one sequence over the same thread and timers.
 */
import type { ClaimedStep } from '../../engine/transitions.ts';
import type { TextDelta } from '../../domain/records.ts';
import type { SerializedError } from '../../domain/errors.ts';
import { fmtBytes, fmtMs, type Classification } from '../../forensics/classify.ts';
import { taskFacts, threadChildren, type TaskFacts } from '../../forensics/procfs.ts';
import { hottestStack, type CpuProfile } from '../../forensics/profile.ts';
import { redactDeep } from '../../forensics/redact.ts';
import { buildHangReport } from '../../forensics/report.ts';
import { newAttemptMarker, type ContainmentRecord } from '../containment/attempt.ts';
import { killAttemptGroups, signalAttemptProcesses } from '../containment/processes.ts';
import { AttemptClock, type CapacityHold, type CapacityWait } from '../attempt-clock.ts';
import { TRIGGER_OF, type AbortCause, type Attempt, type AttemptResult } from '../run-step.ts';
import type { ToolThread, ToolThreadPool } from './pool.ts';
import { releaseBlockedThread } from './unblock.ts';

/**
 * A thread that answered its abort but sent no report by the end of the grace (it writes one
 * REPORT_LEAD_MS ahead: it is slow, e.g. on a busy machine) gets this much longer before the worker
 * cuts it and writes the report itself.
 */
const RESPONSIVE_MARGIN_MS = 300;
/** A thread that has not seen its abort this long after it was sent is busy in JavaScript. */
const ACK_MS = 100;
/** How long the cut waits for a terminated thread to go (a thread in JavaScript goes in ~5-15 ms). */
const TERMINATE_BOUND_MS = 400;
/** A terminated thread not in a system call that is still there this much later cannot be stopped. */
const SLOW_TERMINATE_MS = 5000;
/** CPU used after the abort above this share of the time (or 30 ms) is "kept working", not "waited". */
const BUSY_SHARE = 0.03;

export interface ThreadAttemptOptions {
  pool: ToolThreadPool;
  graceMs: number;
  record(type: string, data: Record<string, unknown>): void;
  /** Where text the tool streams goes (`llm.delta` frames, coalesced in the thread). */
  publishText?: (d: TextDelta) => void;
  log(line: string): void;
  /** The tool's thread could not be stopped: the worker process must be replaced to stop it. */
  onUncontained?(why: string): void;
  /** The tool's run function as the worker loaded it: where it is defined, for reports written here. */
  toolFn?: unknown;
}

interface Usage {
  at: number;
  cpuMs: number;
  bytesWritten: number;
  writeCalls: number;
}

/** What the tool did between its abort and its cut. */
export interface AfterAbortUsage {
  windowMs: number;
  cpuMs: number;
  bytesWritten: number;
  writeCalls: number;
}

type End =
  | { kind: 'result'; result: AttemptResult }
  | { kind: 'exit'; code: number; error: Error | undefined }
  /** The grace ended with the tool unsettled; the thread had sent its report ahead. */
  | { kind: 'draft'; report: Record<string, unknown> }
  | { kind: 'unresponsive' };

interface ProfileHandle {
  stop(): Promise<unknown>;
}

/** runwarden's own sources: a profile frame there is not where a tool spins. */
const RUNWARDEN_SRC = new URL('../../', import.meta.url).href;


export class ThreadAttempt implements Attempt {
  readonly claim: ClaimedStep;
  readonly startedAt = Date.now();
  readonly #o: ThreadAttemptOptions;
  readonly #marker = newAttemptMarker();
  #cause: AbortCause | null = null;
  #thread: ToolThread | undefined;
  readonly #leaders = new Set<number>();
  #abortSeen = false;
  /** Messages the thread sent since the abort: each may have cost one 8-byte write (its wake-up of this loop). */
  #messagesSinceAbort = 0;
  #atAbort: Usage | undefined;
  #profile: Promise<ProfileHandle | undefined> | undefined;
  #hardStop: (() => void) | undefined;
  #cutWithDraft: ((report: Record<string, unknown>) => void) | undefined;
  #draft: Record<string, unknown> | undefined;
  /** The thread reported processes (their groups and marker are killed at the cut; else no /proc scan is needed). */
  #spawned = false;
  readonly #timers: NodeJS.Timeout[] = [];
  /**
   * The worker's copy of the attempt's deadline: the thread's clock stands still while a call waits
   * for capacity and says so (WaitingMessage); this one follows, so the worker's deadline (the
   * backstop for a thread that cannot stop itself) moves with it.
   */
  readonly #clock: AttemptClock;
  #held: CapacityHold | undefined;

  constructor(claim: ClaimedStep, o: ThreadAttemptOptions) {
    this.claim = claim;
    this.#o = o;
    this.#clock = new AttemptClock({
      deadlineAt: claim.deadlineAt,
      queueTimeoutMs: claim.queueTimeoutMs ?? null,
      onDeadline: () => this.abort('deadline'),
      onQueueTimeout: () => this.abort('queue_timeout'),
    });
  }

  get deadlineAt(): number {
    return this.#clock.deadlineAt;
  }

  get waiting(): (CapacityWait & { since: number }) | null {
    return this.#clock.waiting;
  }

  #waiting(w: CapacityWait | null): void {
    if (w === null) {
      this.#held?.end();
      this.#held = undefined;
    } else if (this.#held) this.#held.update(w);
    else this.#held = this.#clock.hold(w);
  }

  get aborted(): boolean {
    return this.#cause !== null;
  }

  abort(cause: AbortCause): void {
    if (this.#cause !== null) return;
    this.#cause = cause;
    if (this.#thread) this.#signal(this.#thread, cause);
    this.#timers.push(setTimeout(() => this.#graceEnded(), this.#o.graceMs));
  }

  /**
   * The tool had its grace. With the report the thread sent ahead, the thread is cut now; a thread
   * that sent none but answered the abort is only slow (a busy machine): it gets a little longer
   * for its result; one that never answered is spinning, and is cut now.
   */
  #graceEnded(): void {
    if (this.#draft) {
      this.#cutWithDraft?.(this.#draft);
      return;
    }
    if (!this.#abortSeen) {
      this.#hardStop?.();
      return;
    }
    this.#timers.push(setTimeout(() => (this.#draft ? this.#cutWithDraft?.(this.#draft) : this.#hardStop?.()), RESPONSIVE_MARGIN_MS));
  }

  #signal(t: ToolThread, cause: AbortCause): void {
    this.#atAbort = usageOf(t);
    t.send({ t: 'abort', cause });
    this.#timers.push(
      setTimeout(() => {
        // Not even the abort message got through: the thread is spinning. Find out where.
        if (!this.#abortSeen && !t.gone) this.#profile = startProfile(t);
      }, ACK_MS),
    );
  }

  async execute(): Promise<AttemptResult> {
    this.#clock.start();
    try {
      return await this.#run();
    } finally {
      this.#clock.stop();
      for (const t of this.#timers) clearTimeout(t);
    }
  }

  async #run(): Promise<AttemptResult> {
    let thread: ToolThread;
    try {
      thread = await this.#o.pool.acquire();
    } catch (err) {
      return this.#failed({ code: 'TOOL_THREAD_FAILED', message: `could not start a thread for tool "${this.claim.tool}": ${(err as Error).message}`, retryable: true });
    }
    if (this.#cause !== null) {
      this.#o.pool.release(thread);
      return this.#notStarted(this.#cause);
    }
    this.#thread = thread;
    const ended = new Promise<End>((resolve) => {
      thread.listen((m) => {
        if (this.#atAbort) this.#messagesSinceAbort++;
        if (m.t === 'event') this.#o.record(m.type, m.data);
        else if (m.t === 'delta') this.#o.publishText?.(m.delta);
        else if (m.t === 'draft') this.#draft = m.report;
        else if (m.t === 'spawned') {
          this.#spawned = true;
          if (m.pid !== undefined) this.#leaders.add(m.pid);
        } else if (m.t === 'abort_seen') this.#abortSeen = true;
        else if (m.t === 'waiting') this.#waiting(m.waiting);
        else if (m.t === 'result') resolve({ kind: 'result', result: m.result });
      });
      thread.exited.then(({ code, error }) => resolve({ kind: 'exit', code, error })).catch(() => undefined);
      this.#hardStop = () => resolve({ kind: 'unresponsive' });
      this.#cutWithDraft = (report) => resolve({ kind: 'draft', report });
    });
    thread.send({ t: 'run', claim: this.claim, graceMs: this.#o.graceMs, marker: this.#marker });
    const end = await ended;
    if (end.kind === 'result' && !end.result.abandoned) {
      this.#o.pool.release(thread);
      return end.result;
    }
    return this.#cut(thread, end);
  }

  /** The tool ignored its abort, froze, or its thread died: stop everything of the attempt. */
  async #cut(thread: ToolThread, end: End): Promise<AttemptResult> {
    // What /proc says must be read before the thread goes (its entry goes with it); it is cheap.
    const usage = usageOf(thread);
    const facts = thread.tid !== null && !thread.gone ? taskFacts(process.pid, thread.tid) : null;
    if (thread.tid !== null && !thread.gone) {
      for (const pid of threadChildren(process.pid, thread.tid)) {
        this.#leaders.add(pid);
        this.#spawned = true;
      }
    }
    // The frames of a spinning thread, while it still spins (a thread in a system call cannot be profiled).
    const stack = facts?.blocked ? [] : await this.#stopProfile();
    const record: ContainmentRecord = { mode: 'thread', processes: [], threads: [], socketsClosed: 0, notStopped: [] };
    // A call that can be made to return (a FIFO open) is released, so that termination takes effect.
    const released = end.kind !== 'exit' && facts?.blocked ? releaseBlockedThread(facts) : null;
    // Stop the work first: the thread (its code, timers, sockets, threads), then its processes (a
    // thread waiting in execSync returns once its child is gone).
    const stopping = end.kind === 'exit' ? undefined : this.#o.pool.discard(thread, TERMINATE_BOUND_MS);
    if (this.#spawned) {
      // The groups at once; what left them (found by the marker, a /proc scan) right after, without
      // holding up the attempt's end.
      const leaders = [...this.#leaders];
      for (const p of killAttemptGroups(leaders, 'SIGKILL')) record.processes.push({ ...p, signal: 'SIGKILL' });
      const killed = new Set(record.processes.map((p) => p.pid));
      signalAttemptProcesses(this.#marker, leaders, 'SIGKILL')
        .then((more) => {
          for (const p of more) if (!killed.has(p.pid)) this.#o.record('step.log', { level: 'warn', message: `killed process ${p.command} (pid ${p.pid}): it had left its process group, and the attempt was cut` });
        })
        .catch(() => undefined); // /proc unreadable: the groups are dead already
    }
    if (stopping) {
      const stopped = await stopping;
      const blockedIn = facts?.blocked && facts.syscall ? describeCall(facts) : undefined;
      record.toolThread = { terminated: stopped.terminated, ms: stopped.ms, ...(blockedIn ? { blockedIn } : {}), ...(released ? { released } : {}) };
      if (!stopped.terminated) {
        const why = `the thread of tool "${this.claim.tool}" (step ${this.claim.stepName}) did not stop when terminated${blockedIn ? `: it is inside ${blockedIn}` : ''}`;
        record.notStopped.push(why);
        if (blockedIn) this.#o.onUncontained?.(why);
        else {
          // Not in a system call: only slow to go (a loaded machine). Replace the worker only if it
          // still has not gone a while later.
          const t = setTimeout(() => {
            if (!thread.gone) this.#o.onUncontained?.(`${why} within ${fmtMs(TERMINATE_BOUND_MS + SLOW_TERMINATE_MS)}`);
          }, SLOW_TERMINATE_MS);
          t.unref();
          thread.exited.then(() => clearTimeout(t)).catch(() => undefined);
        }
      }
    }
    for (const p of record.processes) {
      this.#o.record('step.log', { level: 'warn', message: `killed process ${p.command} (pid ${p.pid}): the attempt was cut` });
    }
    const ownCpuMs = end.kind === 'result' ? (end.result.forensicsCpuMs ?? 0) : 0;
    const after = this.#atAbort ? afterAbort(this.#atAbort, usage, this.#messagesSinceAbort, ownCpuMs) : undefined;
    if (end.kind === 'result') return this.#withEvidence(end.result, record, after, facts);
    if (end.kind === 'draft') return this.#fromDraft(end.report, record, after, facts);
    if (end.kind === 'exit') return this.#exited(end, record);
    return this.#unresponsive(record, after, facts, stack);
  }

  async #stopProfile(): Promise<string[]> {
    const pending = this.#profile;
    if (!pending) return [];
    try {
      const handle = await withTimeout(pending, 300);
      if (!handle) return [];
      const raw = await withTimeout(handle.stop(), 300);
      if (raw === undefined) return [];
      const profile = (typeof raw === 'string' ? JSON.parse(raw) : raw) as CpuProfile;
      return hottestStack(profile, 30, (url) => url !== '' && !url.startsWith('node:') && !url.includes('/node_modules/') && !url.startsWith(RUNWARDEN_SRC));
    } catch (err) {
      this.#o.log(`cpu profile of the thread of step ${this.claim.stepName} failed: ${(err as Error).message}`);
      return [];
    }
  }

  /** The thread answered with an abandoned result: add what only the worker can see. */
  #withEvidence(result: AttemptResult, record: ContainmentRecord, after: AfterAbortUsage | undefined, facts: TaskFacts | null): AttemptResult {
    const report = result.hangReport;
    if (!report) return { ...result, containment: record };
    const { hangReport, classification } = this.#evidence(report, record, after, facts);
    let error = result.error;
    if (error && classification !== report.classification && result.outcome === 'timed_out' && error.code === 'STEP_TIMEOUT') {
      error = { ...error, message: `step exceeded its ${this.claim.timeoutMs} ms deadline: ${classification.summary}`, data: { ...error.data, classification } };
    }
    return { ...result, ...(error ? { error } : {}), hangReport, containment: record };
  }

  /** The grace ended with the tool unsettled: the result is the one it would have had, with the report it sent ahead. */
  #fromDraft(draft: Record<string, unknown>, record: ContainmentRecord, after: AfterAbortUsage | undefined, facts: TaskFacts | null): AttemptResult {
    const { hangReport, classification } = this.#evidence({ ...draft, ranMs: Date.now() - this.startedAt }, record, after, facts);
    return this.#byCause(this.#cause ?? 'deadline', classification, hangReport, record);
  }

  /**
   * The thread's report, with what only the worker sees: CPU and writes after the abort (a report
   * that could only say "waited" is corrected to "kept working" when the CPU says so), what was
   * stopped, and the thread as /proc shows it.
   */
  #evidence(report: Record<string, unknown>, record: ContainmentRecord, after: AfterAbortUsage | undefined, facts: TaskFacts | null): { hangReport: Record<string, unknown>; classification: Classification } {
    let classification = report.classification as Classification;
    const vague = ['promise.never_settled', 'deadline.exceeded', 'handler.ignored_abort', 'unknown'];
    if (after !== undefined && keptWorking(after) && vague.includes(classification.code)) {
      classification = { code: 'handler.ignored_abort', summary: `tool "${this.claim.tool}" ignored its abort and kept working: ${describeUsage(after)}; its thread was terminated` };
    }
    const hangReport = redactDeep({ ...report, classification, ...(after ? { afterAbortUsage: after } : {}), containment: record, ...(facts ? { thread: threadView(facts) } : {}) });
    return { hangReport, classification };
  }

  /** The thread never answered after its abort: the worker writes the report from what it can see. */
  #unresponsive(record: ContainmentRecord, after: AfterAbortUsage | undefined, facts: TaskFacts | null, stack: string[]): AttemptResult {
    const cause = this.#cause ?? 'deadline';
    const tool = this.claim.tool;
    let classification: Classification;
    if (facts?.blocked && facts.syscall) {
      classification = { code: 'loop.blocked', summary: `the thread of tool "${tool}" was blocked inside ${describeCall(facts)} and did not come back after its abort; it was ${record.toolThread?.terminated ? 'terminated' : 'not stoppable (see containment)'}` };
    } else if (after && keptWorking(after)) {
      const how = this.#abortSeen ? 'kept working after its abort' : 'kept its thread busy and never yielded to it after its abort (a synchronous loop)';
      classification = { code: 'handler.ignored_abort', summary: `tool "${tool}" ${how}: ${describeUsage(after)}; its thread was terminated` };
    } else {
      classification = { code: 'handler.ignored_abort', summary: `tool "${tool}" did not settle within ${fmtMs(this.#o.graceMs)} of its abort, and its thread sent no report; the thread was terminated` };
    }
    const notes = [
      'the tool thread did not answer, so its pending operations and logs were not collected; this report was written by the worker from /proc and a CPU profile of the thread',
    ];
    const report = buildHangReport({
      trigger: TRIGGER_OF[cause],
      step: { runId: this.claim.runId, stepName: this.claim.stepName, attempt: this.claim.attempt, tool, timeoutMs: this.claim.timeoutMs, startedAt: this.startedAt },
      classification,
      ...(stack.length > 0 ? { capturedStack: stack } : {}),
      settled: 'abandoned',
      graceMs: this.#o.graceMs,
      ...(this.#o.toolFn ? { toolFn: this.#o.toolFn } : {}),
      notes,
    });
    const hangReport = redactDeep({ ...report, ...(after ? { afterAbortUsage: after } : {}), containment: record, ...(facts ? { thread: threadView(facts) } : {}) });
    return this.#byCause(cause, classification, hangReport, record);
  }

  #byCause(cause: AbortCause, classification: Classification, hangReport: Record<string, unknown>, record: ContainmentRecord): AttemptResult {
    const base = { artifacts: [], hangReport, abortCause: cause, abandoned: true, containment: record };
    if (cause === 'deadline') {
      const error: SerializedError = {
        code: 'STEP_TIMEOUT',
        message: `step exceeded its ${this.claim.timeoutMs} ms deadline: ${classification.summary}`,
        retryable: true,
        data: { classification, timeoutMs: this.claim.timeoutMs, ignoredAbort: true },
      };
      return { ...base, outcome: 'timed_out', error };
    }
    if (cause === 'queue_timeout') {
      const error: SerializedError = {
        code: 'QUEUE_TIMEOUT',
        message: `waited ${this.#clock.waitedMs} ms for capacity, over its queueTimeoutMs of ${this.claim.queueTimeoutMs ?? '?'} ms: ${classification.summary}`,
        retryable: false,
        data: { classification, waitedMs: this.#clock.waitedMs, queueTimeoutMs: this.claim.queueTimeoutMs, ignoredAbort: true },
      };
      return { ...base, outcome: 'failed', error };
    }
    if (cause === 'cancelled') return { ...base, outcome: 'cancelled', error: { code: 'CANCELLED', message: 'run cancelled', retryable: false } };
    return { ...base, outcome: 'failed', error: { code: 'ABORTED', message: `attempt aborted: ${cause}`, retryable: true } };
  }

  /** The thread ended under the tool (process.exit, a fatal error, out of memory). */
  #exited(end: { code: number; error: Error | undefined }, record: ContainmentRecord): AttemptResult {
    const oom = (end.error as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    const why = oom ? 'ran out of memory' : end.error ? `failed: ${end.error.message}` : `called process.exit(${end.code})`;
    const error: SerializedError = {
      code: oom ? 'TOOL_OUT_OF_MEMORY' : 'TOOL_THREAD_EXITED',
      message: `tool "${this.claim.tool}" ${why}; its thread ended (the worker and its other steps were not affected)`,
      retryable: true,
    };
    if (this.#cause !== null) return { ...this.#byCause(this.#cause, { code: error.code, summary: error.message }, {}, record), hangReport: null };
    return { outcome: 'failed', error, artifacts: [], hangReport: null, abortCause: null, abandoned: false, containment: record };
  }

  /** Aborted while its thread was still starting: the tool never ran. */
  #notStarted(cause: AbortCause): AttemptResult {
    const waited = Date.now() - this.startedAt;
    const classification: Classification = {
      code: 'deadline.exceeded',
      summary: `the step was aborted (${cause}) after ${fmtMs(waited)} while the worker was still starting a thread for tool "${this.claim.tool}"; the tool never ran`,
    };
    const record: ContainmentRecord = { mode: 'thread', processes: [], threads: [], socketsClosed: 0, notStopped: [] };
    const report =
      cause === 'deadline'
        ? buildHangReport({
            trigger: 'deadline',
            step: { runId: this.claim.runId, stepName: this.claim.stepName, attempt: this.claim.attempt, tool: this.claim.tool, timeoutMs: this.claim.timeoutMs, startedAt: this.startedAt },
            classification,
            settled: 'unknown',
            ...(this.#o.toolFn ? { toolFn: this.#o.toolFn } : {}),
            notes: ['tool threads load the tools modules when they start; a deadline shorter than that start (see toolIsolation in docs/configuration.md) cannot be met'],
          })
        : null;
    const result = this.#byCause(cause, classification, report ?? {}, record);
    return { ...result, hangReport: report, abandoned: false };
  }

  #failed(error: SerializedError): AttemptResult {
    return { outcome: 'failed', error, artifacts: [], hangReport: null, abortCause: this.#cause, abandoned: false };
  }
}

function usageOf(t: ToolThread): Usage {
  const f = t.tid !== null && !t.gone ? taskFacts(process.pid, t.tid) : null;
  return { at: Date.now(), cpuMs: f?.cpuMs ?? 0, bytesWritten: f?.io?.bytesWritten ?? 0, writeCalls: f?.io?.writeCalls ?? 0 };
}

/**
 * The usage between two marks, without what runwarden itself did on the thread: the CPU of the
 * attempt's own forensics (`ownCpuMs`) and the thread's messages to the worker, each of which costs
 * up to one 8-byte write (an eventfd wake-up). Writes still include the thread's other event-loop
 * wake-ups (8 bytes each), so CPU, not writes, decides whether the tool kept working.
 */
function afterAbort(from: Usage, to: Usage, messages: number, ownCpuMs: number): AfterAbortUsage {
  const calls = to.writeCalls - from.writeCalls;
  const bytes = to.bytesWritten - from.bytesWritten;
  return {
    windowMs: to.at - from.at,
    cpuMs: Math.max(0, to.cpuMs - from.cpuMs - ownCpuMs),
    writeCalls: Math.max(0, calls - messages),
    bytesWritten: Math.max(0, bytes - 8 * Math.min(messages, calls)),
  };
}

function keptWorking(a: AfterAbortUsage): boolean {
  // /proc counts CPU in 10 ms ticks: a waiting thread shows 0-1 of them in a second.
  return a.cpuMs >= Math.max(30, a.windowMs * BUSY_SHARE);
}

function describeUsage(a: AfterAbortUsage): string {
  const cpu = `${fmtMs(a.cpuMs)} of CPU in the ${fmtMs(a.windowMs)} after the abort`;
  return a.writeCalls > 0 ? `${cpu}, ${a.writeCalls} write system call(s) (${fmtBytes(a.bytesWritten)})` : cpu;
}

function describeCall(f: TaskFacts): string {
  const c = f.syscall;
  if (!c) return 'a system call';
  return `system call ${c.name}${c.fdTarget ? ` on ${c.fdTarget}` : ''}${f.wchan ? ` (kernel wait: ${f.wchan})` : ''}`;
}

function threadView(f: TaskFacts): Record<string, unknown> {
  return { tid: f.tid, state: f.state, cpuMs: f.cpuMs, ...(f.syscall ? { syscall: f.syscall.name, ...(f.syscall.fdTarget ? { fd: f.syscall.fdTarget } : {}) } : {}), ...(f.wchan ? { wchan: f.wchan } : {}) };
}

function startProfile(t: ToolThread): Promise<ProfileHandle | undefined> {
  const w = t.worker as unknown as { startCpuProfile?: () => Promise<ProfileHandle> };
  if (typeof w.startCpuProfile !== 'function') return Promise.resolve(undefined);
  return w.startCpuProfile().catch(() => undefined);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, delay(ms).then(() => undefined)]);
}
