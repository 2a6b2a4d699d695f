/**
 * Hang reports: what a stuck attempt was waiting on, where in the user's code, and the state of the
 * process around it. `buildHangReport` is the one builder; the worker calls it when an attempt times
 * out or is abandoned, and the supervisor (src/supervisor/reports.ts: `loop.blocked`,
 * `worker.crashed`) calls it with its own classification and the stack it captured from outside.
 * `lostAttemptReport` is what the reaper can say about an attempt whose worker vanished.
 *
 * Every report is redacted as a whole before it leaves this module.
 */
import { classifyOp, fmtMs, primaryOp, type Classification } from './classify.ts';
import { formatFrame, frameLocation, parseFrames, isUserFrame, userFrames, type Frame, type SourceLocation } from './frames.ts';
import { functionLocation, scanTimers, type PendingTimer } from './inspect.ts';
import { loopMonitor, type LoopWindow } from './loop.ts';
import type { OpView } from './ops.ts';
import type { QueueTimeoutFacts, WaitTimeoutFacts } from '../domain/hang-report.ts';
import { redactDeep } from './redact.ts';
import { configSnapshotForReport, processResources, type ProcessResources } from './resources.ts';
import type { OpSample, Snapshot, StepForensics, StepIdentity } from './step.ts';

export type { Classification } from './classify.ts';

/**
 * Why the report was written: the step's deadline; a time limit inside the tool (an LLM call's
 * headers or idle limit); a cancellation, worker shutdown or lost lease the tool ignored; a lost attempt (reaper);
 * a stalled worker (supervisor).
 */
export type ReportTrigger = 'deadline' | 'queue_timeout' | 'limit' | 'cancel' | 'shutdown' | 'lease_lost' | 'lost' | 'stall';

export interface PendingOpReport extends OpView {
  /** The first user-code frame of the call that started it. */
  frame?: string;
  /** The operation was still pending when the attempt was abandoned (the abort did not stop it). */
  outlivedAbort?: boolean;
}

export interface HangReport {
  version: 1;
  classification: Classification;
  trigger: ReportTrigger;
  runId: string;
  stepName: string;
  tool: string;
  attempt: number;
  /** Where the step was stuck: the user-code line of the blocking operation, checkpoint or tool. */
  where: (SourceLocation & { source: string }) | null;
  toolLocation: SourceLocation | null;
  timeoutMs: number;
  ranMs: number;
  ignoredAbort: boolean;
  /** User-code frames of the blocking operation (or of the captured stack), innermost first. */
  frames: string[];
  /** Every operation the step had pending when it was stopped. */
  pending: PendingOpReport[];
  /** Timers the step still had when it was abandoned (only looked for when nothing else explains it). */
  timers?: Array<{ kind: 'timeout' | 'immediate'; delayMs: number; repeat: boolean; callback?: string }>;
  /** What the tool did after its signal aborted. */
  afterAbort?: string[];
  lastCheckpoint: { label: string; msBeforeReport: number; frame?: string } | null;
  eventLoop: LoopWindow | null;
  resources: ProcessResources;
  config: Record<string, unknown>;
  lastLogs: string[];
  /** What the tool's own error said about the operation (LLM phase, provider, bytes ...). */
  operation?: Record<string, unknown>;
  /** What this report could not know, said plainly. */
  notes: string[];
  [key: string]: unknown;
}

export interface HangReportInput {
  trigger: ReportTrigger;
  step: StepIdentity & { timeoutMs: number; startedAt: number };
  /** Given from outside (a supervisor: loop.blocked, worker.crashed); wins over anything derived. */
  classification?: Classification;
  /** A stack captured from outside (Debugger.pause frames, a crash): formatted lines or V8 text. */
  capturedStack?: string | string[];
  forensics?: StepForensics;
  /** The tool's run function, for where it is defined (when there is no `forensics` to ask). */
  toolFn?: unknown;
  /** The pending operations at the moment that matters (before the abort tore them down). */
  snapshot?: Snapshot;
  /** How the tool's promise ended. */
  settled?: 'fulfilled' | 'rejected' | 'abandoned' | 'unknown';
  graceMs?: number;
  /** The tool's error, when it gave one (LLM errors carry `classification` and phase data). */
  toolError?: { data?: Record<string, unknown> } | null;
  lastLogs?: readonly string[];
  notes?: string[];
  now?: number;
}

const MAX_PENDING = 50;

function firstUserFrame(s: OpSample): Frame | undefined {
  return userFrames(s.op.stack, 1)[0];
}

function toolClassification(toolError: HangReportInput['toolError']): Classification | undefined {
  const c = toolError?.data?.classification as Partial<Classification> | undefined;
  return c && typeof c.code === 'string' ? { code: c.code, summary: typeof c.summary === 'string' ? c.summary : c.code } : undefined;
}

function timersOf(fx: StepForensics | undefined): PendingTimer[] | null {
  if (!fx) return null;
  const scan = scanTimers(fx.abortedAt);
  return scan ? (scan.byStep.get(fx) ?? []) : null;
}

/** What a step's pending timers say: still waiting (a timeout), or still working (an immediate). */
function describeTimers(found: readonly PendingTimer[]): string {
  const immediates = found.filter((t) => t.kind === 'immediate').length;
  if (immediates > 0) return `it was still working: it had ${immediates === 1 ? 'a setImmediate callback' : `${immediates} setImmediate callbacks`} queued (code running in slices)`;
  const first = found[0] as PendingTimer;
  return `it still had ${found.length === 1 ? `a ${fmtMs(first.delayMs)} timer` : `${found.length} timers`} pending${first.repeat ? ' (repeating)' : ''}`;
}

export function buildHangReport(input: HangReportInput): HangReport {
  const now = input.now ?? Date.now();
  const { step, forensics: fx } = input;
  const taken = input.snapshot ?? fx?.snapshot(now) ?? { at: now, ops: [] };
  const snap: Snapshot = { at: taken.at, ops: taken.ops.map((s) => ({ op: s.op, view: { ...s.view, ...s.op.lateFacts() } })) };
  const abandoned = input.settled === 'abandoned';
  const grace = input.graceMs ?? 0;
  const notes = [...(input.notes ?? [])];
  const moment =
    input.trigger === 'deadline'
      ? `at the ${fmtMs(step.timeoutMs)} deadline`
      : input.trigger === 'queue_timeout'
        ? 'when it had waited its queueTimeoutMs for capacity'
        : input.trigger === 'shutdown'
        ? 'when the worker shut down'
        : input.trigger === 'cancel'
          ? 'when its run was cancelled'
          : input.trigger === 'limit'
            ? 'when its time limit fired'
            : 'when its lease was lost';
  const toolFn = fx?.toolFn ?? input.toolFn;
  const toolLoc = toolFn ? (functionLocation(toolFn) ?? null) : null;

  let classification = input.classification ?? toolClassification(input.toolError);
  const primary = primaryOp(snap.ops);
  let where: HangReport['where'] = null;
  let frames: string[] = [];
  let timers: HangReport['timers'];

  if (input.capturedStack !== undefined) {
    const lines = Array.isArray(input.capturedStack) ? input.capturedStack : [input.capturedStack];
    const parsed = lines.flatMap((l) => parseFrames(l.startsWith('    at') || l.includes('\n') ? l : `    at ${l}`));
    const user = parsed.filter(isUserFrame);
    frames = user.length > 0 ? user.map(formatFrame) : lines.slice(0, 20);
    if (user[0]) where = { ...frameLocation(user[0]), source: 'captured stack' };
  }

  if (primary) {
    const f = firstUserFrame(primary);
    if (!where && f) where = { ...frameLocation(f), source: `${primary.view.kind} started here` };
    if (frames.length === 0) frames = userFrames(primary.op.stack).map(formatFrame);
    if (!classification) {
      const c = classifyOp(primary.view);
      classification = {
        code: c.code,
        summary: `${c.summary}${abandoned ? `; the tool ignored its abort and was abandoned ${fmtMs(grace)} later` : ''}`,
      };
    }
  } else if (!classification) {
    if (abandoned) {
      const found = fx && fx.afterAbort.length === 0 ? timersOf(fx) : null;
      const base = `tool "${step.tool}" did not settle within ${fmtMs(grace)} after its signal aborted ${moment}`;
      if (fx && fx.afterAbort.length > 0) {
        classification = { code: 'handler.ignored_abort', summary: `${base}; it kept working (${fx.afterAbort[0]})` };
      } else if (found && found.length > 0) {
        timers = found.slice(0, 20).map((t) => {
          const loc = functionLocation(t.callback);
          return { kind: t.kind, delayMs: t.delayMs, repeat: t.repeat, ...(loc ? { callback: `${loc.file}:${loc.line}:${loc.column}` } : {}) };
        });
        const first = found[0] as PendingTimer;
        const loc = functionLocation(first.callback);
        if (loc) where = { ...loc, source: 'pending timer callback' };
        classification = {
          code: 'handler.ignored_abort',
          summary: `${base}; ${describeTimers(found)}`,
        };
      } else if (found) {
        const cp = fx?.checkpoint;
        classification = {
          code: 'promise.never_settled',
          summary: `tool "${step.tool}" awaited a promise nothing could settle: ${moment} it had no request, socket, child process, lock, tracked operation or timer pending${cp ? `; last checkpoint "${cp.label}" ${fmtMs(Math.max(0, snap.at - cp.at))} before` : '; it recorded no checkpoint'}`,
        };
      } else {
        notes.push('pending timers could not be checked (heap scan rate-limited or unavailable), so "never settled" could not be told from "still working"');
        classification = { code: 'handler.ignored_abort', summary: `${base}; no pending operation was seen` };
      }
    } else {
      classification = {
        code: 'deadline.exceeded',
        summary: `tool "${step.tool}" was still running ${moment} and stopped when its signal aborted; no tracked operation was pending`,
      };
    }
  }

  const cp = fx?.checkpoint ?? null;
  const cpFrame = cp ? userFrames(cp.stack, 1)[0] : undefined;
  if (!where && cpFrame) where = { ...frameLocation(cpFrame), source: `last checkpoint "${cp?.label}"` };
  if (frames.length === 0 && cp) frames = userFrames(cp.stack).map(formatFrame);
  if (!where && toolLoc) where = { ...toolLoc, source: `tool "${step.tool}" (its run function)` };
  if (fx && !fx.capture) notes.push('operation tracking was off for this attempt: pending requests, sockets and child processes were not recorded');

  const pending: PendingOpReport[] = snap.ops.slice(0, MAX_PENDING).map((s) => {
    const f = firstUserFrame(s);
    return { ...s.view, ...(f ? { frame: formatFrame(f) } : {}), ...(abandoned && s.op.live ? { outlivedAbort: true } : {}) };
  });
  if (snap.ops.length > MAX_PENDING) notes.push(`${snap.ops.length - MAX_PENDING} more pending operations not listed`);

  const report: HangReport = {
    version: 1,
    classification: classification ?? { code: 'unknown', summary: 'no evidence of what the step was waiting on' },
    trigger: input.trigger,
    runId: step.runId,
    stepName: step.stepName,
    tool: step.tool,
    attempt: step.attempt,
    where,
    toolLocation: toolLoc,
    timeoutMs: step.timeoutMs,
    ranMs: now - step.startedAt,
    ignoredAbort: abandoned,
    frames,
    pending,
    ...(timers ? { timers } : {}),
    ...(fx && fx.afterAbort.length > 0 ? { afterAbort: [...fx.afterAbort] } : {}),
    lastCheckpoint: cp ? { label: cp.label, msBeforeReport: now - cp.at, ...(cpFrame ? { frame: formatFrame(cpFrame) } : {}) } : null,
    eventLoop: loopMonitor.window(step.startedAt),
    resources: processResources(),
    config: configSnapshotForReport(),
    lastLogs: [...(input.lastLogs ?? [])],
    ...(input.toolError?.data ? { operation: input.toolError.data } : {}),
    notes,
  };
  return redactDeep(report);
}

/** What the reaper knows about the worker that held an expired lease (from the workers table). */
export interface LostWorkerInfo {
  id: string;
  pid?: number;
  host?: string;
  lastHeartbeatAt: string;
  info?: Record<string, unknown>;
}

export interface LostAttemptInput {
  runId: string;
  stepName: string;
  attempt: number;
  tool?: string;
  timeoutMs?: number;
  startedAt?: string | number | null;
  workerId: string | null;
  leaseExpiresAt: string | number | null;
  /** The worker's row, if it is still registered. */
  worker?: LostWorkerInfo | null;
  leaseMs?: number;
  now?: number;
}

/**
 * The report for a `lost` attempt, written by whoever reaps it. It can only say what the store
 * knows: which worker held the lease and when that worker last reported. What the step was doing
 * is known inside the worker process only: when a supervisor saw that process stall or die, it
 * reports the attempt itself (src/supervisor/reports.ts) and this report is not needed.
 */
export function lostAttemptReport(input: LostAttemptInput): HangReport {
  const now = input.now ?? Date.now();
  const t = (v: string | number | null | undefined): number | undefined => (v === null || v === undefined ? undefined : typeof v === 'number' ? v : Date.parse(v));
  const expired = t(input.leaseExpiresAt);
  const started = t(input.startedAt);
  const w = input.worker;
  const who = `worker ${input.workerId ?? '?'}`;
  let classification: Classification;
  if (!w) {
    classification = { code: 'worker.lost', summary: `${who} stopped renewing the lease${expired ? ` (expired ${fmtMs(now - expired)} ago)` : ''} and is no longer registered: it exited or crashed` };
  } else {
    const age = now - Date.parse(w.lastHeartbeatAt);
    const stale = age > (input.leaseMs ?? 3000);
    classification = stale
      ? {
          code: 'worker.lost',
          summary: `${who} (pid ${w.pid ?? '?'} on ${w.host ?? '?'}) last reported ${fmtMs(age)} ago: it crashed, was killed, or its event loop is blocked`,
        }
      : { code: 'lease.expired', summary: `${who} is still reporting (${fmtMs(age)} ago) but did not renew this lease (its store writes may be failing)` };
  }
  const report: HangReport = {
    version: 1,
    classification,
    trigger: 'lost',
    runId: input.runId,
    stepName: input.stepName,
    tool: input.tool ?? '?',
    attempt: input.attempt,
    ...unwatched(),
    timeoutMs: input.timeoutMs ?? 0,
    ranMs: started !== undefined ? now - started : 0,
    // The lost worker's own loop delay (at its last heartbeat) is in worker.info.loopDelayP99Ms.
    worker: w ? { id: w.id, pid: w.pid, host: w.host, lastHeartbeatAt: w.lastHeartbeatAt, info: w.info ?? {} } : { id: input.workerId, registered: false },
    notes: [
      'written by the reaper: the pending operations, frames and logs of the attempt lived in the worker process and are not known here',
      'resources and config are those of the reaping process, not of the lost worker',
    ],
  };
  return redactDeep(report);
}

/**
 * What a report written away from the step's code holds of it (the reaper, for a lost attempt or
 * an expired wait): no frames, operations, checkpoint, loop or logs of the step; the resources and
 * config of the writing process.
 */
function unwatched(): Pick<HangReport, 'where' | 'toolLocation' | 'ignoredAbort' | 'frames' | 'pending' | 'lastCheckpoint' | 'eventLoop' | 'resources' | 'config' | 'lastLogs'> {
  return { where: null, toolLocation: null, ignoredAbort: false, frames: [], pending: [], lastCheckpoint: null, eventLoop: null, resources: processResources(), config: configSnapshotForReport(), lastLogs: [] };
}

/**
 * The report of a queued step that was ready for longer than its queueTimeoutMs without starting
 * (written by the reaper): what held it (its concurrency key, or no free worker) and since when.
 */
export type QueueTimeoutInput = QueueTimeoutFacts;

export function queueTimeoutReport(input: QueueTimeoutInput): HangReport {
  const report: HangReport = {
    version: 1,
    classification: { code: 'queue.timeout', summary: input.summary },
    trigger: 'queue_timeout',
    runId: input.runId,
    stepName: input.stepName,
    tool: input.tool,
    attempt: input.attempt,
    ...unwatched(),
    timeoutMs: input.queueTimeoutMs,
    ranMs: 0,
    waitedFor: {
      since: new Date(input.since).toISOString(),
      waitedMs: input.now - input.since,
      queueTimeoutMs: input.queueTimeoutMs,
      ...(input.concurrency ? { concurrency: input.concurrency } : {}),
    },
    notes: [
      'written by the reaper: the step never started, so it has no stack, operation or log',
      input.concurrency
        ? `at most ${input.concurrency.limit} steps with the key "${input.concurrency.key}" run at once; raise its limit, or the step's queueTimeoutMs`
        : 'add workers (or concurrency) or raise the step\'s queueTimeoutMs',
    ],
  };
  return redactDeep(report);
}

export type WaitTimeoutInput = WaitTimeoutFacts;

/**
 * The report of a `wait` step whose signal did not come before its deadline (written by the
 * reaper, in whichever process found it): what it waited for and since when. No worker held the
 * step while it waited, so there is no stack, operation or log to show.
 */
export function waitTimeoutReport(input: WaitTimeoutInput): HangReport {
  const now = input.now;
  const since = new Date(input.since).toISOString();
  const report: HangReport = {
    version: 1,
    classification: {
      code: 'signal.timeout',
      summary: `waited for signal "${input.signal}" since ${since} (${fmtMs(now - input.since)}); none was sent before its ${fmtMs(input.deadlineAt - input.since)} deadline`,
    },
    trigger: 'deadline',
    runId: input.runId,
    stepName: input.stepName,
    tool: 'wait',
    attempt: input.attempt,
    ...unwatched(),
    timeoutMs: input.deadlineAt - input.since,
    ranMs: now - input.since,
    waitedFor: { signal: input.signal, since, deadlineAt: new Date(input.deadlineAt).toISOString() },
    notes: [
      'written by the reaper: the step held no worker while it waited, so it has no stack, operation or log',
      `send the signal with POST /runs/${input.runId}/signals/${input.signal} (runwarden signal) before the deadline; a rerun of this run waits again`,
    ],
  };
  return redactDeep(report);
}
