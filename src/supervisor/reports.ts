/**
 * The hang reports and errors a supervisor writes for the attempts of a worker process it killed or
 * saw die: `loop.blocked` for the attempt whose code blocked the worker's event loop (with the
 * frames the watchdog captured), `worker.crashed` for every other attempt of a dead worker (with the
 * exit code or signal, the `process.exit` call site when a step made it, and the last lines the
 * worker wrote). Built with the forensics report builder, so they read like every other report;
 * the process facts are the worker's, not the supervisor's.
 */
import { fileURLToPath } from 'node:url';
import type { SerializedError } from '../domain/errors.ts';
import { fmtMs, type Classification } from '../forensics/classify.ts';
import { isUserFrame, parseFrames, type Frame } from '../forensics/frames.ts';
import { buildHangReport, type HangReport } from '../forensics/report.ts';
import type { StepRow } from '../store/store.ts';
import { blockingStep, stackLines } from './liveness.ts';
import type { ExitReport, StallReport } from './protocol.ts';

/** Why a worker process is gone. */
export type Departure =
  | { kind: 'stall_kill'; stall: StallReport | undefined; blockedSince: number; blockedMs: number; because: 'deadline' | 'bound' | 'write_lock'; boundMs: number }
  | { kind: 'crash'; code: number | null; signal: NodeJS.Signals | null; exit: ExitReport | undefined }
  | { kind: 'shutdown_kill'; signal: NodeJS.Signals | null; waitedMs: number };

/**
 * Why a worker process is gone, from what the supervisor had decided (a stall kill), asked (a
 * stop, a replacement) and saw (its exit). undefined: it stopped as asked, nothing to report.
 */
export function departureOf(
  x: { decided: Departure | undefined; recycling: boolean; stopAskedAt: number | undefined; code: number | null; signal: NodeJS.Signals | null; exit: ExitReport | undefined },
  now: number,
): Departure | undefined {
  const clean = x.code === 0 && x.signal === null;
  if (x.decided?.kind === 'stall_kill') return x.decided;
  if (x.recycling || x.stopAskedAt !== undefined) return clean ? undefined : { kind: 'shutdown_kill', signal: x.signal, waitedMs: x.stopAskedAt !== undefined ? now - x.stopAskedAt : 0 };
  return { kind: 'crash', code: x.code, signal: x.signal, exit: x.exit };
}

/** The classification a slot's last exit shows. */
export function exitClassification(d: Departure | undefined): string {
  if (d === undefined) return 'stopped';
  return d.kind === 'stall_kill' ? 'loop.blocked' : d.kind === 'crash' ? 'worker.crashed' : 'worker.killed';
}

export interface WorkerFacts {
  pid: number;
  slot: number;
  lastLines: string[];
  /** Last numbers the worker reported before it went (loop delay, memory). */
  lastBeat?: { loopDelayP99Ms: number; rssBytes: number; heapUsedBytes: number } | undefined;
}

/** The blocked system call in words, for a native stall: `execSync("sleep 600"), in system call wait4 (kernel wait: do_wait)`. */
export function nativeWhere(r: StallReport | undefined): string {
  if (!r?.native) return '';
  const call = r.syncCall?.call;
  const os = r.os;
  const sys = os?.syscall ? `system call ${os.syscall}${os.fd ? ` on ${os.fd}` : ''}${os.wchan ? ` (kernel wait: ${os.wchan})` : ''}` : '';
  return [call, sys].filter(Boolean).join(', in ');
}

function firstUserFrame(lines: string | string[]): Frame | undefined {
  return parseFrames(Array.isArray(lines) ? lines.join('\n') : lines).find(isUserFrame);
}

function shortWhere(f: Frame | undefined): string {
  if (!f) return '';
  let file = f.file;
  if (file.startsWith('file://')) file = fileURLToPath(file);
  return `${f.fn ? `${f.fn} ` : ''}(${file}:${f.line}:${f.column})`;
}

function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code ?? '?'}`;
}

/** The classification of what happened, from the point of view of one attempt of the worker. */
export function classify(d: Departure, step: { runId: string; stepName: string; attempt: number; tool: string }, culprit: boolean, pid: number): Classification {
  if (d.kind === 'stall_kill') {
    const s = d.stall;
    const where = s ? shortWhere(firstUserFrame(stackLines(s.frames))) : '';
    const why =
      d.because === 'deadline'
        ? `once the step's deadline had passed`
        : d.because === 'write_lock'
          ? 'at once: it held the database write lock, which every other process was waiting on'
          : `when the block outlasted the ${fmtMs(d.boundMs)} bound (loopKillMs)`;
    if (culprit) {
      const native = nativeWhere(s);
      const inNative = s?.native ? (native ? ` inside ${native}` : ' inside a system call (no JavaScript frame could be captured)') : '';
      return {
        code: 'loop.blocked',
        summary: `tool "${step.tool}" blocked the worker's event loop for ${fmtMs(d.blockedMs)}${where ? ` at ${where}` : ''}${inNative}; the worker (pid ${pid}) was killed ${why} and replaced`,
      };
    }
    const blamed = blockingStep(s);
    const native = nativeWhere(s);
    const who = blamed ? `step "${blamed.stepName}" (run ${blamed.runId})` : s?.native ? `a system call (${native || 'a lock wait, execSync, a blocking read'})` : 'code that could not be tied to a step';
    return {
      code: 'worker.crashed',
      summary: `the worker (pid ${pid}) running this step was killed: ${who} blocked its event loop for ${fmtMs(d.blockedMs)}${where ? ` at ${where}` : ''}; this step is retried elsewhere`,
    };
  }
  if (d.kind === 'shutdown_kill') {
    return { code: 'worker.crashed', summary: `the worker (pid ${pid}) did not stop within ${fmtMs(d.waitedMs)} of being asked to and was killed by ${d.signal ?? 'SIGKILL'}` };
  }
  const e = d.exit;
  const how = exitText(d.code, d.signal);
  if (e?.step && e.step.runId === step.runId && e.step.stepName === step.stepName && e.step.attempt === step.attempt) {
    const where = shortWhere(firstUserFrame(e.stack));
    return { code: 'worker.crashed', summary: `tool "${step.tool}" called process.exit(${e.code})${where ? ` at ${where}` : ''}: the worker (pid ${pid}) ${how}` };
  }
  if (e?.step) {
    return { code: 'worker.crashed', summary: `the worker (pid ${pid}) running this step ${how}: step "${e.step.stepName}" (run ${e.step.runId}) called process.exit(${e.code})` };
  }
  const oom = d.signal === 'SIGABRT' || d.code === 134 ? ' (out of memory or a fatal error: see its last lines)' : '';
  const outside = d.signal === 'SIGKILL' ? ' from outside (not by its supervisor)' : '';
  return { code: 'worker.crashed', summary: `the worker (pid ${pid}) running this step ${how}${outside}${oom}` };
}

/** The hang report of one attempt of a departed worker. */
export function departureReport(d: Departure, step: StepRow, culprit: boolean, w: WorkerFacts, now = Date.now()): HangReport {
  const id = { runId: step.runId, stepName: step.name, attempt: step.attempts, tool: step.tool };
  const classification = classify(d, id, culprit, w.pid);
  const startedAt = step.startedAt ? Date.parse(step.startedAt) : now;
  const notes: string[] = [];
  let capturedStack: string[] | undefined;
  const section: Record<string, unknown> = { pid: w.pid, slot: w.slot };
  if (d.kind === 'stall_kill') {
    Object.assign(section, { blockedMs: d.blockedMs, blockedSince: new Date(d.blockedSince).toISOString(), killedBecause: d.because });
    if (d.stall) {
      Object.assign(section, { captureMs: d.stall.captureMs, inTransaction: d.stall.inTransaction, blockingStep: blockingStep(d.stall), runningStep: d.stall.step });
      if (d.stall.frames.length > 0) capturedStack = stackLines(d.stall.frames);
      if (d.stall.native) {
        notes.push('the event loop was blocked inside a system call (execSync, a blocking read, a lock wait): the inspector could not pause it, so no JavaScript frame is known');
        if (d.stall.syncCall) Object.assign(section, { syncCall: d.stall.syncCall });
        if (d.stall.os) Object.assign(section, { os: d.stall.os });
      }
    } else {
      notes.push('the watchdog sent no report (the whole process was frozen, e.g. stopped or swapping): only the missing heartbeats are known');
    }
    if (!culprit) notes.push(blockingStep(d.stall) ? 'this attempt was not the cause: it was running on the same worker process' : 'the block could not be pinned on the code of any step');
  } else if (d.kind === 'crash') {
    Object.assign(section, { exit: { code: d.code, signal: d.signal } });
    const e = d.exit;
    if (e) {
      const own = e.step !== null && e.step.runId === step.runId && e.step.stepName === step.name && e.step.attempt === step.attempts;
      if (own || !e.step) capturedStack = e.stack.split('\n').slice(1);
      Object.assign(section, { exitCalledBy: e.step });
    }
  } else {
    Object.assign(section, { exit: { signal: d.signal }, waitedMs: d.waitedMs });
  }
  if (w.lastBeat) Object.assign(section, { lastReported: w.lastBeat });
  notes.push('process facts (resources, config) are those of the supervisor; the worker section and last lines are the worker process\'s');
  const report = buildHangReport({
    trigger: d.kind === 'stall_kill' ? 'stall' : 'lost',
    step: { ...id, timeoutMs: step.timeoutMs, startedAt },
    classification,
    ...(capturedStack ? { capturedStack } : {}),
    settled: 'unknown',
    lastLogs: w.lastLines,
    notes,
    now,
  });
  // Shaped for readers that look for them by these names (and for `runwarden report`).
  report.worker = section;
  report.workerPid = w.pid;
  if (d.kind !== 'stall_kill') report.exit = { code: d.kind === 'crash' ? d.code : null, signal: d.signal };
  report.lastLines = report.lastLogs;
  return report;
}

/** The error recorded on the attempt. */
export function departureError(d: Departure, c: Classification, culprit: boolean, pid: number): SerializedError {
  const code = d.kind === 'stall_kill' && culprit ? 'LOOP_BLOCKED' : 'WORKER_CRASHED';
  return {
    code,
    message: c.summary,
    retryable: true,
    data: {
      classification: c,
      workerPid: pid,
      ...(d.kind === 'crash' ? { exit: { code: d.code, signal: d.signal } } : {}),
      ...(d.kind === 'stall_kill' ? { blockedMs: d.blockedMs } : {}),
    },
  };
}
