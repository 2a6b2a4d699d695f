/**
 * No orphans, whatever started runwarden: `npx runwarden start`, `npm start`, the bin on the
 * machine's Node (which re-runs itself on the pinned Node 24), the bin on Node 24, and
 * `npx runwarden worker`. SIGTERM to the launcher's pid stops the whole tree (workers drain); SIGKILL
 * of it leaves nothing running for long (the launcher watch and the IPC channels notice).
 * Each launcher runs in a session of its own (detached), so a signal reaches only the pid it is sent to.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BIN, ROOT } from '../helpers/server.ts';
import { processesOf, waitFor } from './helpers.ts';

const PINNED = process.execPath;
const MACHINE_NODE = '/usr/bin/node';

/** The machine's node, when it is older than the pinned one (so the bin re-runs itself). */
function machineNodeIsOld(): boolean {
  if (!existsSync(MACHINE_NODE)) return false;
  const v = execFileSync(MACHINE_NODE, ['--version'], { encoding: 'utf8' }).trim();
  return Number(/^v(\d+)/.exec(v)?.[1]) < 22;
}

interface Launcher {
  name: string;
  cmd: string[];
  ready: RegExp;
}

const common = (dir: string): string[] => ['--data-dir', dir, '--workers', '2'];
const launchers = (dir: string): Launcher[] => [
  { name: 'npx runwarden start', cmd: ['npx', '--no-install', 'runwarden', 'start', ...common(dir), '--port', '0', '--lab', 'off'], ready: /listening on/ },
  { name: 'npm start', cmd: ['npm', 'start', '--', ...common(dir), '--port', '0', '--lab', 'off'], ready: /listening on/ },
  { name: 'bin on Node 24', cmd: [PINNED, BIN, 'start', ...common(dir), '--port', '0', '--lab', 'off'], ready: /listening on/ },
  ...(machineNodeIsOld() ? [{ name: 'bin on the machine Node (re-execs Node 24)', cmd: [MACHINE_NODE, BIN, 'start', ...common(dir), '--port', '0', '--lab', 'off'], ready: /listening on/ }] : []),
  { name: 'npx runwarden worker', cmd: ['npx', '--no-install', 'runwarden', 'worker', ...common(dir)], ready: /ready/ },
];

async function launch(l: Launcher): Promise<{ pid: number; output: () => string }> {
  // detached: its own session and process group (setsid), like a service manager would start it.
  const [cmd, ...args] = l.cmd as [string, ...string[]];
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => (l.ready.test(out) ? true : undefined), 60_000, `${l.name} to be ready`);
  assert.ok(child.pid);
  return { pid: child.pid, output: () => out };
}

async function expectGone(dir: string, withinMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  await waitFor(() => (processesOf(dir).length === 0 ? true : undefined), withinMs, `every process of ${what} to exit`).catch((err: unknown) => {
    const left = processesOf(dir);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    throw new Error(`${(err as Error).message}; left: ${left.join(', ')}`);
  });
  return Date.now() - t0;
}

describe('no orphans, whatever launched runwarden', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    for (const name of launchers('x').map((l) => l.name)) {
      test(`${signal} to ${name} stops the whole tree`, async (t) => {
        const dir = mkdtempSync(join(tmpdir(), 'rw-launch-'));
        t.after(() => rmSync(dir, { recursive: true, force: true }));
        const l = launchers(dir).find((x) => x.name === name) as Launcher;
        const { pid, output } = await launch(l);
        await waitFor(() => (processesOf(dir).length >= 3 ? true : undefined), 20_000, 'the launcher and two worker processes');
        process.kill(pid, signal);
        // SIGTERM: workers drain (5 s at most with nothing running); SIGKILL: the watches notice within ~1 s.
        const ms = await expectGone(dir, signal === 'SIGTERM' ? 15_000 : 8000, name);
        t.diagnostic(`${name}: tree gone ${ms} ms after ${signal}`);
        assert.ok(output().length > 0);
      });
    }
  }
});
