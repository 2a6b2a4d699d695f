/**
 * The tool registry a worker runs with: the built-ins, the LLM tools, the user's modules, then the
 * tool objects an embedding process passed to `startRuntime({ tools })` (they exist only in that
 * process, so only its in-process worker can run them).
 */
import type { RunwardenConfig } from '../config/types.ts';
import type { ProviderRegistry } from '../llm/index.ts';
import type { Store } from '../store/store.ts';
import { createAgentTools } from './agent.ts';
import { builtinTools } from './builtin.ts';
import { createLlmTools } from './llm.ts';
import { loadToolModules } from './load.ts';
import { ToolRegistry } from './registry.ts';
import type { ToolDefinition } from './types.ts';

export async function buildTools(config: Pick<RunwardenConfig, 'tools'> & Partial<Pick<RunwardenConfig, 'toolIsolation'>>, deps: { providers: ProviderRegistry; store: Store; cwd: string; objects?: readonly ToolDefinition[] }): Promise<ToolRegistry> {
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  for (const t of createLlmTools({ providers: deps.providers, vectors: deps.store.vectors })) tools.register(t);
  for (const t of createAgentTools({ providers: deps.providers, tools })) tools.register(t);
  await loadToolModules(tools, config.tools, deps.cwd, config.toolIsolation);
  for (const t of deps.objects ?? []) tools.register(t);
  return tools;
}
