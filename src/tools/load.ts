/**
 * Loads user tool modules: each default-exports an array of tool definitions (plain objects or
 * defineTool results). `.ts` modules load directly: Node 24 strips types.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RunwardenError } from '../domain/errors.ts';
import type { ToolRegistry } from './registry.ts';
import type { ToolDefinition, ToolIsolation } from './types.ts';

/** `isolation`: how the modules' tools run when they do not say (the `toolIsolation` setting). */
export async function loadToolModules(registry: ToolRegistry, modules: readonly string[], cwd: string, isolation?: ToolIsolation): Promise<string[]> {
  const loaded: string[] = [];
  for (const spec of modules) {
    const path = isAbsolute(spec) ? spec : resolve(cwd, spec);
    if (!existsSync(path)) throw new RunwardenError('TOOLS_NOT_FOUND', `tools module not found: ${spec} (looked at ${path})`);
    let mod: { default?: unknown; tools?: unknown };
    try {
      mod = (await import(pathToFileURL(path).href)) as { default?: unknown; tools?: unknown };
    } catch (err) {
      throw new RunwardenError('TOOLS_LOAD_FAILED', `could not load tools module ${spec}: ${(err as Error).message}`, { cause: err });
    }
    const list = mod.default ?? mod.tools;
    if (!Array.isArray(list)) {
      throw new RunwardenError('TOOLS_INVALID', `tools module ${spec} must default-export an array of tool definitions`);
    }
    for (const def of list as ToolDefinition[]) {
      registry.register(def, { module: path, ...(isolation ? { isolation } : {}) });
      loaded.push(def.name);
    }
  }
  return loaded;
}
