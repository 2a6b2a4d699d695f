/**
 * Finishing steps and advancing the DAG inside a transaction: releasing or skipping what depends on
 * a finished step. Every path that makes a step terminal goes through `finishSteps`, which is what
 * guarantees exactly one `step.finished` per step. A step waiting for the outputs of a step it added
 * (`outputsFrom`) is one of that step's dependents: it finishes with it, instead of being queued.
 */
import { RunwardenError, type SerializedError } from '../../domain/errors.ts';
import type { StepState } from '../../domain/states.ts';
import { findTemplates, resolveTemplates } from '../../domain/templates.ts';
import type { StepRow, Tx } from '../../store/store.ts';
import { guarded, runEffect, type TxEffects } from './effects.ts';

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
  const fresh = await tx.endSteps(
    items.map(({ step, status, opts }) => ({
      dependents: step.dependents,
      ...guarded({
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
    })),
  );
  const advancing: FinishItem[] = [];
  for (const [i, item] of items.entries()) {
    const dependents = fresh[i];
    if (dependents === null || dependents === undefined) continue;
    const { status, opts } = item;
    // Its dependents as the row holds them now: steps added at runtime may have joined them.
    const step = dependents === item.step.dependents ? item.step : { ...item.step, dependents };
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
    if ((status === 'failed' || status === 'timed_out') && d.failure === undefined) d.failure = { step: step.name, status, error: opts.error ?? null };
    if (step.dependents.length > 0) advancing.push({ step, status, opts });
  }
  for (const { step, status, opts } of advancing) await advance(tx, fx, step, status === 'succeeded' ? opts.outputs : undefined, status, opts.error ?? null);
  return fresh.map((d) => d !== null);
}

function isCause(v: unknown): v is SerializedError {
  return typeof v === 'object' && v !== null && typeof (v as { code?: unknown }).code === 'string';
}

export async function finishStep(tx: Tx, fx: TxEffects, step: StepRow, status: TerminalStep, opts: FinishOptions): Promise<boolean> {
  const [ok] = await finishSteps(tx, fx, [{ step, status, opts }]);
  return ok === true;
}

async function advance(tx: Tx, fx: TxEffects, step: StepRow, outputs: unknown, status: TerminalStep, error: SerializedError | null): Promise<void> {
  if (step.dependents.length === 0) return;
  if (status !== 'succeeded') {
    const rows = await tx.getSteps(step.dependents.map((name) => ({ runId: step.runId, name })));
    const reason: SerializedError = {
      code: 'UPSTREAM_NOT_SUCCEEDED',
      message: `upstream step "${step.name}" ended ${status}`,
      retryable: false,
    };
    const to = status === 'cancelled' ? 'cancelled' : 'skipped';
    // A step that waits for this one's outputs did run: it fails (or is cancelled) with it, and
    // says why that step ended: the first error down a chain of waits (an agent's turns), not the
    // wait before it.
    const cause = error?.code === 'AWAITED_STEP_FAILED' && isCause(error.data?.['cause']) ? error.data['cause'] : error;
    const awaited: SerializedError = {
      code: 'AWAITED_STEP_FAILED',
      message: `step "${step.name}", whose outputs it waits for, ended ${status}${cause ? ` (${cause.code})` : ''}`,
      retryable: false,
      data: { step: step.name, status, ...(cause ? { cause } : {}) },
    };
    await finishSteps(
      tx,
      fx,
      rows
        .filter((dep) => dep.status === 'pending')
        .map((dep): FinishItem =>
          dep.outputsFrom === step.name
            ? { step: dep, status: status === 'cancelled' ? 'cancelled' : 'failed', opts: { error: awaited, from: ['pending'] } }
            : { step: dep, status: to, opts: { error: reason, from: ['pending'] } },
        ),
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
  const waiting = released.filter((r) => r.outputsFrom === step.name);
  if (waiting.length > 0) {
    await finishSteps(tx, fx, waiting.map((w) => ({ step: w, status: 'succeeded', opts: { outputs: outputs ?? null, from: ['pending'] } })));
  }
  const upstream = new Map<string, unknown>([[step.name, outputs]]);
  for (const next of released) if (next.outputsFrom !== step.name) await queueStep(tx, fx, next, upstream);
}

/**
 * pending -> queued with its templates resolved from upstream outputs: those in `known` (the step
 * that just finished), the others read.
 */
export async function queueStep(tx: Tx, fx: TxEffects, next: StepRow, known: ReadonlyMap<string, unknown>): Promise<void> {
  const upstream = new Map<string, unknown>(known);
  // Templates may name any upstream step, not only direct dependencies; load exactly those named.
  const named = new Set(findTemplates(next.inputs).flatMap((t) => (t.step ? [t.step] : [])));
  const others = [...named].filter((d) => !upstream.has(d));
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
