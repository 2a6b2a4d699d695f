/**
 * Child processes of a step, contained. Killing the pid a tool spawned is not enough: a shell that
 * traps SIGTERM, or that started `sleep` in the background, leaves a grandchild that outlives the
 * step (a process-group-blind kill of its parent does nothing to it). So every process a step starts
 * is started
 * - as the leader of a process group of its own (`detached`: setsid), so one `kill(-pgid)` reaches
 *   everything it forks that stays in its group, and the worker's own group is never hit;
 * - with a marker in its environment (`RUNWARDEN_ATTEMPT=<attempt marker>`), inherited by every
 *   descendant, including the ones that leave the group (`setsid`, double fork, `nohup ... &`), so
 *   that /proc finds them when the step ends.
 * The worker process itself carries `RUNWARDEN_WORKER_TAG`, so a supervisor can find everything a
 * dead worker left behind the same way (a descendant whose parent died is re-parented to init and
 * is no longer in any tree).
 *
 * What it cannot reach: a process that replaces its environment wholesale (`env -i`) and leaves
 * the process group; processes started by native code that bypasses libuv.
 */
import { ChildProcess } from 'node:child_process';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { commandLine, descendantsOf, processesWithEnv, processTable } from '../../forensics/procfs.ts';
import { beginSyncCall, endSyncCall, type SyncCallOwner } from './sync-calls.ts';

/** Environment variable that marks every process an attempt started (and what those start). */
export const ATTEMPT_ENV = 'RUNWARDEN_ATTEMPT';
/** Environment variable that marks a worker process and everything it starts. */
export const WORKER_TAG_ENV = 'RUNWARDEN_WORKER_TAG';

/** What the guard needs of the attempt whose code is spawning: its marker, and where to note the child. */
export interface SpawnOwner {
  readonly marker: string;
  /** A child (async spawn: the ChildProcess; sync: the command) was started. */
  spawned(info: { pid: number | undefined; command: string; sync: boolean }): void;
}

export interface SpawnGuardOptions {
  /** The attempt whose code is running now, if any. */
  owner: () => SpawnOwner | undefined;
  /** The step whose code is running, for the marker a synchronous spawn leaves for the watchdog. */
  step: () => SyncCallOwner | undefined;
}

interface SpawnOptionsInternal {
  detached?: boolean;
  envPairs?: string[];
  file?: string;
  args?: string[];
}

let installed: SpawnGuardOptions | undefined;

function withMarkers(pairs: string[], marker: string): string[] {
  const tag = process.env[WORKER_TAG_ENV];
  const out = pairs.filter((p) => !p.startsWith(`${ATTEMPT_ENV}=`) && !(tag !== undefined && p.startsWith(`${WORKER_TAG_ENV}=`)));
  out.push(`${ATTEMPT_ENV}=${marker}`);
  if (tag !== undefined) out.push(`${WORKER_TAG_ENV}=${tag}`);
  return out;
}

function markedEnv(env: NodeJS.ProcessEnv | undefined, marker: string): NodeJS.ProcessEnv {
  const tag = process.env[WORKER_TAG_ENV];
  return { ...(env ?? process.env), [ATTEMPT_ENV]: marker, ...(tag !== undefined ? { [WORKER_TAG_ENV]: tag } : {}) };
}

function describeCommand(file: unknown, args: unknown): string {
  const parts = Array.isArray(args) ? args.map(String) : [];
  const text = parts.length > 0 ? parts.join(' ') : String(file);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/**
 * Patches child_process for the current thread (once): every spawn made by a step's code gets its
 * own process group and the attempt's marker. Spawns outside any step are untouched.
 */
export function installSpawnGuard(o: SpawnGuardOptions): void {
  if (installed) {
    installed = o;
    return;
  }
  installed = o;
  // All asynchronous spawns (spawn, exec, execFile, fork) end in ChildProcess.prototype.spawn with
  // normalized options (envPairs computed, detached a boolean).
  const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, options: SpawnOptionsInternal) => unknown };
  const spawnAsync = proto.spawn;
  proto.spawn = function guardedSpawn(this: ChildProcess, options: SpawnOptionsInternal): unknown {
    const owner = installed?.owner();
    if (owner && options && typeof options === 'object') {
      options.detached = true;
      if (Array.isArray(options.envPairs)) options.envPairs = withMarkers(options.envPairs, owner.marker);
    }
    const out = spawnAsync.call(this, options);
    if (owner) owner.spawned({ pid: this.pid, command: describeCommand(options?.file, options?.args), sync: false });
    return out;
  };

  // The synchronous ones normalize inside the module, so they are wrapped at their exports.
  const cp = createRequire(import.meta.url)('node:child_process') as Record<string, (...args: unknown[]) => unknown>;
  for (const name of ['spawnSync', 'execSync', 'execFileSync'] as const) {
    const original = cp[name] as (...args: unknown[]) => unknown;
    cp[name] = function guardedSync(this: unknown, ...args: unknown[]): unknown {
      const owner = installed?.owner();
      if (!owner) return original.apply(this, args);
      // execSync(command, options?); spawnSync / execFileSync(file, args?, options?).
      const head = name === 'execSync' ? [args[0]] : [args[0], Array.isArray(args[1]) ? args[1] : []];
      const given = ((name === 'execSync' ? args[1] : Array.isArray(args[1]) ? args[2] : args[1]) ?? {}) as { env?: NodeJS.ProcessEnv };
      const what = name === 'execSync' ? String(args[0]) : describeCommand(args[0], [args[0], ...(head[1] as unknown[])]);
      owner.spawned({ pid: undefined, command: what, sync: true });
      const step = installed?.step();
      if (step) beginSyncCall(step, `${name}(${JSON.stringify(what.length > 120 ? `${what.slice(0, 120)}...` : what)})`);
      try {
        return original.apply(this, [...head, { ...given, detached: true, env: markedEnv(given.env, owner.marker) }]);
      } finally {
        if (step) endSyncCall();
      }
    };
  }
  // ESM named imports of node:child_process see the wrapped functions too.
  syncBuiltinESMExports();
}

export interface KilledProcess {
  pid: number;
  command: string;
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false; // gone already (ESRCH), or not ours
  }
}

/** Signals the process groups the attempt's direct children lead: cheap, no /proc scan. */
export function signalAttemptGroups(leaders: readonly number[], sig: NodeJS.Signals): number[] {
  // A leader spawned by the guard leads its own group; one that is not (the guard was not
  // installed) gets the signal itself.
  return leaders.filter((p) => signal(-p, sig) || signal(p, sig));
}

/** The same, naming each leader that was still there (one small /proc read per leader). */
export function killAttemptGroups(leaders: readonly number[], sig: NodeJS.Signals): KilledProcess[] {
  const named = leaders.map((pid) => ({ pid, command: commandLine(pid) }));
  const hit = new Set(signalAttemptGroups(leaders, sig));
  return named.filter((n): n is KilledProcess => n.command !== null && hit.has(n.pid));
}

/**
 * Signals everything an attempt started that still runs: the process groups of its direct children
 * (`leaders`: they were started as group leaders), their descendants, and any process carrying the
 * attempt's marker. Returns the processes signalled (the worker's own pid is never among them).
 */
export async function signalAttemptProcesses(marker: string, leaders: readonly number[], sig: NodeJS.Signals): Promise<KilledProcess[]> {
  const table = await processTable({ name: ATTEMPT_ENV, value: marker });
  const byPid = new Map(table.map((r) => [r.pid, r]));
  const ownGroup = byPid.get(process.pid)?.pgid;
  const alive = leaders.filter((p) => byPid.has(p));
  const targets = new Set<number>([...alive, ...descendantsOf(alive, table), ...table.filter((r) => r.marked).map((r) => r.pid)]);
  targets.delete(process.pid);
  // Commands first: a killed process loses its /proc entry.
  const named = [...targets].map((pid) => ({ pid, command: commandLine(pid) ?? '?' }));
  // Whole groups too: what a leader forked since the table was read is in its group.
  for (const p of alive) if (byPid.get(p)?.pgid === p && p !== ownGroup) signal(-p, sig);
  const out: KilledProcess[] = [];
  for (const n of named) if (signal(n.pid, sig)) out.push(n);
  return out;
}

/**
 * Kills (SIGKILL) every process left by a worker process that is gone: everything whose
 * environment carries its tag. For a supervisor, after the worker exited or was killed.
 */
export async function killWorkerLeftovers(tag: string): Promise<KilledProcess[]> {
  const pids = await processesWithEnv(WORKER_TAG_ENV, tag, new Set([process.pid]));
  const named = pids.map((pid) => ({ pid, command: commandLine(pid) ?? '?' }));
  return named.filter((n) => signal(n.pid, 'SIGKILL'));
}
