/**
 * Which steps of a finished run a rerun reuses and which it runs again (docs/waits-and-reruns.md).
 * Pure: the old run's steps in, the new run's steps out.
 *
 * - Run again: the steps of `from` (default: every step that did not succeed), every step that did
 *   not succeed, and everything downstream of those (their dependents, transitively; a step that
 *   took its outputs from a step it added is downstream of that step).
 * - Reused: every other step (they all succeeded): outputs and artifacts are copied, the tool is
 *   not called.
 * - Steps added at runtime by a step that runs again are left out: that step adds its steps again
 *   when it runs (they may differ this time). Steps added by a reused step are kept, and reused or
 *   run again like any other. A kept step that depends on a step left out is left out too.
 */
import { RunwardenError } from '../domain/errors.ts';
import type { StepRow } from '../store/store.ts';

export interface RerunPlan {
  /** The `from` the rerun used (given, or the steps that did not succeed). */
  from: string[];
  /** The new run's steps, in the old run's order. */
  steps: StepRow[];
  /** Of those, the ones reused. */
  reused: Set<string>;
  /** Steps of the old run left out (added by a step that runs again). */
  dropped: string[];
}

export function planRerun(runId: string, old: readonly StepRow[], from?: readonly string[]): RerunPlan {
  const byName = new Map(old.map((s) => [s.name, s]));
  const unknown = (from ?? []).filter((n) => !byName.has(n));
  if (unknown.length > 0) {
    throw new RunwardenError('UNKNOWN_STEP', `run ${runId} has no step named ${unknown.map((n) => JSON.stringify(n)).join(', ')}`, {
      details: unknown.map((n) => ({ code: 'UNKNOWN_STEP', path: 'from', message: `no step named ${JSON.stringify(n)}` })),
      data: { unknown },
    });
  }
  const chosen = from ? [...new Set(from)] : old.filter((s) => s.status !== 'succeeded').map((s) => s.name);
  const rerun = new Set<string>();
  const dropped = new Set<string>();
  const spread = (names: Iterable<string>): void => {
    const queue = [...names];
    for (let i = 0; i < queue.length; i++) {
      const name = queue[i] as string;
      if (rerun.has(name) || dropped.has(name)) continue;
      rerun.add(name);
      queue.push(...(byName.get(name)?.dependents ?? []));
    }
  };
  spread([...chosen, ...old.filter((s) => s.status !== 'succeeded').map((s) => s.name)]);
  // Leaving a step out can leave out others (what it added, what depends on it): until nothing moves.
  for (let changed = true; changed; ) {
    changed = false;
    for (const s of old) {
      if (dropped.has(s.name)) continue;
      const adderGone = s.addedBy !== null && (rerun.has(s.addedBy) || dropped.has(s.addedBy));
      if (adderGone || s.dependsOn.some((d) => dropped.has(d))) {
        dropped.add(s.name);
        rerun.delete(s.name);
        changed = true;
      }
    }
  }
  const steps = old.filter((s) => !dropped.has(s.name));
  if (!steps.some((s) => rerun.has(s.name))) {
    throw new RunwardenError('NOTHING_TO_RERUN', `every step of run ${runId} succeeded and none was named in "from": a rerun would run nothing`);
  }
  return { from: chosen, steps, reused: new Set(steps.filter((s) => !rerun.has(s.name)).map((s) => s.name)), dropped: [...dropped] };
}
