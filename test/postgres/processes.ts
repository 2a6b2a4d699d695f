/**
 * Real runwarden processes against one PostgreSQL database: `runwarden start` (the API) and
 * `runwarden worker`, spawned as users run them, with an environment cleaned of the developer's
 * RUNWARDEN_* and provider settings. Every child is tracked; `stopAll()` (call it in t.after)
 * SIGTERMs what is left and SIGKILLs it after a grace period, so no test leaves an orphan.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'runwarden.js');

export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k.startsWith('RUNWARDEN_') || k === 'DATABASE_URL' || /^(OPENAI|ANTHROPIC)_/.test(k) || k.startsWith('NODE_TEST')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Proc {
  kind: 'api' | 'worker';
  child: ChildProcess;
  pid: number;
  /** The API's URL, or the worker's id. */
  ref: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

const live = new Set<Proc>();

function spawnRunwarden(kind: 'api' | 'worker', args: string[], env: Record<string, string>, ready: RegExp, timeoutMs = 30_000): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (!gone()) child.kill(signal);
    await exited;
  };
  return new Promise<Proc>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runwarden ${args[0]} was not ready within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = (): void => {
      const m = ready.exec(out);
      if (!m?.[1]) return;
      clearTimeout(timer);
      child.stdout.off('data', check);
      const proc: Proc = {
        kind,
        child,
        pid: child.pid ?? -1,
        ref: m[1],
        output: () => out,
        exited,
        kill,
        async stop(graceMs = 10_000) {
          if (gone()) return;
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(t);
        },
      };
      live.add(proc);
      void exited.then(() => live.delete(proc));
      resolve(proc);
    };
    child.stdout.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`runwarden ${args[0]} exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
}

/** The URL with a small pool (`pool_max`): test processes need few connections, and the server is shared. */
function small(databaseUrl: string, poolMax = 4): string {
  const u = new URL(databaseUrl);
  if (!u.searchParams.has('pool_max')) u.searchParams.set('pool_max', String(poolMax));
  return u.toString();
}

/** `runwarden start --port 0 --lab off ...` against `databaseUrl`. */
export function startApi(databaseUrl: string, args: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  return spawnRunwarden('api', ['start', '--port', '0', '--lab', 'off', ...args], { DATABASE_URL: small(databaseUrl), ...env }, /runwarden listening on (http:\/\/\S+)/);
}

/**
 * `runwarden worker ...` against `databaseUrl`: a supervisor with one worker process unless `args`
 * say otherwise. Its ref is the supervisor's id, the prefix of every claim loop of its workers.
 */
export function startWorker(databaseUrl: string, args: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  const workers = args.includes('--workers') ? [] : ['--workers', '1'];
  return spawnRunwarden('worker', ['worker', ...workers, ...args], { DATABASE_URL: small(databaseUrl), ...env }, /runwarden worker (\S+) ready/);
}

/** Stops every process these helpers started and that is still running. */
export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

export async function api<T = unknown>(url: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}
