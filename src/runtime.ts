/**
 * What `runwarden start` runs: in this process the store, the engine and its reaper, the hang lab
 * when no LLM key is configured, and the HTTP API; the workers either as `config.workers` supervised
 * worker processes (`workerMode: 'processes'`, what `start` uses: a worker that hangs, spins or
 * crashes takes neither the API nor its siblings with it) or as one Worker inside this process
 * (`'in-process'`: embedding and tests).
 */
import { hostname } from 'node:os';
import { isLoopbackHost } from './config/host.ts';
import type { RunwardenConfig } from './config/types.ts';
import { parseDuration } from './domain/duration.ts';
import { RunwardenError } from './domain/errors.ts';
import { EngineApi } from './engine/api.ts';
import type { EngineFacade } from './engine/facade.ts';
import { buildApp } from './http/app.ts';
import { removeLabFile, writeLabFile } from './lab/discovery.ts';
import { startLab, type Lab } from './lab/index.ts';
import type { Store } from './store/store.ts';
import type { ToolDefinition } from './tools/types.ts';
import { lostAttemptReport, queueTimeoutReport, waitTimeoutReport } from './forensics/report.ts';
import { bootProcess, loadProcessTools, openProcessStore, startClaimLoops, within } from './process/boot.ts';
import { Supervisor } from './supervisor/supervisor.ts';

export const VERSION = '0.1.0';

export interface Runtime {
  url: string;
  port: number;
  engine: EngineFacade;
  store: Store;
  labUrl?: string;
  /** The worker processes, in `workerMode: 'processes'`. */
  supervisor?: Supervisor;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** The environment: provider keys (and, in 'processes' mode, the worker processes' environment). */
  env?: Record<string, string | undefined>;
  log?: (line: string) => void;
  cwd?: string;
  /**
   * 'processes': `config.workers` worker processes under a supervisor (what `runwarden start` runs);
   * 'in-process': one Worker in this process when `config.workers` > 0. @default 'in-process'
   */
  workerMode?: 'processes' | 'in-process';
  /**
   * Tool objects to register beside the built-ins and `config.tools` modules. They live in this
   * process only: 'processes' mode refuses them (its workers load tools by module path).
   */
  tools?: readonly ToolDefinition[];
}

export { buildTools } from './tools/build.ts';

function wantsLab(config: RunwardenConfig, env: Record<string, string | undefined>): boolean {
  if (config.lab === 'on') return true;
  if (config.lab === 'off') return false;
  return !env.OPENAI_API_KEY && !env.ANTHROPIC_API_KEY && (config.defaultProvider === undefined || config.defaultProvider === 'lab');
}

async function startLabOnPort(config: RunwardenConfig, log: (line: string) => void): Promise<Lab> {
  try {
    return await startLab({ host: '127.0.0.1', port: config.labPort });
  } catch (err) {
    // startLab wraps the listen error (LAB_START_FAILED); the errno is on its cause.
    const cause = (err as { cause?: unknown }).cause;
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' && (cause as NodeJS.ErrnoException | undefined)?.code !== 'EADDRINUSE') throw err;
    log(`lab port ${config.labPort} is in use; starting the lab on a free port instead`);
    return startLab({ host: '127.0.0.1', port: 0 });
  }
}

export async function startRuntime(config: RunwardenConfig, opts: RuntimeOptions = {}): Promise<Runtime> {
  const requireToken = !isLoopbackHost(config.host);
  if (requireToken && !config.token) {
    throw new RunwardenError('CONFIG_INVALID', `listening on ${config.host} (not loopback) requires a bearer token: set RUNWARDEN_TOKEN`);
  }
  if (opts.workerMode === 'processes' && (opts.tools?.length ?? 0) > 0) {
    const names = (opts.tools ?? []).map((t) => t.name).join(', ');
    throw new RunwardenError('CONFIG_INVALID', `tool objects (${names}) can only run on the in-process worker; with workerMode 'processes' pass their module paths in tools instead`);
  }
  const scope = await bootProcess(config, opts);
  const { env, cwd, log } = scope;
  return within(scope, async () => {
    const store = await openProcessStore(scope);

    let lab: Lab | undefined;
    if (wantsLab(config, env)) {
      lab = await startLabOnPort(config, log);
      scope.onClose(() => lab?.close());
      // Where `runwarden doctor` looks for this lab (its port may have been a free one).
      if (config.databaseUrl === undefined) {
        writeLabFile(config.dataDir, lab.url);
        scope.onClose(() => removeLabFile(config.dataDir));
      }
    }
    const { providers, tools } = await loadProcessTools(scope, store, { ...(lab ? { labUrl: lab.url } : {}), ...(opts.tools ? { objects: opts.tools } : {}) });

    const engine = new EngineApi({
      store,
      tools,
      limits: { defaultTimeoutMs: config.defaultTimeoutMs, maxTimeoutMs: config.maxTimeoutMs, defaultQueueTimeoutMs: config.defaultQueueTimeoutMs ?? null },
      reaperIntervalMs: config.reaperIntervalMs,
      providers: () => providers.list(),
      log,
      lostReport: lostAttemptReport,
      waitReport: waitTimeoutReport,
      queueReport: queueTimeoutReport,
      ...(config.retention !== undefined ? { retentionMs: parseDuration(config.retention) } : {}),
    });
    engine.start();
    scope.onClose(() => engine.stop());

    let supervisor: Supervisor | undefined;
    if (config.workers > 0 && opts.workerMode === 'processes') {
      const sup = new Supervisor({ config, core: engine.core, count: config.workers, env, cwd, ...(lab ? { labUrl: lab.url } : {}), log });
      supervisor = sup;
      engine.attachSupervisor(() => sup.status(), () => sup.metrics());
      await sup.start();
      scope.onClose(() => sup.stop());
    } else if (config.workers > 0) {
      await startClaimLoops(scope, engine.core, tools, { idPrefix: `${hostname()}-${process.pid}`, loops: 1, drainMs: config.drainMs });
    }

    const app = buildApp({
      engine,
      ...(config.token ? { token: config.token } : {}),
      requireToken,
      bodyLimitBytes: config.bodyLimitBytes,
      version: VERSION,
      log,
    });
    await app.listen({ host: config.host, port: config.port });
    scope.onClose(() => app.close());
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;

    return {
      url: `http://${host}:${port}`,
      port,
      engine,
      store,
      ...(lab ? { labUrl: lab.url } : {}),
      ...(supervisor ? { supervisor } : {}),
      close: () => scope.close(),
    };
  });
}
