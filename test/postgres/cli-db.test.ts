/** `runwarden db status` / `db migrate` against PostgreSQL (DATABASE_URL), several processes at once. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { BIN, cleanEnv, ROOT } from './processes.ts';

const skip = await postgresSkip();

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

test('db status and db migrate on DATABASE_URL; three processes migrating at once apply it once', { skip, timeout: 60_000 }, async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  // Trust authentication ignores the password; it is here to check that no output shows it.
  const url = new URL(db.url);
  url.username = 'postgres';
  url.password = 'hunter2-secret';
  const env = { DATABASE_URL: url.toString() };

  const before = await cli(['db', 'status'], env);
  assert.equal(before.code, 0, before.stderr);
  assert.match(before.stdout, /dialect\s+postgres/);
  assert.match(before.stdout, /current\s+0/);
  // Every migration the package ships is pending on an empty database, and db migrate applies them
  // all, once, whichever of the three processes takes the lock first.
  const latest = Number(/latest\s+(\d+)/.exec(before.stdout)?.[1]);
  assert.ok(latest >= 1, before.stdout);
  const all = Array.from({ length: latest }, (_, i) => i + 1).join(', ');
  assert.match(before.stdout, new RegExp(`pending\\s+${all} \\(run: runwarden db migrate\\)`));

  const runs = await Promise.all([cli(['db', 'migrate'], env), cli(['db', 'migrate'], env), cli(['db', 'migrate'], env)]);
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const appliedAll = new RegExp(`applied migrations? ${all} to .*now at version ${latest}`);
  assert.equal(runs.filter((r) => appliedAll.test(r.stdout)).length, 1, runs.map((r) => r.stdout).join('\n'));
  assert.equal(runs.filter((r) => r.stdout.includes(`is up to date at version ${latest}`)).length, 2);

  const after = await cli(['db', 'status'], env);
  assert.match(after.stdout, new RegExp(`current\\s+${latest}\\b`));
  assert.match(after.stdout, /pending\s+none/);
  for (const r of [before, after, ...runs]) assert.doesNotMatch(r.stdout + r.stderr, /hunter2/);
});
