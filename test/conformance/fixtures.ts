/** Plans, a controllable clock and small shortcuts shared by the conformance tests. */
import assert from 'node:assert/strict';
import type { SerializedError } from '../../src/domain/errors.ts';
import { validateRunRequest, type ValidatedRun } from '../../src/domain/plan.ts';
import type { EventRecord } from '../../src/domain/records.ts';
import { Transitions, type ClaimedStep, type Completion } from '../../src/engine/transitions.ts';
import type { NewArtifact, Store } from '../../src/store/store.ts';
import { builtinTools } from '../../src/tools/builtin.ts';
import { ToolRegistry } from '../../src/tools/registry.ts';
import { defineTool } from '../../src/tools/types.ts';

export const tools = new ToolRegistry();
for (const t of builtinTools) tools.register(t);
tools.register(defineTool({ name: 'noop', run: () => null }));

export const LIMITS = { defaultTimeoutMs: 30_000, maxTimeoutMs: 86_400_000 };

export type PlanStep = {
  name: string;
  tool?: string;
  inputs?: Record<string, unknown>;
  dependsOn?: string[];
  timeoutMs?: number;
  retries?: Record<string, number>;
  priority?: number;
  concurrency?: { key: string; limit: number };
};

/** `extra` holds the request's other fields (labels, idempotencyKey); its `goal` goes into the plan. */
export function validate(steps: PlanStep[], extra: Record<string, unknown> = {}): Promise<ValidatedRun> {
  const { goal, ...rest } = extra;
  return validateRunRequest({ plan: { ...(goal !== undefined ? { goal } : {}), steps: steps.map((s) => ({ tool: 'echo', ...s })) }, ...rest }, tools, LIMITS);
}

/** A clock the test moves by hand. */
export class Clock {
  t = 1_750_000_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}

export function coreAt(store: Store, clock: Clock): Transitions {
  return new Transitions(store, { now: clock.now });
}

export async function createRun(core: Transitions, steps: PlanStep[], extra: Record<string, unknown> = {}): Promise<string> {
  const validated = await validate(steps, extra);
  const { runId } = await core.createRun(validated, { steps });
  return runId;
}

export function done(claim: ClaimedStep, extra: Partial<Completion> = {}): Completion {
  return {
    runId: claim.runId,
    stepName: claim.stepName,
    attempt: claim.attempt,
    token: claim.token,
    outcome: 'succeeded',
    outputs: { from: claim.stepName },
    artifacts: [],
    ...extra,
  };
}

export function failed(claim: ClaimedStep, error: SerializedError): Completion {
  return { ...done(claim), outcome: 'failed', outputs: undefined, error };
}

export function artifact(claim: ClaimedStep, id: string, name: string, content: Uint8Array, mime = 'application/octet-stream'): NewArtifact {
  return { id, runId: claim.runId, stepName: claim.stepName, attempt: claim.attempt, name, mime, content, createdAt: Date.now() };
}

export async function events(store: Store, runId: string): Promise<EventRecord[]> {
  return store.listEvents(runId, 0, 100_000);
}

/** The invariants every finished run keeps: seq 1..n, one step.finished per step, one run.finished last. */
export async function assertRunBooks(store: Store, runId: string): Promise<EventRecord[]> {
  const list = await events(store, runId);
  list.forEach((e, i) => assert.equal(e.seq, i + 1, `event ${i} has seq ${e.seq}`));
  const steps = await store.getRunSteps(runId);
  const finished = list.filter((e) => e.type === 'step.finished');
  assert.equal(finished.length, steps.length, 'one step.finished per step');
  assert.equal(new Set(finished.map((e) => e.stepName)).size, steps.length);
  const runFinished = list.filter((e) => e.type === 'run.finished');
  assert.equal(runFinished.length, 1);
  assert.equal(list.at(-1)?.type, 'run.finished');
  return list;
}

export const byKey = (c: { runId: string; stepName: string }): string => `${c.runId}/${c.stepName}`;
