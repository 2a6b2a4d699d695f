/**
 * The `llm` tool (one chat call) and `createLlmTools`, which returns it together with `codegen`,
 * `embed` and `retrieve`. Provider events are re-emitted on the step (`llm.request`, `llm.usage`).
 */
import { z } from 'zod';
import type { VectorStore } from '../domain/vectors.ts';
import type { ProviderRegistry } from '../llm/registry.ts';
import { callOptionsFor } from '../llm/call-options.ts';
import type { ChatMessage } from '../llm/types.ts';
import { createCodegenTool } from './codegen.ts';
import { createEmbedTool } from './embed.ts';
import { createRetrieveTool } from './retrieve.ts';
import { defineTool, type ToolDefinition } from './types.ts';
import { withoutStacks } from '../forensics/ops.ts';

export interface LlmToolDeps {
  providers: ProviderRegistry;
  vectors: VectorStore;
}

const message = z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });

export const llmInput = z
  .strictObject({
    prompt: z.string().min(1).optional(),
    messages: z.array(message).min(1).optional(),
    /** Prepended as a system message. */
    system: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    /** A provider name from the configuration, `openai`, `anthropic` or `lab`. @default the default provider */
    provider: z.string().min(1).optional(),
    /** @default true */
    stream: z.boolean().optional(),
    maxTokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
  })
  .refine((v) => (v.prompt === undefined) !== (v.messages === undefined), {
    message: 'give exactly one of "prompt" or "messages"',
  });

export type LlmInput = z.infer<typeof llmInput>;

export interface LlmOutput {
  text: string;
  model: string;
  provider: string;
  usage: { inputTokens: number; outputTokens: number };
  finishReason: string | null;
}

export function createLlmTool(deps: Pick<LlmToolDeps, 'providers'>): ToolDefinition<LlmInput, LlmOutput> {
  return defineTool({
    name: 'llm',
    description: 'One chat completion (streamed by default) with layered deadlines; emits llm.request and llm.usage.',
    input: llmInput,
    run: async (ctx, input) => {
      const provider = deps.providers.get(input.provider);
      const messages: ChatMessage[] = [];
      if (input.system !== undefined) messages.push({ role: 'system', content: input.system });
      if (input.messages) messages.push(...input.messages);
      else if (input.prompt !== undefined) messages.push({ role: 'user', content: input.prompt });
      // runwarden's own provider calls skip the per-request stack capture (10-40 us each, measured in
      // bench/forensics.ts); the call is still tracked and its report still points at this tool.
      const res = await withoutStacks(() => ctx.track(
        `llm.chat ${provider.name}`,
        provider.chat(
          { messages, model: input.model, stream: input.stream ?? true, maxTokens: input.maxTokens, temperature: input.temperature },
          callOptionsFor(ctx),
        ),
      ));
      return { text: res.text, model: res.model, provider: res.provider, usage: res.usage, finishReason: res.finishReason };
    },
  });
}

/** The four LLM-backed tools: llm, codegen, embed, retrieve. */
export function createLlmTools(deps: LlmToolDeps): ToolDefinition[] {
  return [createLlmTool(deps), createCodegenTool(deps), createEmbedTool(deps), createRetrieveTool(deps)];
}
