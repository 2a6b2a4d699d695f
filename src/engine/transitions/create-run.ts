/** createRun: a validated plan becomes a run, its steps, and the roots queued. */
import { flowOf, type ValidatedRun } from '../../domain/plan.ts';
import { resolveTemplates } from '../../domain/templates.ts';
import type { Tx } from '../../store/store.ts';
import type { TxEffects } from './effects.ts';

export async function insertRun(tx: Tx, fx: TxEffects, id: string, run: ValidatedRun, rawPlan: unknown): Promise<void> {
  await tx.insertRun({
    id,
    goal: run.goal,
    labels: run.labels,
    idempotencyKey: run.idempotencyKey,
    plan: rawPlan,
    stepsTotal: run.steps.length,
    maxSteps: run.maxSteps,
    flow: run.flow,
    createdAt: fx.now,
  });
  await tx.insertSteps(
    run.steps.map((s) => {
      const root = s.dependsOn.length === 0;
      return {
        runId: id,
        name: s.name,
        idx: s.idx,
        tool: s.tool,
        status: root ? ('queued' as const) : ('pending' as const),
        dependsOn: s.dependsOn,
        dependents: s.dependents,
        inputs: s.inputs,
        // A root names no step; resolving only turns its {{lbrace}} into the literal `{`.
        resolvedInputs: root ? resolveTemplates(s.inputs, () => undefined) : null,
        pendingDeps: s.dependsOn.length,
        timeoutMs: s.timeoutMs,
        retries: s.retries,
        readyAt: root ? fx.now : null,
        flow: flowOf(s, run.flow),
      };
    }),
  );
  fx.events.push({ runId: id, type: 'run.created', ts: fx.now, data: { goal: run.goal, steps: run.steps.length, labels: run.labels } });
  for (const s of run.steps) {
    if (s.dependsOn.length === 0) {
      fx.queued++;
      fx.events.push({ runId: id, stepName: s.name, type: 'step.queued', ts: fx.now, data: {} });
    }
  }
}
