/**
 * What a tool is. Users write `defineTool({ name, input, run(ctx, input) })` or a plain object of the
 * same shape; a tools module default-exports an array of them.
 */
import type { CapacityClock } from '../flow/capacity.ts';
import type { AddStepsOptions } from '../domain/added-steps.ts';
import type { PlanStep } from '../domain/plan-format.ts';
import type { StandardSchemaV1 } from './standard-schema.ts';
import type { JsonSchemaType, TypedJsonSchema } from './json-schema.ts';
import type { CustomEventType, EventType } from '../domain/events.ts';

/** Structured log line of a step; becomes a `step.log` event (redacted). */
export interface StepLogger {
  (message: string, data?: Record<string, unknown>): void;
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

export interface ArtifactInput {
  name: string;
  content: string | Uint8Array;
  /** @default guessed from the name, else application/octet-stream */
  mime?: string;
}

export interface ArtifactRef {
  id: string;
  name: string;
  mime: string;
  size: number;
}

/** Artifacts are buffered and written in the same transaction as the step's completion. */
export interface ArtifactSink {
  put(artifact: ArtifactInput): ArtifactRef;
  list(): readonly ArtifactRef[];
}

export interface ToolContext {
  /** Fires at the step's deadline, on cancellation, or when the worker shuts down hard. */
  readonly signal: AbortSignal;
  /** Epoch milliseconds at which the attempt times out. */
  readonly deadline: number;
  readonly runId: string;
  readonly stepName: string;
  /** 1-based attempt number. */
  readonly attempt: number;
  readonly log: StepLogger;
  readonly artifacts: ArtifactSink;
  /**
   * The attempt's clock, for a tool that waits for capacity of its own (a quota it keeps): while a
   * hold is open the step's deadline (`deadline`) stands still and the wait counts against its
   * `queueTimeoutMs` instead (docs/flow-control.md#waiting-for-capacity). End every hold.
   */
  readonly capacity?: CapacityClock;
  /** Record progress through an await the engine cannot see; the last one appears in hang reports. */
  checkpoint(label: string): void;
  /** Await `promise` under a label so a hang report can name it if it never settles. */
  track<T>(label: string, promise: Promise<T>): Promise<T>;
  /**
   * Emit an event on this step: `llm.request` and `llm.usage` (the built-in LLM tools), or one of
   * the tool's own, named `custom.<name>` (readers type events by src/domain/events.ts).
   */
  emit(type: EventType | CustomEventType, data: Record<string, unknown>): void;
  /**
   * Publish text as it is generated: coalesced into `llm.delta` frames (every 75 ms) on the run's
   * event stream, never stored (return the final text as output). `call` numbers the provider
   * exchange: a new number means a retry started the text over. Never blocks.
   */
  streamText?(text: string, call?: number): void;
  /**
   * Adds steps to this run (docs/dynamic-runs.md): plan steps, checked like a plan's. Unless they
   * say `dependsOn`, they depend on this step. They are added only if this attempt succeeds, in the
   * transaction that records it; a bad step throws STEPS_INVALID at once. Returns their names.
   */
  addSteps(steps: PlanStep[], options?: AddStepsOptions): string[];
}

export type ToolIsolation = 'thread' | 'inline';

/** A JSON Schema object (validated with Ajv) or any Standard Schema (zod, valibot, arktype ...). */
export type ToolInputSchema = StandardSchemaV1 | Record<string, unknown>;

/**
 * A tool as a plan sees it: its name and, for the type checker only, what a plan may pass as its
 * inputs (`P`) and what it returns (`O`). Every tool definition is one; `toolRef()` makes one for a
 * tool defined elsewhere (a built-in, or a tool only the server loads).
 */
export interface ToolReference<P = unknown, O = unknown> {
  readonly name: string;
  /** Type-level only: never set at run time. */
  readonly '~io'?: { readonly input: P; readonly output: O };
}

/**
 * `I` is what `run` receives (after the schema parsed it), `O` what it returns, `P` what a plan may
 * give (a schema's input type: before defaults and transforms).
 */
export interface ToolDefinition<I = unknown, O = unknown, P = I> extends ToolReference<P, O> {
  name: string;
  description?: string;
  input?: ToolInputSchema;
  /** Default deadline for steps using this tool when the plan gives none. */
  timeoutMs?: number;
  /**
   * Where the tool's code runs (docs/lifecycle.md, containment). 'thread': in a worker thread of its
   * own, terminated when the attempt is cut, so a tool that ignores its signal stops all the same;
   * only for tools loaded from a tools module (a thread must be able to import it). 'inline': on the
   * worker's event loop (cheapest; a tool that ignores its signal is abandoned and its processes,
   * threads and sockets are closed, but its JavaScript cannot be stopped).
   * @default the `toolIsolation` setting for tools from modules ('thread'); 'inline' for tool objects
   */
  isolation?: ToolIsolation;
  run(ctx: ToolContext, input: I): Promise<O> | O;
}

/** What `defineTool` is given: a definition whose `run` receives `I`. */
export interface ToolSpec<I, O> {
  name: string;
  description?: string;
  /** Default deadline for steps using this tool when the plan gives none. */
  timeoutMs?: number;
  /** Where its code runs: see ToolDefinition.isolation. */
  isolation?: ToolIsolation;
  run(ctx: ToolContext, input: I): Promise<O> | O;
}

/**
 * Defines a tool; at run time it returns its argument unchanged (plain objects work as well), and
 * for the type checker it types `input` from the schema: a Standard Schema's output type (zod:
 * `z.infer`), a `jsonSchema({...})`'s described type, or, for a plain JSON Schema or none, the
 * type `run` annotates its `input` with.
 */
export function defineTool<S extends StandardSchemaV1, O>(
  def: ToolSpec<InferStandardOutput<S>, O> & { input: S },
): ToolDefinition<InferStandardOutput<S>, Awaited<O>, InferStandardInput<S>>;
export function defineTool<S extends TypedJsonSchema<unknown>, O>(def: ToolSpec<JsonSchemaType<S>, O> & { input: S }): ToolDefinition<JsonSchemaType<S>, Awaited<O>>;
export function defineTool<I = unknown, O = unknown>(def: ToolSpec<I, O> & { input?: Record<string, unknown> }): ToolDefinition<I, Awaited<O>>;
export function defineTool(def: ToolDefinition): ToolDefinition {
  return def;
}

/** A reference to a tool by name, typed with what it takes and returns (see ToolReference). */
export function toolRef<P = unknown, O = unknown>(name: string): ToolReference<P, O> {
  return { name };
}

export type InferStandardInput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['input'];
export type InferStandardOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output'];

/** What a plan may give as a tool's inputs, and what the tool returns. */
export type ToolPlanInput<T extends ToolReference<unknown, unknown>> = NonNullable<T['~io']>['input'];
export type ToolOutput<T extends ToolReference<unknown, unknown>> = NonNullable<T['~io']>['output'];
