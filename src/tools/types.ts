/**
 * What a tool is. Users write `defineTool({ name, input, run(ctx, input) })` or a plain object of the
 * same shape; a tools module default-exports an array of them.
 */
import type { StandardSchemaV1 } from './standard-schema.ts';

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
  /** Record progress through an await the engine cannot see; the last one appears in hang reports. */
  checkpoint(label: string): void;
  /** Await `promise` under a label so a hang report can name it if it never settles. */
  track<T>(label: string, promise: Promise<T>): Promise<T>;
  /** Emit an event on this step (used by built-in tools for `llm.request`, `llm.usage`). */
  emit(type: string, data: Record<string, unknown>): void;
  /**
   * Publish text as it is generated: coalesced into `llm.delta` frames (every 75 ms) on the run's
   * event stream, never stored (return the final text as output). `call` numbers the provider
   * exchange: a new number means a retry started the text over. Never blocks.
   */
  streamText?(text: string, call?: number): void;
}

/** A JSON Schema object (validated with Ajv) or any Standard Schema (zod, valibot, arktype ...). */
export type ToolInputSchema = StandardSchemaV1 | Record<string, unknown>;

export interface ToolDefinition<I = unknown, O = unknown> {
  name: string;
  description?: string;
  input?: ToolInputSchema;
  /** Default deadline for steps using this tool when the plan gives none. */
  timeoutMs?: number;
  run(ctx: ToolContext, input: I): Promise<O> | O;
}

export function defineTool<I = unknown, O = unknown>(def: ToolDefinition<I, O>): ToolDefinition<I, O> {
  return def;
}
