/**
 * Retention at scale: `runwarden runs prune` on a deployment holding 100,000 finished runs while its
 * workers keep working. `runwarden start --workers 2` on a fresh SQLite data directory; the runs are
 * submitted through the API (two echo steps each, ~1 KB of inputs) and left to finish; then a few
 * long runs are started (running during the prune), a steady trickle of new runs arrives (each
 * timed from submission to `succeeded`), and the prune runs through the real CLI. Checked after:
 * every finished run older than the cutoff is gone (with its steps, attempts, events), the long
 * runs still run, every run that arrived finished, the file is smaller.
 *
 *   node bench/prune.ts [--runs 100000]
 *
 * Prints a table. Not part of `npm test`: test/integration/retention.test.ts is the 1,000-run
 * version. Run it alone (flock /tmp/runwarden-heavy.lock node bench/prune.ts): it takes minutes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { apiClient, BIN, ROOT, spawnRunwarden } from './deployment.ts';
import { percentile, sleep } from './peers/common.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '100000' } } });
const RUNS = Number(values.runs);
const LONG = 10;
const SUBMIT_CONCURRENCY = 32;
const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

const dir = mkdtempSync(join(tmpdir(), 'rw-bench-prune-'));
const file = join(dir, 'runwarden.db');
const server = spawnRunwarden(['start', '--port', '0', '--data-dir', dir, '--lab', 'off', '--workers', '2'], {}, /runwarden listening on http:\/\/\S+/);
try {
  await server.ready;
  const url = /runwarden listening on (http:\/\/\S+)/.exec(server.output())?.[1] ?? '';
  const api = apiClient(url);
  const payload = 'p'.repeat(512);
  const plan = (i: number): unknown => ({
    plan: { goal: `prune bench ${i}`, steps: [{ name: 'a', tool: 'echo', inputs: { payload, i } }, { name: 'b', tool: 'echo', inputs: { from: '{{steps.a.outputs.i}}' }, dependsOn: ['a'] }] },
  });

  let t0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
      for (let i = next++; i < RUNS; i = next++) {
        await api.post('/runs', plan(i));
        if (i > 0 && i % 10_000 === 0) process.stderr.write(`submitted ${i} runs (${Math.round(i / ((Date.now() - t0) / 1000))}/s)\n`);
      }
    }),
  );
  const submitS = (Date.now() - t0) / 1000;
  for (;;) {
    const h = await api.health();
    if (h.queue.queued + h.queue.running + h.queue.pending === 0) break;
    await sleep(500);
  }
  const seededS = (Date.now() - t0) / 1000;

  const long: string[] = [];
  for (let i = 0; i < LONG; i++) long.push((await api.post<{ id: string }>('/runs', { plan: { steps: [{ name: 'long', tool: 'sleep', inputs: { ms: 3_600_000 }, timeoutMs: 7_200_000 }] } })).id);
  for (;;) {
    const h = await api.health();
    if (h.queue.running >= LONG) break;
    await sleep(100);
  }

  const db = new DatabaseSync(file, { timeout: 30_000 });
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  const sizeBefore = statSync(file).size;

  // A steady trickle while the prune runs: 20 runs a second, each timed to success.
  let trickling = true;
  const latencies: number[] = [];
  const arrived: string[] = [];
  const trickle = (async () => {
    const pending: Array<Promise<void>> = [];
    while (trickling) {
      const started = Date.now();
      const { id } = await api.post<{ id: string }>('/runs', { plan: { steps: [{ name: 'n', tool: 'echo', inputs: {} }] } });
      arrived.push(id);
      pending.push(
        (async () => {
          for (;;) {
            const r = await fetch(`${url}/runs/${id}`, { signal: AbortSignal.timeout(15_000) });
            if (r.status === 404) return; // finished, then pruned
            const body = (await r.json()) as { status: string };
            if (body.status === 'succeeded') {
              latencies.push(Date.now() - started);
              return;
            }
            if (body.status === 'failed' || body.status === 'cancelled') throw new Error(`run ${id} ${body.status}`);
            await sleep(20);
          }
        })(),
      );
      await sleep(50);
    }
    await Promise.all(pending);
  })();

  t0 = Date.now();
  const cli = spawn(process.execPath, [BIN, 'runs', 'prune', '--older-than', '0s', '--json', '--url', url], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => cli.once('close', resolve));
  const pruneS = (Date.now() - t0) / 1000;
  trickling = false;
  await trickle;
  if (code !== 0) throw new Error(`runs prune exited ${code}`);
  const result = JSON.parse(out) as { runs: number; steps: number; events: number; space: { before: { bytes: number }; after: { bytes: number } } };

  const count = (sql: string): number => Number((db.prepare(sql).get() as { n: number }).n);
  const leftSeeded = count("SELECT count(*) AS n FROM runs WHERE goal LIKE 'prune bench %'");
  const orphans = count('SELECT count(*) AS n FROM events WHERE run_id NOT IN (SELECT id FROM runs)') + count('SELECT count(*) AS n FROM steps WHERE run_id NOT IN (SELECT id FROM runs)');
  const longRunning = count(`SELECT count(*) AS n FROM steps WHERE status = 'running' AND run_id IN (${long.map((id) => `'${id}'`).join(',')})`);
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  const sizeAfter = statSync(file).size;
  db.close();

  const rows: Array<[string, string]> = [
    ['runs seeded', `${RUNS} (submitted in ${submitS.toFixed(1)} s, all finished at ${seededS.toFixed(1)} s)`],
    ['runs pruned', `${result.runs} (${result.steps} steps, ${result.events} events) in ${pruneS.toFixed(1)} s, ${Math.round(result.runs / pruneS)} runs/s`],
    ['seeded runs left', String(leftSeeded)],
    ['rows left of pruned runs', String(orphans)],
    ['long runs still running', `${longRunning} of ${LONG}`],
    ['runs arriving during the prune', `${arrived.length}, all succeeded; submit-to-success p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${Math.max(...latencies)} ms`],
    ['database (pages)', `${mib(result.space.before.bytes)} -> ${mib(result.space.after.bytes)}`],
    ['database file (after checkpoint)', `${mib(sizeBefore)} -> ${mib(sizeAfter)}`],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`);
  const ok = leftSeeded === 0 && orphans === 0 && longRunning === LONG && sizeAfter < sizeBefore;
  process.exitCode = ok ? 0 : 1;
  for (const id of long) await api.post(`/runs/${id}/cancel`);
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
