/**
 * The soak: `npm run soak -- --minutes N`. On a private PostgreSQL cluster (private-postgres.ts),
 * with the hang lab in this process, it runs
 *   - A: `runwarden start --workers 2` (API + supervised workers), SIGKILLed at random and restarted;
 *   - B: `runwarden start --workers 0` (an API only), never killed: its memory and descriptors are
 *     compared with their baseline at the end;
 *   - W: `runwarden worker --workers 2` (a supervisor), never killed; its worker processes are;
 * submits a mix of runs to A and B (LLM steps against lab failure modes, fan-out with a join,
 * sleeps; some cancelled), kills worker processes and A at random and restarts PostgreSQL, then
 * stops the chaos and checks the invariants:
 *   1. every acknowledged run (a 201) finished;
 *   2. every step of those runs is terminal with exactly one step.finished;
 *   3. each run's seq is contiguous from 1 and unique;
 *   4. no process of the soak is left once it is stopped;
 *   5. B's and W's open descriptors and heap after a full GC (through the inspector) are back near
 *      their baseline (taken after a quarter of the run, at most a minute in).
 * Prints its figures (JSON with --json) and exits 1 if an invariant failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startLab } from '../src/lab/index.ts';
import { startPrivatePostgres, type PrivatePostgres } from './private-postgres.ts';

const { values: args } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, json: { type: 'boolean', default: false }, seed: { type: 'string' } } });
const MINUTES = Number(args.minutes);
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'runwarden.js');

let seed = Number(args.seed ?? Date.now() % 1_000_000);
const initialSeed = seed;
/** A small deterministic PRNG (mulberry32), so a failing soak can be replayed with --seed. */
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
};

interface Proc {
  name: string;
  child: ChildProcess;
  url?: string;
  out: string[];
  exited: Promise<void>;
}

function spawnRunwarden(name: string, argv: string[], env: Record<string, string>, ready: RegExp): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, ...argv], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const take = (d: Buffer): void => {
    for (const line of d.toString().split('\n')) if (line !== '') out.push(line);
    if (out.length > 2000) out.splice(0, out.length - 2000);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`${name} not ready in 60 s:\n${out.slice(-30).join('\n')}`)), 60_000);
    const check = (): void => {
      const text = out.join('\n');
      if (ready.test(text)) {
        clearTimeout(deadline);
        child.stdout?.off('data', check);
        child.stderr?.off('data', check);
        resolve({ name, child, out, exited, url: /runwarden listening on (http:\/\/\S+)/.exec(text)?.[1] });
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    void exited.then(() => {
      clearTimeout(deadline);
      reject(new Error(`${name} exited before it was ready:\n${out.slice(-30).join('\n')}`));
    });
  });
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function pids(match: (argv: string[]) => boolean): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid)
    .map(Number)
    .filter((p) => match(cmdline(p)));
}

function workerPids(supervisor: number): number[] {
  return pids((a) => a.some((x) => x.endsWith('child.ts')) && a.includes(`--supervisor=${supervisor}`));
}

function resources(pid: number): { fds: number; rssKb: number } {
  const fds = readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      readlinkSync(`/proc/${pid}/fd/${fd}`);
      return true;
    } catch {
      return false;
    }
  }).length;
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { fds, rssKb: Number(rss ?? 0) };
}

/**
 * The heap of a runwarden process after a full garbage collection, through its inspector: RSS alone
 * cannot tell a leak from V8 keeping the heap it grew into. SIGUSR1 opens the inspector (on
 * 127.0.0.1:9229, printed to the process's stderr), and it is closed again afterwards so the next
 * process can open its own.
 */
async function heapAfterGc(p: Proc): Promise<number> {
  const seen = p.out.length;
  process.kill(p.child.pid as number, 'SIGUSR1');
  let url: string | undefined;
  for (let i = 0; i < 100 && !url; i++) {
    url = p.out.slice(Math.max(0, seen - 5)).map((l) => /Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1]).find((u) => u !== undefined);
    if (!url) await sleep(50);
  }
  if (!url) throw new Error(`${p.name}: the inspector did not open: ${p.out.slice(-5).join(' | ')}`);
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`${p.name}: cannot connect to its inspector`));
  });
  let id = 0;
  const call = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const my = ++id;
      const onMessage = (ev: MessageEvent): void => {
        const msg = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, unknown> };
        if (msg.id === my) {
          ws.removeEventListener('message', onMessage);
          resolve(msg.result ?? {});
        }
      };
      ws.addEventListener('message', onMessage);
      ws.send(JSON.stringify({ id: my, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const r = await call('Runtime.evaluate', { expression: 'process.memoryUsage().heapUsed', returnByValue: true });
    return Number((r.result as { value?: unknown } | undefined)?.value);
  } finally {
    // Not awaited: the inspector closes its socket before it could answer.
    void call('Runtime.evaluate', { expression: "process.getBuiltinModule('node:inspector').close()" });
    setTimeout(() => ws.close(), 200);
  }
}

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> | null }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
  } catch {
    // A proxy's or a dying server's non-JSON answer: only the status matters then.
    return { status: res.status, json: null };
  }
}

const MODES = ['healthy', 'healthy', 'stream_stall', 'rate_limited', 'overloaded', 'reset_mid_body', 'trickle', 'clean_close_no_done'] as const;

function planFor(i: number): { kind: string; body: Record<string, unknown> } {
  const kind = pick(['llm', 'fanout', 'sleep', 'mixed'] as const);
  const llm = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    tool: 'llm',
    inputs: { provider: pick(MODES), prompt: `soak ${i} ${name}` },
    timeoutMs: 4000,
    retries: { max: 1, backoffMs: 100 },
    ...extra,
  });
  let steps: unknown[];
  if (kind === 'llm') steps = [llm('ask')];
  else if (kind === 'sleep') steps = [{ name: 'nap', tool: 'sleep', inputs: { ms: Math.floor(200 + random() * 2500) }, timeoutMs: 10_000, retries: { max: 1, backoffMs: 100 } }];
  else if (kind === 'fanout') {
    const n = 3 + Math.floor(random() * 8);
    const mids = Array.from({ length: n }, (_, k) => (random() < 0.5 ? llm(`m${k}`, { dependsOn: ['root'] }) : { name: `m${k}`, tool: 'sleep', inputs: { ms: Math.floor(random() * 800) }, dependsOn: ['root'] }));
    steps = [{ name: 'root', tool: 'echo', inputs: { i } }, ...mids, { name: 'join', tool: 'echo', inputs: { n }, dependsOn: mids.map((m) => m.name) }];
  } else {
    steps = [llm('a'), { name: 'b', tool: 'sleep', inputs: { ms: 300 }, dependsOn: ['a'] }, { name: 'c', tool: 'echo', inputs: { x: 1 } }];
  }
  return { kind, body: { plan: { goal: `soak ${kind}`, steps }, labels: { soak: 'yes', kind }, idempotencyKey: `soak-${initialSeed}-${i}` } };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-soak-'));
  const t0 = Date.now();
  const figures: Record<string, unknown> = { minutes: MINUTES, seed: initialSeed };
  const problems: string[] = [];
  let db: PrivatePostgres | undefined;
  const lab = await startLab({ host: '127.0.0.1', port: 0 });
  const procs: { A?: Proc; B?: Proc; W?: Proc } = {};
  try {
    db = await startPrivatePostgres();
    log(`private PostgreSQL on port ${db.port}, lab at ${lab.url}`);
    const providers = Object.fromEntries(
      MODES.map((m) => [
        m,
        {
          type: 'openai',
          baseUrl: m === 'healthy' ? `${lab.url}/v1` : m === 'rate_limited' ? `${lab.url}/${m};retry_after=1;count=1/v1` : m === 'overloaded' ? `${lab.url}/${m};count=1/v1` : `${lab.url}/${m}/v1`,
          maxRetries: 2,
          timeouts: { connectMs: 1000, headersMs: 2000, firstContentMs: 2000, idleMs: 1000, totalMs: 3500 },
        },
      ]),
    );
    const configFile = join(dir, 'runwarden.config.json');
    writeFileSync(configFile, JSON.stringify({ providers, defaultProvider: 'healthy' }));
    const env = { DATABASE_URL: db.url, RUNWARDEN_CONFIG: configFile, RUNWARDEN_EXIT_WITH_PARENT: '0' };
    const startA = (): Promise<Proc> => spawnRunwarden('A', ['start', '--port', '0', '--workers', '2', '--lab', 'off', '--data-dir', join(dir, 'a')], env, /runwarden listening on/);
    procs.A = await startA();
    procs.B = await spawnRunwarden('B', ['start', '--port', '0', '--workers', '0', '--lab', 'off', '--data-dir', join(dir, 'b')], env, /runwarden listening on/);
    procs.W = await spawnRunwarden('W', ['worker', '--workers', '2'], env, /ready/);
    const wPid = procs.W.child.pid as number;

    const acknowledged = new Map<string, string>();
    const kinds: Record<string, number> = {};
    let submitted = 0;
    let refused = 0;
    let cancels = 0;
    const chaos = { workerKills: 0, apiKills: 0, pgRestarts: 0 };
    const endAt = t0 + MINUTES * 60_000;
    type Usage = { fds: number; rssKb: number; heapKb: number | null; heapError?: string };
    let baseline: { B: Usage; W: Usage } | undefined;
    // One inspector port (9229) for both: the first closes it, then the second opens it.
    const usageOfBoth = async (b: Proc, w: Proc): Promise<{ B: Usage; W: Usage }> => {
      const B = await usage(b);
      await sleep(1500);
      return { B, W: await usage(w) };
    };
    const usage = async (p: Proc): Promise<Usage> => {
      const r = resources(p.child.pid as number);
      try {
        const heap = await Promise.race([heapAfterGc(p), sleep(10_000).then(() => Promise.reject(new Error('the inspector did not answer in 10 s')))]);
        return { ...r, heapKb: Math.round(heap / 1024) };
      } catch (err) {
        return { ...r, heapKb: null, heapError: (err as Error).message };
      }
    };
    const baselineAt = t0 + Math.min(60_000, (MINUTES * 60_000) / 4);

    const submitter = async (lane: number): Promise<void> => {
      for (let i = lane; Date.now() < endAt; i += 4) {
        const { kind, body } = planFor(i);
        submitted++;
        // A submission whose answer was lost (A killed mid-request) is sent again with the same key.
        for (let attempt = 0; attempt < 5 && Date.now() < endAt + 30_000; attempt++) {
          const target = lane % 2 === 0 && procs.A?.url ? procs.A.url : (procs.B?.url as string);
          try {
            const res = await post(target, '/runs', body);
            if (res.status === 201 || res.status === 200) {
              const id = String(res.json?.id);
              acknowledged.set(id, kind);
              kinds[kind] = (kinds[kind] ?? 0) + 1;
              if (random() < 0.1) {
                await sleep(random() * 1500);
                await post(target, `/runs/${id}/cancel`, {}).then(() => cancels++, () => undefined);
              }
              break;
            }
            refused++;
          } catch {
            refused++;
          }
          await sleep(200 + random() * 500);
        }
        await sleep(random() * 150);
      }
    };

    const chaosLoop = async (): Promise<void> => {
      let nextPgRestart = t0 + 45_000 + random() * 30_000;
      while (Date.now() < endAt) {
        await sleep(2000 + random() * 4000);
        if (Date.now() >= endAt) break;
        if (!baseline && Date.now() >= baselineAt && procs.B && procs.W) baseline = await usageOfBoth(procs.B, procs.W);
        if (Date.now() >= nextPgRestart) {
          log('restarting PostgreSQL');
          db?.restart();
          chaos.pgRestarts++;
          nextPgRestart = Date.now() + 60_000 + random() * 60_000;
          continue;
        }
        const what = random();
        if (what < 0.7) {
          const supervisors = [wPid, procs.A?.child.pid].filter((p): p is number => p !== undefined);
          const victims = supervisors.flatMap(workerPids);
          if (victims.length > 0) {
            const v = pick(victims);
            try {
              process.kill(v, 'SIGKILL');
              chaos.workerKills++;
            } catch {
              // It exited in between.
            }
          }
        } else if (procs.A) {
          const a = procs.A;
          procs.A = undefined;
          log('killing API A (SIGKILL)');
          a.child.kill('SIGKILL');
          chaos.apiKills++;
          await a.exited;
          await sleep(500 + random() * 2000);
          procs.A = await startA();
        }
      }
    };

    log(`running for ${MINUTES} min`);
    await Promise.all([submitter(0), submitter(1), submitter(2), submitter(3), chaosLoop()]);
    if (!procs.A) procs.A = await startA();
    log(`chaos over: ${acknowledged.size} runs acknowledged; waiting for them to finish`);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const ids = [...acknowledged.keys()];
      const settleStart = Date.now();
      let unfinished = ids.length;
      while (Date.now() - settleStart < 180_000) {
        const r = await client.query("SELECT count(*)::int AS n FROM runs WHERE id = ANY($1) AND status NOT IN ('succeeded','failed','cancelled')", [ids]);
        unfinished = (r.rows[0] as { n: number }).n;
        if (unfinished === 0) break;
        await sleep(1000);
      }
      figures.settleMs = Date.now() - settleStart;
      const present = (await client.query('SELECT count(*)::int AS n FROM runs WHERE id = ANY($1)', [ids])).rows[0] as { n: number };
      if (present.n !== ids.length) problems.push(`${ids.length - present.n} acknowledged runs are missing`);
      if (unfinished > 0) problems.push(`${unfinished} acknowledged runs did not finish within 180 s of the end of the chaos`);
      const byStatus = (await client.query('SELECT status, count(*)::int AS n FROM runs WHERE id = ANY($1) GROUP BY status', [ids])).rows as Array<{ status: string; n: number }>;
      const steps = (await client.query('SELECT count(*)::int AS n, count(*) FILTER (WHERE status NOT IN (\'succeeded\',\'failed\',\'timed_out\',\'cancelled\',\'skipped\'))::int AS open FROM steps WHERE run_id = ANY($1)', [ids])).rows[0] as { n: number; open: number };
      if (steps.open > 0) problems.push(`${steps.open} steps of acknowledged runs are not terminal`);
      const finishedTwice = (await client.query("SELECT run_id, step_name, count(*)::int AS n FROM events WHERE type = 'step.finished' AND run_id = ANY($1) GROUP BY 1, 2 HAVING count(*) <> 1", [ids])).rows;
      if (finishedTwice.length > 0) problems.push(`${finishedTwice.length} steps have more than one step.finished: ${JSON.stringify(finishedTwice.slice(0, 5))}`);
      const finishedSteps = (await client.query("SELECT count(DISTINCT (run_id, step_name))::int AS n FROM events WHERE type = 'step.finished' AND run_id = ANY($1)", [ids])).rows[0] as { n: number };
      if (finishedSteps.n !== steps.n) problems.push(`${steps.n - finishedSteps.n} steps have no step.finished`);
      const badSeq = (await client.query('SELECT run_id, count(*)::int AS n, min(seq)::int AS lo, max(seq)::int AS hi, count(DISTINCT seq)::int AS d FROM events WHERE run_id = ANY($1) GROUP BY run_id HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)', [ids])).rows;
      if (badSeq.length > 0) problems.push(`${badSeq.length} runs have gaps or repeats in seq: ${JSON.stringify(badSeq.slice(0, 5))}`);
      const runFinished = (await client.query("SELECT count(*)::int AS n FROM events WHERE type = 'run.finished' AND run_id = ANY($1)", [ids])).rows[0] as { n: number };
      const events = (await client.query('SELECT count(*)::int AS n FROM events WHERE run_id = ANY($1)', [ids])).rows[0] as { n: number };
      Object.assign(figures, { submitted, acknowledged: ids.length, refusedOrRetried: refused, cancelRequests: cancels, kinds, byStatus: Object.fromEntries(byStatus.map((r) => [r.status, r.n])), steps: steps.n, events: events.n, runFinishedEvents: runFinished.n, chaos });
      if (runFinished.n !== ids.length - unfinished) problems.push(`run.finished events: ${runFinished.n} for ${ids.length - unfinished} finished runs`);
    } finally {
      await client.end();
    }

    // Quiet for a while, then the long-lived processes against their baseline.
    await sleep(5000);
    const end = await usageOfBoth(procs.B, procs.W);
    figures.resources = { baseline, end };
    if (baseline) {
      for (const k of ['B', 'W'] as const) {
        const b = baseline[k];
        const e = end[k];
        // Descriptors: a leak grows by one per run or per restart (hundreds here); a few are pool churn.
        if (e.fds > b.fds + 8) problems.push(`${k}: ${e.fds} open descriptors at the end, ${b.fds} at the baseline`);
        // The heap after a full GC: a leak of 1 KB per run is ~5 MB over ten minutes here; 10 MB of
        // slack covers caches that fill once (compiled code, prepared statement names). Without
        // the inspector, RSS, which V8 and malloc do not give back: only growth past 1.5x counts.
        if (b.heapKb !== null && e.heapKb !== null) {
          if (e.heapKb > b.heapKb + 10_240) problems.push(`${k}: heap after GC ${Math.round(e.heapKb / 1024)} MB at the end, ${Math.round(b.heapKb / 1024)} MB at the baseline`);
        } else if (e.rssKb > b.rssKb * 1.5 + 50_000) problems.push(`${k}: RSS ${Math.round(e.rssKb / 1024)} MB at the end, ${Math.round(b.rssKb / 1024)} MB at the baseline (heap unknown: ${e.heapError ?? b.heapError})`);
      }
    } else problems.push('no resource baseline was taken (the soak was too short)');
  } finally {
    const all = [procs.A, procs.B, procs.W].filter((p): p is Proc => p !== undefined);
    for (const p of all) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(all.map((p) => p.exited)), sleep(20_000)]);
    await sleep(1000);
    const left = db ? pids((a) => a.some((x) => x.includes(`:${db?.port}/`) || x.includes(dir))) : [];
    if (left.length > 0) {
      problems.push(`processes left after stopping: ${left.join(', ')}`);
      for (const p of left) process.kill(p, 'SIGKILL');
    }
    figures.orphans = left.length;
    db?.stop();
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
  figures.durationS = Math.round((Date.now() - t0) / 1000);
  figures.problems = problems;
  process.stdout.write(args.json ? `${JSON.stringify(figures, null, 2)}\n` : `${JSON.stringify(figures)}\n${problems.length === 0 ? 'soak: every invariant held' : `soak: FAILED\n${problems.map((p) => `- ${p}`).join('\n')}`}\n`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

// However the soak goes wrong, it ends: the invariants are checked within minutes of the chaos.
setTimeout(() => {
  process.stderr.write('soak: did not finish within its time budget\n');
  process.exit(1);
}, (MINUTES + 8) * 60_000).unref();
await main();
process.exit(process.exitCode ?? 0);
