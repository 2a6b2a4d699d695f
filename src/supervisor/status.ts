/** What `/health/detailed`, doctor and the dashboard show of one supervised worker slot. */
import type { SupervisedWorker } from '../engine/facade.ts';
import { blockingStep } from './liveness.ts';
import type { BeatMessage, StallReport } from './protocol.ts';

export interface SlotView {
  index: number;
  state: string;
  /** Whether the slot has a live process now. */
  proc: unknown;
  pid: number | null;
  startedAt: number;
  restarts: number;
  lastBeatAt: number;
  beat: BeatMessage | undefined;
  stall: { since: number; report: StallReport | undefined } | undefined;
  lastExit: SupervisedWorker['lastExit'];
}

export function slotStatus(s: SlotView, workerIds: string[], now: number): SupervisedWorker {
  const iso = (t: number | undefined): string | null => (t ? new Date(t).toISOString() : null);
  const live = s.proc !== undefined;
  const blamed = blockingStep(s.stall?.report);
  return {
    slot: s.index,
    pid: live ? s.pid : null,
    state: s.state,
    startedAt: live ? iso(s.startedAt) : null,
    restarts: s.restarts,
    lastHeartbeatAt: live && s.beat ? iso(s.lastBeatAt) : null,
    heartbeatAgeMs: live && s.beat ? now - s.lastBeatAt : null,
    loopDelayP99Ms: live ? (s.beat?.loopDelayP99Ms ?? null) : null,
    rssBytes: live ? (s.beat?.rssBytes ?? null) : null,
    workerIds: live ? workerIds : [],
    steps: live ? (s.beat?.steps ?? []).map((r) => ({ runId: r.runId, stepName: r.stepName, attempt: r.attempt })) : [],
    blockedMs: s.stall ? now - s.stall.since : null,
    blockingStep: blamed ? { runId: blamed.runId, stepName: blamed.stepName, attempt: blamed.attempt } : null,
    lastExit: s.lastExit,
  };
}
