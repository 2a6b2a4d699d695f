/**
 * The 2-minute soak (chaos/soak.ts) as part of `npm test`: runs on a private PostgreSQL cluster
 * (never the shared one), kills worker processes and an API at random, restarts PostgreSQL, and
 * fails on any broken invariant. `npm run soak -- --minutes 10` is the long version.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const CI = process.env.CI === 'true' || process.env.CI === '1';
const haveServer = existsSync('/usr/lib/postgresql');
if (!haveServer && CI) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql: the soak cannot run, and in CI that is a failure');

test('soak: 2 minutes of mixed runs under chaos keep every invariant', { skip: haveServer ? false : 'no PostgreSQL server binaries (apt-get install postgresql)', timeout: 900_000 }, async (t) => {
  const child = spawn(process.execPath, [join(ROOT, 'chaos', 'soak.ts'), '--minutes', '2', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.ok(out.trim() !== '', `the soak printed no figures (exit ${code}):\n${err.slice(-3000)}`);
  const figures = JSON.parse(out) as { problems: string[]; acknowledged: number; chaos: { workerKills: number; apiKills: number; pgRestarts: number }; orphans: number };
  t.diagnostic(out.replace(/\s+/g, ' ').slice(0, 1500));
  assert.deepEqual(figures.problems, [], err.slice(-3000));
  assert.equal(code, 0);
  assert.ok(figures.acknowledged >= 100, `${figures.acknowledged} runs acknowledged`);
  assert.ok(figures.chaos.pgRestarts >= 1, 'PostgreSQL was restarted');
  assert.ok(figures.chaos.workerKills >= 1, 'worker processes were killed');
  assert.ok(figures.chaos.apiKills >= 1, 'the API was killed');
  assert.equal(figures.orphans, 0);
});
