/**
 * A real deployment (`runwarden start` with supervised worker processes) on a temp data directory,
 * and the checks every supervisor test ends with: no process of the deployment is left behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { RunWithSteps, StepDetail } from '../../src/domain/records.ts';
import type { HealthDetailed, SupervisorStatus } from '../../src/engine/facade.ts';
import { waitFor } from '../helpers/engine.ts';
import { api, BIN, ROOT, startServer, type ServerProcess } from '../helpers/server.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';

export { api, waitFor };

export interface Deployment {
  dir: string;
  url: string;
  server: ServerProcess;
  health(): Promise<HealthDetailed>;
  supervisor(): Promise<SupervisorStatus>;
  submit(steps: unknown[]): Promise<string>;
  run(runId: string): Promise<RunWithSteps>;
  step(runId: string, name: string): Promise<StepDetail>;
  waitRun(runId: string, timeoutMs?: number): Promise<RunWithSteps>;
  /** The pid of the worker process whose claim loop is `workerId`. */
  pidOf(workerId: string): Promise<number>;
}

/** Processes whose command line names `marker` (the deployment's data directory). */
export function processesOf(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').some((a) => a.includes(marker))) pids.push(Number(name));
    } catch {
      // The process exited while we looked: not an orphan.
      continue;
    }
  }
  return pids;
}

/** Fails (after killing them) if processes of the deployment are still there after `timeoutMs`. */
export async function assertNoOrphans(marker: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let left = processesOf(marker);
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    left = processesOf(marker);
  }
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone in between.
      continue;
    }
  }
  assert.deepEqual(left, [], `processes left behind: ${left.join(', ')}`);
}

export async function startDeployment(
  t: TestContext,
  opts: { workers?: number; args?: string[]; env?: Record<string, string>; dir?: string; waitReady?: boolean } = {},
): Promise<Deployment> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'rw-sup-'));
  const workers = opts.workers ?? 2;
  const server = await startServer(['--data-dir', dir, '--lab', 'off', '--workers', String(workers), '--tools', TOOLS_FILE, ...(opts.args ?? [])], opts.env ?? {});
  t.after(async () => {
    await server.stop(15_000);
    await assertNoOrphans(dir);
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  });
  const d: Deployment = {
    dir,
    url: server.url,
    server,
    async health() {
      return (await api<HealthDetailed>(server.url, '/health/detailed')).body;
    },
    async supervisor() {
      const s = (await d.health()).supervisor;
      assert.ok(s, 'the deployment reports its supervisor');
      return s;
    },
    async submit(steps) {
      const r = await api<RunWithSteps>(server.url, '/runs', { body: { plan: { steps } } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.id;
    },
    async run(runId) {
      return (await api<RunWithSteps>(server.url, `/runs/${runId}`)).body;
    },
    async step(runId, name) {
      return (await api<StepDetail>(server.url, `/runs/${runId}/steps/${name}`)).body;
    },
    waitRun(runId, timeoutMs = 20_000) {
      return waitFor(
        async () => {
          const r = await d.run(runId);
          return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
        },
        timeoutMs,
        `run ${runId} to finish`,
      );
    },
    async pidOf(workerId) {
      const s = await d.supervisor();
      const w = s.workers.find((x) => x.workerIds.includes(workerId));
      assert.ok(w?.pid, `worker ${workerId} is one of the deployment's processes`);
      return w.pid;
    },
  };
  if (opts.waitReady !== false) await waitFor(async () => ((await d.supervisor()).alive === workers ? true : undefined), 20_000, `${workers} worker processes up`);
  return d;
}

/** `runwarden <args>` as a real process; resolves with its exit code and output. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** Polls `/health` every `everyMs` until stopped; records the slowest answer and every failure. */
export function probeHealth(url: string, everyMs = 100): { stop(): Promise<{ maxMs: number; count: number; failures: string[] }> } {
  let running = true;
  let maxMs = 0;
  let count = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
        await res.text();
        if (res.status !== 200) failures.push(`HTTP ${res.status}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      maxMs = Math.max(maxMs, performance.now() - t0);
      count++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { maxMs, count, failures };
    },
  };
}
