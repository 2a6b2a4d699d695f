/**
 * The CLI as users run it: `node bin/runwarden.js ...` in a child process, with an environment
 * cleaned of the developer's RUNWARDEN_* and provider keys. Every child is killed (SIGTERM, then
 * SIGKILL) by `stop()` or by its deadline, so no test leaves an orphan.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'runwarden.js');
/** Node 24 (the test runner's own binary). */
export const NODE = process.execPath;

export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k.startsWith('RUNWARDEN_') || k === 'DATABASE_URL' || /^(OPENAI|ANTHROPIC)_/.test(k) || k.startsWith('NODE_TEST')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** Runs the CLI to completion (killed after `timeoutMs`). */
export async function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(NODE, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => kill(child), opts.timeoutMs ?? 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  children.delete(child);
  return { code, signal, stdout, stderr };
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  /** SIGTERM (or `signal`), SIGKILL after `graceMs`; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

/** `runwarden start --port 0 ...`, resolved once it prints its URL. */
export async function startServer(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<ServerProcess> {
  const child = spawn(NODE, [BIN, 'start', '--port', '0', ...args], { cwd: opts.cwd ?? ROOT, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (c) => {
      children.delete(child);
      resolve(c);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => {
      kill(child);
      reject(new Error(`runwarden start did not print its URL within 20 s:\n${stdout}\n${stderr}`));
    }, 20_000);
    const check = (): void => {
      const m = /^runwarden listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m?.[1]) {
        clearTimeout(deadline);
        child.stdout.off('data', check);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', check);
    void exited.then((c) => {
      clearTimeout(deadline);
      reject(new Error(`runwarden start exited with ${c}:\n${stdout}\n${stderr}`));
    });
  });
  return {
    url,
    child,
    output: () => ({ stdout, stderr }),
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(t);
        return code;
      }
      return exited;
    },
  };
}

function kill(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, 3000).unref();
}

/** For after(): whatever is still running gets killed. */
export function killAll(): void {
  for (const c of children) kill(c);
}
