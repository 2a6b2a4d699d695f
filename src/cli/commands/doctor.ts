/**
 * `runwarden doctor`: diagnose a deployment. Against a running one (`--url` or RUNWARDEN_URL) it
 * reads `/health`, `/health/detailed` and `/steps/stuck`; without a URL it opens the store itself
 * (the SQLite file under `--data-dir`, or DATABASE_URL) and reads the same facts there. Either way it
 * prints one line per check with a verdict and exits 1 when any check fails (3 when the API cannot
 * be reached), naming what is wrong.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { redactUrl } from '../../config/redact.ts';
import type { RunwardenConfig } from '../../config/types.ts';
import type { WorkerRecord } from '../../domain/records.ts';
import { stuckStep } from '../../engine/stuck.ts';
import { describeSaturated, saturatedLimits, type SaturatedLimit } from '../../engine/saturation.ts';
import type { HealthDetailed, StuckStep, SupervisorStatus } from '../../engine/facade.ts';
import { apiUrl, networkReason } from '../client.ts';
import { boolFlag, stringFlag } from '../command.ts';
import type { Command, ParsedArgs } from '../command.ts';
import { EXIT } from '../io.ts';
import type { Io } from '../io.ts';
import { loadConfig } from './config-flags.ts';
import { probeProvider, probeTargets } from './doctor-providers.ts';
import { findRunningLab } from '../../lab/discovery.ts';
import { withTimeout } from '../../time-limit.ts';

type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

interface Check {
  name: string;
  verdict: Verdict;
  detail: string;
  /** One line per thing that is wrong (fail) or doubtful (warn). */
  problems: string[];
}

/** What the checks look at, gathered from the API or from the store. */
interface Facts {
  target: string;
  api?: { ms: number };
  database: { ok: boolean; dialect: string; latencyMs?: number; error?: string; writable?: boolean };
  migrations: { current: number; latest: number; pending: number } | null;
  workers: WorkerRecord[];
  supervisor?: SupervisorStatus;
  stuck: StuckStep[];
  queue: { queued: number; running: number; pending: number; oldestQueuedMs: number } | null;
  /** The limits holding work back now (provider limits, concurrency keys); null when unknown. */
  limits: SaturatedLimit[] | null;
  /** Names of the providers in use: the API's list, or the local configuration's. */
  providers: string[];
  /** The lab the deployment runs, when one was found. */
  lab?: { url: string; how: string };
  /** Providers as this machine's configuration and environment define them. */
  config: Pick<RunwardenConfig, 'providers' | 'defaultProvider'>;
  apiLoopP99Ms?: number;
  /** A worker whose last heartbeat is older than this is frozen or dead. */
  staleMs: number;
}

const HTTP_TIMEOUT_MS = 5000;
const DB_TIMEOUT_MS = 5000;
/** A queue whose oldest ready step has waited this long is worth a warning. */
const QUEUE_WAIT_WARN_MS = 60_000;
const LOOP_WARN_MS = 200;
const LOOP_FAIL_MS = 1000;

const fmt = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`);

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Diagnose a deployment: database, migrations, workers alive, stuck steps, queue, saturated limits, providers, event-loop delay.',
  usage: '[--url U | --data-dir d] [--config f] [--json]',
  help: `  --url U        a running deployment's API (env RUNWARDEN_URL; RUNWARDEN_TOKEN if it needs one)
  --data-dir d   without a URL: the SQLite file's directory (default ./.runwarden); with
                 DATABASE_URL set, that PostgreSQL database instead
  --config f     config file (providers and timing knobs, in direct mode)
  --json         print the checks as JSON

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 3 the API cannot be reached.`,
  options: { url: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const direct = stringFlag(args, 'url') === undefined && (stringFlag(args, 'data-dir') !== undefined || (io.env.RUNWARDEN_URL ?? '').trim() === '');
    let facts: Facts | { unreachable: string; target: string };
    if (direct) facts = await fromStore(args, io);
    else facts = await fromApi(apiUrl(stringFlag(args, 'url'), io.env), io.env.RUNWARDEN_TOKEN, await localProviders(args, io));
    if ('unreachable' in facts) {
      const check: Check = { name: 'api', verdict: 'fail', detail: facts.unreachable, problems: [facts.unreachable] };
      print(io, facts.target, [check], boolFlag(args, 'json'));
      return EXIT.UNREACHABLE;
    }
    const checks = [...(facts.api ? [{ name: 'api', verdict: 'ok' as const, detail: `/health answered in ${fmt(facts.api.ms)}`, problems: [] }] : []), ...evaluate(facts)];
    checks.push(await providersCheck(facts, io.env));
    print(io, facts.target, checks, boolFlag(args, 'json'));
    return checks.some((c) => c.verdict === 'fail') ? EXIT.FAILED : EXIT.OK;
  },
};

function print(io: Io, target: string, checks: Check[], json: boolean): void {
  const failed = checks.filter((c) => c.verdict === 'fail');
  if (json) {
    io.out(`${JSON.stringify({ target, ok: failed.length === 0, checks }, null, 2)}\n`);
    return;
  }
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = [`runwarden doctor: ${target}`];
  for (const c of checks) {
    lines.push(`  ${(c.verdict === 'fail' ? 'FAIL' : c.verdict).padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.verdict !== 'ok' && c.verdict !== 'skip') for (const p of c.problems.slice(0, 10)) if (p !== c.detail) lines.push(`        ${' '.repeat(width)}  - ${p}`);
  }
  const problems = failed.flatMap((c) => c.problems);
  lines.push(problems.length === 0 ? 'no problems found' : `${problems.length} problem${problems.length === 1 ? '' : 's'}:`);
  for (const p of problems) lines.push(`  - ${p}`);
  io.out(`${lines.join('\n')}\n`);
}

// ---- gathering ----

async function getJson<T>(base: string, path: string, token: string | undefined): Promise<{ status: number; body: T; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}${path}`, {
    headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as T, ms: performance.now() - t0 };
}

/** The provider part of the local configuration, for probing the API's providers from here. */
async function localProviders(args: ParsedArgs, io: Io): Promise<Facts['config']> {
  try {
    return await loadConfig({ config: stringFlag(args, 'config') }, io);
  } catch {
    // A local configuration that does not load leaves the built-ins and the lab to check.
    return { providers: {}, defaultProvider: undefined };
  }
}

async function fromApi(base: string, token: string | undefined, config: Facts['config']): Promise<Facts | { unreachable: string; target: string }> {
  let ping;
  try {
    ping = await getJson<unknown>(base, '/health', token);
  } catch (err) {
    return { target: base, unreachable: `cannot reach the runwarden API at ${base}: ${networkReason(err, HTTP_TIMEOUT_MS)}` };
  }
  try {
    // 503 still carries the body: it says what is degraded.
    const detailed = await getJson<HealthDetailed & { error?: { message?: string } }>(base, '/health/detailed', token);
    if (detailed.body.error) return { target: base, unreachable: `the API at ${base} refused /health/detailed: ${detailed.body.error.message ?? detailed.status}` };
    const h = detailed.body;
    const stuck = await getJson<{ steps: StuckStep[] }>(base, '/steps/stuck', token);
    return {
      target: base,
      api: { ms: ping.ms },
      database: h.database,
      migrations: h.database.ok ? h.migrations : null,
      workers: h.workers,
      ...(h.supervisor ? { supervisor: h.supervisor } : {}),
      stuck: stuck.body.steps ?? [],
      queue: h.database.ok ? { ...h.queue, oldestQueuedMs: h.oldestQueuedMs ?? 0 } : null,
      limits: h.database.ok ? (h.limits ?? null) : null,
      providers: h.providers.map((p) => p.name),
      ...labFromList(h.providers),
      config,
      apiLoopP99Ms: h.eventLoop.delayP99Ms,
      staleMs: 10_000,
    };
  } catch (err) {
    return { target: base, unreachable: `the API at ${base} answered /health but not the detailed checks: ${networkReason(err, HTTP_TIMEOUT_MS)}` };
  }
}


async function fromStore(args: ParsedArgs, io: Io): Promise<Facts> {
  const config: Readonly<RunwardenConfig> = await loadConfig({ dataDir: stringFlag(args, 'data-dir'), config: stringFlag(args, 'config') }, io);
  const { SQLITE_FILE, openStore } = await import('../../store/open.ts');
  const target = config.databaseUrl !== undefined ? `${redactUrl(config.databaseUrl)} (PostgreSQL)` : `${join(config.dataDir, SQLITE_FILE)} (SQLite)`;
  const staleMs = config.leaseMs + config.heartbeatMs;
  const facts: Facts = {
    target,
    database: { ok: false, dialect: config.databaseUrl !== undefined ? 'postgres' : 'sqlite' },
    migrations: null,
    workers: [],
    stuck: [],
    queue: null,
    limits: null,
    providers: [],
    config,
    staleMs,
  };
  const lab = await findRunningLab(config.dataDir, config.labPort, 1000);
  if (lab) facts.lab = lab;
  if (config.databaseUrl === undefined && !existsSync(join(config.dataDir, SQLITE_FILE))) {
    facts.database.error = `no database at ${join(config.dataDir, SQLITE_FILE)} (has \`runwarden start\` run with this --data-dir?)`;
    return facts;
  }
  let store;
  try {
    store = await withTimeout(openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl }), DB_TIMEOUT_MS, 'opening the database');
  } catch (err) {
    facts.database.error = (err as Error).message;
    if ((err as { code?: unknown }).code === 'STORAGE_FULL') facts.database.writable = false;
    return facts;
  }
  try {
    const latencyMs = await withTimeout(store.ping(), DB_TIMEOUT_MS, 'database ping');
    facts.database = { ok: true, dialect: store.dialect, latencyMs: Math.round(latencyMs * 100) / 100 };
    // A full disk still answers reads: only a write says so.
    try {
      await withTimeout(store.probeWrite(), DB_TIMEOUT_MS, 'database write probe');
      facts.database.writable = true;
    } catch (err) {
      facts.database = { ...facts.database, ok: false, writable: false, error: (err as Error).message };
    }
    const m = await withTimeout(store.migrationStatus(), DB_TIMEOUT_MS, 'migration status');
    facts.migrations = { current: m.current, latest: m.latest, pending: m.pending.length };
    if (m.pending.length === 0 || m.current > 0) {
      const now = Date.now();
      facts.workers = await store.listWorkers();
      facts.stuck = (await store.stuckSteps(now)).map((s) => stuckStep(s, now));
      const counts = await store.stepCounts();
      const next = await store.nextReadyAt();
      facts.queue = { queued: counts.queued, running: counts.running, pending: counts.pending, oldestQueuedMs: next !== null && next < now ? now - next : 0 };
      const named = Object.entries(config.providers).map(([name, p]) => ({ name, ...(p.limits ? { limits: p.limits } : {}) }));
      facts.limits = await withTimeout(saturatedLimits(store, named, now), DB_TIMEOUT_MS, 'reading the limits');
    }
  } catch (err) {
    if (!facts.database.ok) facts.database.error = (err as Error).message;
    else facts.database = { ...facts.database, ok: false, error: `reading the database failed: ${(err as Error).message}` };
  } finally {
    await store.close().catch((err: unknown) => io.err(`closing the database failed: ${(err as Error).message}\n`));
  }
  return facts;
}

/** The lab entry of the API's provider list (its base URL ends in /v1). */
function labFromList(list: HealthDetailed['providers']): { lab?: { url: string; how: string } } {
  const lab = list.find((p) => p.type === 'lab' && p.baseUrl !== undefined);
  return lab?.baseUrl ? { lab: { url: lab.baseUrl.replace(/\/v1\/?$/, ''), how: 'listed by the API' } } : {};
}

// ---- checks ----

function evaluate(f: Facts): Check[] {
  const checks: Check[] = [];
  const db = f.database;
  checks.push(
    db.ok
      ? { name: 'database', verdict: 'ok', detail: `${db.dialect}, ping ${db.latencyMs ?? '?'} ms`, problems: [] }
      : db.writable === false
        ? { name: 'database', verdict: 'fail', detail: `not writable: ${db.error ?? 'unknown error'}`, problems: [`database (${db.dialect}) not writable: ${db.error ?? 'unknown error'}`] }
        : { name: 'database', verdict: 'fail', detail: `unreachable: ${db.error ?? 'unknown error'}`, problems: [`database (${db.dialect}) unreachable: ${db.error ?? 'unknown error'}`] },
  );
  const m = f.migrations;
  if (!m) checks.push({ name: 'migrations', verdict: 'skip', detail: 'database unreachable', problems: [] });
  else if (m.pending > 0) {
    const p = `${m.pending} migration${m.pending === 1 ? '' : 's'} pending (schema ${m.current} of ${m.latest}): run \`runwarden db migrate\``;
    checks.push({ name: 'migrations', verdict: 'fail', detail: p, problems: [p] });
  } else checks.push({ name: 'migrations', verdict: 'ok', detail: `schema ${m.current} of ${m.latest}`, problems: [] });

  checks.push(db.ok ? workersCheck(f) : { name: 'workers', verdict: 'skip', detail: 'database unreachable', problems: [] });

  if (!db.ok) checks.push({ name: 'stuck steps', verdict: 'skip', detail: 'database unreachable', problems: [] });
  else if (f.stuck.length > 0) {
    const problems = f.stuck.slice(0, 10).map((s) => `step ${s.stepName} of run ${s.runId} (attempt ${s.attempt}, worker ${s.workerId ?? '?'}): ${s.reason === 'lease_expired' ? 'its lease expired' : 'past its deadline'} and nobody has acted on it (is a reaper running?)`);
    checks.push({ name: 'stuck steps', verdict: 'fail', detail: `${f.stuck.length} running step${f.stuck.length === 1 ? '' : 's'} past deadline or on an expired lease`, problems });
  } else checks.push({ name: 'stuck steps', verdict: 'ok', detail: 'none', problems: [] });

  const q = f.queue;
  if (!q) checks.push({ name: 'queue', verdict: 'skip', detail: 'database unreachable', problems: [] });
  else {
    const detail = `${q.queued} queued, ${q.running} running, ${q.pending} waiting on dependencies`;
    if (q.queued > 0 && q.oldestQueuedMs > QUEUE_WAIT_WARN_MS) {
      checks.push({ name: 'queue', verdict: 'warn', detail: `${detail}; the oldest ready step has waited ${fmt(q.oldestQueuedMs)}`, problems: [`steps wait long in the queue (${fmt(q.oldestQueuedMs)}): too few workers, or workers that do not claim`] });
    } else checks.push({ name: 'queue', verdict: 'ok', detail, problems: [] });
  }
  checks.push(limitsCheck(f));
  checks.push(loopCheck(f));
  return checks;
}

/** Saturated limits are not a fault (the steps behind them wait, visibly), but worth a look: warn. */
function limitsCheck(f: Facts): Check {
  if (f.limits === null) return { name: 'limits', verdict: 'skip', detail: 'database unreachable', problems: [] };
  if (f.limits.length === 0) return { name: 'limits', verdict: 'ok', detail: 'no limit holds work back', problems: [] };
  const waiting = f.limits.reduce((n, l) => n + l.waiting, 0);
  const problems = f.limits.slice(0, 20).map(describeSaturated);
  return {
    name: 'limits',
    verdict: 'warn',
    detail: `${f.limits.length} saturated limit${f.limits.length === 1 ? '' : 's'}, ${waiting} step${waiting === 1 ? '' : 's'} waiting: ${problems[0] ?? ''}`,
    problems,
  };
}

function workersCheck(f: Facts): Check {
  const fail: string[] = [];
  const warn: string[] = [];
  const now = Date.now();
  const sup = f.supervisor;
  const supervisedPids = new Set<number>();
  for (const w of sup?.workers ?? []) {
    if (w.pid !== null) supervisedPids.add(w.pid);
    const name = `worker ${w.slot} (pid ${w.pid ?? '-'})`;
    const steps = w.steps.length > 0 ? `; running ${w.steps.map((s) => `${s.stepName} (run ${s.runId})`).slice(0, 3).join(', ')}` : '';
    if (w.state === 'stalled' || w.state === 'killing') {
      const by = w.blockingStep ? ` by step ${w.blockingStep.stepName} (run ${w.blockingStep.runId}, attempt ${w.blockingStep.attempt})` : '';
      fail.push(`${name} is frozen: its event loop has been blocked for ${fmt(w.blockedMs ?? 0)}${by}${by ? '' : steps}${w.state === 'killing' ? '; it is being killed' : ''}`);
    } else if (w.state === 'restarting' || w.state === 'stopped') {
      const last = w.lastExit ? ` after ${w.lastExit.classification} (${w.lastExit.signal ?? `exit code ${w.lastExit.code}`})` : '';
      (w.restarts >= 3 ? fail : warn).push(`${name} is down${last}; ${w.restarts} restart${w.restarts === 1 ? '' : 's'} so far${w.restarts >= 3 ? ': crash loop?' : ''}`);
    } else if (w.state === 'running' && (w.heartbeatAgeMs ?? 0) > f.staleMs) {
      fail.push(`${name} has not heartbeated for ${fmt(w.heartbeatAgeMs ?? 0)}`);
    }
  }
  for (const w of f.workers) {
    if (supervisedPids.has(w.pid)) continue;
    const age = now - Date.parse(w.lastHeartbeatAt);
    if (age > f.staleMs) fail.push(`worker ${w.id} (pid ${w.pid} on ${w.host}) last heartbeated ${fmt(age)} ago: frozen or dead`);
  }
  const processes = sup ? sup.workers.filter((w) => w.state === 'running').length : new Set(f.workers.map((w) => `${w.host}/${w.pid}`)).size;
  if (f.workers.length === 0 && (sup?.desired ?? 0) === 0) {
    fail.push('no worker is registered: nothing will run steps (start one with `runwarden start` or `runwarden worker`)');
  }
  const youngest = f.workers.length > 0 ? Math.min(...f.workers.map((w) => now - Date.parse(w.lastHeartbeatAt))) : undefined;
  const detail =
    fail.length > 0
      ? fail[0] ?? ''
      : `${processes} worker process${processes === 1 ? '' : 'es'} heartbeating${youngest !== undefined ? ` (last ${fmt(youngest)} ago)` : ''}${sup ? `, ${sup.totals.restarts} restart${sup.totals.restarts === 1 ? '' : 's'}` : ''}`;
  return { name: 'workers', verdict: fail.length > 0 ? 'fail' : warn.length > 0 ? 'warn' : 'ok', detail: fail.length === 0 && warn.length > 0 ? `${detail}; ${warn[0]}` : detail, problems: [...fail, ...warn] };
}

function loopCheck(f: Facts): Check {
  const parts: string[] = [];
  const problems: string[] = [];
  let verdict: Verdict = 'ok';
  const judge = (who: string, p99: number): void => {
    parts.push(`${who} p99 ${fmt(p99)}`);
    if (p99 > LOOP_FAIL_MS) {
      verdict = 'fail';
      problems.push(`${who}: event-loop delay p99 ${fmt(p99)} (something blocks it)`);
    } else if (p99 > LOOP_WARN_MS) {
      if (verdict === 'ok') verdict = 'warn';
      problems.push(`${who}: event-loop delay p99 ${fmt(p99)}`);
    }
  };
  if (f.apiLoopP99Ms !== undefined) judge('API', f.apiLoopP99Ms);
  const workerDelays = f.supervisor
    ? f.supervisor.workers.filter((w) => w.loopDelayP99Ms !== null && w.state === 'running').map((w) => [`worker ${w.slot}`, w.loopDelayP99Ms ?? 0] as const)
    : f.workers.filter((w) => typeof w.info.loopDelayP99Ms === 'number').map((w) => [`worker ${w.id}`, Number(w.info.loopDelayP99Ms)] as const);
  for (const [who, p99] of workerDelays) judge(who, p99);
  if (parts.length === 0) return { name: 'event loop', verdict: 'skip', detail: 'no measurement available', problems: [] };
  return { name: 'event loop', verdict, detail: parts.join(', '), problems };
}

/** One real request per provider in use (see doctor-providers.ts). */
async function providersCheck(f: Facts, env: Record<string, string | undefined>): Promise<Check> {
  const { ProviderRegistry } = await import('../../llm/index.ts');
  let registry;
  try {
    registry = new ProviderRegistry({ providers: f.config.providers, ...(f.config.defaultProvider ? { defaultProvider: f.config.defaultProvider } : {}), env, ...(f.lab ? { labUrl: f.lab.url } : {}) });
  } catch (err) {
    const p = `the provider configuration does not load: ${(err as Error).message}`;
    return { name: 'providers', verdict: 'fail', detail: p, problems: [p] };
  }
  try {
    const names = f.providers.length > 0 ? f.providers : registry.list().map((p) => p.name);
    const targets = probeTargets(names, f.config, env, registry);
    const probes = await Promise.all(targets.map((t) => (t.verdict === 'ok' ? probeProvider(registry, t.name) : Promise.resolve(t))));
    const bad = probes.filter((p) => p.verdict === 'fail').map((p) => p.text);
    const skipped = probes.filter((p) => p.verdict === 'skip').map((p) => p.text);
    const good = probes.filter((p) => p.verdict === 'ok').map((p) => p.text);
    if (bad.length > 0) return { name: 'providers', verdict: 'fail', detail: bad[0] ?? '', problems: bad };
    if (good.length === 0) {
      const why = skipped.length > 0 ? skipped.join('; ') : 'no LLM key set here, no provider configured, no lab running';
      return { name: 'providers', verdict: 'skip', detail: `no provider to check (${why})`, problems: [] };
    }
    const lab = f.lab && probes.some((p) => p.name === 'lab' && p.verdict === 'ok') ? ` [lab at ${f.lab.url}, ${f.lab.how}]` : '';
    return { name: 'providers', verdict: 'ok', detail: `${good.join('; ')}${lab}${skipped.length > 0 ? `; skipped ${skipped.join('; ')}` : ''}`, problems: [] };
  } finally {
    registry.close();
  }
}
