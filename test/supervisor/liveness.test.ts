/**
 * The supervisor's decisions without processes: when a worker is stalled and when it is killed
 * (liveness.ts), why a gone worker is gone (reports.ts), and which slot state moves are allowed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveness, type LivenessFacts } from '../../src/supervisor/liveness.ts';
import type { StallReport } from '../../src/supervisor/protocol.ts';
import { departureOf, exitClassification } from '../../src/supervisor/reports.ts';
import { moveSlot, SLOT_STATES, SLOT_TRANSITIONS, type SlotState } from '../../src/supervisor/slot-states.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';

const limits = { loopStallMs: 500, loopKillMs: 1500, abortGraceMs: 1000, reportMs: 250, startTimeoutMs: 30_000 };
const facts = (over: Partial<LivenessFacts> = {}): LivenessFacts => ({ state: 'running', startedAt: 0, lastBeatAt: 10_000, stall: undefined, beatSteps: [], killing: false, ...over });
const report = (over: Partial<StallReport> = {}): StallReport => ({
  t: 'stall',
  blockedSince: 10_000,
  detectedAt: 10_500,
  frames: [{ fn: 'spin', url: `file://${TOOLS_FILE}`, line: 1, column: 1 }],
  step: { runId: 'r', stepName: 's', attempt: 1, deadlineAt: 30_000 },
  inTransaction: false,
  native: false,
  captureMs: 1,
  resources: { rssBytes: 0, cpuUserMs: 0, cpuSystemMs: 0 },
  ...over,
});

test('a worker that is not ready within the start timeout is killed; a starting one is otherwise left alone', () => {
  assert.deepEqual(liveness(facts({ state: 'starting', startedAt: 0 }), limits, 29_000), { kind: 'ok' });
  assert.deepEqual(liveness(facts({ state: 'starting', startedAt: 0 }), limits, 31_000), { kind: 'start_timeout' });
});

test('silence past loopStallMs plus four heartbeats, with no watchdog report, is a stall of the whole process', () => {
  assert.deepEqual(liveness(facts({ lastBeatAt: 10_000 }), limits, 10_000 + 500 + 1000), { kind: 'ok' });
  assert.deepEqual(liveness(facts({ lastBeatAt: 10_000 }), limits, 10_000 + 500 + 1001), { kind: 'silent', since: 10_000 });
  assert.deepEqual(liveness(facts({ state: 'stopping', lastBeatAt: 0 }), limits, 99_999), { kind: 'ok' }, 'a draining worker may be quiet');
});

test('a block in the step\'s code is killed at loopKillMs or its deadline, whichever first; one already being killed is not killed again', () => {
  const stall = { since: 10_000, report: report() };
  assert.deepEqual(liveness(facts({ state: 'stalled', stall }), limits, 11_499), { kind: 'ok' });
  assert.deepEqual(liveness(facts({ state: 'stalled', stall }), limits, 11_500), { kind: 'kill', because: 'bound' });
  const soon = { since: 10_000, report: report({ step: { runId: 'r', stepName: 's', attempt: 1, deadlineAt: 10_700 } }) };
  assert.deepEqual(liveness(facts({ state: 'stalled', stall: soon }), limits, 10_700), { kind: 'kill', because: 'deadline' });
  assert.deepEqual(liveness(facts({ state: 'killing', stall, killing: true }), limits, 99_999), { kind: 'ok' });
});

test('a block no step can be blamed for goes at the earliest deadline plus grace of the steps there, from the heartbeat or the store', () => {
  const native = { since: 10_000, report: report({ frames: [], native: true }) };
  assert.deepEqual(liveness(facts({ state: 'stalled', stall: native }), limits, 15_000), { kind: 'ok' }, 'no deadline known: the 10 s bound');
  assert.deepEqual(liveness(facts({ state: 'stalled', stall: native }), limits, 20_000), { kind: 'kill', because: 'bound' });
  assert.deepEqual(liveness(facts({ state: 'stalled', stall: native, beatSteps: [{ deadlineAt: 12_000 }] }), limits, 13_000), { kind: 'kill', because: 'deadline' });
  assert.deepEqual(liveness(facts({ state: 'stalled', stall: { ...native, deadlines: [12_500] } }), limits, 13_499), { kind: 'ok' });
  assert.deepEqual(liveness(facts({ state: 'stalled', stall: { ...native, deadlines: [12_500] } }), limits, 13_500), { kind: 'kill', because: 'deadline' });
});

test('why a worker is gone: a decided stall kill, a stop that was asked, a replacement, or a crash', () => {
  const decided = { kind: 'stall_kill' as const, stall: undefined, blockedSince: 0, blockedMs: 1, because: 'bound' as const, boundMs: 1 };
  const base = { decided: undefined, recycling: false, stopAskedAt: undefined, code: 0, signal: null, exit: undefined };
  assert.equal(departureOf({ ...base, decided }, 0), decided);
  assert.equal(departureOf({ ...base, stopAskedAt: 5 }, 10), undefined, 'stopped as asked');
  assert.deepEqual(departureOf({ ...base, stopAskedAt: 5, code: null, signal: 'SIGKILL' }, 10), { kind: 'shutdown_kill', signal: 'SIGKILL', waitedMs: 5 });
  assert.equal(departureOf({ ...base, recycling: true }, 10), undefined, 'replaced, drained cleanly');
  assert.deepEqual(departureOf({ ...base, code: 7 }, 10), { kind: 'crash', code: 7, signal: null, exit: undefined });
  assert.equal(exitClassification(undefined), 'stopped');
  assert.equal(exitClassification(decided), 'loop.blocked');
});

test('slot states: every state has its moves, and a slot moves only along them', () => {
  for (const s of SLOT_STATES) assert.ok(Array.isArray(SLOT_TRANSITIONS[s]), s);
  const slot: { state: SlotState } = { state: 'stopped' };
  moveSlot(slot, 'starting');
  moveSlot(slot, 'running');
  moveSlot(slot, 'stalled');
  moveSlot(slot, 'killing');
  assert.throws(() => moveSlot(slot, 'running'), /illegal worker slot transition killing -> running/);
  moveSlot(slot, 'restarting');
  moveSlot(slot, 'starting');
  assert.equal(slot.state, 'starting');
});
