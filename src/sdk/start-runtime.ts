/**
 * `startRuntime(options)` for an application embedding runwarden: the store, the engine, a worker
 * and the HTTP API inside the caller's process (docs/embedding.md). Options are the configuration
 * keys of docs/configuration.md, resolved like the CLI's flags (options > RUNWARDEN_* in `env` >
 * `configFile` > defaults), plus tools given as objects or module paths. The engine itself is
 * loaded on the first call, so importing `runwarden` for `defineTool` or the client costs nothing.
 */
import type { RunwardenConfig } from '../config/types.ts';
import { RunwardenError } from '../domain/errors.ts';
import type { ToolDefinition } from '../tools/types.ts';
import { createClient, type RunwardenClient } from '../client/index.ts';

/** A tool object (defineTool or plain), or the path of a module default-exporting an array of them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a tool of any input and output types
export type ToolEntry = ToolDefinition<any, any, any> | string;

export interface RuntimeOptions extends Partial<Omit<RunwardenConfig, 'tools' | 'configFile'>> {
  /**
   * Tools beside the built-ins. Objects run on the in-process worker only; module paths (resolved
   * against `cwd`) work in both worker modes.
   */
  tools?: readonly ToolEntry[];
  /**
   * 'in-process': one worker inside this process (tool objects work; a tool that blocks the event
   * loop blocks the application). 'processes': `workers` supervised worker processes, as
   * `runwarden start` runs (tools by module path only). @default 'in-process'
   */
  workerMode?: 'in-process' | 'processes';
  /** Provider keys, RUNWARDEN_* settings and the worker processes' environment. @default process.env */
  env?: Record<string, string | undefined>;
  /** Relative paths (dataDir, tool modules, configFile) resolve against this. @default process.cwd() */
  cwd?: string;
  /** A runwarden.config.{json,js,ts} to read; none is read unless named here or by RUNWARDEN_CONFIG. */
  configFile?: string;
  /** Receives the runtime's log lines. @default discarded */
  log?: (line: string) => void;
}

export interface EmbeddedRuntime {
  /** The HTTP API, e.g. `http://127.0.0.1:7400` (`port: 0` picks a free port). */
  readonly url: string;
  readonly port: number;
  /** A client of this runtime's API (with its token, if one is set). */
  readonly client: RunwardenClient;
  /** The in-process hang lab, when one was started (no LLM key configured and `lab` not 'off'). */
  readonly labUrl: string | undefined;
  /**
   * Stops taking work, gives running steps `drainMs` to finish (the rest are handed back to the
   * queue), then closes the API, the workers and the store. Safe to call more than once.
   */
  close(): Promise<void>;
}

export async function startRuntime(options: RuntimeOptions = {}): Promise<EmbeddedRuntime> {
  const { tools = [], workerMode = 'in-process', env = process.env, cwd = process.cwd(), configFile, log, ...settings } = options;
  const paths = tools.filter((t): t is string => typeof t === 'string');
  const objects = tools.filter((t): t is ToolDefinition => typeof t !== 'string');
  for (const t of objects) {
    if (t === null || typeof t !== 'object') throw new RunwardenError('TOOL_INVALID', 'each entry of tools must be a tool object or a module path');
  }
  const [{ resolveConfig }, runtime] = await Promise.all([import('../config/resolve.ts'), import('../runtime.ts')]);
  const config = await resolveConfig({
    flags: { ...settings, ...(paths.length > 0 ? { tools: paths } : {}), ...(configFile !== undefined ? { config: configFile } : {}) },
    env,
    cwd,
    findConfigFile: false,
  });
  const rt = await runtime.startRuntime(config, { env, cwd, workerMode, tools: objects, ...(log ? { log } : {}) });
  return {
    url: rt.url,
    port: rt.port,
    labUrl: rt.labUrl,
    client: createClient({ baseUrl: rt.url, ...(config.token !== undefined ? { token: config.token } : {}) }),
    close: () => rt.close(),
  };
}
