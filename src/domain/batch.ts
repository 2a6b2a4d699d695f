/**
 * A batch of run requests (`POST /runs/batch`): validated all or nothing. Every item is checked as
 * `POST /runs` checks one; the problems of all items come back together, each path prefixed with
 * its item (`runs.3.plan.steps.0.tool`), and no run is created unless every item is valid.
 */
import { RunwardenError, type ErrorDetail } from './errors.ts';
import { invalid, validateRunRequest, type PlanLimits, type ToolCatalog, type ValidatedRun } from './plan.ts';

/** Most runs one batch may hold (docs/api.md). */
export const MAX_BATCH_RUNS = 1000;

export interface ValidatedBatchItem {
  run: ValidatedRun;
  /** The plan as submitted (stored with the run). */
  rawPlan: unknown;
}

export async function validateBatch(body: unknown, tools: ToolCatalog, limits: PlanLimits): Promise<ValidatedBatchItem[]> {
  const runs = (body as { runs?: unknown } | null)?.runs;
  if (!Array.isArray(runs)) {
    throw new RunwardenError('INVALID_BODY', 'request body must be a JSON object with "runs": an array of run requests', {
      details: [{ code: 'INVALID_TYPE', path: 'runs', message: `expected an array, got ${runs === null ? 'null' : typeof runs}` }],
    });
  }
  if (runs.length === 0 || runs.length > MAX_BATCH_RUNS) {
    throw new RunwardenError('INVALID_BODY', `"runs" must hold 1 to ${MAX_BATCH_RUNS} run requests, got ${runs.length}`, {
      details: [{ code: 'BATCH_SIZE', path: 'runs', message: `${runs.length} items; allowed 1 to ${MAX_BATCH_RUNS}` }],
    });
  }
  const out: ValidatedBatchItem[] = [];
  const problems: ErrorDetail[] = [];
  let bad = 0;
  for (const [i, item] of runs.entries()) {
    try {
      out.push({ run: await validateRunRequest(item, tools, limits), rawPlan: (item as { plan?: unknown }).plan });
    } catch (err) {
      if (!(err instanceof RunwardenError) || err.code !== 'PLAN_INVALID') throw err;
      bad++;
      for (const d of err.details ?? [{ code: 'SCHEMA', path: '', message: err.message }]) problems.push({ ...d, path: d.path ? `runs.${i}.${d.path}` : `runs.${i}` });
    }
  }
  if (bad > 0) throw invalid(problems, 'PLAN_INVALID', `${bad} of ${runs.length} run requests`);
  return out;
}
