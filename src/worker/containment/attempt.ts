/**
 * What one attempt started that the engine can stop, and stopping it. Filled by the guards
 * (processes.ts, threads.ts) while the attempt's code runs; emptied when the attempt ends:
 * - at the abort (deadline, cancel, shutdown, lost lease): its processes get SIGTERM (their groups);
 * - when it settled: what it left running gets SIGTERM, then SIGKILL a grace later; worker threads
 *   it created are terminated;
 * - when it was abandoned (it ignored its abort, its code may still run): SIGKILL at once, its
 *   threads terminated, and, for an attempt running on the worker's own thread, its sockets
 *   destroyed (a half-open transaction holding a row lock ends with its connection).
 * Independent of forensics: containment works with operation tracking off.
 */
import type { Socket } from 'node:net';
import type { Worker as ThreadWorker } from 'node:worker_threads';
import type { StepForensics } from '../../forensics/step.ts';
import { killAttemptGroups, signalAttemptGroups, signalAttemptProcesses, type KilledProcess, type SpawnOwner } from './processes.ts';

let seq = 0;

/** A marker unique to this attempt on this machine (pid, thread, counter, time). */
export function newAttemptMarker(): string {
  seq = (seq + 1) % 1e9;
  return `${process.pid}.${Date.now().toString(36)}.${seq.toString(36)}.${Math.random().toString(36).slice(2, 6)}`;
}

/** What containment did when an attempt ended (part of its hang report when it was abandoned). */
export interface ContainmentRecord {
  /** 'thread': the tool ran in a thread of its own; 'inline': on the worker's event loop. */
  mode: 'thread' | 'inline';
  /** Processes the attempt started that were still running, and the signal each got. */
  processes: Array<KilledProcess & { signal: NodeJS.Signals }>;
  /** Worker threads the attempt created that were terminated. */
  threads: Array<{ threadId: number; what: string }>;
  /** Sockets destroyed (inline attempts that ignored their abort). */
  socketsClosed: number;
  /** The tool's own thread (mode 'thread'): terminated, how long that took, the call it sat in. */
  toolThread?: { terminated: boolean; ms: number; blockedIn?: string; released?: string };
  /** What could not be stopped, said plainly. */
  notStopped: string[];
}

export class AttemptContainment implements SpawnOwner {
  readonly marker: string;
  readonly mode: 'thread' | 'inline';
  /** Direct children started asynchronously: each leads a process group of its own. */
  readonly leaders = new Set<number>();
  #syncSpawns = 0;
  readonly #threads = new Map<ThreadWorker, string>();
  #forensics: StepForensics | undefined;
  /** Set when processes got SIGTERM: their SIGKILL follows a grace later. */
  #termAt = 0;

  readonly #onSpawned: ((info: { pid: number | undefined; command: string; sync: boolean }) => void) | undefined;

  /** `onSpawned`: a tool thread tells the worker at once, so the worker can kill them should the thread freeze. */
  constructor(opts: { mode: 'thread' | 'inline'; marker?: string; forensics?: StepForensics; onSpawned?: (info: { pid: number | undefined; command: string; sync: boolean }) => void }) {
    this.mode = opts.mode;
    this.marker = opts.marker ?? newAttemptMarker();
    this.#forensics = opts.forensics;
    this.#onSpawned = opts.onSpawned;
  }

  spawned(info: { pid: number | undefined; command: string; sync: boolean }): void {
    if (info.pid !== undefined) this.leaders.add(info.pid);
    if (info.sync) this.#syncSpawns++;
    this.#onSpawned?.(info);
  }

  threadStarted(thread: ThreadWorker, what: string): void {
    this.#threads.set(thread, what);
    thread.once('exit', () => this.#threads.delete(thread));
    this.#forensics?.trackThread(thread, what);
  }

  get startedProcesses(): boolean {
    return this.leaders.size > 0 || this.#syncSpawns > 0;
  }

  /** The attempt's signal aborted: ask its processes to stop (their groups; no /proc scan). */
  onAbort(): void {
    if (this.leaders.size === 0) return;
    this.#termAt = Date.now();
    for (const pid of signalAttemptGroups([...this.leaders], 'SIGTERM')) this.#forensics?.noteSignalled(pid, 'SIGTERM');
  }

  /**
   * The attempt is over. `abandoned`: its code may still be running, so everything goes now, and
   * the record lists it. Otherwise what it left running gets SIGTERM, then SIGKILL a grace later,
   * without holding up the attempt's end (`onLater` reports each).
   */
  async end(opts: { abandoned: boolean; graceMs: number; onLater?: (killed: KilledProcess[], signal: NodeJS.Signals) => void }): Promise<ContainmentRecord> {
    const record: ContainmentRecord = { mode: this.mode, processes: [], threads: [], socketsClosed: 0, notStopped: [] };
    for (const [thread, what] of this.#threads) {
      record.threads.push({ threadId: thread.threadId, what });
      this.#forensics?.noteThreadTerminated(thread);
      thread.terminate().catch(() => undefined); // resolves with the exit code; a failure means it is gone
    }
    this.#threads.clear();
    if (opts.abandoned && this.mode === 'inline') record.socketsClosed = destroySockets(this.#forensics?.liveSockets() ?? []);
    // In a tool thread that is being cut, the worker kills the attempt's processes itself (it knows
    // them from the thread's messages and the marker): the thread's result goes out sooner.
    if (!this.startedProcesses || (opts.abandoned && this.mode === 'thread')) return record;
    const marker = this.marker;
    const leaders = [...this.leaders];
    const report = (killed: KilledProcess[], sig: NodeJS.Signals): void => {
      if (killed.length > 0) opts.onLater?.(killed, sig);
    };
    if (opts.abandoned) {
      // Its groups now; what left them (found by the marker, a /proc scan) right after, without
      // holding up the attempt's end.
      for (const p of killAttemptGroups(leaders, 'SIGKILL')) record.processes.push({ ...p, signal: 'SIGKILL' });
      const killed = new Set(record.processes.map((p) => p.pid));
      signalAttemptProcesses(marker, leaders, 'SIGKILL')
        .then((more) => report(more.filter((p) => !killed.has(p.pid)), 'SIGKILL'))
        .catch(() => undefined); // /proc unreadable: the groups are dead already
      return record;
    }
    // Processes already sent SIGTERM at the abort have had part of their grace.
    const wait = this.#termAt > 0 ? Math.max(0, opts.graceMs - (Date.now() - this.#termAt)) : opts.graceMs;
    signalAttemptProcesses(marker, leaders, 'SIGTERM')
      .then((left) => {
        report(left, 'SIGTERM');
        // Nothing of the attempt runs any more: what was not found now cannot appear later.
        if (left.length === 0) return;
        setTimeout(() => {
          signalAttemptProcesses(marker, leaders, 'SIGKILL')
            .then((late) => report(late, 'SIGKILL'))
            .catch(() => undefined); // /proc unreadable: the groups got SIGTERM already
        }, wait).unref();
      })
      .catch(() => undefined); // /proc unreadable: the groups got SIGTERM at the abort
    return record;
  }
}

function destroySockets(sockets: readonly Socket[]): number {
  let n = 0;
  for (const s of sockets) {
    if (s.destroyed) continue;
    s.destroy();
    n++;
  }
  return n;
}
