/** The tool registry a worker runs with: the built-ins, the LLM tools, then the user's modules. */
import type { RunwardenConfig } from '../config/types.ts';
import type { ProviderRegistry } from '../llm/index.ts';
import type { Store } from '../store/store.ts';
import { builtinTools } from './builtin.ts';
import { createLlmTools } from './llm.ts';
import { loadToolModules } from './load.ts';
import { ToolRegistry } from './registry.ts';

export async function buildTools(config: Pick<RunwardenConfig, 'tools'>, deps: { providers: ProviderRegistry; store: Store; cwd: string }): Promise<ToolRegistry> {
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  for (const t of createLlmTools({ providers: deps.providers, vectors: deps.store.vectors })) tools.register(t);
  await loadToolModules(tools, config.tools, deps.cwd);
  return tools;
}
