/**
 * `npm run bench [-- --quick] [-- --json file]`: runs the workloads and prints a table.
 * Numbers from one machine, one run; compare ratios, not absolute values.
 */
import { writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { deadlineOvershoot, enqueueToStart, fanOutThroughput, noopThroughput, type Result } from './sqlite-engine.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'string' } } });
const quick = values.quick ?? false;

const results: Result[] = [];
const stage = async (name: string, fn: () => Promise<Result[]>): Promise<void> => {
  process.stderr.write(`bench: ${name} ...\n`);
  const t0 = performance.now();
  results.push(...(await fn()));
  process.stderr.write(`bench: ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
};

await stage('noop-throughput (20,000 single-step runs)', () => noopThroughput(quick ? 5000 : 20_000, 256));
await stage('fanout-throughput (one run, 10,000 steps)', () => fanOutThroughput(quick ? 2000 : 10_000));
await stage('enqueue-to-start', () => enqueueToStart(quick ? 200 : 1000));
await stage('deadline-overshoot', () => deadlineOvershoot(quick ? 50 : 200));

const machine = { platform: platform(), arch: arch(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
const rows = results.map((r) => [r.system, r.workload, r.metric, String(r.value)]);
const widths = [0, 1, 2, 3].map((i) => Math.max(...[['system', 'workload', 'metric', 'value'], ...rows].map((r) => (r[i] ?? '').length)));
const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
console.log(`\nmachine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}${quick ? ' (quick)' : ''}`);
console.log(line(['system', 'workload', 'metric', 'value']));
for (const r of rows) console.log(line(r));
if (values.json) writeFileSync(values.json, JSON.stringify({ machine, results }, null, 2));
