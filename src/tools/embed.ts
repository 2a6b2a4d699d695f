/**
 * `embed`: texts to vectors, in batches; with a `collection`, the texts and vectors are stored in it
 * (all batches first, then one write, so a failure halfway leaves no half-filled collection).
 */
import { z } from 'zod';
import { RunwardenError } from '../domain/errors.ts';
import type { VectorItem, VectorStore } from '../domain/vectors.ts';
import { callOptionsFor } from '../llm/call-options.ts';
import type { ProviderRegistry } from '../llm/registry.ts';
import { defineTool, type ToolDefinition } from './types.ts';
import { withoutStacks } from '../forensics/ops.ts';

export const embedInput = z
  .strictObject({
    texts: z.array(z.string().min(1)).min(1).max(100_000),
    collection: z.string().min(1).max(200).optional(),
    /** One metadata object per text, stored with it (only with `collection`). */
    metadata: z.array(z.record(z.string(), z.unknown())).optional(),
    model: z.string().min(1).optional(),
    provider: z.string().min(1).optional(),
    dimensions: z.number().int().positive().max(16_384).optional(),
    /** Texts per provider call. @default 64 */
    batchSize: z.number().int().min(1).max(2048).optional(),
  })
  .refine((v) => v.metadata === undefined || v.metadata.length === v.texts.length, {
    message: '"metadata" must have one entry per text',
    path: ['metadata'],
  });

export type EmbedInput = z.infer<typeof embedInput>;

export interface EmbedOutput {
  count: number;
  dimensions: number;
  model: string;
  provider: string;
  collection?: string;
  /** Only without `collection`, to keep step outputs small. */
  vectors?: number[][];
}

export const DEFAULT_BATCH_SIZE = 64;

export function createEmbedTool(deps: { providers: ProviderRegistry; vectors: VectorStore }): ToolDefinition<EmbedInput, EmbedOutput> {
  return defineTool({
    name: 'embed',
    description: 'Embeds texts; with `collection`, stores texts and vectors for `retrieve`.',
    input: embedInput,
    run: async (ctx, input) => {
      const provider = deps.providers.get(input.provider);
      const batchSize = input.batchSize ?? DEFAULT_BATCH_SIZE;
      const batches = Math.ceil(input.texts.length / batchSize);
      const vectors: number[][] = [];
      let model = input.model ?? '';
      for (let b = 0; b < batches; b++) {
        const batch = input.texts.slice(b * batchSize, (b + 1) * batchSize);
        ctx.checkpoint(`embed batch ${b + 1}/${batches}`);
        const res = await withoutStacks(() => ctx.track(
          `embed ${provider.name} batch ${b + 1}/${batches}`,
          provider.embed(batch, { ...callOptionsFor(ctx), model: input.model, dimensions: input.dimensions }),
        ));
        if (res.vectors.length !== batch.length) {
          throw new RunwardenError('llm.malformed', `provider returned ${res.vectors.length} vectors for ${batch.length} texts`);
        }
        vectors.push(...res.vectors);
        model = res.model;
      }
      const dimensions = vectors[0]?.length ?? 0;
      const odd = vectors.findIndex((v) => v.length !== dimensions);
      if (odd !== -1) {
        throw new RunwardenError('VECTOR_DIMENSION_MISMATCH', `vector ${odd} has ${vectors[odd]!.length} dimensions, vector 0 has ${dimensions}`, { });
      }
      const out: EmbedOutput = { count: vectors.length, dimensions, model, provider: provider.name };
      if (input.collection !== undefined) {
        const items: VectorItem[] = vectors.map((vector, i) => {
          const item: VectorItem = { text: input.texts[i]!, vector };
          const meta = input.metadata?.[i];
          if (meta !== undefined) item.metadata = meta;
          return item;
        });
        ctx.checkpoint(`embed storing ${items.length} vectors in ${input.collection}`);
        await ctx.track(`vectors.upsert ${input.collection}`, deps.vectors.upsert(input.collection, items, { runId: ctx.runId }));
        out.collection = input.collection;
      } else {
        out.vectors = vectors;
      }
      return out;
    },
  });
}
