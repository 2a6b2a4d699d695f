/**
 * runwarden as users run it: `runwarden start` (the API and supervised worker processes) and
 * `runwarden worker` processes, spawned from bin/runwarden.js at their default settings, an HTTP
 * client for the API, and the two workloads measured on them:
 *
 * - crash-recovery: a step of the `bench_hold` tool (hold-tool.ts) reports the pid of the worker
 *   process running it; that process is SIGKILLed (the supervisor above it stays); the time from
 *   the kill to the step's next attempt starting. Then the same with every process that runs
 *   workers SIGKILLed at once and a new one started (recovery through lease expiry).
 * - hang-cut: steps of the builtin `http` tool against a server that accepts and never answers,
 *   with `timeoutMs` = the deadline; how long after its deadline each step is recorded finished,
 *   and whether the request itself was stopped (its socket closed).
 *
 * Every process is spawned in a process group of its own with an IPC channel: cleanup SIGKILLs the
 * whole group (the supervisor and its workers), an exit hook does so for any still running, and if
 * the bench is killed outright the closed channel makes runwarden shut down (bin/runwarden.js).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunRecord, StepDetail, EventRecord } from '../src/domain/records.ts';
import type { HealthDetailed } from '../src/engine/facade.ts';
import type { StartReport } from './hold-tool.ts';
import { blackhole, inbox, killChild, ownChild, percentile, poll, round, sleep, waitFor, withDatabase, withDeadline } from './peers/common.ts';
import type { BenchResult } from './report.ts';

export const ROOT = join(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'runwarden.js');
const HOLD_TOOLS = join(import.meta.dirname, 'hold-tool.ts');

/** Epoch milliseconds with sub-millisecond precision. */
export const now = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// Processes.

export interface BenchProcess {
  child: ChildProcess;
  /** Lines of its stdout and stderr, with the time (Date.now()) this process read them. */
  lines: Array<{ at: number; line: string }>;
  output(): string;
  /** Resolves with the time (now()) its output first matched the ready line; rejects if it exits first or takes over 30 s. */
  ready: Promise<number>;
  /** SIGTERM (graceful stop), then SIGKILL of its whole process group after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL of its whole process group (it and its worker processes) at once; resolves with the kill time (Date.now()) once it is gone. */
  kill(): Promise<number>;
}

/** `runwarden <args>` with a clean environment (no RUNWARDEN_* or DATABASE_URL of the bench's own) plus `env`. */
export function spawnRunwarden(args: string[], env: Record<string, string>, readyLine: RegExp): BenchProcess {
  // RUNWARDEN_WRAPPED with an IPC channel: it shuts down when the channel closes (the bench died).
  return spawnNode(`runwarden ${args[0] ?? ''}`, [BIN, ...args], { ...env, RUNWARDEN_WRAPPED: '1' }, readyLine);
}

/** `node <args>` in a process group of its own (see the file comment), ready when its output matches `readyLine`. */
export function spawnNode(name: string, args: string[], env: Record<string, string>, readyLine: RegExp): BenchProcess {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('RUNWARDEN_') && k !== 'DATABASE_URL') clean[k] = v;
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
  child.channel?.unref();
  ownChild(child, true);
  let out = '';
  const lines: BenchProcess['lines'] = [];
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench: ${name} was not ready within 30 s:\n${out.slice(-4000)}`)), 30_000);
    timer.unref();
    for (const stream of [child.stdout, child.stderr]) {
      let tail = '';
      stream?.on('data', (d: Buffer) => {
        const at = Date.now();
        out = (out + d.toString()).slice(-200_000);
        const parts = (tail + d.toString()).split('\n');
        tail = parts.pop() ?? '';
        for (const line of parts) lines.push({ at, line });
        if (readyLine.test(out)) {
          clearTimeout(timer);
          resolve(now());
        }
      });
    }
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`bench: ${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${out.slice(-4000)}`));
    });
  });
  // Whoever needs it awaits `ready`; a process stopped before it was ready is not an error by itself.
  ready.catch(() => undefined);
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const kill = async (): Promise<number> => {
    killChild(child, true);
    const at = Date.now();
    await withDeadline(exited, 10_000, `${name} (pid ${child.pid}) to exit after SIGKILL`);
    return at;
  };
  return {
    child,
    lines,
    output: () => out,
    ready,
    async stop(graceMs = 10_000) {
      if (!gone()) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(graceMs)]);
      }
      // Also when it exited by itself: nothing of its process group may stay behind.
      await kill();
    },
    kill,
  };
}

export interface Api {
  url: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** GET /health/detailed, also when it answers 503 (degraded: a worker process is down, say). */
  health(): Promise<HealthDetailed>;
}

export function apiClient(url: string): Api {
  const call = async <T>(method: string, path: string, body?: unknown, also: number[] = []): Promise<T> => {
    const res = await fetch(`${url}${path}`, {
      method,
      signal: AbortSignal.timeout(30_000),
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.text();
    if (!res.ok && !also.includes(res.status)) throw new Error(`bench: ${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  };
  return {
    url,
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body ?? {}),
    health: () => call<HealthDetailed>('GET', '/health/detailed', undefined, [503]),
  };
}

export interface Deployment extends BenchProcess, Api {}

export interface DeploymentOptions {
  /** SQLite data directory (else the database named by `databaseUrl`). */
  dataDir?: string;
  databaseUrl?: string;
  /** Worker processes; default: runwarden's (the CPU count). 0: the API only. */
  workers?: number;
  /** Tools modules (`--tools`). */
  tools: string[];
  /** More arguments of `runwarden start` (`--config <file>`, say). */
  args?: string[];
}

/**
 * `runwarden start --port 0 --lab off` (the lab is not needed, and its fixed port could be taken);
 * resolves once the API listens and every supervised worker process is up.
 */
export async function startDeployment(o: DeploymentOptions): Promise<Deployment> {
  const args = ['start', '--port', '0', '--lab', 'off', ...(o.dataDir !== undefined ? ['--data-dir', o.dataDir] : []), ...(o.workers !== undefined ? ['--workers', String(o.workers)] : [])];
  const proc = spawnRunwarden([...args, ...o.tools.flatMap((t) => ['--tools', t]), ...(o.args ?? [])], o.databaseUrl !== undefined ? { DATABASE_URL: o.databaseUrl } : {}, /runwarden listening on \S+\n/);
  try {
    await proc.ready;
    const url = /runwarden listening on (\S+)/.exec(proc.output())?.[1];
    if (!url) throw new Error('bench: runwarden start printed no URL');
    const d: Deployment = { ...proc, ...apiClient(url) };
    await poll(async () => {
      const s = (await d.health()).supervisor;
      return s === undefined || s.alive === s.desired ? true : undefined;
    }, 30_000, 'the worker processes of runwarden start to be up');
    return d;
  } catch (err) {
    await proc.kill();
    throw err;
  }
}

/** `runwarden worker` (default: CPU-count supervised worker processes) on PostgreSQL. */
export function startWorkerHost(databaseUrl: string, tools: string[], extra: string[] = []): BenchProcess {
  return spawnRunwarden(['worker', ...tools.flatMap((t) => ['--tools', t]), ...extra], { DATABASE_URL: databaseUrl }, /runwarden worker \S+ ready\n[^\n]*\nworkers: [^\n]*\n/);
}

// ---------------------------------------------------------------------------------------------
// Start reports of `bench_hold` steps.

interface Reporter {
  url: string;
  /** The report of `runId`'s attempt `attempt`, or undefined when none came within `timeoutMs`. */
  started(runId: string, attempt: number, timeoutMs: number): Promise<StartReport | undefined>;
  close(): Promise<void>;
}

async function startReporter(): Promise<Reporter> {
  const reports = inbox<StartReport>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      let r: StartReport;
      try {
        r = JSON.parse(body) as StartReport;
      } catch (err) {
        res.writeHead(400).end((err as Error).message);
        return;
      }
      res.writeHead(204).end();
      reports.push(r);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('bench: the reporter has no port');
  return {
    url: `http://127.0.0.1:${addr.port}/started`,
    started: (runId, attempt, timeoutMs) => reports.first((r) => r.runId === runId && r.attempt === attempt, timeoutMs),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The two deployments measured: runwarden-sqlite and runwarden-postgres.

export interface Cluster {
  /** The deployment's API (a new one after `crashAll` where the API went down with the workers). */
  api: Api;
  /** How it is deployed and what `crashAll` kills, for the notes. */
  what: string;
  crashWhat: string;
  /** Resolves once every worker process is up, and none of them is one of the `gone` pids. */
  workersUp(gone?: ReadonlySet<number>): Promise<void>;
  /** SIGKILLs every process that runs workers, all at once, and starts a replacement at once. */
  crashAll(): Promise<{ killedAt: number; back: Promise<void> }>;
}

const UP_MS = 30_000;

/**
 * `crashAll` from how to kill (resolving with the kill time) and how to start a replacement;
 * `settled` lets cleanup wait for a replacement still starting.
 */
function crasher(kill: () => Promise<number>, replace: () => Promise<void>): { crashAll: Cluster['crashAll']; settled: () => Promise<unknown> } {
  let last: Promise<unknown> = Promise.resolve();
  return {
    async crashAll() {
      const killedAt = await kill();
      const back = replace();
      last = back.catch(() => undefined); // the measurement awaits `back` and reports its failure
      return { killedAt, back };
    },
    settled: () => last,
  };
}

/** `runwarden start --data-dir <fresh dir>` at its defaults, with the bench's tools module. */
export async function withSqliteCluster<T>(fn: (c: Cluster) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-cli-'));
  const up = (): Promise<Deployment> => startDeployment({ dataDir: dir, tools: [HOLD_TOOLS] });
  let d: Deployment | undefined;
  const current = (): Deployment => {
    if (!d) throw new Error('bench: no runwarden start running');
    return d;
  };
  const crash = crasher(
    async () => {
      const at = await current().kill();
      d = undefined;
      return at;
    },
    async () => {
      d = await up();
      cluster.api = d;
    },
  );
  let cluster: Cluster;
  try {
    d = await up();
    const desired = (await d.health()).supervisor?.desired ?? 0;
    cluster = {
      api: d,
      what: `\`runwarden start\` at its defaults (${desired} worker processes)`,
      crashWhat: '`runwarden start` and its worker processes SIGKILLed at once, a new one started',
      workersUp: (gone = new Set()) =>
        waitFor(async () => {
          const s = (await current().health()).supervisor;
          return s !== undefined && s.alive === s.desired && s.workers.every((w) => w.pid === null || !gone.has(w.pid));
        }, UP_MS, 'the worker processes of runwarden start to be up', 50),
      crashAll: crash.crashAll,
    };
    return await fn(cluster);
  } finally {
    await crash.settled();
    await d?.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A fresh database; `runwarden start --workers 0` (the API only) and one `runwarden worker` at its
 * defaults, as a deployment over several machines runs them.
 */
export async function withPostgresCluster<T>(fn: (c: Cluster) => Promise<T>): Promise<T> {
  return withDatabase(async (db) => {
    const api = await startDeployment({ databaseUrl: db.url, workers: 0, tools: [HOLD_TOOLS] });
    let host: BenchProcess | undefined;
    let crash: ReturnType<typeof crasher> | undefined;
    try {
      const startHost = async (): Promise<{ proc: BenchProcess; id: string; workers: number }> => {
        const proc = startWorkerHost(db.url, [HOLD_TOOLS]);
        host = proc;
        await proc.ready;
        const m = /runwarden worker (\S+) ready\n[^\n]*\nworkers: (\d+) supervised/.exec(proc.output());
        if (!m?.[1] || !m[2]) throw new Error(`bench: unexpected runwarden worker output:\n${proc.output()}`);
        return { proc, id: m[1], workers: Number(m[2]) };
      };
      let current = await startHost();
      // Its claim loops are `<host id>-<worker pid>-<i>` in the workers table; up when each worker process has one there.
      const workersUp = (gone: ReadonlySet<number> = new Set()): Promise<void> =>
        waitFor(async () => {
          const pids = new Set((await api.health()).workers.filter((w) => w.id.startsWith(`${current.id}-`) && !gone.has(w.pid)).map((w) => w.pid));
          return pids.size >= current.workers;
        }, UP_MS, 'the worker processes of runwarden worker to be up', 50);
      crash = crasher(
        () => current.proc.kill(),
        async () => {
          current = await startHost();
          await workersUp();
        },
      );
      const cluster: Cluster = {
        api,
        what: `\`runwarden worker\` at its defaults (${current.workers} worker processes)`,
        crashWhat: '`runwarden worker` and its worker processes SIGKILLed at once (the API stays), a new one started',
        workersUp,
        crashAll: crash.crashAll,
      };
      return await fn(cluster);
    } finally {
      await crash?.settled();
      await host?.stop(5000);
      await api.stop(5000);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Workloads.

const row = (system: string, workload: string, metric: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ system, workload, metric, value, ...extra });

interface Recovery {
  ms: number;
  capped: boolean;
  /** How attempt 1 ended, e.g. `lost (WORKER_CRASHED)`. */
  first: string;
}

/**
 * crash-recovery on `cluster`: `samples` times a worker process holding a step is SIGKILLed (its
 * supervisor stays and hands the attempt back), then `treeSamples` times every process running
 * workers is (the attempt is recovered when its lease expires). A capped sample ends the series
 * (and a capped first series skips the second).
 */
export async function crashRecoveryOn(cluster: Cluster, system: string, capMs: number, samples: number, treeSamples: number): Promise<BenchResult[]> {
  const reporter = await startReporter();
  try {
    const plan = { plan: { steps: [{ name: 'hold', tool: 'bench_hold', inputs: { report: reporter.url }, timeoutMs: capMs + 120_000 }] } };
    // Worker processes killed so far: the next sample waits for their replacements.
    const gone = new Set<number>();
    const once = async (crash: (pid: number) => Promise<{ killedAt: number; back?: Promise<void> }>): Promise<Recovery> => {
      await cluster.workersUp(gone);
      const run = await cluster.api.post<RunRecord>('/runs', plan);
      const first = await reporter.started(run.id, 1, 30_000);
      if (!first) throw new Error(`bench: the hold step of run ${run.id} never started`);
      gone.add(first.pid);
      const { killedAt, back } = await crash(first.pid);
      const again = await reporter.started(run.id, 2, capMs);
      if (back) await withDeadline(back, 2 * UP_MS, 'the replacement runwarden process');
      const step = await cluster.api.get<StepDetail>(`/runs/${run.id}/steps/hold`);
      const a1 = step.attemptsDetail.find((a) => a.attempt === 1);
      await cluster.api.post(`/runs/${run.id}/cancel`);
      return { ms: again ? Math.max(0, again.at - killedAt) : capMs, capped: !again, first: `${a1?.status ?? '?'}${a1?.error?.code ? `, ${a1.error.code}` : ''}` };
    };
    const series = async (n: number, crash: Parameters<typeof once>[0]): Promise<Recovery[]> => {
      const out: Recovery[] = [];
      for (let i = 0; i < n && !out.some((r) => r.capped); i++) out.push(await once(crash));
      return out;
    };
    const worker = await series(samples, async (pid) => {
      process.kill(pid, 'SIGKILL');
      return { killedAt: Date.now() };
    });
    // Past the cap once already: the lease-expiry series would only add more waiting to the stage.
    const tree = worker.some((r) => r.capped) ? [] : await series(treeSamples, () => cluster.crashAll());
    const summary = (rs: Recovery[], metric: string, how: string): BenchResult[] => {
      const p50 = percentile(rs.map((r) => r.ms), 50);
      const capped = p50 >= capMs;
      const firsts = [...new Set(rs.map((r) => r.first))].join(', ');
      const list = rs.map((r) => (r.capped ? `≥${Math.round(r.ms)}` : Math.round(r.ms))).join(', ');
      const note = capped ? `${how}: not restarted within the ${capMs / 1000} s cap` : `${how} (attempt 1: ${firsts}); samples ${list} ms`;
      return [row(system, 'crash-recovery', metric, Math.round(p50), { note, ...(capped ? { capped: true } : {}) })];
    };
    const workerHow = `${cluster.what}: the worker process holding the step SIGKILLed; its supervisor saw it die and handed the attempt back at once`;
    const treeHow = `${cluster.crashWhat}: back once the step's lease (3 s) expired`;
    const maxCapped = worker.some((r) => r.capped);
    return [
      ...summary(worker, 'ms', workerHow),
      row(system, 'crash-recovery', 'ms_max', Math.round(Math.max(...worker.map((r) => r.ms))), { note: `slowest of the ${worker.length} samples of ms`, ...(maxCapped ? { capped: true } : {}) }),
      ...(tree.length > 0 ? summary(tree, 'ms_lease_expiry', treeHow) : []),
    ];
  } finally {
    await reporter.close();
  }
}

/**
 * hang-cut on `cluster`: `samples` single-step runs of the builtin `http` tool against a server that
 * accepts and never answers, `timeoutMs` = `deadlineMs`, default retries (none). Overshoot: the
 * `step.finished` event's time minus the `deadlineAt` of its `step.started` event. Then the
 * server's side: every socket the steps opened must be closed (the request stopped, not only the
 * wait for it).
 */
export async function hangCutOn(cluster: Cluster, system: string, samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  const hole = await blackhole();
  try {
    await cluster.workersUp();
    const ids: string[] = [];
    const step = { name: 'cut', tool: 'http', inputs: { url: hole.url }, timeoutMs: deadlineMs };
    for (let i = 0; i < samples; i++) ids.push((await cluster.api.post<RunRecord>('/runs', { plan: { steps: [step] } })).id);
    // One cheap aggregate per poll, not a request per run: the API shares the CPU with the workers measured.
    const until = performance.now() + deadlineMs + capMs;
    let queue: HealthDetailed['queue'] | undefined;
    for (;;) {
      queue = (await cluster.api.health()).queue;
      if (queue.queued + queue.running + queue.pending === 0 || performance.now() > until) break;
      await sleep(100);
    }
    const left = queue.queued + queue.running + queue.pending;
    if (left > 0) {
      const note = `${left}/${samples} steps not ended ${capMs / 1000} s past the deadline; ${hole.open()} sockets still open`;
      return [row(system, 'hang-cut', 'p50_ms', capMs, { capped: true, note }), row(system, 'hang-cut', 'p99_ms', capMs, { capped: true, note })];
    }
    const over: number[] = [];
    const statuses = new Map<string, number>();
    for (const id of ids) {
      const { events } = await cluster.api.get<{ events: EventRecord[] }>(`/runs/${id}/events?limit=1000`);
      const started = events.find((e) => e.type === 'step.started');
      const finished = events.find((e) => e.type === 'step.finished');
      if (!started || !finished) throw new Error(`bench: run ${id} has no step.started or step.finished event`);
      over.push(Date.parse(finished.ts) - Date.parse(started.data.deadlineAt as string));
      const status = String(finished.data.status);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    // The requests themselves: a cut request closes its socket; give the FINs a moment to arrive.
    await waitFor(() => hole.open() === 0, 1000, 'the cut requests to close their sockets').catch(() => undefined); // what is left open is reported below
    const open = hole.open();
    const ended = [...statuses].map(([s, n]) => `${n} ${s}`).join(', ');
    const note = `timeoutMs ${deadlineMs}: ${ended}; ${hole.requests()} requests reached the server, ${open} of their sockets still open after the cut`;
    return [
      row(system, 'hang-cut', 'p50_ms', round(percentile(over, 50)), { note }),
      row(system, 'hang-cut', 'p99_ms', round(percentile(over, 99)), { note }),
      row(system, 'hang-cut', 'sockets_left_open', open, { note: `of the ${hole.requests()} requests' sockets (waited up to 1 s after the last step ended)` }),
    ];
  } finally {
    await hole.close();
  }
}
