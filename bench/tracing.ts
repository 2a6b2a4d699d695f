/**
 * What OpenTelemetry tracing costs: runwarden-sqlite no-op throughput (sqlite-engine.ts, one
 * process: engine and worker) with the OTLP endpoint unset and set, in alternating pairs, each
 * round a fresh child process so nothing of one round is loaded in the next.
 *
 * A round resolves its configuration from the environment as every runwarden process does
 * (`resolveConfig`; OTEL_EXPORTER_OTLP_ENDPOINT set to a receiver on loopback, or unset) and
 * starts tracing when it names an endpoint, as src/process/boot.ts does. The receiver (here, in the
 * bench process) accepts OTLP/HTTP JSON and counts the spans of each round. "Nothing is exported"
 * is measured, not assumed: the spans the receiver got during the off rounds, and how many
 * `@opentelemetry/*` modules the off rounds resolved at all (a module hook counts them).
 *
 *   node bench/tracing.ts [--jobs N] [--pairs P]      (or the `tracing-overhead` workload)
 */
import { createServer } from 'node:http';
import { registerHooks } from 'node:module';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { listenLoopback, median, runNode, round } from './peers/common.ts';
import type { BenchResult } from './report.ts';

const SYSTEM = 'runwarden-sqlite';

interface RoundResult {
  stepsPerS: number;
  tracing: boolean;
  otelModules: number;
}

/** One round in this process (the child side): resolve the configuration, start tracing if it says so, drain `jobs` no-op runs. */
async function round1(jobs: number, concurrency: number): Promise<RoundResult> {
  const seen = new Set<string>();
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier.startsWith('@opentelemetry/')) seen.add(specifier);
      return next(specifier, context);
    },
  });
  const { resolveConfig } = await import('../src/config/resolve.ts');
  const { startTracing, tracingEnabled } = await import('../src/telemetry/tracing.ts');
  const { noopThroughput } = await import('./sqlite-engine.ts');
  const config = await resolveConfig({ flags: {}, env: process.env, cwd: tmpdir(), findConfigFile: false });
  const stop = config.otlpEndpoint ? await startTracing(config.otlpEndpoint) : undefined;
  const enabled = tracingEnabled();
  const rows = await noopThroughput(jobs, concurrency);
  await stop?.();
  const rate = rows.find((r) => r.metric === 'steps_per_s')?.value ?? NaN;
  return { stepsPerS: rate, tracing: enabled, otelModules: seen.size };
}

/** A receiver of OTLP/HTTP JSON traces on loopback: counts spans and requests. */
async function receiver(): Promise<{ url: string; spans: () => number; posts: () => number; close: () => Promise<void> }> {
  let spans = 0;
  let posts = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      posts++;
      try {
        const doc = JSON.parse(body) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }> };
        for (const rs of doc.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (err) {
        res.writeHead(400).end((err as Error).message);
      }
    });
  });
  const port = await listenLoopback(server);
  return { url: `http://127.0.0.1:${port}`, spans: () => spans, posts: () => posts, close: () => new Promise((r) => server.close(() => r())) };
}


/** `pairs` pairs of rounds (off then on, alternating which goes first), `jobs` no-op runs each at `concurrency`. */
export async function tracingOverhead(o: { jobs: number; pairs: number; concurrency: number }): Promise<BenchResult[]> {
  const rx = await receiver();
  const self = new URL(import.meta.url).pathname;
  const off: RoundResult[] = [];
  const on: RoundResult[] = [];
  let spansOff = 0;
  let postsOff = 0;
  let spansOn = 0;
  try {
    const one = async (traced: boolean): Promise<void> => {
      const s0 = rx.spans();
      const p0 = rx.posts();
      const env = traced ? `OTEL_EXPORTER_OTLP_ENDPOINT=${rx.url}` : '';
      const out = await runNode([self, '--child', '--jobs', String(o.jobs), '--concurrency', String(o.concurrency), ...(env ? ['--env', env] : [])], 300_000, `tracing round (${traced ? 'on' : 'off'})`);
      const r = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as RoundResult;
      if (traced) {
        on.push(r);
        spansOn += rx.spans() - s0;
      } else {
        off.push(r);
        spansOff += rx.spans() - s0;
        postsOff += rx.posts() - p0;
      }
    };
    for (let i = 0; i < o.pairs; i++) {
      const order = i % 2 === 0 ? [false, true] : [true, false];
      for (const traced of order) await one(traced);
    }
  } finally {
    await rx.close();
  }
  const ratios = off.map((r, i) => r.stepsPerS / (on[i]?.stepsPerS ?? NaN));
  const note = `${o.pairs} pairs of fresh processes, ${o.jobs.toLocaleString('en-US')} single-step no-op runs each (SQLite, in-process worker, concurrency ${o.concurrency})`;
  const row = (metric: string, value: number, n = note): BenchResult => ({ system: SYSTEM, workload: 'tracing-overhead', metric, value, note: n });
  const perRun = (spansOn / (o.pairs * o.jobs)).toFixed(1);
  return [
    row('ratio', round(median(ratios)), `throughput unset / set, median of pairs; ${note}`),
    row('steps_per_s_off', Math.round(median(off.map((r) => r.stepsPerS)))),
    row('steps_per_s_on', Math.round(median(on.map((r) => r.stepsPerS))), `OTEL_EXPORTER_OTLP_ENDPOINT = a local OTLP/HTTP receiver; ${perRun} spans per run received`),
    row('spans_exported_off', spansOff, `endpoint unset: spans the receiver got (${postsOff} requests); tracing started in ${off.filter((r) => r.tracing).length} of ${off.length} rounds`),
    row('otel_modules_loaded_off', Math.max(...off.map((r) => r.otelModules)), '@opentelemetry/* modules resolved in an off round (most of any round): 0 means the SDK was never imported'),
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { child: { type: 'boolean' }, jobs: { type: 'string', default: '5000' }, pairs: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '128' }, env: { type: 'string' } } });
  if (values.child) {
    // The parent passes the endpoint explicitly; the bench's own environment never leaks one in.
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.RUNWARDEN_OTLP_ENDPOINT;
    if (values.env) {
      const [k, ...v] = values.env.split('=');
      if (k) process.env[k] = v.join('=');
    }
    console.log(JSON.stringify(await round1(Number(values.jobs), Number(values.concurrency))));
  } else {
    for (const r of await tracingOverhead({ jobs: Number(values.jobs), pairs: Number(values.pairs), concurrency: Number(values.concurrency) })) {
      console.log(`${r.metric.padEnd(26)} ${String(r.value).padStart(8)}  ${r.note ?? ''}`);
    }
  }
}
