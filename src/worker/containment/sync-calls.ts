/**
 * Which step is inside a synchronous call that can block for ever. A thread inside a system call
 * (`execSync('sleep 600')`, `readFileSync` of a FIFO nobody writes to) cannot be paused by the
 * inspector, so the watchdog cannot see whose code it is. So the blocking synchronous functions of
 * node:child_process and node:fs note, around the call, the step whose code makes it, in memory the
 * watchdog thread can read while the main thread is blocked (a SharedArrayBuffer). Outside any step
 * the wrappers only cost one AsyncLocalStorage lookup.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

/** A step inside a synchronous call, as the watchdog reads it. */
export interface SyncCall {
  runId: string;
  stepName: string;
  attempt: number;
  tool: string;
  deadlineAt?: number;
  /** e.g. `execSync("sleep 600")`, `readFileSync("/tmp/fifo")`. */
  call: string;
  at: number;
}

export interface SyncCallOwner {
  runId: string;
  stepName: string;
  attempt: number;
  tool: string;
  deadlineAt?: number;
}

/** Bytes for one marker: [0..3] the JSON length (0: none), then the JSON. */
export const SYNC_MARKER_BYTES = 2048;

let board: { len: Int32Array; bytes: Uint8Array } | undefined;
const encoder = new TextEncoder();

/** Where markers go (the watchdog's shared memory). Without one, the wrappers do nothing. */
export function setSyncCallBoard(shared: SharedArrayBuffer | undefined): void {
  board = shared ? { len: new Int32Array(shared, 0, 1), bytes: new Uint8Array(shared, 4) } : undefined;
}

/** Reads the marker (the watchdog thread's side). */
export function readSyncCall(shared: SharedArrayBuffer): SyncCall | null {
  const n = Atomics.load(new Int32Array(shared, 0, 1), 0);
  if (n <= 0) return null;
  try {
    return JSON.parse(new TextDecoder().decode(new Uint8Array(shared, 4, n).slice())) as SyncCall;
  } catch {
    return null; // written while we read: the next capture sees it whole
  }
}

/** Synchronous calls can nest (readFileSync opens through fs.openSync): only the outermost is noted. */
let depth = 0;

export function beginSyncCall(owner: SyncCallOwner, call: string): void {
  const b = board;
  if (!b || depth++ > 0) return;
  const json = JSON.stringify({ ...owner, call, at: Date.now() } satisfies SyncCall);
  const { written } = encoder.encodeInto(json, b.bytes.subarray(0, SYNC_MARKER_BYTES - 4));
  // A marker cut short is not JSON: better none.
  Atomics.store(b.len, 0, written === json.length ? written : 0);
}

export function endSyncCall(): void {
  if (depth > 0) depth--;
  if (depth === 0 && board) Atomics.store(board.len, 0, 0);
}

function describeArg(a: unknown): string {
  if (typeof a === 'number') return `fd ${a}`;
  const text = typeof a === 'string' ? a : a instanceof URL ? a.pathname : Buffer.isBuffer(a) ? a.toString() : String(a);
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text);
}

let installed = false;

/**
 * Wraps the node:fs functions that block on FIFOs, pipes and devices (open, read, write and their
 * whole-file forms). `owner` names the step whose code is running, if any.
 */
export function installFsSyncMarkers(owner: () => SyncCallOwner | undefined): void {
  if (installed) return;
  installed = true;
  const fs = createRequire(import.meta.url)('node:fs') as Record<string, unknown>;
  for (const name of ['openSync', 'readSync', 'readFileSync', 'writeSync', 'writeFileSync', 'appendFileSync', 'readvSync', 'writevSync']) {
    const original = fs[name];
    if (typeof original !== 'function') continue;
    fs[name] = function markedSync(this: unknown, ...args: unknown[]): unknown {
      const o = board ? owner() : undefined;
      if (!o) return (original as (...a: unknown[]) => unknown).apply(this, args);
      // beginSyncCall counts even when the marker board is full, so begin and end always pair.
      beginSyncCall(o, `${name}(${describeArg(args[0])})`);
      try {
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } finally {
        endSyncCall();
      }
    };
  }
  syncBuiltinESMExports();
}
