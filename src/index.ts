/**
 * The `runwarden` package: what an application imports (docs/embedding.md, README "Use it from
 * TypeScript"). Everything else under src/ is internal. Importing this module loads neither the
 * engine nor the database: `startRuntime` and `startLab` load theirs when called.
 */
import type { Lab, LabOptions } from './lab/types.ts';

export { defineTool, toolRef } from './tools/types.ts';
export type { ArtifactInput, ArtifactRef, ArtifactSink, StepLogger, ToolContext, ToolDefinition, ToolInputSchema, ToolOutput, ToolPlanInput, ToolReference, ToolSpec } from './tools/types.ts';
export type { StandardSchemaV1 } from './tools/standard-schema.ts';
export { jsonSchema } from './tools/json-schema.ts';
export type { FromJsonSchema, JsonSchema, JsonSchemaType, TypedJsonSchema } from './tools/json-schema.ts';
export { definePlan } from './sdk/define-plan.ts';
export { builtins } from './sdk/builtins.ts';
export type { ChatMessageInput, HttpToolInput, HttpToolOutput, LlmToolInput, LlmToolOutput } from './sdk/builtins.ts';
export type { AnyRef, OutputRef, PlanBuilder, Ref, Refable, StepOptions, StepRefs } from './sdk/define-plan.ts';
export { startRuntime } from './sdk/start-runtime.ts';
export type { EmbeddedRuntime, RuntimeOptions, ToolEntry } from './sdk/start-runtime.ts';
export type { ProviderConfig, RunwardenConfig } from './config/types.ts';
export { RunwardenError } from './domain/errors.ts';
export * from './client/index.ts';
export type { Lab, LabOptions, ModeInfo } from './lab/types.ts';

/** Starts the hang lab (docs/lab.md): a loopback server speaking the OpenAI and Anthropic wire formats that fails on demand. */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const { startLab: start } = await import('./lab/server.ts');
  return start(options);
}
