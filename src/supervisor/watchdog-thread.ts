/**
 * The watchdog: a worker thread inside each worker process that watches the main thread's heartbeat
 * (a counter the main thread bumps every `beatMs` in a SharedArrayBuffer). When the counter has not
 * moved for `stallMs`, the main thread's event loop is blocked: the thread pauses it through the
 * inspector (`Debugger.pause` over `connectToMainThread`), reads the blocking JavaScript frames and,
 * by evaluating a probe on the top frame, the step whose AsyncLocalStorage context was running and
 * whether a SQLite write transaction was open; it resumes the thread and writes a `stall` report to
 * the report pipe with `fs.writeSync` (the main thread, frozen, could not send anything). Measured on
 * Node 24: ~50 ms per capture, of which most is `Debugger.enable` replaying `scriptParsed` for every
 * loaded script. The debugger is enabled only for the capture: left on, it slows await-heavy code
 * ~2.5x.
 *
 * A thread inside a system call (execSync, a blocking read, a SQLite lock wait) cannot be paused:
 * the inspector's requests wait for it to return to JavaScript. After `NATIVE_WAIT_MS` the report
 * goes out without frames (`native: true`) and the session is dropped, so the queued pause cannot
 * freeze the thread later with nobody to resume it.
 *
 * It also watches the parent: if the supervisor dies while the main thread is frozen (so that the
 * main thread cannot notice the closed IPC channel), this thread kills the process, so that no
 * worker outlives its supervisor spinning on its own.
 */
import { writeSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { workerData } from 'node:worker_threads';
import { commandLine, openFiles, taskFacts, threadChildren } from '../forensics/procfs.ts';
import { readSyncCall } from '../worker/containment/sync-calls.ts';
import type { CapturedFrame, OsFacts, StallReport, StepRef } from './protocol.ts';
import { withTimeout } from '../time-limit.ts';

export interface WatchdogData {
  beat: SharedArrayBuffer;
  /** Where a step inside a blocking synchronous call is named (sync-calls.ts). */
  syncBoard: SharedArrayBuffer;
  stallMs: number;
  reportFd: number;
  /** The supervisor's pid when the worker started. */
  ppid: number;
  /** Name of the global function the probe expression calls on the paused frame. */
  probe: string;
}

/** How long the inspector gets to pause the main thread before it is taken to be in native code. */
const NATIVE_WAIT_MS = 400;
/** A process whose supervisor is gone gets this long to shut down by itself before the watchdog kills it. */
const ORPHAN_GRACE_MS = 10_000;
const MAX_FRAMES = 40;

const data = workerData as WatchdogData;
const beat = new Int32Array(data.beat);
const pollMs = Math.max(10, Math.min(100, Math.floor(data.stallMs / 5)));

let lastValue = Atomics.load(beat, 0);
let lastChange = Date.now();
let stalled: { since: number } | undefined;
let orphanedAt: number | undefined;

function write(obj: unknown): void {
  const buf = Buffer.from(`${JSON.stringify(obj)}\n`);
  let off = 0;
  const until = Date.now() + 1000;
  while (off < buf.length) {
    try {
      off += writeSync(data.reportFd, buf, off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A full pipe: the supervisor reads it continuously, so wait briefly; anything else (EPIPE:
      // the supervisor is gone) means nobody is listening, and there is nobody to tell.
      if (code === 'EAGAIN' && Date.now() < until) continue;
      return;
    }
  }
}


interface PausedFrame {
  callFrameId: string;
  functionName: string;
  url?: string;
  location: { scriptId: string; lineNumber: number; columnNumber: number };
}

interface Probe {
  step: StepRef | null;
  inTransaction: boolean;
}

async function capture(since: number): Promise<StallReport> {
  const t0 = Date.now();
  const session = new Session();
  const urls = new Map<string, string>();
  let frames: CapturedFrame[] = [];
  let probe: Probe = { step: null, inTransaction: false };
  let native = false;
  try {
    session.connectToMainThread();
    session.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url));
    const paused = new Promise<PausedFrame[]>((resolve) => session.once('Debugger.paused', (m) => resolve(m.params.callFrames as PausedFrame[])));
    await withTimeout(session.post('Debugger.enable'), NATIVE_WAIT_MS);
    await withTimeout(session.post('Debugger.pause'), NATIVE_WAIT_MS);
    const callFrames = await withTimeout(paused, NATIVE_WAIT_MS);
    frames = callFrames.slice(0, MAX_FRAMES).map((f) => ({
      fn: f.functionName,
      url: f.url || urls.get(f.location.scriptId) || `script ${f.location.scriptId}`,
      line: f.location.lineNumber + 1,
      column: f.location.columnNumber + 1,
    }));
    const top = callFrames[0];
    if (top) {
      try {
        const r = await withTimeout(
          session.post('Debugger.evaluateOnCallFrame', {
            callFrameId: top.callFrameId,
            expression: `typeof globalThis[${JSON.stringify(data.probe)}] === 'function' ? globalThis[${JSON.stringify(data.probe)}]() : null`,
            returnByValue: true,
            silent: true,
          }),
          NATIVE_WAIT_MS,
        );
        const value: unknown = r.result.value;
        if (typeof value === 'string') probe = JSON.parse(value) as Probe;
      } catch {
        // No probe answer: the report still has the frames; the step stays unknown.
        probe = { step: null, inTransaction: false };
      }
    }
    await withTimeout(session.post('Debugger.resume'), NATIVE_WAIT_MS);
  } catch {
    native = frames.length === 0;
  } finally {
    // Disconnecting detaches the debugger (and resumes the thread if a late pause landed).
    try {
      session.disconnect();
    } catch {
      native = native || frames.length === 0;
    }
  }
  const usage = process.resourceUsage();
  const syncCall = readSyncCall(data.syncBoard);
  return {
    t: 'stall',
    syncCall,
    os: native ? osFacts() : null,
    blockedSince: since,
    detectedAt: t0,
    frames,
    step: probe.step,
    inTransaction: probe.inTransaction,
    native,
    captureMs: Date.now() - t0,
    resources: { rssBytes: process.memoryUsage.rss(), cpuUserMs: Math.round(usage.userCPUTime / 1000), cpuSystemMs: Math.round(usage.systemCPUTime / 1000) },
  };
}

/** The main thread (its tid is the pid) and the worker's children, as /proc shows them. */
function osFacts(): OsFacts | null {
  const f = taskFacts(process.pid, process.pid);
  if (!f) return null;
  const children = threadChildren(process.pid, process.pid).map((pid) => ({ pid, command: commandLine(pid) ?? '?' }));
  return {
    state: f.state,
    ...(f.syscall ? { syscall: f.syscall.name, ...(f.syscall.fdTarget ? { fd: f.syscall.fdTarget } : {}) } : {}),
    ...(f.wchan ? { wchan: f.wchan } : {}),
    children,
    openFiles: openFiles(process.pid, 20),
  };
}

let capturing = false;

function tick(): void {
  const now = Date.now();
  const value = Atomics.load(beat, 0);
  if (value !== lastValue) {
    lastValue = value;
    if (stalled) write({ t: 'unstall', blockedMs: now - stalled.since });
    stalled = undefined;
    lastChange = now;
  } else if (!stalled && !capturing && now - lastChange >= data.stallMs) {
    stalled = { since: lastChange };
    capturing = true;
    capture(lastChange)
      .then(
        (report) => write(report),
        (err: unknown) => write({ t: 'stall', blockedSince: lastChange, detectedAt: now, frames: [], step: null, inTransaction: false, native: true, captureMs: 0, error: String(err) }),
      )
      .finally(() => {
        capturing = false;
      });
  }
  if (process.ppid !== data.ppid) {
    orphanedAt ??= now;
    // The main thread handles a gone supervisor itself (it shuts down); frozen, it cannot.
    if (stalled || now - orphanedAt > ORPHAN_GRACE_MS) process.kill(process.pid, 'SIGKILL');
  }
}

setInterval(tick, pollMs);
