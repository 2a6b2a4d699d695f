/**
 * Runs one attempt of one step under its deadline, on the current thread (the worker's event loop,
 * or a tool thread: isolation/tool-thread.ts runs this same class). The step's AbortSignal fires at
 * the deadline; a tool that has not settled `abortGraceMs` later is abandoned and the attempt ends
 * `timed_out` anyway, recorded as having ignored its abort. Nothing a tool does can keep its attempt
 * open, and what it started is contained (containment/attempt.ts): its processes (process groups
 * and marked descendants) get SIGTERM at the abort and SIGKILL when the attempt ends, worker
 * threads it created are terminated, and an abandoned inline tool's sockets are destroyed. Its own
 * JavaScript can only be stopped by running it in a thread (isolation/).
 *
 * Forensics: the attempt's pending operations are snapshotted the moment before its signal aborts
 * (the abort tears them down), and a timed-out attempt gets a hang report built from that snapshot.
 * Everything recorded (events, log lines, errors, reports) is redacted on the way out.
 *
 * Why one file of ~480 lines: the deadline, the grace, the snapshot and the containment of one
 * attempt read and settle the same state in a fixed order; what can stand alone lives elsewhere
 * (containment/, forensics/, the tool context in context.ts).
 */
import { AdditionsCollector, type StepAdditions } from '../domain/added-steps.ts';
import { RunwardenError, toRunwardenError, type SerializedError } from '../domain/errors.ts';
import type { AttemptOutcome, ClaimedStep } from '../engine/transitions.ts';
import { newArtifactId } from '../engine/ids.ts';
import { enableForensicsByDefault, forensicsEnabled, installForensics } from '../forensics/channels.ts';
import { buildHangReport, type ReportTrigger } from '../forensics/report.ts';
import { scanTimers } from '../forensics/inspect.ts';
import { installRedaction, redactDeep, redactText } from '../forensics/redact.ts';
import { StepForensics, type Snapshot } from '../forensics/step.ts';
import type { TextDelta } from '../domain/records.ts';
import { AttemptContainment, type ContainmentRecord } from './containment/attempt.ts';
import { installSpawnGuard } from './containment/processes.ts';
import { installFsSyncMarkers } from './containment/sync-calls.ts';
import { installThreadGuard } from './containment/threads.ts';
import type { NewArtifact } from '../store/store.ts';
import { DeltaCoalescer } from '../streaming/coalesce.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import type { ArtifactRef, StepLogger, ToolContext } from '../tools/types.ts';
import { AttemptClock, type CapacityWait } from './attempt-clock.ts';
import { stepContext, type StepScope } from './context.ts';
import { mimeFor } from './mime.ts';

export type AbortCause = 'deadline' | 'queue_timeout' | 'cancelled' | 'shutdown' | 'lease_lost';

export interface AttemptResult {
  outcome: AttemptOutcome;
  outputs?: unknown;
  error?: SerializedError;
  artifacts: NewArtifact[];
  hangReport: Record<string, unknown> | null;
  /** Why the attempt was aborted, if it was. 'shutdown' and 'lease_lost' results are not recorded. */
  abortCause: AbortCause | null;
  /** The tool did not settle within the grace after its abort: its code may still be running. */
  abandoned: boolean;
  /** What containment stopped when the attempt ended (set when there was something to stop). */
  containment?: ContainmentRecord;
  /**
   * CPU this thread spent after the abort on the attempt's own forensics (the timer scan, the
   * report), so that it is not counted as the tool's work.
   */
  forensicsCpuMs?: number;
  /** Steps the tool added (`ctx.addSteps`), as plain JSON: kept only when the attempt succeeded. */
  added?: StepAdditions;
}

/** One attempt as the worker drives it: on its own thread (StepRun) or in a tool thread (ThreadAttempt). */
export interface Attempt {
  readonly claim: ClaimedStep;
  /** Epoch ms. */
  readonly startedAt: number;
  /** When it times out (later than the claim's when it waited for capacity; moving while it waits). */
  readonly deadlineAt: number;
  /** What it waits for at a provider's gate now, with since when (epoch ms); null when nothing. */
  readonly waiting: (CapacityWait & { since: number }) | null;
  readonly aborted: boolean;
  abort(cause: AbortCause): void;
  /** Runs the attempt to its end; never rejects. */
  execute(): Promise<AttemptResult>;
}

export interface StepRunOptions {
  /** 'thread' when this runs inside a tool thread. @default 'inline' */
  mode?: 'thread' | 'inline';
  /** The attempt's process marker (a tool thread gets it from the worker, which kills by it). */
  marker?: string;
  onSpawned?: (info: { pid: number | undefined; command: string; sync: boolean }) => void;
  /** An inline attempt that was cut still runs: only replacing the process stops it. */
  onUncontained?: (why: string) => void;
  /** Where text the tool streams (`ctx.streamText`) goes, as coalesced `llm.delta` frames. */
  publishText?: (d: TextDelta) => void;
  /**
   * The report written ahead of a likely abandonment (REPORT_LEAD_MS before the grace ends): a tool
   * thread sends it to the worker, which can then cut the thread the moment the grace ends.
   */
  onDraft?: (trigger: ReportTrigger, report: Record<string, unknown>) => void;
  /** Its deadline moved or what it waits for changed (a tool thread tells the worker). */
  onClock?: (clock: { deadlineAt: number; waiting: (CapacityWait & { since: number }) | null }) => void;
}

const LAST_LOGS = 20;
/**
 * The report of a tool that ignores its abort is written this long before its grace ends (the heap
 * scan for its timers alone costs 100-200 ms, more on a busy machine), so that it is ready the
 * moment the tool is abandoned and the cut is not late. What the tool does in between is added.
 */
const REPORT_LEAD_MS = 300;

/** The report trigger of each abort cause. */
export const TRIGGER_OF: Readonly<Record<AbortCause, ReportTrigger>> = {
  deadline: 'deadline',
  queue_timeout: 'queue_timeout',
  cancelled: 'cancel',
  shutdown: 'shutdown',
  lease_lost: 'lease_lost',
};

installRedaction();
installForensics({ storage: stepContext, select: (scope) => scope.forensics });
const stepOf = (): StepScope | undefined => stepContext.getStore();
installSpawnGuard({ owner: () => stepOf()?.containment, step: stepOf });
installFsSyncMarkers(stepOf);
installThreadGuard(() => stepOf()?.containment);

export class StepRun {
  readonly claim: ClaimedStep;
  readonly controller = new AbortController();
  abortCause: AbortCause | null = null;
  readonly startedAt = Date.now();
  readonly lastLogs: string[] = [];
  readonly forensics: StepForensics;
  readonly #artifacts: NewArtifact[] = [];
  readonly #added = new AdditionsCollector();
  readonly #record: (type: string, data: Record<string, unknown>) => void;
  readonly #graceMs: number;
  readonly containment: AttemptContainment;
  readonly #tools: ToolRegistry;
  readonly #onUncontained: ((why: string) => void) | undefined;
  readonly #onDraft: StepRunOptions['onDraft'];
  /** Pending operations the moment before the signal aborted. */
  #atAbort: Snapshot | undefined;
  /** Text the tool streams (`ctx.streamText`), published as coalesced `llm.delta` frames. */
  readonly #text: DeltaCoalescer | undefined;
  #prepareTimer: NodeJS.Timeout | undefined;
  /** The report written ahead of a likely abandonment (REPORT_LEAD_MS). */
  #prepared: { trigger: ReportTrigger; report: Record<string, unknown> } | undefined;
  #ownCpuUs = 0;
  /** The deadline, standing still while the attempt waits for capacity. */
  readonly clock: AttemptClock;

  constructor(claim: ClaimedStep, record: (type: string, data: Record<string, unknown>) => void, tools: ToolRegistry, graceMs: number, opts: StepRunOptions = {}) {
    this.claim = claim;
    this.#record = record;
    this.#tools = tools;
    this.#graceMs = graceMs;
    this.#onUncontained = opts.onUncontained;
    this.#onDraft = opts.onDraft;
    const onClock = opts.onClock;
    this.clock = new AttemptClock({
      deadlineAt: claim.deadlineAt,
      queueTimeoutMs: claim.queueTimeoutMs ?? null,
      onDeadline: () => this.abort('deadline'),
      onQueueTimeout: () => this.abort('queue_timeout'),
      ...(onClock ? { onChange: () => stepContext.exit(() => onClock({ deadlineAt: this.clock.deadlineAt, waiting: this.clock.waiting })) } : {}),
    });
    const publishText = opts.publishText;
    if (publishText) {
      this.#text = new DeltaCoalescer(claim, (d) => stepContext.exit(() => publishText(d)), { clean: redactText });
    }
    enableForensicsByDefault();
    this.forensics = new StepForensics(
      { runId: claim.runId, stepName: claim.stepName, attempt: claim.attempt, tool: claim.tool },
      { capture: forensicsEnabled(), startedAt: this.startedAt },
    );
    this.containment = new AttemptContainment({
      mode: opts.mode ?? 'inline',
      forensics: this.forensics,
      ...(opts.marker !== undefined ? { marker: opts.marker } : {}),
      ...(opts.onSpawned ? { onSpawned: opts.onSpawned } : {}),
    });
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  get deadlineAt(): number {
    return this.clock.deadlineAt;
  }

  get waiting(): (CapacityWait & { since: number }) | null {
    return this.clock.waiting;
  }

  abort(cause: AbortCause): void {
    if (this.controller.signal.aborted) return;
    this.abortCause = cause;
    this.#atAbort = this.forensics.snapshot();
    const message =
      cause === 'deadline'
        ? `step deadline of ${this.claim.timeoutMs} ms exceeded`
        : cause === 'queue_timeout'
          ? `waited ${this.clock.waitedMs} ms for capacity (queueTimeoutMs ${this.claim.queueTimeoutMs ?? '?'})`
          : cause === 'cancelled'
            ? 'run cancelled'
            : `attempt aborted: ${cause}`;
    this.forensics.onAbort();
    this.controller.abort(new DOMException(message, cause === 'deadline' || cause === 'queue_timeout' ? 'TimeoutError' : 'AbortError'));
    // Processes the tool did not tie to its signal: stop them now, so a tool awaiting one can settle.
    this.containment.onAbort();
    const trigger = TRIGGER_OF[cause];
    this.#prepareTimer = setTimeout(() => {
      const report = this.#report(trigger, { kind: 'abandoned', graceMs: this.#graceMs });
      this.#prepared = { trigger, report };
      this.#onDraft?.(trigger, report);
    }, Math.max(this.#graceMs / 2, this.#graceMs - REPORT_LEAD_MS));
  }

  /** Runs forensics work on this thread, counting its CPU apart from the tool's. */
  #ownWork<T>(fn: () => T): T {
    const before = process.threadCpuUsage();
    try {
      return fn();
    } finally {
      const d = process.threadCpuUsage(before);
      this.#ownCpuUs += d.user + d.system;
    }
  }

  /**
   * Records an event on the step, redacted, outside the step's async context: the worker's store
   * writes that follow must not be attributed to (or tracked as) the step's own operations.
   */
  record(type: string, data: Record<string, unknown>): void {
    this.forensics.noteActivity(type === 'step.log' && typeof data.message === 'string' ? `log line "${data.message.slice(0, 80)}"` : `event ${type}`);
    this.#note(type, data);
  }

  /** An event runwarden itself records on the step (not the tool's doing: no activity). */
  #note(type: string, data: Record<string, unknown>): void {
    const clean = redactDeep(data);
    stepContext.exit(() => this.#record(type, clean));
  }

  context(): ToolContext {
    const logAt =
      (level: 'info' | 'warn' | 'error') =>
      (message: string, data?: Record<string, unknown>): void => {
        const text = redactText(String(message));
        this.lastLogs.push(`${new Date().toISOString()} ${level} ${text}`);
        if (this.lastLogs.length > LAST_LOGS) this.lastLogs.shift();
        this.record('step.log', { level, message: text, ...(data ? { data } : {}) });
      };
    const log: StepLogger = Object.assign(logAt('info'), { info: logAt('info'), warn: logAt('warn'), error: logAt('error') });
    const refs: ArtifactRef[] = [];
    const clock = this.clock;
    return {
      signal: this.controller.signal,
      get deadline() {
        return clock.deadlineAt;
      },
      runId: this.claim.runId,
      stepName: this.claim.stepName,
      attempt: this.claim.attempt,
      log,
      artifacts: {
        put: (a) => {
          if (typeof a?.name !== 'string' || a.name.length === 0) throw new RunwardenError('ARTIFACT_INVALID', 'an artifact needs a name');
          const content = typeof a.content === 'string' ? Buffer.from(a.content, 'utf8') : a.content;
          if (!(content instanceof Uint8Array)) throw new RunwardenError('ARTIFACT_INVALID', `artifact "${a.name}": content must be a string or bytes`);
          const ref: ArtifactRef = { id: newArtifactId(), name: a.name, mime: a.mime ?? mimeFor(a.name), size: content.byteLength };
          this.#artifacts.push({ ...ref, runId: this.claim.runId, stepName: this.claim.stepName, attempt: this.claim.attempt, content, createdAt: Date.now() });
          refs.push(ref);
          this.forensics.noteActivity(`artifact "${a.name}"`);
          return ref;
        },
        list: () => refs,
      },
      capacity: clock,
      checkpoint: (label) => this.forensics.setCheckpoint(label),
      track: <T>(label: string, promise: Promise<T>): Promise<T> => this.forensics.track(label, promise),
      emit: (type, data) => this.record(type, data),
      addSteps: (steps, options) => {
        const names = this.#added.add(steps, options);
        this.forensics.noteActivity(`added ${names.length} step(s)`);
        return names;
      },
      ...(this.#text ? { streamText: (text: string, call?: number) => this.#text?.push(String(text), call) } : {}),
    };
  }

  /** Executes the tool; never rejects. */
  async execute(): Promise<AttemptResult> {
    const { claim } = this;
    const tools = this.#tools;
    const graceMs = this.#graceMs;
    const clock = this.clock;
    clock.start();
    let result: AttemptResult | undefined;
    try {
      const def = tools.get(claim.tool);
      if (!def) return this.#failed(new RunwardenError('UNKNOWN_TOOL', `tool "${claim.tool}" is not loaded in this worker`));
      const checked = await tools.validate(claim.tool, claim.inputs);
      if (!checked.ok) {
        return this.#failed(
          new RunwardenError('INPUT_INVALID', `inputs rejected by ${claim.tool}: ${checked.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`, { }),
        );
      }
      // Kept only to find where the tool is defined; never called from here.
      this.forensics.toolFn = (def as { run: unknown }).run;
      const scope: StepScope = {
        runId: claim.runId,
        stepName: claim.stepName,
        attempt: claim.attempt,
        tool: claim.tool,
        get deadlineAt() {
          return clock.deadlineAt;
        },
        record: (t, d) => this.record(t, d),
        forensics: this.forensics,
        containment: this.containment,
      };
      const ctx = this.context();
      // The tool runs inside the step's async context; a synchronous throw becomes a rejection.
      const work = stepContext.run(scope, () => Promise.resolve().then(() => def.run(ctx, checked.value)));
      const settled = await settleOrAbandon(work, this.controller.signal, graceMs);
      result = this.#result(settled);
    } catch (err) {
      // Only engine code above can throw here (tool errors are captured by settleOrAbandon).
      result = this.#failed(toRunwardenError(err, 'WORKER_ERROR'));
    } finally {
      clock.stop();
      // Published before the completion is even queued, so a follower sees the text before step.finished.
      this.#text?.close();
      clearTimeout(this.#prepareTimer);
    }
    return await this.#contain(result);
  }

  /** Nothing the attempt started may outlive it: stop it, and say what was stopped. */
  async #contain(result: AttemptResult): Promise<AttemptResult> {
    const fx = this.forensics;
    const record = await this.containment.end({
      abandoned: result.abandoned,
      graceMs: this.#graceMs,
      onLater: (killed, sig) => {
        for (const p of killed) {
          this.#note('step.log', {
            level: 'warn',
            message: sig === 'SIGKILL' ? `killed process ${p.command} (pid ${p.pid}) with SIGKILL: it ignored SIGTERM after the attempt ended` : `sent SIGTERM to process ${p.command} (pid ${p.pid}): still running when the attempt ended`,
          });
        }
      },
    });
    if (result.abandoned && this.containment.mode === 'inline') {
      // Its code may go on in this thread. Should it still start something, the worker is replaced;
      // and the timers and immediates it has pending now are cleared (a polling loop, a repeating
      // writer, a burner in slices stop).
      const step = `${this.claim.stepName} (run ${this.claim.runId}, attempt ${this.claim.attempt})`;
      fx.onZombie = (what) => this.#onUncontained?.(`step ${step} kept running on the worker's event loop after it was cut: ${what}`);
      // Unless its report's heap scan found it had none (never settled), the timers it has now
      // are looked for: the report may have seen some, or not been allowed to look (the scan is paced).
      const code = (result.hangReport?.classification as { code?: string } | undefined)?.code;
      if (code !== 'promise.never_settled') {
        clearTimersSoon(fx, (n) => {
          if (n > 0) this.#note('step.log', { level: 'warn', kind: 'containment', message: `cleared ${n} timer(s) the cut attempt still had pending`, timersCleared: n });
        });
      }
    }
    fx.dispose();
    for (const p of record.processes) {
      this.#note('step.log', { level: 'warn', message: `sent ${p.signal} to process ${p.command} (pid ${p.pid}): still running when the attempt ended` });
    }
    for (const t of record.threads) this.#note('step.log', { level: 'warn', message: `terminated worker thread ${t.what} (thread id ${t.threadId}): still running when the attempt ended` });
    const acted = record.processes.length > 0 || record.threads.length > 0 || record.socketsClosed > 0 || (result.abandoned && record.mode === 'inline');
    const own = this.#ownCpuUs > 0 ? { forensicsCpuMs: Math.round(this.#ownCpuUs / 1000) } : {};
    if (!acted) return { ...result, ...own };
    const out = { ...result, ...own, containment: record };
    if (out.hangReport) out.hangReport = { ...out.hangReport, containment: redactDeep(record) };
    return out;
  }

  #failed(err: RunwardenError, abandoned = false): AttemptResult {
    return { outcome: 'failed', error: err.toJSON(), artifacts: [], hangReport: null, abortCause: this.abortCause, abandoned };
  }

  #result(s: Settled): AttemptResult {
    const cause = this.abortCause;
    if (cause === null && s.kind === 'fulfilled') {
      let outputs: unknown;
      try {
        outputs = s.value === undefined ? null : JSON.parse(JSON.stringify(s.value));
      } catch (err) {
        return this.#failed(new RunwardenError('OUTPUT_INVALID', `tool output is not JSON: ${(err as Error).message}`));
      }
      const added = this.#added.result();
      return { outcome: 'succeeded', outputs, artifacts: this.#artifacts, hangReport: null, abortCause: null, abandoned: false, ...(added ? { added } : {}) };
    }
    if (cause === null && s.kind === 'rejected' && this.#cutByDeadline(s.error)) {
      this.abortCause = 'deadline';
      return this.#timedOut(s);
    }
    if (cause === null && s.kind === 'rejected') {
      const err = toRunwardenError(s.error);
      const failed = this.#failed(err);
      // A tool whose own time limit fired (an LLM call's headers or idle limit, its share of the
      // step's deadline) was stuck all the same: it gets a report too.
      const limit = err.data?.limit;
      if (typeof limit === 'string' && limit !== 'max_bytes' && limit !== 'abort' && err.data?.classification) failed.hangReport = this.#report('limit', s, err);
      return failed;
    }
    if (cause === 'cancelled') {
      // A tool that ignored the cancellation gets a report: what it kept doing, and what was stopped.
      const hangReport = s.kind === 'abandoned' ? this.#report('cancel', s) : null;
      return { outcome: 'cancelled', error: { code: 'CANCELLED', message: 'run cancelled', retryable: false }, artifacts: [], hangReport, abortCause: cause, abandoned: s.kind === 'abandoned' };
    }
    if (cause === 'deadline') return this.#timedOut(s);
    if (cause === 'queue_timeout') return this.#queueTimedOut(s);
    // shutdown / lease lost: the caller hands the step back or drops it. A tool that ignored that
    // abort still gets a report (the caller decides whether it can be stored).
    const hangReport = s.kind === 'abandoned' && cause !== null ? this.#report(cause, s) : null;
    return { outcome: 'failed', error: { code: 'ABORTED', message: `attempt aborted: ${cause}`, retryable: true }, artifacts: [], hangReport, abortCause: cause, abandoned: s.kind === 'abandoned' };
  }

  /**
   * A tool that times itself by `ctx.deadline` (the LLM providers cap every limit by it) can fail a
   * moment before the worker's own deadline timer fires. That is the step's deadline all the same:
   * `timed_out`, whatever phase the call was in, not a failure of the tool.
   */
  #cutByDeadline(error: unknown): boolean {
    const data = error instanceof RunwardenError ? error.data : undefined;
    if (data?.limit === 'step_deadline') return true;
    // 5 ms: the deadline timer and the tool's own timer may disagree by a few ms (timers run on a
    // monotonic clock, deadlines are wall-clock).
    return (error as { name?: unknown } | null)?.name === 'TimeoutError' && Date.now() >= this.clock.deadlineAt - 5;
  }

  #report(trigger: ReportTrigger, s: Settled, toolErr?: RunwardenError | null): Record<string, unknown> {
    const { claim } = this;
    const ready = this.#prepared;
    if (ready && ready.trigger === trigger && s.kind === 'abandoned' && !toolErr) {
      // Written REPORT_LEAD_MS ago: only what the tool did since is added.
      const fx = this.forensics;
      return redactDeep({ ...ready.report, ranMs: Date.now() - this.startedAt, ...(fx.afterAbort.length > 0 ? { afterAbort: [...fx.afterAbort] } : {}) });
    }
    return this.#ownWork(() => buildHangReport({
      trigger,
      step: { runId: claim.runId, stepName: claim.stepName, attempt: claim.attempt, tool: claim.tool, timeoutMs: claim.timeoutMs, startedAt: this.startedAt },
      forensics: this.forensics,
      ...(this.#atAbort ? { snapshot: this.#atAbort } : {}),
      settled: s.kind,
      graceMs: this.#graceMs,
      toolError: toolErr ? { ...(toolErr.data ? { data: toolErr.data } : {}) } : null,
      lastLogs: this.lastLogs,
    }));
  }

  #timedOut(s: Settled): AttemptResult {
    const { claim } = this;
    const abandoned = s.kind === 'abandoned';
    const toolErr = s.kind === 'rejected' ? toRunwardenError(s.error) : null;
    // A tool that knows why it was stuck (an LLM provider naming the phase) says so in its error;
    // otherwise the report classifies what was pending at the deadline.
    const toolClass = toolErr?.data?.classification as { code: string; summary: string } | undefined;
    const hangReport = this.#report('deadline', s, toolErr);
    const classification = hangReport.classification as { code: string; summary: string };
    const error: SerializedError = {
      code: toolClass ? toolClass.code : 'STEP_TIMEOUT',
      message: toolClass ? toolClass.summary : `step exceeded its ${claim.timeoutMs} ms deadline: ${classification.summary}`,
      retryable: true,
      data: redactDeep({ classification, timeoutMs: claim.timeoutMs, ignoredAbort: abandoned, ...(toolErr?.data ? { tool: toolErr.data } : {}) }),
    };
    return { outcome: 'timed_out', error, artifacts: [], hangReport, abortCause: 'deadline', abandoned };
  }

  /** It waited longer than its queueTimeoutMs for capacity: failed (not retried), with a report of what held it. */
  #queueTimedOut(s: Settled): AttemptResult {
    const { claim } = this;
    const toolErr = s.kind === 'rejected' ? toRunwardenError(s.error) : null;
    const waitedMs = this.clock.waitedMs;
    const hangReport = this.#report('queue_timeout', s, toolErr);
    const classification = hangReport.classification as { code: string; summary: string };
    const error: SerializedError = {
      code: 'QUEUE_TIMEOUT',
      message: `waited ${waitedMs} ms for capacity, over its queueTimeoutMs of ${claim.queueTimeoutMs ?? '?'} ms: ${classification.summary}`,
      retryable: false,
      data: redactDeep({ classification, waitedMs, queueTimeoutMs: claim.queueTimeoutMs, ...(toolErr?.data ? { tool: toolErr.data } : {}) }),
    };
    return { outcome: 'failed', error, artifacts: [], hangReport, abortCause: 'queue_timeout', abandoned: s.kind === 'abandoned' };
  }
}

/**
 * Clears the timers and immediates cut inline attempts still have. Finding them takes a heap scan
 * (inspect.ts) that blocks the loop 100-300 ms, so it runs once the attempts' ends have been
 * written (the worker's flush runs in this turn's immediates), and one scan serves every attempt
 * cut in the same moment.
 */
const toClear = new Map<StepForensics, (cleared: number) => void>();
let clearScheduled = false;

function clearTimersSoon(fx: StepForensics, done: (cleared: number) => void): void {
  if (!fx.capture) return;
  toClear.set(fx, done);
  if (clearScheduled) return;
  clearScheduled = true;
  setTimeout(() => {
    clearScheduled = false;
    const batch = [...toClear];
    toClear.clear();
    const scan = scanTimers(Date.now(), { fresh: true });
    for (const [f, report] of batch) {
      const timers = scan?.byStep.get(f) ?? [];
      for (const t of timers) {
        if (t.kind === 'timeout') clearTimeout(t.timer as NodeJS.Timeout);
        else clearImmediate(t.timer as NodeJS.Immediate);
      }
      report(timers.length);
    }
  }, 10);
}

type Settled = { kind: 'fulfilled'; value: unknown } | { kind: 'rejected'; error: unknown } | { kind: 'abandoned'; graceMs: number };

/**
 * Waits for `work`; once `signal` aborts, waits at most `graceMs` more. A late settlement of an
 * abandoned promise is absorbed here (it has nobody left to report to).
 */
function settleOrAbandon(work: Promise<unknown>, signal: AbortSignal, graceMs: number): Promise<Settled> {
  return new Promise<Settled>((resolve) => {
    let graceTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      graceTimer = setTimeout(() => resolve({ kind: 'abandoned', graceMs }), graceMs);
    };
    const finish = (s: Settled): void => {
      if (graceTimer) clearTimeout(graceTimer);
      signal.removeEventListener('abort', onAbort);
      resolve(s);
    };
    work.then(
      (value) => finish({ kind: 'fulfilled', value }),
      (error: unknown) => finish({ kind: 'rejected', error }),
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
