/**
 * insertRerun: a new run from a finished one (POST /runs/:id/rerun). The steps planRerun reuses are
 * written as succeeded with the old outputs (their artifacts copied, `step.reused` then
 * `step.finished`, no attempt); the others start as a new run's steps would, waiting only for the
 * steps that run again, with templates resolved from the reused outputs.
 */
import type { ArtifactMeta } from '../../domain/records.ts';
import type { NewStep, RunRow, StepRow, Tx } from '../../store/store.ts';
import { newArtifactId } from '../ids.ts';
import type { RerunPlan } from '../rerun-plan.ts';
import { guarded, runEffect, type TxEffects } from './effects.ts';
import { queueStep } from './finish.ts';

export interface RerunSource {
  run: RunRow;
  plan: unknown;
  artifacts: readonly ArtifactMeta[];
}

export async function insertRerun(tx: Tx, fx: TxEffects, id: string, src: RerunSource, p: RerunPlan): Promise<void> {
  const kept = new Set(p.steps.map((s) => s.name));
  const again = (name: string): boolean => kept.has(name) && !p.reused.has(name);
  await tx.insertRun({
    id,
    goal: src.run.goal,
    labels: src.run.labels,
    idempotencyKey: null,
    plan: src.plan,
    stepsTotal: p.steps.length,
    maxSteps: src.run.maxSteps,
    rerunOf: src.run.id,
    createdAt: fx.now,
  });
  const rows: NewStep[] = p.steps.map((s, idx) => ({
    runId: id,
    name: s.name,
    idx,
    tool: s.tool,
    status: 'pending',
    dependsOn: s.dependsOn,
    dependents: s.dependents.filter((d) => kept.has(d)),
    inputs: s.inputs,
    resolvedInputs: null,
    pendingDeps: p.reused.has(s.name) ? 0 : s.dependsOn.filter(again).length,
    timeoutMs: s.timeoutMs,
    retries: s.retries,
    readyAt: null,
    addedBy: s.addedBy,
    // A step that runs again and took its outputs from a step it added adds that step again.
    outputsFrom: p.reused.has(s.name) ? s.outputsFrom : null,
  }));
  await tx.insertSteps(rows);
  fx.events.push({ runId: id, type: 'run.created', ts: fx.now, data: { goal: src.run.goal, steps: rows.length, labels: src.run.labels, rerunOf: src.run.id } });

  const reused = p.steps.filter((s) => p.reused.has(s.name));
  const from = (s: StepRow): string => s.reusedFrom ?? src.run.id;
  await tx.updateSteps(
    reused.map((s) =>
      guarded({
        runId: id,
        name: s.name,
        expectStatus: ['pending'],
        patch: { status: 'succeeded', resolvedInputs: s.resolvedInputs, outputs: s.outputs, finishedAt: fx.now, reusedFrom: from(s), awaitingSignal: s.awaitingSignal },
      }),
    ),
  );
  const copies = src.artifacts.filter((a) => p.reused.has(a.stepName)).map((a) => ({ fromId: a.id, id: newArtifactId(), runId: id, stepName: a.stepName }));
  await tx.copyArtifacts(copies.map(({ fromId, id: newId, runId }) => ({ fromId, id: newId, runId })));
  for (const s of reused) {
    const artifacts = copies.filter((c) => c.stepName === s.name).length;
    fx.events.push({ runId: id, stepName: s.name, type: 'step.reused', ts: fx.now, data: { reusedFrom: from(s), rerunOf: src.run.id, artifacts } });
    fx.events.push({ runId: id, stepName: s.name, type: 'step.finished', ts: fx.now, data: { status: 'succeeded', error: null, durationMs: 0, attempts: 0 } });
  }
  runEffect(fx, id).stepsDone += reused.length;

  // Ready at once: everything they wait for was reused. Templates resolve from the reused outputs.
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const s of p.steps) {
    const row = byName.get(s.name) as NewStep;
    if (p.reused.has(s.name) || row.pendingDeps > 0) continue;
    await queueStep(tx, fx, { ...s, runId: id, idx: row.idx, status: 'pending', dependents: row.dependents, pendingDeps: 0, outputsFrom: null, attempts: 0, lostAttempts: 0, reusedFrom: null, cancelRequested: false, leaseToken: null }, new Map());
  }
}
