/** createRun(s): validated plans become runs, their steps, and the roots queued; a batch in one write per table. */
import { flowOf, type ValidatedRun } from '../../domain/plan.ts';
import { resolveTemplates } from '../../domain/templates.ts';
import type { Tx } from '../../store/store.ts';
import type { TxEffects } from './effects.ts';

export interface NewRunItem {
  id: string;
  run: ValidatedRun;
  rawPlan: unknown;
}

/** One run (a schedule's tick). */
export function insertRun(tx: Tx, fx: TxEffects, id: string, run: ValidatedRun, rawPlan: unknown): Promise<void> {
  return insertRuns(tx, fx, [{ id, run, rawPlan }]);
}

export async function insertRuns(tx: Tx, fx: TxEffects, items: readonly NewRunItem[]): Promise<void> {
  if (items.length === 0) return;
  await tx.insertRuns(
    items.map(({ id, run, rawPlan }) => ({
      id,
      goal: run.goal,
      labels: run.labels,
      idempotencyKey: run.idempotencyKey,
      plan: rawPlan,
      stepsTotal: run.steps.length,
      maxSteps: run.maxSteps,
      flow: run.flow,
      createdAt: fx.now,
    })),
  );
  await tx.insertSteps(
    items.flatMap(({ id, run }) =>
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
    ),
  );
  for (const { id, run } of items) {
    fx.events.push({ runId: id, type: 'run.created', ts: fx.now, data: { goal: run.goal, steps: run.steps.length, labels: run.labels } });
    for (const s of run.steps) {
      if (s.dependsOn.length === 0) {
        fx.queued++;
        fx.events.push({ runId: id, stepName: s.name, type: 'step.queued', ts: fx.now, data: {} });
      }
    }
  }
}
