/**
 * The same stubborn tools with `toolIsolation: 'inline'`, on the worker's own event loop. There the
 * tool's JavaScript cannot be stopped, but what it keeps running on is: its pending timers and
 * immediates are cleared (a polling loop, a writer, a CPU burner in slices stop), its processes
 * killed, its threads terminated, its sockets destroyed. docs/lifecycle.md says what this mode
 * cannot stop (a loop of microtasks, callbacks of I/O already under way).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StepDetail } from '../../src/domain/records.ts';
import { configureTimerScan, TIMER_SCAN_MIN_INTERVAL_MS, TIMER_SCAN_PACING } from '../../src/forensics/inspect.ts';
import { waitFor } from '../helpers/engine.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { STUBBORN_FILE } from './fixtures/stubborn.ts';

const GRACE = 500;

interface Report {
  classification: { code: string; summary: string };
  containment?: { mode: string; processes: unknown[]; threads: unknown[]; socketsClosed: number };
}

describe('containment of tools that ignore their signal (inline)', { concurrency: 1 }, () => {
  let rt: TestRuntime;
  let dir: string;

  before(async () => {
    // Every abandoned attempt gets its own heap scan for the report (production paces them).
    configureTimerScan({ minIntervalMs: 0, pacing: 0 });
    dir = mkdtempSync(join(tmpdir(), 'rw-inline-'));
    rt = await startTestRuntime({ tools: [STUBBORN_FILE], toolIsolation: 'inline', abortGraceMs: GRACE });
  });

  after(async () => {
    configureTimerScan({ minIntervalMs: TIMER_SCAN_MIN_INTERVAL_MS, pacing: TIMER_SCAN_PACING });
    await rt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function cut(tool: string, inputs: Record<string, unknown>): Promise<{ step: StepDetail; report: Report }> {
    const run = await rt.submit({
      plan: { steps: [{ name: 'stubborn', tool, inputs, timeoutMs: 1000, retries: { max: 0 } }, { name: 'sibling', tool: 'nap', inputs: { ms: 300 } }] },
    });
    const done = await rt.waitRun(run.id, 30_000);
    assert.equal(done.steps.find((s) => s.name === 'sibling')?.status, 'succeeded');
    const step = await rt.engine.getStep(run.id, 'stubborn');
    assert.equal(step.status, 'timed_out');
    const report = step.hangReports[0] as unknown as Report;
    const over = Date.parse(step.finishedAt as string) - Date.parse(step.attemptsDetail[0]?.deadlineAt as string);
    assert.ok(over <= GRACE + 1000, `ended ${over} ms after its deadline`);
    assert.equal(report.containment?.mode, 'inline', JSON.stringify(report.containment));
    return { step, report };
  }

  test('a writer re-arming a 50 ms timer: its timer is cleared and the file stops growing', async () => {
    const file = join(dir, 'append.log');
    const { step } = await cut('append_forever', { file });
    const cleared = await waitFor(async () => {
      const ev = await rt.events(step.runId);
      return ev.find((e) => e.type === 'step.log' && e.data.kind === 'containment');
    }, 3000, 'the timers of the cut attempt cleared');
    assert.ok(Number(cleared.data.timersCleared) >= 1);
    const size = statSync(file).size;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(statSync(file).size, size);
  });

  test('a CPU burner in setImmediate slices: reported as still working, its next slice cleared, the CPU idle', async () => {
    const { report } = await cut('burn_slices', {});
    await new Promise((r) => setTimeout(r, 500)); // its next slice is cleared right after the cut
    assert.equal(report.classification.code, 'handler.ignored_abort', report.classification.summary);
    assert.match(report.classification.summary, /setImmediate/);
    const before = process.cpuUsage();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const used = process.cpuUsage(before);
    const share = (used.user + used.system) / 1000 / (Date.now() - t0);
    assert.ok(share < 0.5, `the worker process used ${(share * 100).toFixed(0)} % of a core after the cut`);
  });

  test('a shell that ignores SIGTERM: it and its background sleep are killed', async () => {
    const seconds = `700.${process.pid}${Date.now() % 1000}`;
    await cut('stubborn_shell', { seconds });
    const left = readdirSync('/proc').filter((n) => {
      try {
        return /^\d+$/.test(n) && readFileSync(`/proc/${n}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(`sleep ${seconds}`);
      } catch {
        return false;
      }
    });
    assert.deepEqual(left, []);
  });

  test('a worker thread it created: terminated, and it stops writing', async () => {
    const file = join(dir, 'thread.log');
    const { report } = await cut('thread_wait', { file });
    assert.equal(report.containment?.threads.length, 1);
    const size = existsSync(file) ? statSync(file).size : 0;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(existsSync(file) ? statSync(file).size : 0, size);
  });
});
