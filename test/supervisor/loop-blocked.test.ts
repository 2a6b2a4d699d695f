/**
 * A tool spinning in a synchronous loop for 60 s with a 2 s deadline, on a real deployment (API +
 * two supervised worker processes): the API keeps answering, other steps finish on the other
 * worker, the spinner's worker is killed and replaced, and the attempt ends `loop.blocked` with a
 * report naming the spinning line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EventRecord } from '../../src/domain/records.ts';
import type { StallReport } from '../../src/supervisor/protocol.ts';
import { blockingStep, killDue, UNPINNED_KILL_MS } from '../../src/supervisor/liveness.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';
import { api, probeHealth, processesOf, startDeployment, waitFor } from './helpers.ts';

const SPIN_LINE = readFileSync(TOOLS_FILE, 'utf8').split('\n').findIndex((l) => l.includes('// SPIN_LINE')) + 1;

test('a 60 s synchronous spin with timeoutMs 2000 is detected, reported at its line, killed and replaced; the API and the other worker carry on', async (t) => {
  const d = await startDeployment(t, { workers: 2 });
  const before = await d.supervisor();
  const health = probeHealth(d.url);
  t.after(() => health.stop());

  const spinRun = await d.submit([{ name: 'spin', tool: 'spin', inputs: { ms: 60_000 }, timeoutMs: 2000 }]);
  const running = await waitFor(async () => {
    const s = await d.step(spinRun, 'spin');
    return s.status === 'running' && s.workerId ? s : undefined;
  }, 10_000, 'the spinner to run');
  const spinnerPid = await d.pidOf(running.workerId as string);
  const spinnerSlot = before.workers.find((w) => w.pid === spinnerPid)?.slot;
  assert.notEqual(spinnerSlot, undefined);

  // 20 other steps, submitted once the spinner's worker is seen blocked: they run on the other one.
  await waitFor(async () => ((await d.supervisor()).workers.find((w) => w.pid === spinnerPid)?.state === 'stalled' ? true : undefined), 10_000, 'the spinner\'s worker seen stalled');
  const othersRun = await d.submit(Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, tool: 'sleep', inputs: { ms: 50 } })));
  const others = await d.waitRun(othersRun, 30_000);
  assert.equal(others.status, 'succeeded');
  assert.ok(others.steps.every((s) => s.attempts === 1), 'no other step lost an attempt');
  for (let i = 0; i < 20; i += 5) {
    const detail = await d.step(othersRun, `s${i}`);
    assert.ok(detail.attemptsDetail.every((a) => a.workerId !== running.workerId), 'the others ran on the other worker');
  }

  const spun = await d.waitRun(spinRun, 30_000);
  assert.equal(spun.status, 'failed');
  assert.ok(Date.parse(others.finishedAt as string) < Date.parse(spun.finishedAt as string), 'the others finished while the spinner was blocking');
  const step = await d.step(spinRun, 'spin');
  const ranMs = Date.parse(step.finishedAt as string) - Date.parse(step.startedAt as string);
  assert.ok(ranMs <= 2000 + 6000, `ended within deadline + 6 s (took ${ranMs} ms)`);
  assert.equal(step.error?.code, 'LOOP_BLOCKED');
  assert.deepEqual(step.attemptsDetail.map((a) => a.status), ['failed']);
  const report = step.hangReports[0] as unknown as { classification: { code: string; summary: string }; where: { file: string; line: number } | null; frames: string[]; worker: { pid: number } };
  assert.equal(report.classification.code, 'loop.blocked');
  assert.equal(report.where?.file, TOOLS_FILE);
  assert.equal(report.where?.line, SPIN_LINE, `the report names the spinning line: ${JSON.stringify(report.where)}`);
  assert.match(report.classification.summary, /blocked the worker's event loop/);
  assert.equal(report.worker.pid, spinnerPid);

  // The stall was said on the step while it lasted, and the report is in the event stream.
  const events = (await api<{ events: EventRecord[] }>(d.url, `/runs/${spinRun}/events`)).body.events;
  assert.ok(events.some((e) => e.type === 'step.log' && e.data.kind === 'loop.blocked'));
  assert.ok(events.some((e) => e.type === 'step.hang_report' && (e.data.classification as { code: string }).code === 'loop.blocked'));

  // A fresh worker took the killed one's place.
  const after = await waitFor(async () => {
    const s = await d.supervisor();
    const w = s.workers.find((x) => x.slot === spinnerSlot);
    return s.alive === 2 && w && w.pid !== spinnerPid && w.restarts >= 1 ? s : undefined;
  }, 30_000, 'a fresh worker in the killed one\'s slot');
  assert.equal(after.totals.stallKills, 1);
  assert.equal(after.workers.find((x) => x.slot === spinnerSlot)?.lastExit?.classification, 'loop.blocked');

  const probed = await health.stop();
  assert.deepEqual(probed.failures, [], 'every /health probe answered');
  assert.ok(probed.maxMs < 1000, `/health answered within 1 s throughout (slowest ${Math.round(probed.maxMs)} ms over ${probed.count} probes)`);
  assert.deepEqual((await api<{ steps: unknown[] }>(d.url, '/steps/stuck')).body.steps, []);
});

test('execFileSync("sleep") blocking the loop: pinned on its step through the note it left, killed by its deadline, the sleep dies with the worker', async (t) => {
  const d = await startDeployment(t, { workers: 1, env: { RUNWARDEN_LOOP_KILL_MS: '5000' } });
  const pid = (await d.supervisor()).workers[0]?.pid;
  const seconds = 600 + (process.pid % 1000) / 1000;
  const runId = await d.submit([{ name: 'exec', tool: 'exec_sleep', inputs: { ms: seconds * 1000 }, timeoutMs: 2000 }]);
  const stalled = await waitFor(async () => (await d.supervisor()).workers.find((w) => w.state === 'stalled'), 10_000, 'the stall to be seen');
  assert.equal(stalled.blockingStep?.stepName, 'exec', 'pinned on the step inside execFileSync');
  const run = await d.waitRun(runId, 20_000);
  assert.equal(run.status, 'failed');
  const step = await d.step(runId, 'exec');
  const first = step.attemptsDetail[0];
  assert.ok(first);
  // Killed at its deadline (before loopKillMs, 5 s): within deadline + grace + 1 s.
  const over = Date.parse(first.finishedAt as string) - Date.parse(first.deadlineAt);
  assert.ok(over <= 1000 + 1000, `ended ${over} ms after its deadline`);
  assert.equal(first.status, 'timed_out');
  const report = first.hangReport as unknown as { classification: { code: string; summary: string }; worker: { os?: { syscall?: string; children: Array<{ command: string }> }; syncCall?: { call: string } } };
  assert.equal(report.classification.code, 'loop.blocked');
  assert.match(report.classification.summary, /execFileSync\("sleep/);
  assert.match(report.worker.syncCall?.call ?? '', /execFileSync/);
  assert.ok(report.worker.os?.syscall, `the system call is named: ${JSON.stringify(report.worker.os)}`);
  assert.ok(report.worker.os?.children.some((c) => c.command.includes(`sleep ${seconds}`)), 'the worker\'s children are listed');
  // The worker was replaced, and its sleep did not outlive it.
  await waitFor(async () => ((await d.supervisor()).workers[0]?.pid !== pid ? true : undefined), 10_000, 'a new worker');
  await waitFor(async () => (processesOf(`sleep ${seconds}`).length === 0 ? true : undefined), 3000, 'the orphaned sleep killed');
});

test('readFileSync of a FIFO with no writer blocks the loop: named, with the open call; the worker is replaced', async (t) => {
  const d = await startDeployment(t, { workers: 1, env: { RUNWARDEN_LOOP_KILL_MS: '5000' } });
  const fifo = join(d.dir, 'no-writer.fifo');
  execFileSync('mkfifo', [fifo]);
  const runId = await d.submit([{ name: 'fifo', tool: 'fifo_read', inputs: { path: fifo }, timeoutMs: 2000, retries: { max: 0 } }]);
  const run = await d.waitRun(runId, 20_000);
  assert.equal(run.status, 'failed');
  const first = (await d.step(runId, 'fifo')).attemptsDetail[0];
  const report = first?.hangReport as unknown as { classification: { code: string; summary: string }; worker: { os?: { syscall?: string; wchan?: string } } };
  assert.equal(report.classification.code, 'loop.blocked');
  assert.match(report.classification.summary, /readFileSync\(.*no-writer\.fifo/);
  assert.match(report.worker.os?.syscall ?? '', /open/);
});

test('a block inside a system call no step made is not pinned, and is killed by the earliest deadline (plus grace) of the steps there', () => {
  const base: StallReport = { t: 'stall', blockedSince: 1000, detectedAt: 1500, frames: [], step: null, inTransaction: false, native: true, captureMs: 1, resources: { rssBytes: 0, cpuUserMs: 0, cpuSystemMs: 0 } };
  assert.equal(blockingStep(base), null);
  assert.deepEqual(killDue({ since: 1000, report: base }, 1500, { steps: [{ deadlineAt: 4000 }, { deadlineAt: 3000 }], graceMs: 500 }), { at: 3500, because: 'deadline' });
  assert.deepEqual(killDue({ since: 1000, report: base }, 1500, { steps: [{ deadlineAt: 90_000 }], graceMs: 500 }), { at: 1000 + UNPINNED_KILL_MS, because: 'bound' });
  const pinned = { ...base, syncCall: { runId: 'r', stepName: 's', attempt: 1, tool: 'x', deadlineAt: 2200, call: 'execSync("sleep 9")', at: 1000 } };
  assert.deepEqual(blockingStep(pinned), { runId: 'r', stepName: 's', attempt: 1, tool: 'x', deadlineAt: 2200 });
  assert.deepEqual(killDue({ since: 1000, report: pinned }, 1500, { steps: [], graceMs: 500 }), { at: 2200, because: 'deadline' });
});

test('blockingStep pins a stall on a step only when the thread was in user code', () => {
  const step = { runId: 'r', stepName: 's', attempt: 1 };
  const base: StallReport = { t: 'stall', blockedSince: 0, detectedAt: 0, frames: [], step, inTransaction: false, native: false, captureMs: 1, resources: { rssBytes: 0, cpuUserMs: 0, cpuSystemMs: 0 } };
  const frame = (url: string) => ({ fn: 'f', url, line: 1, column: 1 });
  assert.deepEqual(blockingStep({ ...base, frames: [frame(`file://${TOOLS_FILE}`)] }), step);
  assert.deepEqual(blockingStep({ ...base, frames: [frame('node:internal/crypto/pbkdf2'), frame(`file://${TOOLS_FILE}`)] }), step, 'Node internals called by the tool');
  assert.equal(blockingStep({ ...base, frames: [frame(new URL('../../src/store/sqlite/tx.ts', import.meta.url).href), frame(`file://${TOOLS_FILE}`)] }), null, 'waiting in the store');
  assert.equal(blockingStep({ ...base, frames: [], native: true }), null, 'inside a system call');
  assert.equal(blockingStep({ ...base, step: null, frames: [frame(`file://${TOOLS_FILE}`)] }), null, 'no step context');
});

test('killDue: a pinned block is killed at loopKillMs or its step\'s deadline, whichever comes first; an unpinned one much later', () => {
  const frames = [{ fn: 'spin', url: `file://${TOOLS_FILE}`, line: 1, column: 1 }];
  const report = (deadlineAt?: number): StallReport => ({
    t: 'stall',
    blockedSince: 1000,
    detectedAt: 1500,
    frames,
    step: { runId: 'r', stepName: 's', attempt: 1, ...(deadlineAt !== undefined ? { deadlineAt } : {}) },
    inTransaction: false,
    native: false,
    captureMs: 1,
    resources: { rssBytes: 0, cpuUserMs: 0, cpuSystemMs: 0 },
  });
  assert.deepEqual(killDue({ since: 1000, report: report() }, 1500), { at: 2500, because: 'bound' });
  assert.deepEqual(killDue({ since: 1000, report: report(2000) }, 1500), { at: 2000, because: 'deadline' });
  assert.deepEqual(killDue({ since: 1000, report: report(9000) }, 1500), { at: 2500, because: 'bound' });
  assert.deepEqual(killDue({ since: 1000, report: { ...report(2000), frames: [], native: true } }, 1500), { at: 1000 + UNPINNED_KILL_MS, because: 'bound' });
  assert.deepEqual(killDue({ since: 1000, report: undefined }, 1500), { at: 1000 + UNPINNED_KILL_MS, because: 'bound' }, 'a process frozen as a whole');
});
