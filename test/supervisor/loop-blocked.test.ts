/**
 * A tool spinning in a synchronous loop for 60 s with a 2 s deadline, on a real deployment (API +
 * two supervised worker processes): the API keeps answering, other steps finish on the other
 * worker, the spinner's worker is killed and replaced, and the attempt ends `loop.blocked` with a
 * report naming the spinning line.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { EventRecord } from '../../src/domain/records.ts';
import type { StallReport } from '../../src/supervisor/protocol.ts';
import { blockingStep, killDue, UNPINNED_KILL_MS } from '../../src/supervisor/reports.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';
import { api, probeHealth, startDeployment, waitFor } from './helpers.ts';

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

test('a block inside a system call is reported but not pinned on a step, and does not get the worker killed within loopKillMs', async (t) => {
  const d = await startDeployment(t, { workers: 1 });
  const pid = (await d.supervisor()).workers[0]?.pid;
  const runId = await d.submit([{ name: 'exec', tool: 'exec_sleep', inputs: { ms: 2500 }, timeoutMs: 20_000 }]);
  const stalled = await waitFor(async () => (await d.supervisor()).workers.find((w) => w.state === 'stalled'), 10_000, 'the stall to be seen');
  assert.equal(stalled.blockingStep, null, 'no JavaScript frame: not pinned on the step');
  await waitFor(async () => ((await d.supervisor()).workers[0]?.state === 'running' ? true : undefined), 10_000, 'the loop to turn again');
  const s = await d.supervisor();
  assert.equal(s.workers[0]?.pid, pid, 'the same worker, not killed');
  assert.equal(s.totals.stallKills, 0);
  assert.ok(s.totals.stalls >= 1);
  await d.waitRun(runId, 20_000);
  assert.match(d.server.output(), /event loop blocked for \S+ \w+: no step, inside a system call/);
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
