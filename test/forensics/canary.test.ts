/**
 * A canary secret, planted in the environment under a secret-looking name, is logged, emitted,
 * thrown, put in a checkpoint, a request URL and header, and a child's command line by real tools.
 * It must appear nowhere the API, the CLI, the logs or the database can show.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EventRecord, RunWithSteps, StepDetail } from '../../src/domain/records.ts';
import { refreshSecretsFromEnv, REDACTED } from '../../src/forensics/redact.ts';
import { startRuntime, type Runtime } from '../../src/runtime.ts';
import { killAll, runCli } from '../cli/helpers.ts';
import { waitFor } from '../helpers/engine.ts';
import { testConfig } from '../helpers/runtime.ts';

const CANARY = `cnry-${randomBytes(12).toString('hex')}`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('redaction end to end: the canary never shows', () => {
  let rt: Runtime;
  let dir: string;
  let silent: net.Server;
  const held = new Set<net.Socket>();
  const logs: string[] = [];
  let runId = '';

  before(async () => {
    process.env.RW_CANARY_API_KEY = CANARY;
    refreshSecretsFromEnv();
    silent = net.createServer((s) => {
      held.add(s);
      s.on('close', () => held.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    dir = mkdtempSync(join(tmpdir(), 'rw-canary-'));
    rt = await startRuntime(testConfig(dir, { tools: [join(import.meta.dirname, 'fixtures', 'canary-tools.ts')], abortGraceMs: 1000, toolThreadsWarm: 4 }), {
      env: { ...process.env },
      log: (line) => logs.push(line),
    });
    const { run } = await rt.engine.createRun({
      plan: {
        steps: [
          { name: 'throws', tool: 'leak_and_throw' },
          { name: 'data', tool: 'leak_in_error_data' },
          // The four run in tool threads at once (toolThreadsWarm: 4 below).
          { name: 'hangs', tool: 'leak_and_hang', inputs: { port }, timeoutMs: 3000 },
          { name: 'child', tool: 'leak_child', timeoutMs: 3000 },
        ],
      },
    });
    runId = run.id;
    await waitFor(async () => {
      const r = await rt.engine.getRun(runId);
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    }, 15_000, 'the canary run');
  });

  after(async () => {
    killAll();
    for (const s of held) s.destroy();
    silent?.close();
    await rt?.close();
    delete process.env.RW_CANARY_API_KEY;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the tools really tried to leak it (the material is there, redacted)', async () => {
    const events = await rt.engine.listEvents(runId, 0, 10_000);
    const text = JSON.stringify(events);
    assert.ok(text.includes(`using key ${REDACTED}`), 'the log line is recorded, redacted');
    assert.ok(events.some((e: EventRecord) => e.type === 'custom.audit'));
    assert.ok(events.some((e: EventRecord) => e.type === 'step.hang_report' && e.stepName === 'hangs'));
    const hangs = await rt.engine.getStep(runId, 'hangs');
    const report = hangs.hangReports[0] as { classification: { code: string }; pending: Array<{ url?: string }>; lastCheckpoint: { label: string } };
    assert.equal(report.classification.code, 'http.no_headers');
    assert.match(report.pending[0]?.url ?? '', /\/v1\/items\?\[redacted\]$/);
    assert.equal(report.lastCheckpoint.label, `calling with ${REDACTED}`);
    const child = await rt.engine.getStep(runId, 'child');
    const cr = child.hangReports[0] as { classification: { code: string }; pending: Array<{ command?: string }> };
    assert.equal(cr.classification.code, 'child.hung');
    assert.match(cr.pending[0]?.command ?? '', /token=\[redacted\]/);
    const throws = await rt.engine.getStep(runId, 'throws');
    assert.equal(throws.error?.message, `upstream refused key ${REDACTED}`);
  });

  test('not in any API response', async () => {
    const get = async (path: string): Promise<string> => {
      const res = await fetch(`${rt.url}${path}`, { signal: AbortSignal.timeout(10_000) });
      return res.text();
    };
    const bodies = [await get(`/runs/${runId}`), await get(`/runs/${runId}/events`), await get('/runs'), await get('/health/detailed'), await get('/metrics'), await get('/steps/stuck')];
    const run = JSON.parse(bodies[0] as string) as RunWithSteps;
    assert.equal(run.steps.length, 4);
    for (const s of run.steps) bodies.push(await get(`/runs/${runId}/steps/${s.name}`));
    const detail = JSON.parse(bodies.at(-1) as string) as StepDetail;
    assert.equal(detail.hangReports.length, 1, 'the step detail shows its hang report');
    for (const b of bodies) assert.ok(!b.includes(CANARY), `canary in an API response: ${b.slice(Math.max(0, b.indexOf(CANARY) - 200), b.indexOf(CANARY) + 50)}`);
  });

  test('not in any CLI output', async () => {
    for (const args of [['report', runId], ['report', runId, '--json'], ['runs', 'show', runId], ['runs', 'events', runId]]) {
      const r = await runCli([...args, '--url', rt.url]);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stdout.length > 0);
      assert.ok(!r.stdout.includes(CANARY) && !r.stderr.includes(CANARY), `canary in \`runwarden ${args.join(' ')}\``);
    }
  });

  test('not in the logs', () => {
    for (const line of logs) assert.ok(!line.includes(CANARY), `canary in a log line: ${line}`);
  });

  test('not in stray rejections after a tool returned, nor in errors outside any step', () => {
    const out = execFileSync(process.execPath, [join(import.meta.dirname, 'fixtures', 'canary-stray.ts')], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, RW_CANARY_API_KEY: CANARY },
    });
    assert.ok(!out.includes(CANARY), 'canary in the stray events or the process log');
    const { logs: lines, events } = JSON.parse(out) as { logs: string[]; events: EventRecord[] };
    const stray = events.find((e) => e.type === 'step.log' && e.data.kind === 'unhandled_rejection');
    assert.equal(stray?.data.message, `unhandled rejection: Error: late failure with ${REDACTED}`);
    assert.ok(lines.some((l) => l.includes(`outside any step: Error: outside any step: Authorization: ${REDACTED}`)), lines.join('\n'));
  });

  test('not in the database (SQLite file, WAL and all)', async () => {
    await rt.close();
    const files = filesUnder(dir);
    assert.ok(files.some((f) => f.endsWith('.db')), `no database file in ${files.join(', ')}`);
    const needle = Buffer.from(CANARY, 'utf8');
    for (const f of files) assert.equal(readFileSync(f).indexOf(needle), -1, `canary in ${f}`);
  });
});
