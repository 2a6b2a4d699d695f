/**
 * Disk full on SQLite, end to end: `runwarden start` (supervised workers) with its data directory
 * on a 3 MB tmpfs. A filler file takes most of the volume; runs are submitted until writes fail.
 * Then: submissions and cancels answer a coded 503 STORAGE_FULL (never a 500), /health/detailed
 * and `doctor` name the full disk, the workers' logs stay bounded; the filler is deleted (nothing
 * else: no restart, no bigger volume) and the service recovers by itself; at the end every
 * acknowledged run is present and finished and `PRAGMA integrity_check` says ok.
 * Needs root (mount); with CI=true a missing permission is a failure, not a skip.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { runCli, startServer } from '../cli/helpers.ts';
import { assertNoOrphans, waitFor } from './helpers.ts';

function canMount(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  const probe = mkdtempSync(join(tmpdir(), 'rw-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]);
    execFileSync('umount', [probe]);
    return false;
  } catch (err) {
    return `cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const why = canMount();
if (why && (process.env.CI === 'true' || process.env.CI === '1')) throw new Error(`${why}: the disk-full test cannot run, and in CI that is a failure`);

test('disk full on SQLite: coded 503s, health and doctor name it, freeing space alone recovers, nothing acknowledged lost', { skip: why, timeout: 240_000 }, async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'rw-diskfull-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
  t.after(() => {
    try {
      execFileSync('umount', ['-l', mnt]);
    } finally {
      rmSync(mnt, { recursive: true, force: true });
    }
  });
  const data = join(mnt, 'data');
  mkdirSync(data);
  const server = await startServer(['--data-dir', data, '--lab', 'off', '--workers', '1']);
  t.after(async () => {
    await server.stop();
    await assertNoOrphans(data);
  });
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  const submit = (i: number) => api('POST', '/runs', { plan: { steps: [{ name: 'a', tool: 'echo', inputs: { i, pad: 'x'.repeat(4000) } }, { name: 'b', tool: 'echo', inputs: { i }, dependsOn: ['a'] }] } });

  // Leave ~600 KB free, then write until the disk refuses.
  const free = (): number => {
    const s = statfsSync(mnt);
    return s.bavail * s.bsize;
  };
  const filler = join(mnt, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, free() - 600 * 1024)));
  const acknowledged: string[] = [];
  let full: { status: number; body: Record<string, unknown> } | undefined;
  for (let i = 0; i < 2000 && !full; i++) {
    const r = await submit(i);
    if (r.status === 201) acknowledged.push(String(r.body.id));
    else full = r;
  }
  assert.ok(full, 'the volume filled up');
  assert.equal(full.status, 503, JSON.stringify(full.body));
  assert.equal((full.body.error as { code: string }).code, 'STORAGE_FULL');
  assert.match((full.body.error as { message: string }).message, /disk full/);
  assert.ok(acknowledged.length > 10, `${acknowledged.length} runs went in before the disk filled`);

  // Writes that need space keep failing with the same coded error, a cancel included.
  for (let i = 0; i < 3; i++) {
    const r = await submit(10_000 + i);
    assert.ok(r.status === 503 || r.status === 201, `${r.status} ${JSON.stringify(r.body)}`);
    if (r.status === 503) assert.equal((r.body.error as { code: string }).code, 'STORAGE_FULL');
    else acknowledged.push(String(r.body.id));
  }
  const cancel = await api('POST', `/runs/${acknowledged.at(-1)}/cancel`);
  assert.ok([200, 503].includes(cancel.status), `cancel: ${cancel.status} ${JSON.stringify(cancel.body)}`);
  if (cancel.status === 503) assert.equal((cancel.body.error as { code: string }).code, 'STORAGE_FULL');

  const health = await api('GET', '/health/detailed');
  assert.equal(health.status, 503);
  const db = health.body.database as { ok: boolean; writable?: boolean; error?: string };
  assert.equal(db.ok, false);
  assert.equal(db.writable, false);
  assert.match(db.error ?? '', /disk full/);
  assert.equal((await api('GET', '/health')).status, 200, 'liveness is not readiness');
  const doctorApi = await runCli(['doctor', '--url', server.url]);
  assert.notEqual(doctorApi.code, 0);
  assert.match(doctorApi.stdout + doctorApi.stderr, /not writable: disk full/);
  const doctorStore = await runCli(['doctor', '--data-dir', data]);
  assert.notEqual(doctorStore.code, 0);
  assert.match(doctorStore.stdout + doctorStore.stderr, /not writable: disk full/);

  // Bounded logging: over 10 s of a full disk, a handful of lines, not hundreds per second.
  const before = server.output().stderr.split('\n').length + server.output().stdout.split('\n').length;
  await new Promise((r) => setTimeout(r, 10_000));
  const after = server.output().stderr.split('\n').length + server.output().stdout.split('\n').length;
  t.diagnostic(`${acknowledged.length} runs acknowledged before the disk filled; ${after - before} log lines in 10 s of a full disk`);
  assert.ok(after - before < 40, `${after - before} log lines in 10 s of a full disk:\n${server.output().stderr.split('\n').slice(-20).join('\n')}`);

  // Free the space, and nothing else.
  rmSync(filler);
  const recovered = await waitFor(
    async () => {
      const r = await submit(20_000);
      return r.status === 201 ? r : undefined;
    },
    60_000,
    'a submission to succeed after the space was freed',
  );
  acknowledged.push(String(recovered.body.id));
  await waitFor(async () => ((await api('GET', '/health/detailed')).status === 200 ? true : undefined), 30_000, '/health/detailed to be ok again');
  // More than the volume held before: the WAL did not fill it up again.
  for (let i = 0; i < 50; i++) {
    const r = await submit(30_000 + i);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    acknowledged.push(String(r.body.id));
  }
  for (const id of acknowledged) {
    const done = await waitFor(
      async () => {
        const r = await api('GET', `/runs/${id}`);
        return ['succeeded', 'failed', 'cancelled'].includes(String(r.body.status)) ? r : undefined;
      },
      60_000,
      `run ${id} to finish`,
    );
    assert.equal(done.status, 200);
  }
  await server.stop();
  const file = join(data, 'runwarden.db');
  const check = new DatabaseSync(file, { readOnly: true });
  try {
    assert.deepEqual(check.prepare('PRAGMA integrity_check').all().map((r) => ({ ...r })), [{ integrity_check: 'ok' }]);
    const n = check.prepare('SELECT count(*) AS n FROM runs').get() as { n: number };
    assert.equal(n.n, acknowledged.length, 'every acknowledged run is in the database, and only those');
  } finally {
    check.close();
  }
});
