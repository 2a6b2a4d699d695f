/**
 * Runs one attempt of one step under its deadline. The step's AbortSignal fires at the deadline; a
 * tool that has not settled `abortGraceMs` later is abandoned and the attempt ends `timed_out`
 * anyway, recorded as having ignored its abort. Nothing a tool does can keep its attempt open.
 */
import { RunwardenError, toRunwardenError, type SerializedError } from '../domain/errors.ts';
import type { AttemptOutcome, ClaimedStep } from '../engine/core.ts';
import { newArtifactId } from '../engine/ids.ts';
import type { NewArtifact } from '../store/store.ts';
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

export class StepRun {
  readonly claim: ClaimedStep;
  readonly controller = new AbortController();
  abortCause: AbortCause | null = null;
  readonly startedAt = Date.now();
  lastCheckpoint: { label: string; at: number } | null = null;
  readonly tracked = new Map<number, { label: string; since: number }>();
  readonly lastLogs: string[] = [];
  readonly #artifacts: NewArtifact[] = [];
  readonly #record: (type: string, data: Record<string, unknown>) => void;
  #trackSeq = 0;

  constructor(claim: ClaimedStep, record: (type: string, data: Record<string, unknown>) => void) {
    this.claim = claim;
    this.#record = record;
  }

  abort(cause: AbortCause): void {
    if (this.controller.signal.aborted) return;
    this.abortCause = cause;
    const message =
      cause === 'deadline' ? `step deadline of ${this.claim.timeoutMs} ms exceeded` : cause === 'cancelled' ? 'run cancelled' : `attempt aborted: ${cause}`;
    this.controller.abort(new DOMException(message, cause === 'deadline' ? 'TimeoutError' : 'AbortError'));
  }

  record(type: string, data: Record<string, unknown>): void {
    this.#record(type, data);
  }

  context(): ToolContext {
    const logAt =
      (level: 'info' | 'warn' | 'error') =>
      (message: string, data?: Record<string, unknown>): void => {
        const text = String(message);
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
          return ref;
        },
        list: () => refs,
      },
      checkpoint: (label) => {
        this.lastCheckpoint = { label: String(label), at: Date.now() };
      },
      track: <T>(label: string, promise: Promise<T>): Promise<T> => {
        const id = ++this.#trackSeq;
        this.tracked.set(id, { label: String(label), since: Date.now() });
        const done = (): void => {
          this.tracked.delete(id);
        };
        promise.then(done, done);
        return promise;
      },
      emit: (type, data) => this.record(type, data),
    };
  }

  /** Executes the tool; never rejects. */
  async execute(tools: ToolRegistry, graceMs: number): Promise<AttemptResult> {
    const { claim } = this;
    const timer = setTimeout(() => this.abort('deadline'), Math.max(0, claim.deadlineAt - Date.now()));
    try {
      const def = tools.get(claim.tool);
      if (!def) return this.#failed(new RunwardenError('UNKNOWN_TOOL', `tool "${claim.tool}" is not loaded in this worker`, { retryable: true }));
      const checked = await tools.validate(claim.tool, claim.inputs);
      if (!checked.ok) {
        return this.#failed(
          new RunwardenError('INPUT_INVALID', `inputs rejected by ${claim.tool}: ${checked.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`, {
            retryable: false,
          }),
        );
      }
      const scope: StepScope = { runId: claim.runId, stepName: claim.stepName, attempt: claim.attempt, tool: claim.tool, record: (t, d) => this.record(t, d) };
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
        return this.#failed(new RunwardenError('OUTPUT_INVALID', `tool output is not JSON: ${(err as Error).message}`, { retryable: false }));
      }
      return { outcome: 'succeeded', outputs, artifacts: this.#artifacts, hangReport: null, abortCause: null };
    }
    if (cause === null && s.kind === 'rejected') return this.#failed(toRunwardenError(s.error));
    if (cause === 'cancelled') {
      return { outcome: 'cancelled', error: { code: 'CANCELLED', message: 'run cancelled', retryable: false }, artifacts: [], hangReport: null, abortCause: cause };
    }
    if (cause === 'deadline') return this.#timedOut(s);
    // shutdown / lease lost: the caller hands the step back or drops it.
    return { outcome: 'failed', error: { code: 'ABORTED', message: `attempt aborted: ${cause}`, retryable: true }, artifacts: [], hangReport: null, abortCause: cause };
  }

  #timedOut(s: Settled): AttemptResult {
    const { claim } = this;
    const abandoned = s.kind === 'abandoned';
    const toolErr = s.kind === 'rejected' ? toRunwardenError(s.error) : null;
    // A tool that knows why it was stuck (an LLM provider naming the phase) says so in its error.
    const toolClass = toolErr?.data?.classification as { code: string; summary: string } | undefined;
    const classification = abandoned
      ? {
          code: 'handler.ignored_abort',
          summary: `tool "${claim.tool}" did not settle within ${s.graceMs} ms after its signal aborted at the ${claim.timeoutMs} ms deadline; the attempt was abandoned`,
        }
      : (toolClass ?? {
          code: 'deadline.exceeded',
          summary: `tool "${claim.tool}" was still running at its ${claim.timeoutMs} ms deadline and stopped when its signal aborted`,
        });
    const error: SerializedError = {
      code: toolClass ? toolClass.code : 'STEP_TIMEOUT',
      message: toolClass ? toolClass.summary : `step exceeded its ${claim.timeoutMs} ms deadline`,
      retryable: true,
      data: { classification, timeoutMs: claim.timeoutMs, ignoredAbort: abandoned, ...(toolErr?.data ? { tool: toolErr.data } : {}) },
    };
    const hangReport: Record<string, unknown> = {
      classification,
      tool: claim.tool,
      attempt: claim.attempt,
      timeoutMs: claim.timeoutMs,
      ranMs: Date.now() - this.startedAt,
      ignoredAbort: abandoned,
      lastCheckpoint: this.lastCheckpoint,
      tracked: [...this.tracked.values()].map((t) => ({ label: t.label, pendingMs: Date.now() - t.since })),
      lastLogs: [...this.lastLogs],
      ...(toolErr?.data ? { operation: toolErr.data } : {}),
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
