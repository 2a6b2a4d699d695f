/**
 * `runwarden doctor` against a real deployment (RUNWARDEN_URL) and directly on its data directory:
 * 0 when healthy; non-zero, naming the problem, when a worker is frozen or the database is
 * unreachable.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, startDeployment, waitFor } from './helpers.ts';

const NO_URL = { RUNWARDEN_URL: '', DATABASE_URL: '', RUNWARDEN_DATABASE_URL: '' };

test('doctor: a healthy deployment passes, through its API and on its data directory', async (t) => {
  const d = await startDeployment(t, { workers: 1 });
  const viaApi = await runCli(['doctor'], { ...NO_URL, RUNWARDEN_URL: d.url });
  assert.equal(viaApi.code, 0, viaApi.out + viaApi.err);
  for (const check of ['api', 'database', 'migrations', 'workers', 'stuck steps', 'queue', 'event loop']) {
    assert.match(viaApi.out, new RegExp(`^ {2}(ok|warn|skip) +${check} `, 'm'), `${check} in:\n${viaApi.out}`);
  }
  assert.match(viaApi.out, /no problems found/);

  const direct = await runCli(['doctor', '--data-dir', d.dir], NO_URL);
  assert.equal(direct.code, 0, direct.out + direct.err);
  assert.match(direct.out, /ok +database +sqlite/);

  const json = await runCli(['doctor', '--json'], { ...NO_URL, RUNWARDEN_URL: d.url });
  assert.equal((JSON.parse(json.out) as { ok: boolean }).ok, true);
});

test('doctor: a frozen worker fails the check and is named', async (t) => {
  // Never killed for it during this test: the worker stays frozen for doctor to find.
  const d = await startDeployment(t, { workers: 1, env: { RUNWARDEN_LOOP_KILL_MS: '600000' } });
  await d.submit([{ name: 'spin', tool: 'spin', inputs: { ms: 600_000 }, timeoutMs: 600_000 }]);
  const frozen = await waitFor(async () => (await d.supervisor()).workers.find((w) => w.state === 'stalled'), 10_000, 'the worker to be seen stalled');
  try {
    const r = await runCli(['doctor'], { ...NO_URL, RUNWARDEN_URL: d.url });
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, new RegExp(`FAIL +workers +worker 0 \\(pid ${frozen.pid}\\) is frozen: its event loop has been blocked for \\S+ \\w+ by step spin \\(run `));
    assert.match(r.out, /^1 problem:/m);
  } finally {
    // A frozen worker cannot drain: end it here rather than make the shutdown wait for it.
    if (frozen.pid) process.kill(frozen.pid, 'SIGKILL');
  }
});

test('doctor: an unreachable database or API fails, naming it', async () => {
  const db = await runCli(['doctor'], { ...NO_URL, DATABASE_URL: 'postgres://runwarden@127.0.0.1:9/nowhere' });
  assert.equal(db.code, 1, db.out + db.err);
  assert.match(db.out, /FAIL +database +unreachable/);
  assert.match(db.out, /database \(postgres\) unreachable/);

  const apiDown = await runCli(['doctor', '--url', 'http://127.0.0.1:9']);
  assert.equal(apiDown.code, 3, apiDown.out + apiDown.err);
  assert.match(apiDown.out, /cannot reach the runwarden API at http:\/\/127\.0\.0\.1:9/);
});

test('doctor: one real request per provider; finds the lab `runwarden start` runs; a hanging provider fails', async (t) => {
  const { startLab } = await import('../../src/lab/index.ts');
  const other = await startLab({ port: 0 });
  t.after(() => other.close());
  const dir = mkdtempSync(join(tmpdir(), 'rw-doc-'));
  const config = join(dir, 'runwarden.config.json');
  writeFileSync(config, JSON.stringify({ providers: { hung: { type: 'openai', baseUrl: `${other.url}/no_headers/v1` } } }));
  // The lab on a free port: only its lab.json says where it is.
  const d = await startDeployment(t, { workers: 1, args: ['--lab', 'on', '--lab-port', '0'] });

  const direct = await runCli(['doctor', '--data-dir', d.dir], NO_URL);
  assert.equal(direct.code, 0, direct.out + direct.err);
  assert.match(direct.out, /^ {2}ok +providers +lab answered in \d+ ms \(model lab-chat, 1 output token\) \[lab at http:\/\/127\.0\.0\.1:\d+, started by runwarden \(pid \d+\)\]$/m);

  const hung = await runCli(['doctor', '--data-dir', d.dir, '--config', config], NO_URL);
  assert.equal(hung.code, 1, hung.out + hung.err);
  assert.match(hung.out, /FAIL +providers +provider hung \(http:\/\/127\.0\.0\.1:\d+\/no_headers\/v1\): llm\.no_headers - /);

  const viaApi = await runCli(['doctor'], { ...NO_URL, RUNWARDEN_URL: d.url });
  assert.equal(viaApi.code, 0, viaApi.out + viaApi.err);
  assert.match(viaApi.out, /ok +providers +lab answered in \d+ ms .*listed by the API/);
  rmSync(dir, { recursive: true, force: true });
});
