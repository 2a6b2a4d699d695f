/**
 * Enqueue rates over HTTP, as clients submit: `runwarden start --workers 0` (the API alone, so
 * nothing claims meanwhile) on a fresh SQLite data directory or PostgreSQL database, and this
 * process as the client.
 * - `batched`: `POST /runs/batch` with 500 single-step runs a request, 2 requests in flight.
 * - `single`: `POST /runs`, 16 submitters each waiting for its answer before the next (the API
 *   writes concurrent submissions together: src/engine/group-commit.ts).
 * The rows are `enqueue` / `batched_runs_per_s` and `single_runs_per_s`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiClient, now, startDeployment, type Api } from './deployment.ts';
import { withDatabase } from './peers/common.ts';
import type { BenchResult } from './report.ts';

const REQUEST = { plan: { steps: [{ name: 'n', tool: 'echo', inputs: { x: 1 } }] } };

async function parallel(n: number, each: () => Promise<boolean>): Promise<void> {
  await Promise.all(Array.from({ length: n }, async () => {
    while (await each());
  }));
}

/** Runs per second of `total` runs in batches of `size`, `inFlight` requests at once. */
export async function batchedRate(api: Api, total: number, size = 500, inFlight = 2): Promise<number> {
  let left = total;
  const t0 = now();
  await parallel(inFlight, async () => {
    if (left <= 0) return false;
    const n = Math.min(size, left);
    left -= n;
    const res = await api.post<{ runs: unknown[] }>('/runs/batch', { runs: Array.from({ length: n }, () => REQUEST) });
    if (res.runs.length !== n) throw new Error(`bench: a batch of ${n} created ${res.runs.length}`);
    return true;
  });
  return total / ((now() - t0) / 1000);
}

/** Runs per second of `total` single POST /runs from `submitters` concurrent clients. */
export async function singleRate(api: Api, total: number, submitters = 16): Promise<number> {
  let left = total;
  const t0 = now();
  await parallel(submitters, async () => {
    if (left-- <= 0) return false;
    await api.post('/runs', REQUEST);
    return true;
  });
  return total / ((now() - t0) / 1000);
}

async function measure(system: string, o: { dataDir?: string; databaseUrl?: string }, quick: boolean): Promise<BenchResult[]> {
  const d = await startDeployment({ ...o, workers: 0, tools: [] });
  try {
    const api = apiClient(d.url);
    // Warm-up: connections, prepared statements, JIT.
    await batchedRate(api, 1000);
    await singleRate(api, 200);
    const batched = await batchedRate(api, quick ? 20_000 : 50_000);
    const single = await singleRate(api, quick ? 3000 : 10_000);
    return [
      { system, workload: 'enqueue', metric: 'batched_runs_per_s', value: Math.round(batched), note: 'POST /runs/batch, 500 runs a request, 2 in flight' },
      { system, workload: 'enqueue', metric: 'single_runs_per_s', value: Math.round(single), note: 'POST /runs, 16 concurrent submitters' },
    ];
  } finally {
    await d.stop(5000);
  }
}

export async function enqueueRates(system: string, quick: boolean): Promise<BenchResult[]> {
  if (system === 'runwarden-postgres') return withDatabase((db) => measure(system, { databaseUrl: db.url }, quick));
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-enqueue-'));
  try {
    return await measure(system, { dataDir: dir }, quick);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
