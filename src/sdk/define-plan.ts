/**
 * `definePlan()`: a plan written in TypeScript whose references are checked by the compiler.
 *
 *   definePlan({ goal: 'shout twice' })
 *     .step('first', shout, { text: 'hello' })
 *     .step('second', shout, (steps) => ({ text: steps.first.outputs.text }))
 *     .build();
 *
 * Each `.step()` adds the step's name and its tool's output type to the builder's type, so in a
 * later step's inputs `steps.<name>.outputs.<path>` exists only for an earlier step and a path its
 * tool returns, and its type must fit the input it is given to: a wrong name, a wrong field or a
 * wrong type is a compile error. A reference stands for `"{{steps.<name>.outputs.<path>}}"` (inside
 * a template literal it is interpolated as text, as the engine does) and makes the step depend on
 * the one it names. `build()` returns the JSON plan, the wire format `POST /runs` takes.
 */
import { RunwardenError, type ErrorDetail } from '../domain/errors.ts';
import type { Plan, PlanStep } from '../domain/plan-format.ts';
import { findTemplates } from '../domain/templates.ts';
import type { ToolOutput, ToolPlanInput, ToolReference } from '../tools/types.ts';

declare const refOf: unique symbol;

/** A reference to an upstream output of type `T` (type-level: at run time it is a proxy). */
export interface Ref<T> {
  readonly [refOf]: T;
  /** The template, `{{steps.<name>.outputs.<path>}}`: inside a template literal it is interpolated as text. */
  toString(): string;
}

type Primitive = string | number | boolean | bigint | symbol | null | undefined;
type IsAny<T> = 0 extends 1 & T ? true : false;

/**
 * A reference into an output whose type is not known (a tool given by name only, `toolRef('echo')`):
 * any path, fitting any input. Give `toolRef<Input, Output>()` types to have it checked.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped tool's output may be anything, and fits any input
export type AnyRef = any;

/** References to `T` and, below it, to each of its fields and elements. */
export type OutputRef<T> =
  IsAny<T> extends true ? AnyRef : unknown extends T ? AnyRef : Ref<T> & ([T] extends [readonly (infer E)[]] ? { readonly [i: number]: OutputRef<E> } : [T] extends [Primitive] ? unknown : [T] extends [object] ? { readonly [K in keyof T]-?: OutputRef<T[K]> } : unknown);

/** What a step's inputs may refer to: `steps.<earlier step>.outputs...`. */
export type StepRefs<S> = { readonly [K in keyof S]: { readonly outputs: OutputRef<S[K]> } };

/** A value of type `T`, or a reference to one, at any depth. */
export type Refable<T> =
  | Ref<T>
  | (IsAny<T> extends true
      ? T
      : T extends Primitive
        ? T | Ref<T>
        : T extends readonly (infer E)[]
          ? readonly Refable<E>[]
          : T extends object
            ? { [K in keyof T]: Refable<T[K]> }
            : T);

export interface StepOptions<Earlier extends string> {
  /** Extra dependencies (the steps a step's inputs refer to are added by themselves). */
  dependsOn?: readonly Earlier[];
  timeoutMs?: number;
  retries?: { max?: number; backoffMs?: number; maxBackoffMs?: number };
}

/** A step name not used yet; a repeated one is a compile error naming it. */
type NewName<N extends string, S> = N extends keyof S ? `step name "${N}" is already used` : N;

type Inputs<T extends ToolReference> = Refable<ToolPlanInput<T>>;

export interface PlanBuilder<S extends Record<string, unknown>> {
  /** Adds a step running `tool`; `inputs` is the value, or a function of the earlier steps' references. */
  step<const N extends string, T extends ToolReference>(
    name: NewName<N, S>,
    tool: T,
    inputs: Inputs<T> | ((steps: StepRefs<S>) => Inputs<T>),
    options?: StepOptions<keyof S & string>,
  ): PlanBuilder<S & { [K in N]: ToolOutput<T> }>;
  /** The JSON plan. */
  build(): Plan;
}

const REF = Symbol('runwarden.ref');
const KEY = /^[A-Za-z0-9_$-]+$/;
const STEP_NAME = /^[A-Za-z0-9_-]{1,128}$/;

interface RefTarget {
  step: string;
  keys: string[];
}

function template(t: RefTarget): string {
  return `{{steps.${t.step}.outputs${t.keys.map((k) => `.${k}`).join('')}}}`;
}

function makeRef(t: RefTarget): unknown {
  const text = template(t);
  return new Proxy(Object.freeze({}), {
    get(_target, prop) {
      if (prop === REF) return t;
      if (prop === Symbol.toPrimitive || prop === 'toString' || prop === 'toJSON') return () => text;
      // Not a thenable: an accidental `await ref` must not wait forever.
      if (typeof prop === 'symbol' || prop === 'then') return undefined;
      if (!KEY.test(prop)) {
        throw new RunwardenError('PLAN_INVALID', `${text}: the output key ${JSON.stringify(prop)} cannot be referenced (templates allow letters, digits, _, $ and -)`);
      }
      return makeRef({ step: t.step, keys: [...t.keys, prop] });
    },
  });
}

function refTarget(v: unknown): RefTarget | undefined {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null) return undefined;
  return (v as { [REF]?: RefTarget })[REF];
}

/** The inputs as JSON: every reference replaced by its template, each referenced step noted. */
function toJson(value: unknown, refs: Set<string>): unknown {
  const t = refTarget(value);
  if (t) {
    refs.add(t.step);
    return template(t);
  }
  if (typeof value === 'string') {
    for (const found of findTemplates(value)) if (found.step !== null) refs.add(found.step);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => toJson(v, refs));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v, refs)]));
  }
  return value;
}

class Builder {
  readonly #goal: string | undefined;
  readonly #steps: readonly PlanStep[];

  constructor(goal: string | undefined, steps: readonly PlanStep[]) {
    this.#goal = goal;
    this.#steps = steps;
  }

  step(name: string, tool: ToolReference, inputs: unknown, options: StepOptions<string> = {}): Builder {
    const problems: ErrorDetail[] = [];
    const where = `plan.steps.${this.#steps.length}`;
    const earlier = new Set(this.#steps.map((s) => s.name));
    if (typeof name !== 'string' || !STEP_NAME.test(name)) {
      problems.push({ code: 'SCHEMA', path: `${where}.name`, message: `step name ${JSON.stringify(name)} must use letters, digits, _ and -, at most 128 characters` });
    } else if (earlier.has(name)) {
      problems.push({ code: 'DUPLICATE_STEP', path: `${where}.name`, message: `step name "${name}" is used more than once` });
    }
    if (typeof tool?.name !== 'string') problems.push({ code: 'UNKNOWN_TOOL', path: `${where}.tool`, message: `step "${name}": tool must be a tool definition or toolRef()` });
    const refs = new Set<string>();
    const given = typeof inputs === 'function' ? (inputs as (steps: unknown) => unknown)(this.#refs()) : inputs;
    const json = toJson(given ?? {}, refs);
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      problems.push({ code: 'SCHEMA', path: `${where}.inputs`, message: `step "${name}": inputs must be an object` });
    }
    const dependsOn = [...new Set([...(options.dependsOn ?? []), ...refs])];
    for (const dep of dependsOn) {
      if (!earlier.has(dep)) problems.push({ code: 'UNKNOWN_DEPENDENCY', path: `${where}.dependsOn`, message: `step "${name}" refers to "${dep}", which is not an earlier step` });
    }
    if (problems.length > 0) throw new RunwardenError('PLAN_INVALID', problems.map((p) => p.message).join('; '), { details: problems });
    const step: PlanStep = { name, tool: tool.name, inputs: json as Record<string, unknown> };
    if (dependsOn.length > 0) step.dependsOn = dependsOn;
    if (options.timeoutMs !== undefined) step.timeoutMs = options.timeoutMs;
    if (options.retries !== undefined) step.retries = { ...options.retries };
    return new Builder(this.#goal, [...this.#steps, step]);
  }

  /** `steps` for an inputs function: the earlier steps; any other name is an error that says so. */
  #refs(): unknown {
    const known = new Map(this.#steps.map((s) => [s.name, { outputs: makeRef({ step: s.name, keys: [] }) }]));
    return new Proxy(Object.freeze({}), {
      get(_target, prop) {
        if (typeof prop === 'symbol' || prop === 'then') return undefined;
        const entry = known.get(prop);
        if (!entry) throw new RunwardenError('PLAN_INVALID', `there is no earlier step named "${prop}" (earlier steps: ${[...known.keys()].join(', ') || 'none'})`);
        return entry;
      },
    });
  }

  build(): Plan {
    if (this.#steps.length === 0) throw new RunwardenError('PLAN_INVALID', 'a plan needs at least one step');
    return { ...(this.#goal !== undefined ? { goal: this.#goal } : {}), steps: structuredClone([...this.#steps]) };
  }
}

/** What a builder without steps can refer to: nothing. */
export type NoSteps = Record<never, never>;

export function definePlan(options: { goal?: string } = {}): PlanBuilder<NoSteps> {
  return new Builder(options.goal, []);
}
