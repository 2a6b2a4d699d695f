/**
 * An engine and one in-process worker on a real SQLite file in a temp directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunWithSteps } from '../../src/domain/records.ts';
import { EngineApi } from '../../src/engine/api.ts';
import { lostAttemptReport } from '../../src/forensics/report.ts';
import { SqliteStore } from '../../src/store/sqlite/index.ts';
import { builtinTools } from '../../src/tools/builtin.ts';
import { ToolRegistry } from '../../src/tools/registry.ts';
import type { ToolDefinition } from '../../src/tools/types.ts';
import { installProcessGuards } from '../../src/worker/guards.ts';
import { Worker, type WorkerOptions } from '../../src/worker/worker.ts';
import { waitForRunEvent } from './wait.ts';

export { waitFor } from './wait.ts';

export interface TestEngine {
  dir: string;
  store: SqliteStore;
  engine: EngineApi;
  worker: Worker;
  tools: ToolRegistry;
  submit(plan: Record<string, unknown>): Promise<RunWithSteps>;
  waitRun(runId: string, timeoutMs?: number): Promise<RunWithSteps>;
  close(): Promise<void>;
}

export async function startTestEngine(
  opts: { tools?: ToolDefinition[]; worker?: Partial<WorkerOptions>; startWorker?: boolean; reaperIntervalMs?: number } = {},
): Promise<TestEngine> {
  installProcessGuards();
  const dir = mkdtempSync(join(tmpdir(), 'rw-test-'));
  const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
  await store.migrate();
  const tools = new ToolRegistry();
  for (const t of [...builtinTools, ...(opts.tools ?? [])]) tools.register(t);
  const engine = new EngineApi({ store, tools, limits: { defaultTimeoutMs: 30_000, maxTimeoutMs: 86_400_000 }, reaperIntervalMs: opts.reaperIntervalMs ?? 100, lostReport: lostAttemptReport });
  engine.start();
  const worker = new Worker({ core: engine.core, tools, leaseMs: 1000, heartbeatMs: 200, abortGraceMs: 300, pollMs: 50, ...opts.worker });
  if (opts.startWorker !== false) worker.start();
  return {
    dir,
    store,
    engine,
    worker,
    tools,
    async submit(plan) {
      return (await engine.createRun(plan)).run;
    },
    async waitRun(runId, timeoutMs = 15_000) {
      await waitForRunEvent(engine, runId, (e) => e.type === 'run.finished', timeoutMs, `run ${runId} to finish`);
      return engine.getRun(runId);
    },
    async close() {
      await worker.stop({ drainMs: 1000 });
      await engine.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

