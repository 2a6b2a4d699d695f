/**
 * The package as a user gets it (`npm run test:package`; minutes, and it installs from the npm
 * registry, so it is not part of `npm test`): `npm pack`, then in a new directory outside the
 * repository `npm install <tarball> typescript`, and there
 * - the TypeScript app of examples/typescript-app compiles under strict settings (skipLibCheck
 *   off, no @types/node) and runs: a tool and a plan defined in code, run on an embedded runtime
 *   and through the client against a separately started `npx runwarden start`, each stream
 *   followed to run.finished;
 * - a wrong step reference, a wrong output field and a wrong input type are compile errors;
 * - `npx runwarden --help`, `start`, `lab` and `doctor` work on Node 24, and an older Node gets a
 *   message that says what to do (and what it says works).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { npmEnv, pack } from '../../scripts/package-size.ts';
import { cleanEnv } from '../cli/helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'typescript-app');
/** The machine's own Node (20 here): what a user with an old Node runs the bin with. */
const OLD_NODE = '/usr/bin/node';

let work: string;
let app: string;
let tarball: string;
const children = new Set<ChildProcess>();

/** The consumer's environment: Node 24 first on PATH, none of the developer's RUNWARDEN_* settings. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  return cleanEnv({ PATH: npmEnv().PATH ?? '', ...extra });
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? app, env: opts.env ?? env(), encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A long-running command, resolved with its first match of `ready` in its output. */
async function background(args: string[], ready: RegExp, extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  // A process group of its own, so that nothing it starts can outlive the test.
  const child = spawn('npx', args, { cwd: app, env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(child);
  let out = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npx ${args.join(' ')} did not become ready in 30 s:\n${out}`)), 30_000);
    const look = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npx ${args.join(' ')} exited with ${code}:\n${out}`));
    });
  });
  return { child, match, output: () => out };
}

/** The process `npx` started for the bin (npx runs it under `sh -c`): the one to signal. */
function binProcess(pid: number): number | undefined {
  const children = (p: number): number[] => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const queue = children(pid);
  for (let i = 0; i < queue.length; i++) {
    const p = queue[i] as number;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes('.bin/runwarden')) return p;
    queue.push(...children(p));
  }
  return undefined;
}

/**
 * SIGTERM to the runwarden process itself (signalling npx would orphan it), then npx's exit code,
 * which is runwarden's; SIGKILL to the whole group if it does not stop within 10 s.
 */
async function stop(child: ChildProcess): Promise<number | null> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const bin = binProcess(child.pid);
  process.kill(bin ?? child.pid, 'SIGTERM');
  const t = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(t);
  return code;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'rw-package-'));
  app = join(work, 'app');
  tarball = pack(work).tarball;
  cpSync(EXAMPLE, app, { recursive: true, filter: (src) => !/[\\/](build|node_modules|\.runwarden[^\\/]*)$/.test(src) });
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'rw-consumer', private: true, type: 'module' }, null, 2)}\n`);
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, 'typescript'], { timeoutMs: 300_000 });
  assert.equal(install.code, 0, `npm install failed:\n${install.err}`);
});

after(async () => {
  for (const c of children) await stop(c);
  rmSync(work, { recursive: true, force: true });
});

describe('installed from the packed tarball', () => {
  test('the tarball holds the build and the bin, not the sources or the tests', () => {
    const list = run('tar', ['-tzf', tarball], { cwd: work }).out.split('\n');
    for (const f of ['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/client/index.js', 'package/dist/cli/main.js', 'package/bin/runwarden.js', 'package/dist/store/sqlite/migrations/000001_initial.sql', 'package/dist/ui/index.html']) {
      assert.ok(list.includes(f), `${f} is missing from the tarball`);
    }
    assert.deepEqual(list.filter((f) => /^package\/(src|test|bench|docs|examples)\//.test(f) || f.endsWith('.ts') && !f.endsWith('.d.ts')), []);
  });

  test('a strict tsc project importing the entry points typechecks (no @types/node, skipLibCheck off)', () => {
    assert.ok(!existsSync(join(app, 'node_modules', '@types', 'node')), 'the consumer must not have @types/node');
    const tsc = run('npx', ['tsc', '-p', '.']);
    assert.equal(tsc.code, 0, `tsc failed:\n${tsc.out}${tsc.err}`);
    for (const f of ['app.js', 'plan.js', 'tools.js']) assert.ok(existsSync(join(app, 'build', f)), `build/${f} was not emitted`);
  });

  test('a wrong step reference, a wrong output field and a wrong input type do not compile', () => {
    // Each line marked `// error TSxxxx` must fail with that code, and no other line may fail.
    const source = `import { definePlan, defineTool, jsonSchema } from 'runwarden';
import { countWords, shout } from '../src/tools.ts';
const first = definePlan().step('shout', shout, { text: 'hi' });
first.step('count', countWords, (steps) => ({ text: steps.shuot.outputs.text })); // error TS2551
first.step('count', countWords, (steps) => ({ text: steps.shout.outputs.txt })); // error TS2551
first.step('count', countWords, (steps) => ({ text: steps.shout.outputs.length })); // error TS2345
first.step('count', countWords, { text: 42 }); // error TS2322
defineTool({ name: 'half', input: jsonSchema({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }), run: (_ctx, input) => input.n.trim() }); // error TS2339
export const fine = first.step('count', countWords, (steps) => ({ text: steps.shout.outputs.text })).build();
`;
    mkdirSync(join(app, 'wrong'), { recursive: true });
    writeFileSync(join(app, 'wrong', 'wrong.ts'), source);
    writeFileSync(join(app, 'tsconfig.wrong.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: true, rootDir: '.' }, include: ['wrong'] }));
    const tsc = run('npx', ['tsc', '-p', 'tsconfig.wrong.json']);
    assert.notEqual(tsc.code, 0, 'the wrong file compiled');
    const expected = source
      .split('\n')
      .flatMap((line, i) => {
        const m = /\/\/ error (TS\d+)$/.exec(line);
        return m ? [`${i + 1} ${m[1]}`] : [];
      });
    const got = [...tsc.out.matchAll(/^wrong\/wrong\.ts\((\d+),\d+\): error (TS\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual([...new Set(got)].sort(), expected.sort(), `tsc output:\n${tsc.out}`);
  });

  test('the app runs its plan embedded and through the client against npx runwarden start, following each stream to the end', async () => {
    const server = await background(['runwarden', 'start', '--port', '0', '--workers', '1', '--lab', 'off', '--data-dir', join(work, 'server-data'), '--tools', 'build/tools.js'], /runwarden listening on (http:\/\/\S+)/);
    const url = server.match[1] ?? '';
    try {
      const r = run(process.execPath, ['build/app.js'], { env: env({ RUNWARDEN_URL: url, EXAMPLE_DATA_DIR: join(work, 'embedded-data') }), timeoutMs: 90_000 });
      assert.equal(r.code, 0, `the app failed:\n${r.out}${r.err}`);
      for (const where of ['embedded', 'remote']) {
        const done = new RegExp(`^${where}: run \\S+ succeeded: \\{"line":"HELLO .* has \\d+ words","words":\\d+\\} \\(events ([\\d,]+)\\)$`, 'm').exec(r.out);
        assert.ok(done, `no succeeded ${where} run in:\n${r.out}`);
        const seqs = (done[1] ?? '').split(',').map(Number);
        assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${where}: the stream skipped or repeated an event`);
        assert.match(r.out, new RegExp(`^${where}: #${seqs.length} run.finished succeeded$`, 'm'));
      }
      assert.match(r.out, /^remote: a missing run is 404 NOT_FOUND$/m);

      const doctor = run('npx', ['runwarden', 'doctor', '--url', url]);
      assert.equal(doctor.code, 0, `doctor found problems:\n${doctor.out}${doctor.err}`);
      assert.match(doctor.out, /ok +workers +1 worker process heartbeating/);
      assert.match(doctor.out, /no problems found/);
    } finally {
      assert.equal(await stop(server.child), 0, `runwarden start did not stop cleanly:\n${server.output()}`);
    }
  });

  test('what the install leaves out (optional peers) is named when it is needed', () => {
    const base = ['runwarden', 'start', '--port', '0', '--workers', '1', '--lab', 'off', '--data-dir', join(work, 'peer-data')];
    const pg = run('npx', base, { env: env({ DATABASE_URL: 'postgres://127.0.0.1:1/none' }) });
    assert.notEqual(pg.code, 0);
    assert.match(pg.out + pg.err, /DATABASE_URL names PostgreSQL, but its driver is not installed: run `npm install pg`/);
    const otel = run('npx', base, { env: env({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }) });
    assert.notEqual(otel.code, 0);
    assert.match(otel.out + otel.err, /the OpenTelemetry packages are not installed: run `npm install @opentelemetry\/api /);
    for (const name of ['pg', '@opentelemetry/api', '@opentelemetry/sdk-trace-base']) assert.ok(!existsSync(join(app, 'node_modules', name)), `${name} was installed`);
  });

  test('npx runwarden --help and lab work on Node 24', async () => {
    const help = run('npx', ['runwarden', '--help']);
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /^usage: runwarden <command>/m);
    for (const cmd of ['start', 'lab', 'doctor', 'submit']) assert.match(help.out, new RegExp(`^  ${cmd} `, 'm'));

    const lab = await background(['runwarden', 'lab', '--port', '0'], /(http:\/\/127\.0\.0\.1:\d+)/);
    try {
      const res = await fetch(`${lab.match[1] ?? ''}/modes`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { modes?: Array<{ name: string }> } | Array<{ name: string }>;
      const modes = Array.isArray(body) ? body : (body.modes ?? []);
      assert.ok(modes.some((m) => m.name === 'stream_stall'), 'the lab lists its modes');
    } finally {
      await stop(lab.child);
    }
  });

  test('an older Node is told what to do, and the advice works', { skip: oldNodeSkip() }, () => {
    const old = run(OLD_NODE, [join(app, 'node_modules', 'runwarden', 'bin', 'runwarden.js'), '--help']);
    assert.equal(old.code, 2);
    assert.match(old.err, /^runwarden needs Node\.js >= 22\.16 \(22 LTS or 24 LTS\); this is v\d+\.\d+\.\d+ \(\/usr\/bin\/node\)\.$/m);
    assert.match(old.err, /npx -y -p node@24 -p runwarden runwarden <command>/);
    // The advice, with the tarball standing in for the registry's runwarden, on a PATH whose node is the old one.
    const advised = run('npx', ['-y', '-p', 'node@24', '-p', tarball, 'runwarden', '--help'], { env: cleanEnv({ PATH: `${dirname(OLD_NODE)}:${process.env.PATH ?? ''}` }), timeoutMs: 300_000 });
    assert.equal(advised.code, 0, `the advised command failed:\n${advised.err}`);
    assert.match(advised.out, /^usage: runwarden <command>/m);
  });
});

function oldNodeSkip(): string | false {
  const v = spawnSync(OLD_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (v.status !== 0) return `no Node at ${OLD_NODE}`;
  const [major = 0, minor = 0] = v.stdout.trim().split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 16) ? `${OLD_NODE} is ${v.stdout.trim()}, not older than 22.16` : false;
}
