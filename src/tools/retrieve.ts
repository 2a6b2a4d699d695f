/** `retrieve`: the top-k stored texts of a collection for a query, by cosine similarity. */
import { z } from 'zod';
import { RunwardenError } from '../domain/errors.ts';
import type { VectorHit, VectorStore } from '../domain/vectors.ts';
import { callOptionsFor } from '../llm/call-options.ts';
import type { ProviderRegistry } from '../llm/registry.ts';
import { defineTool, type ToolDefinition } from './types.ts';
import { withoutStacks } from '../forensics/ops.ts';

export const retrieveInput = z.strictObject({
  collection: z.string().min(1).max(200),
  query: z.string().min(1),
  /** @default 4 */
  k: z.number().int().min(1).max(1000).optional(),
  /** Must be the model the collection was embedded with. */
  model: z.string().min(1).optional(),
  provider: z.string().min(1).optional(),
  dimensions: z.number().int().positive().max(16_384).optional(),
});

export type RetrieveInput = z.infer<typeof retrieveInput>;

export interface RetrieveOutput {
  results: VectorHit[];
}

export const DEFAULT_K = 4;

export function createRetrieveTool(deps: { providers: ProviderRegistry; vectors: VectorStore }): ToolDefinition<RetrieveInput, RetrieveOutput> {
  return defineTool({
    name: 'retrieve',
    description: 'Embeds the query and returns the k most similar texts of a collection.',
    input: retrieveInput,
    run: async (ctx, input) => {
      // Checked before paying for an embedding: an unknown collection is almost always a typo or a
      // missing dependsOn on the step that fills it.
      const stored = await deps.vectors.count(input.collection);
      if (stored === 0) {
        throw new RunwardenError('COLLECTION_NOT_FOUND', `collection "${input.collection}" is empty or does not exist`, { data: { collection: input.collection },
        });
      }
      const provider = deps.providers.get(input.provider);
      const res = await withoutStacks(() => ctx.track(
        `retrieve embed ${provider.name}`,
        provider.embed([input.query], { ...callOptionsFor(ctx), model: input.model, dimensions: input.dimensions }),
      ));
      const vector = res.vectors[0];
      if (!vector) throw new RunwardenError('llm.malformed', 'provider returned no vector for the query');
      const results = await ctx.track(`vectors.query ${input.collection}`, deps.vectors.query(input.collection, vector, input.k ?? DEFAULT_K));
      return { results };
    },
  });
}
