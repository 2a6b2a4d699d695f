/**
 * Steps a tool adds to its own run (`ctx.addSteps`, docs/dynamic-runs.md). They go three ways:
 * - the tool's call is checked at once for shape (a wrong step throws in the tool, where it can be
 *   caught), and what it asked for is kept as plain JSON in the attempt's result, so that it crosses
 *   from a tool thread to the worker like the rest of the result;
 * - the worker checks them against its tools when the attempt succeeded (validateAdditions:
 *   the checks a plan's steps get, with the run's existing steps left to the engine);
 * - the engine adds them in the transaction that records the attempt (engine/transitions/add-steps.ts),
 *   after the checks only the run can answer (names taken, dependencies that exist, maxSteps).
 * Only a succeeded attempt adds its steps: a failed, timed-out or lost one adds nothing, so a retry
 * that adds them again adds them once.
 */
import { z } from 'zod';
import { RunwardenError, type ErrorDetail } from './errors.ts';
import type { PlanStep } from './plan-format.ts';
import { checkSteps, invalid, MAX_STEPS, stepSchema, STEP_NAME, type PlanLimits, type ToolCatalog, type ValidatedStep } from './plan.ts';

/** What one attempt asked to add, as it travels with the attempt's result (plain JSON). */
export interface StepAdditions {
  steps: PlanStep[];
  /** An added step whose outputs become the adding step's, once it ends (see AddStepsOptions). */
  outputsFrom?: string;
}

export interface AddStepsOptions {
  /**
   * The adding step takes the outputs of this added step instead of what its tool returns: it stays
   * `pending` until that step ends, and its dependents wait for it. Its added steps then do not
   * depend on it unless they say so... which they cannot: that would be a cycle.
   */
  outputsFrom?: string;
}

/** What the engine is handed: checked steps with their dependencies settled. */
export interface Additions {
  steps: ValidatedStep[];
  outputsFrom: string | null;
}

const optionsSchema = z.strictObject({ outputsFrom: z.string().regex(STEP_NAME).optional() }).optional();

const path = (issuePath: readonly PropertyKey[]): string => issuePath.map(String).join('.');

/**
 * The `ctx.addSteps` of one attempt: each call is checked for shape at once (throws STEPS_INVALID
 * with one detail per problem) and appended; `result()` is what goes with the attempt's result.
 */
export class AdditionsCollector {
  readonly #steps: PlanStep[] = [];
  readonly #names = new Set<string>();
  #outputsFrom: string | undefined;

  add(steps: unknown, opts?: unknown): string[] {
    const problems: ErrorDetail[] = [];
    if (!Array.isArray(steps)) throw invalid([{ code: 'SCHEMA', path: 'steps', message: 'addSteps takes an array of steps' }], 'STEPS_INVALID', 'the added steps');
    const o = optionsSchema.safeParse(opts);
    if (!o.success) for (const i of o.error.issues) problems.push({ code: 'SCHEMA', path: `options.${path(i.path)}`.replace(/\.$/, ''), message: i.message });
    if (this.#steps.length + steps.length > MAX_STEPS) {
      problems.push({ code: 'SCHEMA', path: 'steps', message: `an attempt may add at most ${MAX_STEPS} steps` });
    }
    const accepted: PlanStep[] = [];
    const names = new Set<string>();
    steps.forEach((raw: unknown, i) => {
      const r = stepSchema.safeParse(raw);
      if (!r.success) {
        for (const issue of r.error.issues) problems.push({ code: 'SCHEMA', path: `steps.${i}.${path(issue.path)}`.replace(/\.$/, ''), message: issue.message });
        return;
      }
      if (this.#names.has(r.data.name) || names.has(r.data.name)) {
        problems.push({ code: 'DUPLICATE_STEP', path: `steps.${i}.name`, message: `step "${r.data.name}" is added more than once` });
        return;
      }
      let plain: PlanStep;
      try {
        // Plain JSON from here on: it is stored, and may cross a thread boundary.
        plain = JSON.parse(JSON.stringify(r.data)) as PlanStep;
      } catch (err) {
        problems.push({ code: 'SCHEMA', path: `steps.${i}.inputs`, message: `inputs are not JSON: ${(err as Error).message}` });
        return;
      }
      names.add(plain.name);
      accepted.push(plain);
    });
    const outputsFrom = o.success ? o.data?.outputsFrom : undefined;
    if (outputsFrom !== undefined && this.#outputsFrom !== undefined && outputsFrom !== this.#outputsFrom) {
      problems.push({ code: 'SCHEMA', path: 'options.outputsFrom', message: `outputsFrom is already "${this.#outputsFrom}"` });
    }
    if (problems.length > 0) throw invalid(problems, 'STEPS_INVALID', 'the added steps');
    for (const s of accepted) {
      this.#steps.push(s);
      this.#names.add(s.name);
    }
    if (outputsFrom !== undefined) this.#outputsFrom = outputsFrom;
    return accepted.map((s) => s.name);
  }

  result(): StepAdditions | undefined {
    if (this.#steps.length === 0 && this.#outputsFrom === undefined) return undefined;
    return { steps: this.#steps, ...(this.#outputsFrom !== undefined ? { outputsFrom: this.#outputsFrom } : {}) };
  }
}

/**
 * The checks the worker makes before the attempt's result is written (tools, inputs, deadlines,
 * dependencies among the added steps), with their dependencies settled: a step that does not say
 * depends on the adding step, unless the adding step takes its outputs from an added one (it is
 * not finished then: depending on it would wait forever). Throws STEPS_INVALID.
 */
export async function validateAdditions(a: StepAdditions, adder: string, tools: ToolCatalog, limits: PlanLimits): Promise<Additions> {
  const { steps, problems } = await checkSteps(a.steps, tools, limits, { at: (idx) => `steps.${idx}`, outside: 'defer' });
  const outputsFrom = a.outputsFrom ?? null;
  const byName = new Map(steps.map((s) => [s.name, s]));
  if (outputsFrom !== null && !byName.has(outputsFrom)) {
    problems.push({ code: 'UNKNOWN_DEPENDENCY', path: 'options.outputsFrom', message: `outputsFrom names "${outputsFrom}", which is not one of the added steps` });
  }
  for (const s of steps) {
    if (s.name === adder) problems.push({ code: 'DUPLICATE_STEP', path: `steps.${s.idx}.name`, message: `step "${s.name}" is the step adding it` });
    if (!s.dependsOnGiven && outputsFrom === null) s.dependsOn = [adder];
    if (outputsFrom !== null && s.dependsOn.includes(adder)) {
      problems.push({
        code: 'DEPENDENCY_CYCLE',
        path: `steps.${s.idx}.dependsOn`,
        message: `step "${s.name}" depends on "${adder}", which waits for "${outputsFrom}" (outputsFrom): it would never start`,
      });
    }
  }
  if (problems.length > 0) throw invalid(problems, 'STEPS_INVALID', 'the added steps');
  return { steps, outputsFrom };
}

/** The error a step that could not add its steps fails with. */
export function additionsRefused(err: unknown): RunwardenError {
  if (err instanceof RunwardenError && (err.code === 'STEPS_INVALID' || err.code === 'MAX_STEPS_EXCEEDED')) return err;
  return new RunwardenError('STEPS_INVALID', `the added steps could not be checked: ${(err as Error)?.message ?? String(err)}`);
}
