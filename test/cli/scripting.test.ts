/**
 * The CLI for scripts: `--json` everywhere a script needs it, NDJSON while following, the same exit
 * codes either way, and plain lines on a terminal that cannot redraw (TERM=dumb, through a real
 * pseudo-terminal from util-linux `script`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EventRecord } from '../../src/domain/records.ts';
import { BIN, cleanEnv, killAll, NODE, ROOT, runCli, startServer } from './helpers.ts';
import type { ServerProcess } from './helpers.ts';

after(killAll);

const ESC = '\u001b[';

/** Runs the CLI with a pseudo-terminal as its stdout (what a user's shell gives it). */
async function runInTerminal(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [NODE, BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  return { code, output };
}

describe('the CLI for scripts', () => {
  let dir: string;
  let server: ServerProcess;
  let url: string;
  const file = async (name: string, content: unknown): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, JSON.stringify(content));
    return path;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rw-cli-json-'));
    server = await startServer(['--data-dir', join(dir, 'data'), '--lab', 'on', '--lab-port', '0', '--workers', '1']);
    url = server.url;
  });
  after(async () => {
    killAll();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('submit --json prints the created run', async () => {
    const r = await runCli(['submit', 'examples/hello.json', '--json', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    const run = JSON.parse(r.stdout) as { id: string; created: boolean; status: string; steps: Array<{ name: string }> };
    assert.equal(run.created, true);
    assert.deepEqual(
      run.steps.map((s) => s.name),
      ['greet', 'pause', 'repeat'],
    );
  });

  test('submit --follow --json: one JSON event per line, in seq order, ending with run.finished; exit 0', async () => {
    const r = await runCli(['submit', 'examples/hello.json', '--follow', '--json', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    const events = lines.map((l) => JSON.parse(l) as EventRecord);
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    );
    assert.equal(events[0]?.type, 'run.created');
    assert.equal(events.at(-1)?.type, 'run.finished');
    assert.equal(events.at(-1)?.data.status, 'succeeded');
    assert.equal(new Set(events.map((e) => e.runId)).size, 1);
    assert.equal(events.filter((e) => e.type === 'step.finished').length, 3);
  });

  test('submit --follow --json with a streaming llm step: still only JSON lines (streamed text left out)', async () => {
    const plan = await file('llm.json', { plan: { steps: [{ name: 'write', tool: 'llm', inputs: { prompt: 'Tell a long story about a lighthouse keeper.' } }] } });
    const r = await runCli(['submit', plan, '--follow', '--json', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as EventRecord);
    assert.ok(events.some((e) => e.type === 'llm.usage'));
    assert.equal(events.at(-1)?.type, 'run.finished');
  });

  test('submit --follow --json keeps the exit code: 1 for a run that fails', async () => {
    const plan = await file('fail.json', { plan: { steps: [{ name: 'slow', tool: 'sleep', inputs: { ms: 5000 }, timeoutMs: 150 }] } });
    const r = await runCli(['submit', plan, '--follow', '--json', '--url', url]);
    assert.equal(r.code, 1, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as EventRecord);
    assert.equal(events.find((e) => e.type === 'step.finished')?.data.status, 'timed_out');
    assert.equal(events.at(-1)?.data.status, 'failed');
  });

  test('runs cancel --json prints the run', async () => {
    const plan = await file('long.json', { plan: { steps: [{ name: 'long', tool: 'sleep', inputs: { ms: 30_000 } }] } });
    const id = (await runCli(['submit', plan, '--url', url])).stdout.trim();
    const r = await runCli(['runs', 'cancel', id, '--json', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    const run = JSON.parse(r.stdout) as { id: string; status: string; steps: unknown[] };
    assert.equal(run.id, id);
    assert.ok(['queued', 'running', 'cancelled'].includes(run.status), run.status);
    assert.equal(run.steps.length, 1);
  });

  test('db status --json and db migrate --json', async () => {
    const fresh = join(dir, 'fresh');
    const before = JSON.parse((await runCli(['db', 'status', '--json', '--data-dir', fresh])).stdout) as { dialect: string; current: number; latest: number; pending: number[] };
    assert.equal(before.dialect, 'sqlite');
    assert.equal(before.current, 0);
    assert.ok(before.latest >= 1 && before.pending.length === before.latest);
    const migrated = JSON.parse((await runCli(['db', 'migrate', '--json', '--data-dir', fresh])).stdout) as { applied: number[]; current: number };
    assert.deepEqual(migrated.applied, before.pending);
    const afterMigrate = JSON.parse((await runCli(['db', 'status', '--json', '--data-dir', fresh])).stdout) as { current: number; pending: number[]; database: string };
    assert.equal(afterMigrate.current, before.latest);
    assert.deepEqual(afterMigrate.pending, []);
    assert.ok(afterMigrate.database.startsWith(fresh));
  });

  test('a reader that goes away (| head -1) ends the CLI quietly with 141, no stack trace', async () => {
    const quote = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
    const child = spawn('bash', ['-c', `${[NODE, BIN, 'submit', 'examples/hello.json', '--follow', '--url', url].map(quote).join(' ')} | head -1; echo "status \${PIPESTATUS[0]}"`], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise((resolve) => child.once('close', resolve));
    const [id, status] = out.trim().split('\n');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(status, 'status 141');
    assert.equal(err, '');
  });

  test('runs list filters by time, goal and tool', async () => {
    const plan = await file('tools.json', { plan: { goal: 'Filter me: HTTP then echo', steps: [{ name: 'h', tool: 'http', inputs: { url: `${url}/health` } }, { name: 'e', tool: 'echo', inputs: {}, dependsOn: ['h'] }] } });
    const id = (await runCli(['submit', plan, '--follow', '--url', url])).stdout.split('\n')[0] ?? '';
    const list = async (...flags: string[]): Promise<string[]> => {
      const r = await runCli(['runs', 'list', '--json', '--limit', '500', '--url', url, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { runs: Array<{ id: string }> }).runs.map((x) => x.id);
    };
    assert.deepEqual(await list('--goal', 'filter ME'), [id]);
    assert.deepEqual(await list('--tool', 'http'), [id]);
    assert.ok((await list('--tool', 'echo')).includes(id));
    assert.ok(!(await list('--tool', 'sleep')).includes(id));
    assert.deepEqual(await list('--goal', 'filter', '--since', '10m'), [id]);
    assert.deepEqual(await list('--goal', 'filter', '--until', '2000-01-01'), []);
    assert.deepEqual(await list('--goal', 'filter', '--since', new Date(Date.now() + 60_000).toISOString()), []);
    const bad = await runCli(['runs', 'list', '--since', 'yesterday', '--url', url]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: --since must be a time/);
    const res = await fetch(`${url}/runs?createdAfter=2025-03-04T12:00`);
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'INVALID_QUERY');
  });

  test('on a terminal: a redrawn table; with TERM=dumb: the plain lines a pipe gets', async () => {
    const tty = await runInTerminal(['submit', 'examples/hello.json', '--follow', '--url', url], { TERM: 'xterm-256color' });
    assert.equal(tty.code, 0, tty.output);
    assert.ok(tty.output.includes(ESC), 'a capable terminal gets cursor movement (the test can tell)');
    const dumb = await runInTerminal(['submit', 'examples/hello.json', '--follow', '--url', url], { TERM: 'dumb' });
    assert.equal(dumb.code, 0, dumb.output);
    assert.ok(!dumb.output.includes(ESC), JSON.stringify(dumb.output));
    assert.match(dumb.output, /^\d\d:\d\d:\d\d\.\d{3} step\.finished greet succeeded \d+ms\r?$/m);
    assert.match(dumb.output, /^run \S+ succeeded\r?$/m);
  });
});

describe('flags with negative numbers', () => {
  test('--lease-ms -1 reaches the configuration check (not a parse error)', async () => {
    const r = await runCli(['start', '--lease-ms', '-1']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'error: invalid configuration: leaseMs must be a positive integer of milliseconds, got -1 (from flag --lease-ms)\n');
  });
});
