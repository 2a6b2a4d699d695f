/**
 * The plan format (SPEC "Plan format") and its validation. Every problem found is reported, each
 * with a stable code and the path it concerns, in one 400 `PLAN_INVALID` error.
 */
import { z } from 'zod';
import { RunwardenError, type ErrorDetail } from './errors.ts';
import type { RetryPolicy } from './records.ts';
import { findTemplates } from './templates.ts';
import { slicer } from './slices.ts';
import { textProblem } from './text.ts';
import { concurrencySchema, prioritySchema, queueTimeoutSchema, type ConcurrencyKey, type FlowFields } from './flow.ts';

export const STEP_NAME = /^[A-Za-z0-9_-]{1,128}$/;
export const MAX_STEPS = 10_000;
/**
 * The most steps a run may reach by adding steps at runtime, unless its request says (`maxSteps`).
 * A plan may start with more; it then cannot grow.
 */
export const DEFAULT_MAX_STEPS = 1_000;

const retriesSchema = z
  .object({
    max: z.number().int().min(0).max(100).optional(),
    backoffMs: z.number().int().min(0).max(3_600_000).optional(),
    maxBackoffMs: z.number().int().min(0).max(3_600_000).optional(),
  })
  .strict();

export const stepSchema = z
  .object({
    name: z.string().regex(STEP_NAME, 'step names use letters, digits, _ and -, at most 128 characters'),
    tool: z.string().min(1).max(64),
    inputs: z.record(z.string(), z.unknown()).optional(),
    dependsOn: z.array(z.string()).max(MAX_STEPS).optional(),
    timeoutMs: z.number().optional(),
    retries: retriesSchema.optional(),
    /** Its own claim priority (docs/flow-control.md). @default the run's */
    priority: prioritySchema.optional(),
    /** Its own concurrency key. @default the run's */
    concurrency: concurrencySchema.optional(),
    /** How long it may wait for capacity (docs/flow-control.md). @default the run's */
    queueTimeoutMs: queueTimeoutSchema.optional(),
  })
  .strict();

/** A string stored as text or matched in a query: no NUL, no unpaired surrogate (see text.ts). */
const storedText = (max: number) =>
  z
    .string()
    .max(max)
    .superRefine((s, ctx) => {
      const problem = textProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

/** `GET /runs?label=key:value` splits at the first `:` or `=`: a key holding one could never be matched. */
const labelKey = storedText(128).pipe(z.string().min(1, 'label keys must not be empty').regex(/^[^:=]+$/, 'label keys must not contain ":" or "="'));

const requestSchema = z
  .object({
    plan: z
      .object({
        goal: storedText(10_000).optional(),
        steps: z.array(z.unknown()).min(1, 'a plan needs at least one step').max(MAX_STEPS),
      })
      .strict(),
    labels: z.record(labelKey, storedText(1024)).optional(),
    idempotencyKey: storedText(256).pipe(z.string().min(1)).optional(),
    /** The most steps the run may reach by adding steps at runtime. @default DEFAULT_MAX_STEPS */
    maxSteps: z.number().int().min(1).max(MAX_STEPS).optional(),
    /** Claim priority of its steps, higher first (docs/flow-control.md). @default 0 */
    priority: prioritySchema.optional(),
    /** At most `limit` steps with `key` run at once, across the deployment. @default none */
    concurrency: concurrencySchema.optional(),
    /** How long each of its steps may wait for capacity before it fails with QUEUE_TIMEOUT. @default the server's defaultQueueTimeoutMs */
    queueTimeoutMs: queueTimeoutSchema.optional(),
  })
  .strict();

export interface ValidatedStep {
  name: string;
  idx: number;
  tool: string;
  inputs: Record<string, unknown>;
  dependsOn: string[];
  /** Whether the step said its dependsOn (a step added at runtime that does not depends on the step that added it). */
  dependsOnGiven: boolean;
  /** Steps that list this one in their dependsOn. */
  dependents: string[];
  timeoutMs: number;
  retries: RetryPolicy;
  /** What the step itself says; absent fields come from its run (or the step that added it). */
  priority: number | null;
  concurrency: ConcurrencyKey | null;
  queueTimeoutMs: number | null;
}

/** A step's flow fields: its own, else those it inherits. */
export function flowOf(step: Pick<ValidatedStep, 'priority' | 'concurrency' | 'queueTimeoutMs'>, inherited: FlowFields): FlowFields {
  return {
    priority: step.priority ?? inherited.priority,
    concurrency: step.concurrency ?? inherited.concurrency,
    queueTimeoutMs: step.queueTimeoutMs ?? inherited.queueTimeoutMs,
  };
}

export interface ValidatedRun {
  goal: string | null;
  labels: Record<string, string>;
  idempotencyKey: string | null;
  /** As given; null: DEFAULT_MAX_STEPS. */
  maxSteps: number | null;
  /** The run's priority and concurrency key: its steps' defaults. */
  flow: FlowFields;
  steps: ValidatedStep[];
}

export interface PlanLimits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** A run's queueTimeoutMs when its request gives none. @default null: no queue timeout */
  defaultQueueTimeoutMs?: number | null;
}

export const DEFAULT_RETRIES: RetryPolicy = Object.freeze({ max: 0, backoffMs: 1000, maxBackoffMs: 60_000 });

const zodPath = (path: readonly PropertyKey[]): string => path.map(String).join('.');

/** A record key's own problem ("label keys must not contain ...") rather than zod's "Invalid key in record". */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') return `key: ${issue.issues.map((i) => i.message).join('; ')}`;
  return issue.message;
}

/** What plan validation needs to know of the tools (src/tools/registry.ts ToolRegistry has it). */
export interface ToolCatalog {
  has(name: string): boolean;
  names(): string[];
  get(name: string): { timeoutMs?: number } | undefined;
  /** Checks a step's inputs; each issue's path is a dot path inside the inputs ('' for the root). */
  validate(name: string, input: unknown): Promise<{ ok: true; value: unknown } | { ok: false; issues: Array<{ path: string; message: string }> }>;
}

export async function validateRunRequest(body: unknown, tools: ToolCatalog, limits: PlanLimits): Promise<ValidatedRun> {
  const parsed = requestSchema.safeParse(body);
  if (!parsed.success) {
    throw invalid(parsed.error.issues.map((i) => ({ code: 'SCHEMA', path: zodPath(i.path), message: issueMessage(i) })));
  }
  const rawSteps = parsed.data.plan.steps;
  const { steps, problems } = await checkSteps(rawSteps, tools, limits, { at: (idx) => `plan.steps.${idx}`, outside: 'refuse' });
  const maxSteps = parsed.data.maxSteps;
  if (maxSteps !== undefined && maxSteps < rawSteps.length) {
    problems.push({ code: 'SCHEMA', path: 'maxSteps', message: `maxSteps (${maxSteps}) is below the plan's ${rawSteps.length} steps` });
  }
  if (problems.length > 0) throw invalid(problems);
  return {
    goal: parsed.data.plan.goal ?? null,
    labels: parsed.data.labels ?? {},
    idempotencyKey: parsed.data.idempotencyKey ?? null,
    maxSteps: maxSteps ?? null,
    flow: { priority: parsed.data.priority ?? 0, concurrency: parsed.data.concurrency ?? null, queueTimeoutMs: parsed.data.queueTimeoutMs ?? limits.defaultQueueTimeoutMs ?? null },
    steps,
  };
}

export interface CheckStepsOptions {
  /** Where step `idx` is, for problem paths: `plan.steps.3`. */
  at: (idx: number) => string;
  /**
   * Names outside `rawSteps` in `dependsOn` and templates: a plan refuses them; steps added at
   * runtime may name the run's existing steps, which only the engine knows ('defer': left to it).
   */
  outside: 'refuse' | 'defer';
}

/**
 * Checks a list of steps (a plan's, or the steps a tool adds to its run): shapes, names, tools,
 * deadlines, dependencies and cycles among them, templates and tool inputs. Every problem is
 * collected; the steps that could be read are returned either way.
 */
export async function checkSteps(rawSteps: readonly unknown[], tools: ToolCatalog, limits: PlanLimits, o: CheckStepsOptions): Promise<{ steps: ValidatedStep[]; problems: ErrorDetail[] }> {
  const problems: ErrorDetail[] = [];
  const steps: ValidatedStep[] = [];
  const byName = new Map<string, ValidatedStep>();

  const slice = slicer();
  for (let idx = 0; idx < rawSteps.length; idx++) {
    if (slice.due()) await slice.pause();
    const raw = rawSteps[idx];
    const r = stepSchema.safeParse(raw);
    const where = o.at(idx);
    if (!r.success) {
      for (const i of r.error.issues) problems.push({ code: 'SCHEMA', path: `${where}.${zodPath(i.path)}`.replace(/\.$/, ''), message: i.message });
      continue;
    }
    const s = r.data;
    if (byName.has(s.name)) {
      problems.push({ code: 'DUPLICATE_STEP', path: `${where}.name`, message: `step name "${s.name}" is used more than once` });
      continue;
    }
    let timeoutMs = s.timeoutMs ?? tools.get(s.tool)?.timeoutMs ?? limits.defaultTimeoutMs;
    if (s.timeoutMs !== undefined && (!Number.isInteger(s.timeoutMs) || s.timeoutMs <= 0 || s.timeoutMs > limits.maxTimeoutMs)) {
      problems.push({
        code: 'TIMEOUT_INVALID',
        path: `${where}.timeoutMs`,
        message: `timeoutMs must be a whole number of milliseconds from 1 to ${limits.maxTimeoutMs}; got ${s.timeoutMs}`,
      });
      timeoutMs = limits.defaultTimeoutMs;
    }
    if (!tools.has(s.tool)) {
      problems.push({ code: 'UNKNOWN_TOOL', path: `${where}.tool`, message: `unknown tool "${s.tool}"; known tools: ${tools.names().join(', ')}` });
    }
    const step: ValidatedStep = {
      name: s.name,
      idx,
      tool: s.tool,
      inputs: s.inputs ?? {},
      dependsOn: [...new Set(s.dependsOn ?? [])],
      dependsOnGiven: s.dependsOn !== undefined,
      dependents: [],
      timeoutMs,
      retries: { ...DEFAULT_RETRIES, ...s.retries },
      priority: s.priority ?? null,
      concurrency: s.concurrency ?? null,
      queueTimeoutMs: s.queueTimeoutMs ?? null,
    };
    byName.set(s.name, step);
    steps.push(step);
  }

  for (const step of steps) {
    for (const dep of step.dependsOn) {
      const target = byName.get(dep);
      if (dep === step.name) {
        problems.push({ code: 'DEPENDENCY_CYCLE', path: `${o.at(step.idx)}.dependsOn`, message: `step "${step.name}" depends on itself` });
      } else if (target) {
        target.dependents.push(step.name);
      } else if (o.outside === 'refuse') {
        problems.push({ code: 'UNKNOWN_DEPENDENCY', path: `${o.at(step.idx)}.dependsOn`, message: `step "${step.name}" depends on unknown step "${dep}"` });
      }
    }
  }
  const cycle = findCycle(steps, byName);
  if (cycle) problems.push({ code: 'DEPENDENCY_CYCLE', path: o.at(0).replace(/\.0$/, ''), message: `dependency cycle: ${cycle.join(' -> ')}` });

  for (const step of steps) {
    if (slice.due()) await slice.pause();
    const refs = findTemplates(step.inputs);
    const templated = new Set<string>();
    for (const ref of refs) {
      const path = `${o.at(step.idx)}.inputs.${ref.path}`;
      templated.add(ref.path);
      if (ref.literal) continue;
      if (ref.problem || ref.step === null) {
        problems.push({ code: 'BAD_TEMPLATE', path, message: ref.problem ?? 'bad template' });
      } else if (!byName.has(ref.step)) {
        if (o.outside === 'refuse') problems.push({ code: 'BAD_TEMPLATE', path, message: `{{${ref.expr}}} refers to unknown step "${ref.step}"` });
      } else if (!cycle && !isUpstream(ref.step, step, byName)) {
        problems.push({
          code: 'BAD_TEMPLATE',
          path,
          message: `{{${ref.expr}}}: step "${ref.step}" is not upstream of "${step.name}"; add it to dependsOn`,
        });
      }
    }
    if (!tools.has(step.tool)) continue;
    const result = await tools.validate(step.tool, step.inputs);
    if (!result.ok) {
      for (const issue of result.issues) {
        // A value that is a template is only known at run time; it is validated again then.
        if ([...templated].some((t) => issue.path === t || issue.path.startsWith(`${t}.`))) continue;
        problems.push({
          code: 'INPUT_INVALID',
          path: `${o.at(step.idx)}.inputs${issue.path ? `.${issue.path}` : ''}`,
          message: `step "${step.name}" (${step.tool}): ${issue.message}`,
        });
      }
    }
  }
  return { steps, problems };
}

export function invalid(details: ErrorDetail[], code = 'PLAN_INVALID', what = 'the plan'): RunwardenError {
  const n = details.length;
  const first = details[0]?.message ?? 'invalid plan';
  return new RunwardenError(code, n === 1 ? first : `${n} problems in ${what}; first: ${first}`, { details: details.slice(0, 200) });
}

/** Iterative DFS (plans can have 10,000 steps; recursion could overflow). */
function findCycle(steps: ValidatedStep[], byName: Map<string, ValidatedStep>): string[] | null {
  const color = new Map<string, 0 | 1 | 2>();
  for (const root of steps) {
    if (color.get(root.name)) continue;
    const stack: Array<{ name: string; i: number }> = [{ name: root.name, i: 0 }];
    const path: string[] = [root.name];
    color.set(root.name, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { name: string; i: number };
      const deps = byName.get(top.name)?.dependsOn ?? [];
      if (top.i >= deps.length) {
        color.set(top.name, 2);
        stack.pop();
        path.pop();
        continue;
      }
      const next = deps[top.i++] as string;
      if (!byName.has(next) || next === top.name) continue;
      const c = color.get(next) ?? 0;
      if (c === 1) return [...path.slice(path.indexOf(next)), next];
      if (c === 0) {
        color.set(next, 1);
        stack.push({ name: next, i: 0 });
        path.push(next);
      }
    }
  }
  return null;
}

/**
 * Whether `target` is a transitive dependency of `step`: a breadth-first walk up the dependsOn
 * edges that stops as soon as it finds it (usually one hop: templates name direct dependencies).
 */
function isUpstream(target: string, step: ValidatedStep, byName: Map<string, ValidatedStep>): boolean {
  const seen = new Set<string>();
  const queue = [...step.dependsOn];
  for (let i = 0; i < queue.length; i++) {
    const name = queue[i] as string;
    if (name === target) return true;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const d of byName.get(name)?.dependsOn ?? []) if (!seen.has(d)) queue.push(d);
  }
  return false;
}
