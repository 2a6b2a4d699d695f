/**
 * Runs the examples of one markdown file as a user would, in order, and prints one JSON result per
 * command on stdout. Meant to run inside a network namespace of its own (docs.test.ts starts it
 * with `unshare -rn`), so the documented default ports (7400, 7401) are free and nothing it starts
 * can meet another test's servers.
 *
 *   node test/docs/session.ts <file.md>
 *
 * A file whose first example needs an API (a client command, or a request to :7400) before it
 * starts one gets `runwarden start` first, as the README's "npm start in one terminal". Servers
 * (`start`, `lab`, `worker`) run in the background until the end of the file; a new one replaces
 * those of its kind (they share ports), and if it exits at once (an error example) the ones it
 * replaced are started again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { blocks, isLongRunning, matches, normalize, shCommands, skipReason, transcript, type Command } from './extract.ts';

export interface Result {
  file: string;
  line: number;
  command: string;
  status: 'ok' | 'failed' | 'skipped';
  detail: string;
}

const ROOT = join(import.meta.dirname, '..', '..');
const NODE = process.execPath;
const COMMAND_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 20_000;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const ARTIFACT = /\bart_[0-9a-f]{24}\b/g;

interface Background {
  command: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export async function runFile(file: string): Promise<Result[]> {
  const cwd = mkdtempSync(join(tmpdir(), 'rw-docs-'));
  const bin = join(cwd, '.bin');
  // The docs' `runwarden` is the repository's bin on the pinned Node; their `examples/` the repository's.
  symlinkSync(join(ROOT, 'examples'), join(cwd, 'examples'));
  mkdirSync(bin);
  writeFileSync(join(bin, 'runwarden'), `#!/bin/sh\nexec "${NODE}" "${join(ROOT, 'bin', 'runwarden.js')}" "$@"\n`);
  chmodSync(join(bin, 'runwarden'), 0o755);
  const env: Record<string, string> = { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: cwd, LANG: 'C.UTF-8', TERM: 'dumb' };

  const results: Result[] = [];
  const running: Background[] = [];
  let lastId: string | undefined;
  let lastArtifact: string | undefined;
  /** Ids the docs show, to the ids this session's commands printed in their place. */
  const ids = new Map<string, string>();
  const rel = relative(ROOT, file);

  const remember = (output: string, expected: string[] | undefined): void => {
    const printed = output.match(UUID);
    if (printed) lastId = printed.at(-1);
    const arts = output.match(ARTIFACT);
    if (arts) lastArtifact = arts.at(-1);
    if (expected === undefined) return;
    const shown = expected.join('\n');
    for (const re of [UUID, ARTIFACT]) {
      const docs = [...new Set(shown.match(re) ?? [])];
      const real = [...new Set(output.match(re) ?? [])];
      docs.forEach((d, i) => {
        const r = real[i];
        if (r !== undefined) ids.set(d, r);
      });
    }
  };
  /**
   * The command as this session runs it. An id the docs printed earlier stands for the id this
   * session printed in its place (a user pastes the id they just saw); `<id>` and `<artifactId>`
   * for the last ones printed.
   */
  const prepare = (command: string): string | Error => {
    let c = command.replace(/^npx runwarden\b/, 'runwarden').replace(/^npm start\b/, 'runwarden start');
    c = c.replace(UUID, (id) => ids.get(id) ?? id).replace(ARTIFACT, (id) => ids.get(id) ?? id);
    if (/<(id|runId)>/.test(c)) {
      if (!lastId) return new Error('the command needs a run id and no earlier example printed one');
      c = c.replace(/<(id|runId)>/g, lastId);
    }
    if (/<artifactId>/.test(c)) {
      if (!lastArtifact) return new Error('the command needs an artifact id and no earlier example printed one');
      c = c.replace(/<artifactId>/g, lastArtifact);
    }
    return c;
  };
  /** In a `sh` block curl must fail on an HTTP error, or a 4xx would pass as an example that ran. */
  const strict = (command: string): string => command.replace(/^curl /, 'curl --fail-with-body ');

  /** Stops the running servers of the same kind as `command` (all of them without one). */
  const stopAll = async (command?: string): Promise<string[]> => {
    const stopped = running.filter((b) => command === undefined || serverKind(b.command) === serverKind(command));
    for (const b of stopped.reverse()) {
      running.splice(running.indexOf(b), 1);
      await stop(b);
    }
    return stopped.map((b) => b.command).reverse();
  };

  const commands = orderedCommands(file);
  const firstNeedingApi = commands.findIndex((c) => needsApi(c.command));
  const firstServer = commands.findIndex((c) => isLongRunning(c.command) && !skipReason(c.command));
  if (firstNeedingApi !== -1 && (firstServer === -1 || firstNeedingApi < firstServer)) {
    const b = await startBackground('runwarden start', cwd, env);
    if (b instanceof Error) results.push({ file: rel, line: 0, command: 'runwarden start (prelude)', status: 'failed', detail: b.message });
    else running.push(b);
  }

  try {
    for (const c of commands) {
      const why = skipReason(c.command);
      if (why) {
        results.push({ file: rel, line: c.line, command: c.command, status: 'skipped', detail: why });
        continue;
      }
      const command = prepare(c.command);
      if (command instanceof Error) {
        results.push({ file: rel, line: c.line, command: c.command, status: 'failed', detail: command.message });
        continue;
      }
      let output: string;
      let code: number | null;
      if (isLongRunning(command)) {
        const previous = await stopAll(command);
        const b = await startBackground(command, cwd, env, c.expected?.filter((l) => l.trim() !== '...').length);
        if (b instanceof Error) {
          results.push({ file: rel, line: c.line, command: c.command, status: 'failed', detail: b.message });
          continue;
        }
        const exitedAtOnce = await Promise.race([b.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
        output = b.output();
        code = exitedAtOnce ? await b.exited : 0;
        if (exitedAtOnce) {
          for (const p of previous) {
            const again = await startBackground(p, cwd, env);
            if (!(again instanceof Error)) running.push(again);
          }
        } else {
          running.push(b);
        }
      } else {
        ({ output, code } = await run(c.expected === undefined ? strict(command) : command, cwd, env));
      }
      remember(output, c.expected);
      results.push(judge(rel, c, output, code, cwd));
    }
  } finally {
    await stopAll();
    rmSync(cwd, { recursive: true, force: true });
  }
  return results;
}

/** sh commands and transcripts of the file, in document order. */
export function orderedCommands(file: string): Command[] {
  const out: Command[] = [];
  for (const b of blocks(file)) {
    if (b.info === 'sh' || b.info === 'bash' || b.info === 'shell') out.push(...shCommands(b));
    else if (b.info === 'console') out.push(...transcript(b));
  }
  return out;
}

/** `start`, `lab` or `worker`: a new server replaces the running ones of its kind (they share ports). */
function serverKind(command: string): string {
  return /runwarden (start|lab|worker)\b/.exec(command)?.[1] ?? command;
}

function needsApi(command: string): boolean {
  if (skipReason(command)) return false;
  return /127\.0\.0\.1:7400|localhost:7400/.test(command) || /^(npx )?runwarden (submit|runs|report|signal)\b/.test(command.replace(/^(\w+=\S* )+/, ''));
}

function judge(file: string, c: Command, output: string, code: number | null, cwd: string): Result {
  const base = { file, line: c.line, command: c.command };
  if (c.expected === undefined) {
    return code === 0 ? { ...base, status: 'ok', detail: '' } : { ...base, status: 'failed', detail: `exit ${code}:\n${output}` };
  }
  const expected = normalize(c.expected.join('\n'), cwd).split('\n');
  const actual = normalize(output.replace(/\n$/, ''), cwd).split('\n');
  if (!matches(expected, actual)) {
    return { ...base, status: 'failed', detail: `output differs from the docs.\n--- docs (normalized)\n${expected.join('\n')}\n--- actual (normalized)\n${actual.join('\n')}` };
  }
  // A transcript that shows an error must come from a command that failed, and the other way round
  // (a transcript that ends with `echo "exit $?"` shows its exit code itself).
  const shownError = c.expected.some((l) => /^error: /.test(l));
  if (!/echo "exit \$\?"$/.test(c.command) && shownError !== (code !== 0)) {
    return { ...base, status: 'failed', detail: `exit ${code}, but the docs ${shownError ? 'show an error' : 'show success'}` };
  }
  return { ...base, status: 'ok', detail: '' };
}

async function run(command: string, cwd: string, env: Record<string, string>): Promise<{ output: string; code: number | null }> {
  const child = spawn('bash', ['-c', `{ ${command}
} 2>&1`], { cwd, env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => kill(child, 'SIGKILL'), COMMAND_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { output, code };
}

/** Starts a server command; resolves once it has printed `lines` lines (default 1), or it exited. */
async function startBackground(command: string, cwd: string, env: Record<string, string>, lines = 1): Promise<Background | Error> {
  // `exec env ...` so that `VAR=value runwarden start` keeps its variables and the server is bash's pid.
  const child = spawn('bash', ['-c', `exec env ${command} 2>&1`], { cwd, env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let done = false;
  void exited.then(() => (done = true));
  while (!done && output.split('\n').length - 1 < Math.max(1, lines) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (!done && Date.now() >= deadline) {
    kill(child, 'SIGKILL');
    return new Error(`${command}: printed nothing within ${READY_TIMEOUT_MS / 1000} s:\n${output}`);
  }
  // start writes its banner in one write; a moment more for anything right behind it.
  await new Promise((r) => setTimeout(r, 200));
  return { command, child, output: () => output, exited };
}

async function stop(b: Background): Promise<void> {
  if (b.child.exitCode !== null || b.child.signalCode !== null) return;
  kill(b.child, 'SIGTERM');
  const t = setTimeout(() => kill(b.child, 'SIGKILL'), 15_000);
  await b.exited;
  clearTimeout(t);
}

function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    // The whole process group: bash, runwarden and its worker processes.
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node test/docs/session.ts <file.md>');
  for (const r of await runFile(file)) process.stdout.write(`${JSON.stringify(r)}\n`);
}
