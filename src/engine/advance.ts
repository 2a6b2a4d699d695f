/**
 * DAG advancement inside a transaction: finishing a step, releasing or skipping what depends on it,
 * and finishing the run when its last step ends. Every path that makes a step terminal goes through
 * `finishStep`, which is what guarantees exactly one `step.finished` per step.
 */
import { RunwardenError, type SerializedError } from '../domain/errors.ts';
import type { UsageTotals } from '../domain/records.ts';
import { assertTransition, RUN_TRANSITIONS, STEP_TRANSITIONS, type StepState } from '../domain/states.ts';
import { findTemplates, resolveTemplates } from '../domain/templates.ts';
import type { NewEvent, StepRow, StepUpdate, Tx } from '../store/store.ts';

/** What a transaction did, gathered so the run bookkeeping is written once per run at the end. */
export interface TxEffects {
  now: number;
  events: NewEvent[];
  deltas: Map<string, RunEffect>;
  queued: number;
}

export interface RunEffect {
  stepsDone: number;
  stepsFailed: number;
  usage: UsageTotals;
  /** A step of this run was claimed: the run starts if it has not yet. */
  start: boolean;
}

/**
 * Every step update the engine makes passes through here: a status change must be allowed by
 * STEP_TRANSITIONS from each state the update may apply in. The store then enforces the same
 * `from` states in SQL, so an illegal transition is a bug caught here, and a lost race is a no-op
 * there.
 */
export function guarded(u: StepUpdate): StepUpdate {
  const to = u.patch.status;
  if (to !== undefined) for (const from of u.expectStatus) assertTransition('step', STEP_TRANSITIONS, from, to);
  return u;
}

export function newEffects(now: number): TxEffects {
  return { now, events: [], deltas: new Map(), queued: 0 };
}

export function runEffect(fx: TxEffects, runId: string): RunEffect {
  let d = fx.deltas.get(runId);
  if (!d) {
    d = { stepsDone: 0, stepsFailed: 0, usage: { inputTokens: 0, outputTokens: 0, calls: 0 }, start: false };
    fx.deltas.set(runId, d);
  }
  return d;
}

export type TerminalStep = Exclude<StepState, 'pending' | 'queued' | 'running'>;

export interface FinishOptions {
  outputs?: unknown;
  error?: SerializedError | null;
  /** The states the step may be in for this to apply (guards against double finishing). */
  from: readonly StepState[];
  token?: string;
  lostAttempts?: number;
}

export interface FinishItem {
  step: StepRow;
  status: TerminalStep;
  opts: FinishOptions;
}

/**
 * Finishes a batch of steps: one `updateSteps` for all of them (one statement per patch shape on
 * PostgreSQL), then `step.finished` and the run counters for each that applied, then the DAG
 * advancement of those that have dependents. Returns which applied (same order). The same step
 * must not appear twice in one batch.
 */
export async function finishSteps(tx: Tx, fx: TxEffects, items: readonly FinishItem[]): Promise<boolean[]> {
  if (items.length === 0) return [];
  const oks = await tx.updateSteps(
    items.map(({ step, status, opts }) =>
      guarded({
        runId: step.runId,
        name: step.name,
        expectStatus: opts.from,
        ...(opts.token !== undefined ? { expectToken: opts.token } : {}),
        patch: {
          status,
          outputs: status === 'succeeded' ? (opts.outputs ?? null) : null,
          error: opts.error ?? null,
          finishedAt: fx.now,
          leaseToken: null,
          leaseExpiresAt: null,
          workerId: null,
          ...(opts.lostAttempts !== undefined ? { lostAttempts: opts.lostAttempts } : {}),
        },
      }),
    ),
  );
  const advancing: FinishItem[] = [];
  for (const [i, item] of items.entries()) {
    if (oks[i] !== true) continue;
    const { step, status, opts } = item;
    const startedAt = step.startedAt ? Date.parse(step.startedAt) : null;
    fx.events.push({
      runId: step.runId,
      stepName: step.name,
      ...(step.attempts > 0 ? { attempt: step.attempts } : {}),
      type: 'step.finished',
      ts: fx.now,
      data: {
        status,
        error: opts.error ?? null,
        durationMs: startedAt === null ? 0 : fx.now - startedAt,
        attempts: step.attempts,
      },
    });
    const d = runEffect(fx, step.runId);
    d.stepsDone++;
    if (status !== 'succeeded') d.stepsFailed++;
    if (step.dependents.length > 0) advancing.push(item);
  }
  for (const { step, status, opts } of advancing) await advance(tx, fx, step, status === 'succeeded' ? opts.outputs : undefined, status);
  return oks;
}

export async function finishStep(tx: Tx, fx: TxEffects, step: StepRow, status: TerminalStep, opts: FinishOptions): Promise<boolean> {
  const [ok] = await finishSteps(tx, fx, [{ step, status, opts }]);
  return ok === true;
}

async function advance(tx: Tx, fx: TxEffects, step: StepRow, outputs: unknown, status: TerminalStep): Promise<void> {
  if (step.dependents.length === 0) return;
  if (status !== 'succeeded') {
    const rows = await tx.getSteps(step.dependents.map((name) => ({ runId: step.runId, name })));
    const reason: SerializedError = {
      code: 'UPSTREAM_NOT_SUCCEEDED',
      message: `upstream step "${step.name}" ended ${status}`,
      retryable: false,
    };
    const to = status === 'cancelled' ? 'cancelled' : 'skipped';
    await finishSteps(
      tx,
      fx,
      rows.filter((dep) => dep.status === 'pending').map((dep) => ({ step: dep, status: to, opts: { error: reason, from: ['pending'] } })),
    );
    return;
  }
  const released = (await tx.decrementPending(step.runId, step.dependents)).filter((r) => r.pendingDeps === 0);
  if (released.length === 0) return;
  const run = await tx.getRun(step.runId);
  if (run?.cancelRequested) {
    const error: SerializedError = { code: 'CANCELLED', message: 'run cancelled', retryable: false };
    await finishSteps(tx, fx, released.map((next) => ({ step: next, status: 'cancelled', opts: { from: ['pending'], error } })));
    return;
  }
  for (const next of released) await queueStep(tx, fx, next, step, outputs);
}

/** pending -> queued with its templates resolved from upstream outputs. */
async function queueStep(tx: Tx, fx: TxEffects, next: StepRow, justFinished: StepRow, finishedOutputs: unknown): Promise<void> {
  const upstream = new Map<string, unknown>([[justFinished.name, finishedOutputs]]);
  // Templates may name any upstream step, not only direct dependencies; load exactly those named.
  const named = new Set(findTemplates(next.inputs).flatMap((t) => (t.step ? [t.step] : [])));
  const others = [...named].filter((d) => d !== justFinished.name);
  if (others.length > 0) {
    for (const row of await tx.getSteps(others.map((name) => ({ runId: next.runId, name })))) upstream.set(row.name, row.outputs);
  }
  let resolved: Record<string, unknown>;
  try {
    resolved = resolveTemplates(next.inputs, (name) => upstream.get(name));
  } catch (err) {
    const e = err instanceof RunwardenError ? err : new RunwardenError('TEMPLATE_UNRESOLVED', String(err));
    await finishStep(tx, fx, next, 'failed', { from: ['pending'], error: e.toJSON() });
    return;
  }
  const [ok] = await tx.updateSteps([
    guarded({ runId: next.runId, name: next.name, expectStatus: ['pending'], patch: { status: 'queued', resolvedInputs: resolved, readyAt: fx.now } }),
  ]);
  if (ok) {
    fx.queued++;
    fx.events.push({ runId: next.runId, stepName: next.name, type: 'step.queued', ts: fx.now, data: {} });
  }
}

/**
 * Writes the run bookkeeping of a transaction: one advanceRun per run (seq block, counters, start,
 * and the finish of runs whose last step just ended), then the events with their seqs, including
 * `run.finished`.
 */
export async function settleRuns(tx: Tx, fx: TxEffects): Promise<string[]> {
  const byRun = new Map<string, NewEvent[]>();
  for (const e of fx.events) {
    const list = byRun.get(e.runId);
    if (list) list.push(e);
    else byRun.set(e.runId, [e]);
  }
  const runIds = new Set([...byRun.keys(), ...fx.deltas.keys()]);
  const out: Array<NewEvent & { seq: number }> = [];
  for (const runId of runIds) {
    const events = byRun.get(runId) ?? [];
    const d = fx.deltas.get(runId);
    const p = await tx.advanceRun(runId, {
      events: events.length,
      stepsDone: d?.stepsDone ?? 0,
      stepsFailed: d?.stepsFailed ?? 0,
      ...(d && d.usage.calls > 0 ? { usage: d.usage } : {}),
      ...(d?.start ? { startAt: fx.now } : {}),
      finishAt: fx.now,
    });
    let seq = p.firstSeq;
    if (p.started) out.push({ runId, type: 'run.started', ts: fx.now, data: {}, seq: seq++ });
    for (const e of events) out.push({ ...e, seq: seq++ });
    const fin = p.finished;
    if (!fin) continue;
    // The store decided the final status from the same counters; the transition is checked here
    // (a failure rolls the transaction back).
    assertTransition('run', RUN_TRANSITIONS, fin.from, fin.status);
    out.push({
      runId,
      type: 'run.finished',
      ts: fx.now,
      seq: fin.seq,
      data: { status: fin.status, durationMs: fx.now - p.createdAt, steps: { total: p.stepsTotal, notSucceeded: p.stepsFailed }, usage: p.usage },
    });
  }
  await tx.insertEvents(out);
  return [...new Set(out.map((e) => e.runId))];
}
