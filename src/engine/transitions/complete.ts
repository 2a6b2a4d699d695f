/**
 * completeAttempts: what a batch of attempts did (the worker's flush). Each result applies only to
 * the attempt it was claimed for, under the lease it was claimed with; a refused one says why.
 */
import type { StepRow, Tx } from '../../store/store.ts';
import { backoffDelay } from '../backoff.ts';
import { runEffect, type TxEffects } from './effects.ts';
import { checkAdditions, stepKey, writeAdditions, type AddingItem } from './add-steps.ts';
import { finishSteps, type FinishItem } from './finish.ts';
import { retrySteps, type RetryItem } from './retry.ts';
import { parkWaits, waitOf } from './waits.ts';
import { WAIT_TOOL, type WaitRequest } from '../../domain/signals.ts';
import type { Completion, CompletionResult, Refusal, StepEvent } from './types.ts';

const key = (runId: string, name: string): string => `${runId}\u0000${name}`;

function refusal(step: StepRow | undefined, c: Completion): Refusal | null {
  if (!step || step.status !== 'running') return 'not_running';
  if (step.leaseToken !== c.token) return 'lease_lost';
  if (step.attempts !== c.attempt) return 'wrong_attempt';
  return null;
}

/** Step events as they happened, then the results that still hold their lease. */
export async function recordResults(tx: Tx, fx: TxEffects, events: StepEvent[], completions: Completion[]): Promise<CompletionResult[]> {
  for (const e of events) {
    fx.events.push({ runId: e.runId, stepName: e.stepName, attempt: e.attempt, type: e.type, ts: e.ts, data: e.data });
    if (e.type === 'llm.usage') {
      const u = runEffect(fx, e.runId).usage;
      u.inputTokens += Number(e.data.inputTokens ?? 0) || 0;
      u.outputTokens += Number(e.data.outputTokens ?? 0) || 0;
      // One event per call; `calls` counts its HTTP attempts that reached the provider (a retried
      // 429 is two), each of which may be billed. Events without it count as one.
      u.calls += typeof e.data.calls === 'number' && e.data.calls >= 0 ? e.data.calls : 1;
    }
  }
  if (completions.length === 0) return [];
  const rows = await tx.getSteps(completions.map((c) => ({ runId: c.runId, name: c.stepName })));
  const byKey = new Map(rows.map((r) => [key(r.runId, r.name), r]));
  const seen = new Set<string>();
  const valid: Array<{ step: StepRow; c: Completion }> = [];
  const results = completions.map((c): CompletionResult => {
    const k = key(c.runId, c.stepName);
    // A step appears at most once in a batch: a second result for one lease is discarded.
    if (seen.has(k)) return { applied: false, refused: 'lease_lost' };
    const step = byKey.get(k);
    const refused = refusal(step, c);
    if (refused !== null || !step) return { applied: false, refused: refused ?? 'not_running' };
    seen.add(k);
    valid.push({ step, c });
    return { applied: true };
  });
  await completeAttempts(tx, fx, valid);
  return results;
}

/**
 * Records what a batch of attempts did: the attempts end, hang reports and artifacts are written,
 * and each step finishes or is queued for a retry — each kind of write once for the whole batch.
 */
export async function completeAttempts(tx: Tx, fx: TxEffects, given: ReadonlyArray<{ step: StepRow; c: Completion }>): Promise<void> {
  if (given.length === 0) return;
  // Steps the attempts added go in first; an attempt whose additions are refused fails.
  const adding = given.filter((i): i is AddingItem => i.c.outcome === 'succeeded' && i.c.added !== undefined && i.c.added.steps.length > 0);
  const additions = await checkAdditions(tx, fx, adding);
  const { refused, waiting } = additions.out;
  let items = refused.size === 0 ? given : given.map((i) => {
    const error = refused.get(stepKey(i.c.runId, i.c.stepName));
    return error ? { step: i.step, c: { ...i.c, outcome: 'failed' as const, error, artifacts: [] } } : i;
  });
  // `wait` steps that succeeded wait now, or take the signal sent before they waited.
  const waits: Array<{ step: StepRow; c: Completion; wait: WaitRequest }> = [];
  items = items.map((i) => {
    if (i.c.outcome !== 'succeeded' || i.step.tool !== WAIT_TOOL) return i;
    const w = waitOf(i.c);
    if ('error' in w) return { step: i.step, c: { ...i.c, outcome: 'failed' as const, error: w.error, artifacts: [] } };
    waits.push({ ...i, wait: w.wait });
    return i;
  });
  await tx.finishAttempts(
    items.map(({ c }) => ({
      runId: c.runId,
      stepName: c.stepName,
      attempt: c.attempt,
      status: c.outcome,
      finishedAt: fx.now,
      error: c.error ?? null,
      hangReport: c.hangReport ?? null,
    })),
  );
  // After the attempts' rows are written (from the steps' rows, while they are still running):
  // the added steps, with the adders that take an added step's outputs waiting, and the waits.
  await writeAdditions(tx, fx, additions);
  const { parked, outputs: signalled } = await parkWaits(tx, fx, waits);
  if (signalled.size > 0) {
    items = items.map((i) => {
      const k = stepKey(i.c.runId, i.c.stepName);
      return signalled.has(k) ? { step: i.step, c: { ...i.c, outputs: signalled.get(k) } } : i;
    });
  }
  for (const { c } of items) {
    if (c.hangReport) fx.events.push({ runId: c.runId, stepName: c.stepName, attempt: c.attempt, type: 'step.hang_report', ts: fx.now, data: c.hangReport });
  }
  const artifacts = items.flatMap(({ c }) => (c.outcome === 'succeeded' ? c.artifacts : []));
  if (artifacts.length > 0) {
    await tx.insertArtifacts(artifacts);
    for (const a of artifacts) {
      fx.events.push({
        runId: a.runId,
        stepName: a.stepName,
        attempt: a.attempt,
        type: 'artifact.created',
        ts: fx.now,
        data: { id: a.id, name: a.name, mime: a.mime, size: a.content.byteLength },
      });
    }
  }
  const finishes: FinishItem[] = [];
  const retries: RetryItem[] = [];
  for (const { step, c } of items) {
    // Waits for the outputs of a step it added, or for a signal: it ends when that does.
    if (waiting.has(stepKey(c.runId, c.stepName)) || parked.has(stepKey(c.runId, c.stepName))) continue;
    if (c.outcome === 'succeeded') {
      finishes.push({ step, status: 'succeeded', opts: { outputs: c.outputs ?? null, from: ['running'], token: c.token } });
      continue;
    }
    if (c.outcome === 'cancelled' || step.cancelRequested) {
      finishes.push({ step, status: 'cancelled', opts: { error: c.error ?? null, from: ['running'], token: c.token } });
      continue;
    }
    const tries = step.attempts - step.lostAttempts;
    const retryable = c.outcome === 'timed_out' || c.error?.retryable !== false;
    if (retryable && tries <= step.retries.max) {
      retries.push({ step, token: c.token, delayMs: backoffDelay(step.retries, tries), error: c.error ?? null, extra: {} });
      continue;
    }
    finishes.push({ step, status: c.outcome, opts: { error: c.error ?? null, from: ['running'], token: c.token } });
  }
  await finishSteps(tx, fx, finishes);
  await retrySteps(tx, fx, retries);
}
