/**
 * What Linux says about a thread or a process that JavaScript cannot say: where a thread is blocked
 * (its system call and wait channel), how much CPU it burned and how much it wrote, which processes
 * descend from it. Used when a step's code is out of reach of the inspector: a thread inside a
 * system call, a busy tool thread, child processes that left their process group.
 *
 * Every reader returns null (or an empty list) where /proc is missing or the entry is gone: these
 * are facts for a report, never a reason to fail.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every mainstream Linux build). */
const TICKS_PER_S = 100;

/** System call numbers worth naming in a report (the ones a thread can block in). */
const SYSCALLS: Record<string, Record<number, string>> = {
  x64: {
    0: 'read', 1: 'write', 2: 'open', 7: 'poll', 17: 'pread64', 18: 'pwrite64', 19: 'readv', 20: 'writev', 23: 'select',
    35: 'nanosleep', 42: 'connect', 43: 'accept', 45: 'recvfrom', 47: 'recvmsg', 61: 'wait4', 72: 'fcntl', 73: 'flock',
    202: 'futex', 230: 'clock_nanosleep', 232: 'epoll_wait', 247: 'waitid', 257: 'openat', 270: 'pselect6', 271: 'ppoll',
    281: 'epoll_pwait', 288: 'accept4', 441: 'epoll_pwait2',
  },
  arm64: {
    22: 'epoll_pwait', 25: 'fcntl', 32: 'flock', 56: 'openat', 63: 'read', 64: 'write', 65: 'readv', 66: 'writev', 67: 'pread64',
    68: 'pwrite64', 72: 'pselect6', 73: 'ppoll', 95: 'waitid', 98: 'futex', 101: 'nanosleep', 115: 'clock_nanosleep',
    202: 'accept', 203: 'connect', 207: 'recvfrom', 212: 'recvmsg', 242: 'accept4', 260: 'wait4', 441: 'epoll_pwait2',
  },
};

/** The system calls in which an idle event loop waits: a thread there is not blocked. */
const IDLE_WAITS = new Set(['epoll_wait', 'epoll_pwait', 'epoll_pwait2']);

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export interface SyscallFacts {
  nr: number;
  /** e.g. 'read', 'wait4'; `syscall <nr>` when not in the table. */
  name: string;
  /** Raw arguments as the kernel shows them (hex). */
  args: string[];
  /** For calls on a file descriptor: what the descriptor is (a path, `pipe:[..]`, `socket:[..]`). */
  fdTarget?: string;
}

export interface TaskFacts {
  tid: number;
  /** R running, S sleeping, D uninterruptible, T stopped, Z zombie. */
  state: string;
  cpuMs: number;
  /** Absent when the thread runs (the kernel shows `running`) or /proc hides it. */
  syscall?: SyscallFacts;
  /** Kernel function the thread sleeps in (`pipe_read`, `do_wait`, `wait_for_partner`). */
  wchan?: string;
  io?: { bytesWritten: number; writeCalls: number; bytesRead: number; readCalls: number };
  /** The thread sleeps in a system call that is not the event loop's own idle wait. */
  blocked: boolean;
}

function parseStat(text: string): { state: string; ppid: number; pgid: number; sid: number; cpuMs: number; comm: string; startTicks: number } | null {
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  const num = (i: number): number => Number(f[i] ?? 0);
  return { state: f[0] ?? '?', ppid: num(1), pgid: num(2), sid: num(3), cpuMs: ((num(11) + num(12)) * 1000) / TICKS_PER_S, comm, startTicks: num(19) };
}

function parseSyscall(pid: number, text: string): SyscallFacts | undefined {
  const parts = text.trim().split(/\s+/);
  const nr = Number(parts[0]);
  if (!Number.isInteger(nr) || nr < 0) return undefined; // 'running' or -1 (not in a call)
  const name = SYSCALLS[process.arch]?.[nr] ?? `syscall ${nr}`;
  const args = parts.slice(1, 7);
  const facts: SyscallFacts = { nr, name, args };
  if (/^(read|write|readv|writev|pread64|pwrite64|recvfrom|recvmsg|fcntl|flock|connect|accept|accept4)$/.test(name) && args[0]) {
    const target = fdTarget(pid, Number.parseInt(args[0], 16));
    if (target) facts.fdTarget = target;
  }
  return facts;
}

function fdTarget(pid: number, fd: number): string | undefined {
  if (!Number.isInteger(fd) || fd < 0) return undefined;
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** One thread of a process (`tid` = `pid` for its main thread). */
export function taskFacts(pid: number, tid: number): TaskFacts | null {
  const base = `/proc/${pid}/task/${tid}`;
  const stat = read(`${base}/stat`);
  const s = stat ? parseStat(stat) : null;
  if (!s) return null;
  const facts: TaskFacts = { tid, state: s.state, cpuMs: s.cpuMs, blocked: false };
  const sc = read(`${base}/syscall`);
  const call = sc ? parseSyscall(pid, sc) : undefined;
  if (call) facts.syscall = call;
  const wchan = read(`${base}/wchan`);
  if (wchan && wchan !== '0') facts.wchan = wchan.trim();
  const io = read(`${base}/io`);
  if (io) {
    const field = (k: string): number => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(io)?.[1] ?? 0);
    facts.io = { bytesWritten: field('wchar'), writeCalls: field('syscw'), bytesRead: field('rchar'), readCalls: field('syscr') };
  }
  facts.blocked = (s.state === 'S' || s.state === 'D') && call !== undefined && !IDLE_WAITS.has(call.name);
  return facts;
}

/** The thread id of the calling thread (a worker thread's differs from the process's pid). */
export function currentTid(): number | null {
  try {
    // '/proc/thread-self' -> '<pid>/task/<tid>'
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) ? tid : null;
  } catch {
    return null;
  }
}

export interface ProcessFacts {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  state: string;
  comm: string;
  /** Start time in clock ticks since boot: with the pid, tells a process from a later one that reused the pid. */
  startTicks: number;
}

export function processFacts(pid: number): ProcessFacts | null {
  const stat = read(`/proc/${pid}/stat`);
  const s = stat ? parseStat(stat) : null;
  return s ? { pid, ppid: s.ppid, pgid: s.pgid, sid: s.sid, state: s.state, comm: s.comm, startTicks: s.startTicks } : null;
}

/** The command line of a process, space-separated (truncated), or null. */
export function commandLine(pid: number, max = 200): string | null {
  const raw = read(`/proc/${pid}/cmdline`);
  if (raw === null) return null;
  const text = raw.replace(/\0+$/, '').replaceAll('\0', ' ');
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/** Direct children of a thread (Linux lists them per thread that forked them). */
export function threadChildren(pid: number, tid: number): number[] {
  const text = read(`/proc/${pid}/task/${tid}/children`);
  return text ? text.trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

/** Open descriptors of a process: `fd -> target`, at most `limit`. */
export function openFiles(pid: number, limit = 30): Array<{ fd: number; target: string }> {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const out: Array<{ fd: number; target: string }> = [];
  for (const n of names) {
    if (out.length >= limit) break;
    const target = fdTarget(pid, Number(n));
    if (target) out.push({ fd: Number(n), target });
  }
  return out;
}

function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57)
      .map(Number);
  } catch {
    return [];
  }
}

/** One row of the process table, as one pass over /proc reads it. */
export interface ProcessRow {
  pid: number;
  ppid: number;
  pgid: number;
  /** Its environment holds the marker asked for. */
  marked: boolean;
}

function hasVar(env: Buffer, needle: Buffer): boolean {
  // At the start of the block or right after a NUL, so that FOO_RUNWARDEN_ATTEMPT=... does not count.
  let at = env.indexOf(needle);
  while (at > 0 && env[at - 1] !== 0) at = env.indexOf(needle, at + 1);
  return at >= 0;
}

/**
 * The process table in one pass: parent, group and, when `marker` is given, whether the process's
 * environment (as it was started: /proc/<pid>/environ) holds `name=value`. A marker variable set on
 * a step's children is inherited by everything they start, whatever process group or session it
 * moves to, so it finds descendants a process-group kill would miss. Reads run on the thread pool,
 * not on the event loop: ~10-40 ms for 150 processes (more on a loaded machine) that the steps
 * around do not wait for. Called when an attempt that started processes ends, not per step.
 */
export async function processTable(marker?: { name: string; value: string }): Promise<ProcessRow[]> {
  const needle = marker ? Buffer.from(`${marker.name}=${marker.value}\0`) : undefined;
  const rows = await Promise.all(
    allPids().map(async (pid): Promise<ProcessRow | null> => {
      let s: ReturnType<typeof parseStat>;
      try {
        s = parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return null; // gone
      }
      if (!s) return null;
      let marked = false;
      if (needle) {
        try {
          marked = hasVar(await readFile(`/proc/${pid}/environ`), needle);
        } catch {
          marked = false; // gone, or not ours to read
        }
      }
      return { pid, ppid: s.ppid, pgid: s.pgid, marked };
    }),
  );
  return rows.filter((r): r is ProcessRow => r !== null);
}

/** Processes whose environment holds `name=value`, except `exclude`. */
export async function processesWithEnv(name: string, value: string, exclude: ReadonlySet<number> = new Set()): Promise<number[]> {
  return (await processTable({ name, value })).filter((r) => r.marked && !exclude.has(r.pid)).map((r) => r.pid);
}

/** Every live descendant of `roots` (by parent pid) in `table`, roots excluded. */
export function descendantsOf(roots: readonly number[], table: readonly ProcessRow[]): number[] {
  const byParent = new Map<number, number[]>();
  for (const r of table) {
    const list = byParent.get(r.ppid) ?? [];
    list.push(r.pid);
    byParent.set(r.ppid, list);
  }
  const out: number[] = [];
  const queue = [...roots];
  const seen = new Set(roots);
  while (queue.length > 0) {
    const p = queue.shift() as number;
    for (const c of byParent.get(p) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
