/**
 * What every runwarden process does first, in one place, whatever the process is (the API of
 * `runwarden start` or an embedding app, a `runwarden worker` host, a supervised worker process):
 * - nets for stray rejections and throws (attributed to their step, never a crash);
 * - redaction of every secret this process can see: secret-named environment variables and the
 *   values the configuration declares secret (the API token, provider header values, each
 *   `apiKeyEnv` value), so that a tool's log line or error carrying one is redacted here too;
 * - the redacted configuration hang reports show;
 * - tracing, when an OTLP endpoint is set (before anything that could write a span);
 * and the pieces a process then takes as it needs them (store, tools, claim loops), each closed
 * with the process, in reverse order.
 */
import { configuredSecrets } from '../config/secrets.ts';
import { redactedConfig } from '../config/redact.ts';
import type { RunwardenConfig } from '../config/types.ts';
import type { Transitions } from '../engine/transitions.ts';
import { registerConfiguredSecret, registerSecretsFromEnv } from '../forensics/redact.ts';
import { setReportConfig } from '../forensics/resources.ts';
import { ProviderRegistry } from '../llm/index.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { buildTools } from '../tools/build.ts';
import type { ToolRegistry } from '../tools/registry.ts';
import type { ToolDefinition } from '../tools/types.ts';
import { installProcessGuards } from '../worker/guards.ts';
import { ToolThreadPool } from '../worker/isolation/pool.ts';
import { Worker } from '../worker/worker.ts';

export interface ProcessScope {
  readonly config: Readonly<RunwardenConfig>;
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
  readonly log: (line: string) => void;
  /** Runs when the process scope closes; later registrations run first. */
  onClose(fn: () => Promise<void> | void): void;
  /** Closes everything registered, in reverse; each failure is logged, none stops the rest. Idempotent. */
  close(): Promise<void>;
}

export interface BootOptions {
  env?: Record<string, string | undefined>;
  log?: (line: string) => void;
  cwd?: string;
}

export async function bootProcess(config: Readonly<RunwardenConfig>, opts: BootOptions = {}): Promise<ProcessScope> {
  const env = opts.env ?? {};
  const log = opts.log ?? (() => undefined);
  const cwd = opts.cwd ?? process.cwd();
  installProcessGuards(log);
  registerSecretsFromEnv(env);
  for (const v of configuredSecrets(config, env)) registerConfiguredSecret(v);
  setReportConfig(redactedConfig(config));

  const cleanups: Array<() => Promise<void> | void> = [];
  let closing: Promise<void> | undefined;
  const scope: ProcessScope = {
    config,
    env,
    cwd,
    log,
    onClose: (fn) => void cleanups.push(fn),
    close: () =>
      (closing ??= (async () => {
        for (const fn of cleanups.reverse()) {
          try {
            await fn();
          } catch (err) {
            log(`shutdown step failed: ${(err as Error).message}`);
          }
        }
      })()),
  };
  if (config.otlpEndpoint) scope.onClose(await startTracing(config.otlpEndpoint, { log }));
  return scope;
}

/** Runs `fn` on the scope; if it fails, the scope is closed (what was started so far stops) and the error rethrown. */
export async function within<T>(scope: ProcessScope, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    await scope.close();
    throw err;
  }
}

/** The store of the configuration (SQLite under dataDir, or PostgreSQL), migrated unless told not to. */
export async function openProcessStore(scope: ProcessScope, opts: { migrate?: boolean } = {}): Promise<Store> {
  const store = await openStore({ dataDir: scope.config.dataDir, databaseUrl: scope.config.databaseUrl, log: scope.log });
  scope.onClose(() => store.close());
  if (opts.migrate !== false) await store.migrate();
  return store;
}

/** The LLM providers and every tool (built-ins, the LLM tools, `tools` modules, tool objects). */
export async function loadProcessTools(
  scope: ProcessScope,
  store: Store,
  opts: { labUrl?: string; objects?: readonly ToolDefinition[] } = {},
): Promise<{ providers: ProviderRegistry; tools: ToolRegistry }> {
  const { config } = scope;
  const providers = new ProviderRegistry({
    providers: config.providers,
    ...(config.defaultProvider ? { defaultProvider: config.defaultProvider } : {}),
    env: scope.env,
    ...(opts.labUrl ? { labUrl: opts.labUrl } : {}),
    limitStore: store.providerLimits,
    log: scope.log,
  });
  scope.onClose(() => providers.close());
  const tools = await buildTools(config, { providers, store, cwd: scope.cwd, ...(opts.objects ? { objects: opts.objects } : {}) });
  return { providers, tools };
}

export interface ClaimLoopOptions {
  /** The loops are `<idPrefix>-0`, `<idPrefix>-1`, ... */
  idPrefix: string;
  loops: number;
  /** How long running steps get to finish when the scope closes before they are handed back. */
  drainMs: number;
  /** A tool thread could not be stopped; only replacing this process will (see WorkerOptions). */
  onUncontained?: (why: string) => void;
}

/**
 * The claim loops of this process, sharing its slots (`concurrency`) and one pool of tool threads;
 * started and ready (their first tool threads are up) when this resolves, drained when the scope
 * closes.
 */
export async function startClaimLoops(scope: ProcessScope, core: Transitions, tools: ToolRegistry, o: ClaimLoopOptions): Promise<Worker[]> {
  const { config, log } = scope;
  const threads = new ToolThreadPool({ modules: tools.threadModules(), cwd: scope.cwd, log, warm: config.toolThreadsWarm });
  scope.onClose(() => threads.close());
  const workers = Array.from(
    { length: o.loops },
    (_, i) =>
      new Worker({
        core,
        tools,
        id: `${o.idPrefix}-${i}`,
        concurrency: Math.ceil(config.concurrency / o.loops),
        leaseMs: config.leaseMs,
        heartbeatMs: config.heartbeatMs,
        abortGraceMs: config.abortGraceMs,
        limits: config,
        threads,
        ...(o.onUncontained ? { onUncontained: o.onUncontained } : {}),
        log,
      }),
  );
  for (const w of workers) w.start();
  scope.onClose(() => Promise.all(workers.map((w) => w.stop({ drainMs: o.drainMs }))).then(() => undefined));
  await Promise.all(workers.map((w) => w.ready()));
  return workers;
}
