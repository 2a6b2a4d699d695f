/**
 * Runs one attempt of one step under its deadline. The step's AbortSignal fires at the deadline; a
 * tool that has not settled `abortGraceMs` later is abandoned and the attempt ends `timed_out`
 * anyway, recorded as having ignored its abort. Nothing a tool does can keep its attempt open:
 * child processes it started are killed with it (SIGTERM at the abort, SIGKILL a grace later).
 *
 * Forensics: the attempt's pending operations are snapshotted the moment before its signal aborts
 * (the abort tears them down), and a timed-out attempt gets a hang report built from that snapshot.
 * Everything recorded (events, log lines, errors, reports) is redacted on the way out.
 */
import { RunwardenError, toRunwardenError, type SerializedError } from '../domain/errors.ts';
import type { AttemptOutcome, ClaimedStep } from '../engine/transitions.ts';
import { newArtifactId } from '../engine/ids.ts';
import { enableForensicsByDefault, forensicsEnabled, installForensics } from '../forensics/channels.ts';
import { buildHangReport, type ReportTrigger } from '../forensics/report.ts';
import { installRedaction, redactDeep, redactText } from '../forensics/redact.ts';
import { StepForensics, type Snapshot } from '../forensics/step.ts';
import type { TextDelta } from '../domain/records.ts';
import type { NewArtifact } from '../store/store.ts';
import { DeltaCoalescer } from '../streaming/coalesce.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import type { ArtifactRef, StepLogger, ToolContext } from '../tools/types.ts';
import { stepContext, type StepScope } from './context.ts';
import { mimeFor } from './mime.ts';

export type AbortCause = 'deadline' | 'cancelled' | 'shutdown' | 'lease_lost';

export interface AttemptResult {
  outcome: AttemptOutcome;
  outputs?: unknown;
  error?: SerializedError;
  artifacts: NewArtifact[];
  hangReport: Record<string, unknown> | null;
  /** Why the attempt was aborted, if it was. 'shutdown' and 'lease_lost' results are not recorded. */
  abortCause: AbortCause | null;
}

const LAST_LOGS = 20;

installRedaction();
installForensics({ storage: stepContext, select: (scope) => scope.forensics });

export class StepRun {
  readonly claim: ClaimedStep;
  readonly controller = new AbortController();
  abortCause: AbortCause | null = null;
  readonly startedAt = Date.now();
  readonly lastLogs: string[] = [];
  readonly forensics: StepForensics;
  readonly #artifacts: NewArtifact[] = [];
  readonly #record: (type: string, data: Record<string, unknown>) => void;
  #graceMs = 1000;
  /** Pending operations the moment before the signal aborted. */
  #atAbort: Snapshot | undefined;
  /** Text the tool streams (`ctx.streamText`), published as coalesced `llm.delta` frames. */
  readonly #text: DeltaCoalescer | undefined;

  constructor(claim: ClaimedStep, record: (type: string, data: Record<string, unknown>) => void, publishText?: (d: TextDelta) => void) {
    this.claim = claim;
    this.#record = record;
    if (publishText) {
      this.#text = new DeltaCoalescer(claim, (d) => stepContext.exit(() => publishText(d)), { clean: redactText });
    }
    enableForensicsByDefault();
    this.forensics = new StepForensics(
      { runId: claim.runId, stepName: claim.stepName, attempt: claim.attempt, tool: claim.tool },
      { capture: forensicsEnabled(), startedAt: this.startedAt },
    );
  }

  abort(cause: AbortCause): void {
    if (this.controller.signal.aborted) return;
    this.abortCause = cause;
    this.#atAbort = this.forensics.snapshot();
    const message =
      cause === 'deadline' ? `step deadline of ${this.claim.timeoutMs} ms exceeded` : cause === 'cancelled' ? 'run cancelled' : `attempt aborted: ${cause}`;
    this.controller.abort(new DOMException(message, cause === 'deadline' ? 'TimeoutError' : 'AbortError'));
    // Children the tool did not tie to its signal: stop them now, so a tool awaiting one can settle.
    this.forensics.onAbort(this.#graceMs);
  }

  /**
   * Records an event on the step, redacted, outside the step's async context: the worker's store
   * writes that follow must not be attributed to (or tracked as) the step's own operations.
   */
  record(type: string, data: Record<string, unknown>): void {
    this.forensics.noteActivity(type === 'step.log' && typeof data.message === 'string' ? `log line "${data.message.slice(0, 80)}"` : `event ${type}`);
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
    return {
      signal: this.controller.signal,
      deadline: this.claim.deadlineAt,
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
      checkpoint: (label) => this.forensics.setCheckpoint(label),
      track: <T>(label: string, promise: Promise<T>): Promise<T> => this.forensics.track(label, promise),
      emit: (type, data) => this.record(type, data),
      ...(this.#text ? { streamText: (text: string, call?: number) => this.#text?.push(String(text), call) } : {}),
    };
  }

  /** Executes the tool; never rejects. */
  async execute(tools: ToolRegistry, graceMs: number): Promise<AttemptResult> {
    const { claim } = this;
    this.#graceMs = graceMs;
    const timer = setTimeout(() => this.abort('deadline'), Math.max(0, claim.deadlineAt - Date.now()));
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
        record: (t, d) => this.record(t, d),
        forensics: this.forensics,
      };
      const ctx = this.context();
      // The tool runs inside the step's async context; a synchronous throw becomes a rejection.
      const work = stepContext.run(scope, () => Promise.resolve().then(() => def.run(ctx, checked.value)));
      const settled = await settleOrAbandon(work, this.controller.signal, graceMs);
      return this.#result(settled);
    } catch (err) {
      // Only engine code above can throw here (tool errors are captured by settleOrAbandon).
      return this.#failed(toRunwardenError(err, 'WORKER_ERROR'));
    } finally {
      clearTimeout(timer);
      // Published before the completion is even queued, so a follower sees the text before step.finished.
      this.#text?.close();
      // Nothing the attempt started may outlive it.
      for (const child of this.forensics.dispose(graceMs)) {
        this.record('step.log', { level: 'warn', message: `killed child process ${child.command} (pid ${child.proc.pid}): still running when the attempt ended` });
      }
    }
  }

  #failed(err: RunwardenError): AttemptResult {
    return { outcome: 'failed', error: err.toJSON(), artifacts: [], hangReport: null, abortCause: this.abortCause };
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
      return { outcome: 'succeeded', outputs, artifacts: this.#artifacts, hangReport: null, abortCause: null };
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
      return { outcome: 'cancelled', error: { code: 'CANCELLED', message: 'run cancelled', retryable: false }, artifacts: [], hangReport: null, abortCause: cause };
    }
    if (cause === 'deadline') return this.#timedOut(s);
    // shutdown / lease lost: the caller hands the step back or drops it. A tool that ignored that
    // abort still gets a report (the caller decides whether it can be stored).
    const hangReport = s.kind === 'abandoned' && cause !== null ? this.#report(cause, s) : null;
    return { outcome: 'failed', error: { code: 'ABORTED', message: `attempt aborted: ${cause}`, retryable: true }, artifacts: [], hangReport, abortCause: cause };
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
    return (error as { name?: unknown } | null)?.name === 'TimeoutError' && Date.now() >= this.claim.deadlineAt - 5;
  }

  #report(trigger: ReportTrigger, s: Settled, toolErr?: RunwardenError | null): Record<string, unknown> {
    const { claim } = this;
    return buildHangReport({
      trigger,
      step: { runId: claim.runId, stepName: claim.stepName, attempt: claim.attempt, tool: claim.tool, timeoutMs: claim.timeoutMs, startedAt: this.startedAt },
      forensics: this.forensics,
      ...(this.#atAbort ? { snapshot: this.#atAbort } : {}),
      settled: s.kind,
      graceMs: this.#graceMs,
      toolError: toolErr ? { ...(toolErr.data ? { data: toolErr.data } : {}) } : null,
      lastLogs: this.lastLogs,
    });
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
    return { outcome: 'timed_out', error, artifacts: [], hangReport, abortCause: 'deadline' };
  }
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
