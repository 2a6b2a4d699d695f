/** An in-process runtime (store, engine, worker, HTTP API on a real socket) on a temp directory. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { staticDefaults } from '../../src/config/fields.ts';
import type { RunwardenConfig } from '../../src/config/types.ts';
import type { EventRecord, RunWithSteps } from '../../src/domain/records.ts';
import { startRuntime, type Runtime } from '../../src/runtime.ts';
import { waitForRunEvent } from './wait.ts';

/** The defaults (src/config/fields.ts), with what tests want instead: a free port, one worker, no lab. */
export function testConfig(dataDir: string, overrides: Partial<RunwardenConfig> = {}): RunwardenConfig {
  return {
    ...staticDefaults(),
    port: 0,
    dataDir,
    workers: 1,
    concurrency: 64,
    defaultProvider: undefined,
    defaultTimeoutMs: 60_000,
    labPort: 0,
    lab: 'off',
    configFile: undefined,
    ...overrides,
  };
}

export interface TestRuntime extends Runtime {
  /** POST /runs; returns the created run. */
  submit(body: Record<string, unknown>): Promise<RunWithSteps>;
  waitRun(runId: string, timeoutMs?: number): Promise<RunWithSteps>;
  events(runId: string): Promise<EventRecord[]>;
}

export async function startTestRuntime(overrides: Partial<RunwardenConfig> = {}, env: Record<string, string | undefined> = {}): Promise<TestRuntime> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-rt-'));
  const rt = await startRuntime(testConfig(dir, overrides), { env });
  const close = (): Promise<void> => rt.close();
  return {
    ...rt,
    async close() {
      await close();
      rmSync(dir, { recursive: true, force: true });
    },
    async submit(body) {
      return (await rt.engine.createRun(body)).run;
    },
    async waitRun(runId, timeoutMs = 15_000) {
      await waitForRunEvent(rt.engine, runId, (e) => e.type === 'run.finished', timeoutMs, `run ${runId} to finish`);
      return rt.engine.getRun(runId);
    },
    events(runId) {
      return rt.engine.listEvents(runId, 0, 10_000);
    },
  };
}
