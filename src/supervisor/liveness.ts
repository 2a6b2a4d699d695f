/**
 * When a supervised worker is stalled, whose fault it is, and when it must be killed: pure
 * functions of what the supervisor knows (heartbeats, the watchdog's report, the deadlines of the
 * steps the worker holds), tested without processes (test/supervisor/liveness.test.ts).
 */
import { isUserFrame, parseFrames } from '../forensics/frames.ts';
import type { CapturedFrame, StallReport } from './protocol.ts';

/**
 * A block that cannot be pinned on a step's code (a system call such as a wait for the SQLite lock
 * another process holds, runwarden's own code, a process stopped as a whole) gets this long, at
 * most, before the worker is killed, unless a deadline of a step there comes first: killing a
 * worker that waits on another's lock helps nobody, and SQLite gives up waiting after its 5 s busy
 * timeout.
 */
export const UNPINNED_KILL_MS = 10_000;

export function stackLines(frames: readonly CapturedFrame[]): string[] {
  return frames.map((f) => `    at ${f.fn || '<anonymous>'} (${f.url}:${f.line}:${f.column})`);
}

/**
 * The step a stall is the fault of: the one whose context was running, provided the thread was in
 * its code (the first frame outside Node's internals is user code), or the one inside a blocking
 * synchronous call (execSync, readFileSync of a FIFO) when the thread was caught in a system call.
 * Not a step whose tool was waiting inside runwarden's store (a SQLite lock another process holds),
 * nor a system call no step made, nor runwarden's own code.
 */
export function blockingStep(r: StallReport | undefined): StallReport['step'] {
  if (!r) return null;
  if (r.native && r.syncCall) {
    const c = r.syncCall;
    return { runId: c.runId, stepName: c.stepName, attempt: c.attempt, tool: c.tool, ...(c.deadlineAt !== undefined ? { deadlineAt: c.deadlineAt } : {}) };
  }
  if (!r.step || r.frames.length === 0) return null;
  const first = parseFrames(stackLines(r.frames).join('\n')).find((f) => !f.file.startsWith('node:'));
  return first && isUserFrame(first) ? r.step : null;
}

/** How long a block may last before its worker is killed. */
export function killBound(r: StallReport | undefined, loopKillMs: number): number {
  return blockingStep(r) ? loopKillMs : Math.max(loopKillMs, UNPINNED_KILL_MS);
}

/**
 * When a stalled worker is due to be killed, and why: its bound; the blocking step's deadline, if
 * that comes first; and, for a block pinned on no step, the earliest deadline (plus the abort
 * grace) of the steps running there: a worker that cannot stop them must not keep them past it.
 */
export function killDue(
  stall: { since: number; report: StallReport | undefined },
  loopKillMs: number,
  running: { steps: ReadonlyArray<{ deadlineAt?: number }>; graceMs: number } = { steps: [], graceMs: 0 },
): { at: number; because: 'deadline' | 'bound' } {
  const boundAt = stall.since + killBound(stall.report, loopKillMs);
  const blamed = blockingStep(stall.report);
  let deadline = blamed?.deadlineAt;
  if (!blamed) {
    const earliest = Math.min(...running.steps.map((s) => s.deadlineAt ?? Number.POSITIVE_INFINITY));
    if (Number.isFinite(earliest)) deadline = earliest + running.graceMs;
  }
  return deadline !== undefined && deadline < boundAt ? { at: deadline, because: 'deadline' } : { at: boundAt, because: 'bound' };
}

/** What the supervisor knows of one live worker process, for `liveness()`. */
export interface LivenessFacts {
  state: 'starting' | 'running' | 'stalled' | 'killing' | 'stopping' | 'restarting' | 'stopped';
  startedAt: number;
  lastBeatAt: number;
  stall: { since: number; report: StallReport | undefined; deadlines?: readonly number[] } | undefined;
  /** Steps its last heartbeat listed. */
  beatSteps: ReadonlyArray<{ deadlineAt?: number }>;
  /** A kill was already decided. */
  killing: boolean;
}

export interface LivenessLimits {
  loopStallMs: number;
  loopKillMs: number;
  abortGraceMs: number;
  /** Heartbeat period to the supervisor. */
  reportMs: number;
  /** A worker not ready this long after its start is killed. */
  startTimeoutMs: number;
}

export type LivenessVerdict =
  | { kind: 'ok' }
  | { kind: 'start_timeout' }
  /** Heartbeats stopped with no watchdog report: the whole process is frozen (stopped, swapping). */
  | { kind: 'silent'; since: number }
  | { kind: 'kill'; because: 'deadline' | 'bound' };

/** What to do about one worker now. */
export function liveness(w: LivenessFacts, limits: LivenessLimits, now: number): LivenessVerdict {
  if (w.killing) return { kind: 'ok' };
  if (w.state === 'starting') return now - w.startedAt > limits.startTimeoutMs ? { kind: 'start_timeout' } : { kind: 'ok' };
  if (w.state === 'stopping' || w.state === 'restarting' || w.state === 'stopped') return { kind: 'ok' };
  // Beats come every reportMs; the watchdog reports a block after loopStallMs. Silence well past
  // both, without a watchdog report, means the process is frozen or its watchdog is gone.
  if (!w.stall) return now - w.lastBeatAt > limits.loopStallMs + 4 * limits.reportMs ? { kind: 'silent', since: w.lastBeatAt } : { kind: 'ok' };
  const known = [...w.beatSteps, ...(w.stall.deadlines ?? []).map((deadlineAt) => ({ deadlineAt }))];
  const due = killDue(w.stall, limits.loopKillMs, { steps: known, graceMs: limits.abortGraceMs });
  return now >= due.at ? { kind: 'kill', because: due.because } : { kind: 'ok' };
}
