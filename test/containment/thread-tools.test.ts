/**
 * Tools that ignore their signal, run as a user runs them (a tools module, so in tool threads by
 * default), each beside well-behaved siblings on the same worker. For each: the step ends within
 * its deadline + grace + 1 s with the right status, what it was doing stops (the file stops
 * growing, the CPU goes idle, its database sessions end, its processes and threads are gone), the
 * siblings finish, and the hang report names the cause and how it was contained.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StepDetail } from '../../src/domain/records.ts';
import { waitFor } from '../helpers/engine.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { STUBBORN_FILE } from './fixtures/stubborn.ts';

const GRACE = 500;
const TIMEOUT = 1000;
/** The bound of the contract: a cut step is over within its deadline + grace + 1 s. */
const BOUND = GRACE + 1000;

interface Report {
  classification: { code: string; summary: string };
  containment?: { mode: string; processes: Array<{ pid: number; command: string }>; toolThread?: { terminated: boolean; blockedIn?: string; released?: string }; notStopped: string[] };
  afterAbortUsage?: { cpuMs: number; windowMs: number };
  thread?: { tid: number };
  pending: Array<{ kind: string; what: string }>;
  where: { file: string } | null;
}

function processesMatching(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle)) out.push(Number(name));
    } catch {
      continue; // exited while we looked
    }
  }
  return out;
}

describe('containment of tools that ignore their signal (tool threads)', { concurrency: 1 }, () => {
  let rt: TestRuntime;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rw-contain-'));
    rt = await startTestRuntime({ tools: [STUBBORN_FILE], abortGraceMs: GRACE, concurrency: 16 });
    // The first tool thread loads the modules (a second or more on a loaded machine): wait for it,
    // so that no deadline below is spent there.
    const warm = await rt.submit({ plan: { steps: [{ name: 'warm', tool: 'nap', inputs: { ms: 1 }, timeoutMs: 60_000 }] } });
    assert.equal((await rt.waitRun(warm.id, 60_000)).status, 'succeeded');
  });

  after(async () => {
    await rt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the stubborn step beside three siblings; returns the stubborn step's detail and report. */
  async function cut(tool: string, inputs: Record<string, unknown>): Promise<{ step: StepDetail; report: Report; overshootMs: number }> {
    const run = await rt.submit({
      plan: {
        steps: [
          { name: 'stubborn', tool, inputs, timeoutMs: TIMEOUT, retries: { max: 0 } },
          ...[0, 1, 2].map((i) => ({ name: `sibling${i}`, tool: 'nap', inputs: { ms: 300 + i * 400 } })),
        ],
      },
    });
    const done = await rt.waitRun(run.id, 30_000);
    for (const s of done.steps.filter((x) => x.name.startsWith('sibling'))) assert.equal(s.status, 'succeeded', `sibling ${s.name} finished`);
    const step = await rt.engine.getStep(run.id, 'stubborn');
    assert.equal(step.status, 'timed_out', JSON.stringify(step.error));
    const report = step.hangReports[0] as unknown as Report;
    assert.ok(report, 'a hang report');
    const overshootMs = Date.parse(step.finishedAt as string) - Date.parse(step.attemptsDetail[0]?.deadlineAt as string);
    assert.ok(overshootMs <= BOUND, `ended ${overshootMs} ms after its deadline (bound: grace + 1 s = ${BOUND} ms)`);
    assert.equal(report.containment?.mode, 'thread');
    assert.ok(report.containment?.toolThread, JSON.stringify(report.containment));
    // Terminated threads go in milliseconds; on a loaded machine the cut may not have waited that long.
    const tid = report.thread?.tid;
    if (tid !== undefined) await waitFor(() => (existsSync(`/proc/self/task/${tid}`) ? undefined : true), 2000, 'the tool thread gone');
    return { step, report, overshootMs };
  }

  test('a tool appending to a file every 50 ms: the file stops growing', async () => {
    const file = join(dir, 'append.log');
    const { report } = await cut('append_forever', { file });
    const size = statSync(file).size;
    assert.ok(size > 0, 'the tool did write');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(statSync(file).size, size, 'nothing was written after the step ended');
    assert.equal(report.classification.code, 'handler.ignored_abort', report.classification.summary);
  });

  test('a tool burning CPU in 10 ms slices: classified as working, not never-settled, and the CPU goes idle', async () => {
    const { report } = await cut('burn_slices', {});
    assert.equal(report.classification.code, 'handler.ignored_abort', report.classification.summary);
    assert.notEqual(report.classification.code, 'promise.never_settled');
    assert.ok((report.afterAbortUsage?.cpuMs ?? 0) > 0, `CPU after the abort is reported: ${JSON.stringify(report.afterAbortUsage)}`);
    // This process hosts the worker: with the burner's thread gone it is nearly idle.
    const before = process.cpuUsage();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const used = process.cpuUsage(before);
    const share = (used.user + used.system) / 1000 / (Date.now() - t0);
    assert.ok(share < 0.5, `the worker process used ${(share * 100).toFixed(0)} % of a core after the cut`);
  });

  test('a bash child that ignores SIGTERM and waits on a background sleep: no descendant survives', async () => {
    const seconds = `600.${process.pid}${Date.now() % 1000}`;
    const { report } = await cut('stubborn_shell', { seconds });
    assert.deepEqual(processesMatching(`sleep ${seconds}`), [], 'the grandchild sleep is gone');
    assert.ok(report.containment?.processes.some((p) => p.command.includes('sleep')) || report.pending.some((p) => p.kind === 'child'), JSON.stringify(report.containment));
  });

  test('execSync("sleep 600") inside the tool: cut at its deadline, not lost 15 s later, and the sleep is gone', async () => {
    const seconds = `600.${process.pid}${(Date.now() % 1000) + 1}`;
    const { report } = await cut('exec_sleep', { seconds });
    assert.deepEqual(processesMatching(`sleep ${seconds}`), [], 'the sleep is gone');
    assert.ok(report.containment?.processes.some((p) => p.command.includes(`sleep ${seconds}`)), JSON.stringify(report.containment));
  });

  test('a synchronous read of a FIFO with no writer: the blocked thread is released and stopped', async () => {
    const fifo = join(dir, 'no-writer.fifo');
    execFileSync('mkfifo', [fifo]);
    const { report } = await cut('read_fifo', { path: fifo });
    assert.match(report.containment?.toolThread?.blockedIn ?? '', /system call open/, JSON.stringify(report.containment));
    assert.match(report.containment?.toolThread?.released ?? '', /FIFO/);
  });

  test('a tool awaiting a message from a worker thread it created: the report names the thread, and the thread is gone', async () => {
    const file = join(dir, 'thread.log');
    const { report } = await cut('thread_wait', { file });
    assert.ok(
      report.pending.some((p) => p.kind === 'thread') || /thread/.test(report.classification.summary),
      `the report names the thread: ${report.classification.summary} ${JSON.stringify(report.pending)}`,
    );
    const size = existsSync(file) ? statSync(file).size : 0;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(existsSync(file) ? statSync(file).size : 0, size, 'the inner thread stopped writing');
  });

  test('a cancelled run whose tool ignores the cancellation: the step is cancelled and its writing stops', async () => {
    const file = join(dir, 'cancelled.log');
    const run = await rt.submit({ plan: { steps: [{ name: 'stubborn', tool: 'append_forever', inputs: { file }, timeoutMs: 60_000 }] } });
    await waitFor(() => (existsSync(file) && statSync(file).size > 0 ? true : undefined), 15_000, 'the tool writing');
    const asked = Date.now();
    await rt.engine.cancelRun(run.id);
    const done = await rt.waitRun(run.id, 20_000);
    assert.equal(done.status, 'cancelled');
    const step = await rt.engine.getStep(run.id, 'stubborn');
    assert.equal(step.status, 'cancelled');
    const report = step.hangReports[0] as unknown as Report & { trigger: string };
    assert.equal(report?.trigger, 'cancel', 'the tool ignored the cancellation: a report says so');
    assert.ok(report.containment?.toolThread, JSON.stringify(report.containment));
    const size = statSync(file).size;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(statSync(file).size, size, 'nothing written after the cut');
    assert.ok(Date.parse(step.finishedAt as string) - asked <= GRACE + 1000 + 1000, 'cut within the grace (and the cancel\'s own delivery)');
  });
});
