/**
 * Every in-process row of FAILURES.md (and the I/O stalls a tool can cause by itself), with a small
 * real tool each: the step ends at its deadline (+ grace where the tool ignores its signal), its
 * hang report carries the right code, and the location it points to is in the tool's own file.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { configureTimerScan } from '../../src/forensics/inspect.ts';
import { formatReport } from '../../src/forensics/format.ts';
import type { HangReport } from '../../src/forensics/report.ts';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { ProviderRegistry } from '../../src/llm/registry.ts';
import { createLlmTool } from '../../src/tools/llm.ts';
import { startTestEngine, waitFor, type TestEngine } from '../helpers/engine.ts';
import { forensicTools, TOOLS_FILE } from './fixtures/tools.ts';

const GRACE = 300;
// Scheduling, the report and the store write. The cases run one at a time: run together, their 17
// reports each scan the heap for timers one after another on one loop, and the last was written
// 4-7 s after its deadline in CI. The bound still tells a step cut at
// its deadline from one left to hang.
const SLACK = 6000;

interface Outcome {
  status: string;
  elapsed: number;
  report: HangReport;
  errorCode: string | undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('hang reports for in-process failures', { concurrency: false }, () => {
  let t: TestEngine;
  let lab: Lab;
  let silent: net.Server;
  let stall: http.Server;
  const held = new Set<net.Socket>();
  let silentPort = 0;
  let stallUrl = '';
  let blackholePort = 0;

  before(async () => {
    // Every abandoned attempt gets its own heap scan for timers (production paces them).
    configureTimerScan({ minIntervalMs: 0, pacing: 0 });
    silent = net.createServer((s) => {
      held.add(s); // accepts, reads, never answers
      s.on('close', () => held.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as net.AddressInfo).port;
    stall = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('the first forty bytes of a longer answer');
      held.add(res.socket as net.Socket);
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    stallUrl = `http://127.0.0.1:${(stall.address() as net.AddressInfo).port}/report.txt`;
    lab = await startLab({ port: 0 });
    blackholePort = Number(new URL(lab.modes().find((m) => m.name === 'connect_blackhole')?.baseUrl ?? '').port);
    const providers = new ProviderRegistry({
      env: { LAB_KEY: 'lab-test-key-1234' },
      providers: { stuck: { type: 'openai', baseUrl: `${lab.url}/no_headers/v1`, apiKeyEnv: 'LAB_KEY' } },
    });
    t = await startTestEngine({ tools: [...forensicTools, createLlmTool({ providers })], worker: { abortGraceMs: GRACE } });
  });

  after(async () => {
    for (const s of held) s.destroy();
    await t?.close();
    await lab?.close();
    silent?.close();
    stall?.close();
  });

  async function runStep(tool: string, inputs: Record<string, unknown>, timeoutMs: number): Promise<Outcome> {
    const t0 = Date.now();
    const run = await t.submit({ plan: { steps: [{ name: 's', tool, inputs, timeoutMs }] } });
    const done = await t.waitRun(run.id, timeoutMs + GRACE + 10_000);
    const elapsed = Date.now() - t0;
    const detail = await t.engine.getStep(run.id, 's');
    const report = detail.hangReports[0] as HangReport | undefined;
    assert.ok(report, `no hang report for ${tool}: ${JSON.stringify(detail.attemptsDetail)}`);
    return { status: done.steps[0]?.status ?? '?', elapsed, report, errorCode: detail.error?.code };
  }

  function assertWhereInTools(r: HangReport): void {
    assert.equal(r.where?.file, TOOLS_FILE, `where: ${JSON.stringify(r.where)}`);
  }

  test('promise.never_settled: points at the last checkpoint in the tool file', async () => {
    const o = await runStep('never_settles', {}, 500);
    assert.equal(o.status, 'timed_out');
    assert.ok(o.elapsed < 500 + GRACE + SLACK, `took ${o.elapsed} ms`);
    assert.equal(o.report.classification.code, 'promise.never_settled', o.report.classification.summary);
    assert.equal(o.report.ignoredAbort, true);
    assertWhereInTools(o.report);
    assert.match(o.report.where?.source ?? '', /checkpoint "waiting for the callback"/);
    assert.equal(o.report.lastCheckpoint?.label, 'waiting for the callback');
    assert.equal(o.report.toolLocation?.file, TOOLS_FILE);
    assert.equal(o.errorCode, 'STEP_TIMEOUT');
  });

  test('promise.never_settled without a checkpoint: names the tool and where it is defined', async () => {
    const o = await runStep('never_settles_bare', {}, 500);
    assert.equal(o.report.classification.code, 'promise.never_settled');
    assert.match(o.report.classification.summary, /never_settles_bare/);
    assertWhereInTools(o.report);
    assert.match(o.report.where?.source ?? '', /run function/);
  });

  test('handler.ignored_abort: a timer still pending after the abort, its callback in the tool file', async () => {
    const o = await runStep('ignores_abort', {}, 500);
    assert.equal(o.status, 'timed_out');
    assert.ok(o.elapsed < 500 + GRACE + SLACK, `took ${o.elapsed} ms`);
    assert.equal(o.report.classification.code, 'handler.ignored_abort', o.report.classification.summary);
    assert.equal(o.report.timers?.[0]?.delayMs, 10_000);
    assertWhereInTools(o.report);
  });

  for (const stubborn of [false, true]) {
    test(`child.hung${stubborn ? ' (ignores SIGTERM)' : ''}: names the command, the child is killed with the step`, async () => {
      const o = await runStep('child_hangs', { stubborn }, 800);
      assert.equal(o.status, 'timed_out');
      // Killed at the deadline, the awaited child exits and the tool settles: no grace needed,
      // except for a child that ignores SIGTERM (SIGKILL comes a grace later).
      assert.ok(o.elapsed < 800 + (stubborn ? GRACE : 0) + SLACK, `took ${o.elapsed} ms`);
      assert.equal(o.report.classification.code, 'child.hung', o.report.classification.summary);
      const child = o.report.pending.find((p) => p.kind === 'child');
      assert.ok(child?.pid, 'the report gives the pid');
      assert.match(child.command ?? '', /setInterval/);
      assert.equal(child.killed, 'SIGTERM');
      assertWhereInTools(o.report);
      assert.ok(o.report.lastLogs.some((l) => l.includes(`child ${child.pid} started`)));
      await waitFor(() => (alive(child.pid as number) ? undefined : true), 5000, `child ${child.pid} to be gone`);
    });
  }

  test('lock.wait: names the mutex and the step holding it', async () => {
    const t0 = Date.now();
    const run = await t.submit({
      plan: {
        steps: [
          { name: 'holder', tool: 'lock_holder', inputs: { holdMs: 1500 }, timeoutMs: 5000 },
          { name: 'waiter', tool: 'lock_waiter', timeoutMs: 500 },
        ],
      },
    });
    const done = await t.waitRun(run.id, 10_000);
    assert.equal(done.steps.find((s) => s.name === 'waiter')?.status, 'timed_out');
    assert.equal(done.steps.find((s) => s.name === 'holder')?.status, 'succeeded');
    assert.ok(Date.now() - t0 < 1500 + SLACK + 1000);
    const report = (await t.engine.getStep(run.id, 'waiter')).hangReports[0] as HangReport;
    assert.equal(report.classification.code, 'lock.wait', report.classification.summary);
    assert.match(report.classification.summary, /orders\.csv/);
    assert.match(report.classification.summary, /step holder/);
    assertWhereInTools(report);
  });

  test('lock.wait through ctx.track("lock:...")', async () => {
    const o = await runStep('tracked_lock', {}, 500);
    assert.equal(o.report.classification.code, 'lock.wait');
    assert.match(o.report.classification.summary, /sqlite orders table/);
    assertWhereInTools(o.report);
  });

  test('a tracked promise that never settles is named by its label', async () => {
    const o = await runStep('tracked_never', {}, 500);
    assert.equal(o.report.classification.code, 'promise.tracked');
    assert.match(o.report.classification.summary, /vector index rebuild/);
    assertWhereInTools(o.report);
  });

  test('socket.no_reply: a raw TCP request with no answer, with its peer and bytes', async () => {
    const o = await runStep('socket_no_reply', { port: silentPort }, 600);
    assert.equal(o.report.classification.code, 'socket.no_reply', o.report.classification.summary);
    const sock = o.report.pending.find((p) => p.kind === 'socket');
    assert.equal(sock?.peer, `127.0.0.1:${silentPort}`);
    assert.equal(sock?.bytesOut, 6);
    assert.equal(sock?.bytesIn, 0);
    assertWhereInTools(o.report);
  });

  test('net.connect_timeout: a TCP connect that never completes names the address', async () => {
    const o = await runStep('connect_hangs', { port: blackholePort }, 600);
    assert.equal(o.report.classification.code, 'net.connect_timeout', o.report.classification.summary);
    assert.equal(o.report.pending[0]?.peer, `127.0.0.1:${blackholePort}`);
    assertWhereInTools(o.report);
  });

  test('net.connect_timeout for a fetch: the connect undici is still making, on its address', async () => {
    const o = await runStep('fetch_with_signal', { url: `http://127.0.0.1:${blackholePort}/v1/models` }, 600);
    assert.equal(o.report.classification.code, 'net.connect_timeout', o.report.classification.summary);
    const req = o.report.pending.find((p) => p.kind === 'http');
    assert.equal(req?.client, 'fetch');
    assert.equal(req?.phase, 'connecting');
    assert.equal(req?.peer, `127.0.0.1:${blackholePort}`);
    assertWhereInTools(o.report);
  });

  for (const tool of ['fetch_with_signal', 'fetch_without_signal']) {
    test(`${tool}: a server that accepts and never answers is http.no_headers on that address`, async () => {
      const url = `http://127.0.0.1:${silentPort}/v1/things?api_key=not-for-reports`;
      const o = await runStep(tool, { url }, 600);
      assert.equal(o.status, 'timed_out');
      const withSignal = tool === 'fetch_with_signal';
      assert.ok(o.elapsed < 600 + (withSignal ? 0 : GRACE) + SLACK, `took ${o.elapsed} ms`);
      assert.equal(o.report.ignoredAbort, !withSignal);
      assert.equal(o.report.classification.code, 'http.no_headers', o.report.classification.summary);
      const req = o.report.pending.find((p) => p.kind === 'http');
      assert.equal(req?.phase, 'waiting_headers');
      assert.equal(req?.peer, `127.0.0.1:${silentPort}`);
      assert.equal(req?.method, 'GET');
      assert.equal(req?.url, `http://127.0.0.1:${silentPort}/v1/things?[redacted]`);
      assert.equal(req?.msSinceLastByte, null);
      assert.ok((req?.bytesOut ?? 0) > 0);
      assertWhereInTools(o.report);
      assert.match(req?.frame ?? '', /fixtures\/tools\.ts:\d+:\d+/);
    });
  }

  test('withoutStacks: the request is still tracked and classified, located by its tool', async () => {
    const o = await runStep('fetch_without_stacks', { url: `http://127.0.0.1:${silentPort}/v1/x` }, 500);
    assert.equal(o.report.classification.code, 'http.no_headers');
    const req = o.report.pending.find((p) => p.kind === 'http');
    assert.equal(req?.frame, undefined);
    assert.equal(o.report.where?.file, TOOLS_FILE);
    assert.match(o.report.where?.source ?? '', /run function/);
  });

  test('http.body_stall: node:http, headers then silence', async () => {
    const o = await runStep('http_body_stalls', { url: stallUrl }, 600);
    assert.equal(o.report.classification.code, 'http.body_stall', o.report.classification.summary);
    const req = o.report.pending.find((p) => p.kind === 'http');
    assert.equal(req?.client, 'node:http');
    assert.equal(req?.status, 200);
    assert.equal(req?.phase, 'receiving_body');
    assert.ok((req?.bytesIn ?? 0) > 40);
    assertWhereInTools(o.report);
  });

  test('an LLM call stuck waiting for headers: the LLM code, the operation, the llm tool', async () => {
    const o = await runStep('llm', { prompt: 'hello', provider: 'stuck' }, 800);
    // The provider's own limit is capped by the step's deadline: whichever fires first ends it
    // (failed with trigger "limit", or timed_out with the request still pending at the deadline).
    assert.ok(o.status === 'failed' || o.status === 'timed_out', o.status);
    assert.equal(o.report.classification.code, 'llm.no_headers');
    assert.equal(o.errorCode, 'llm.no_headers');
    assert.equal(o.report.operation?.phase, 'headers');
    assert.match(String(o.report.operation?.url), /\/no_headers\/v1\/chat\/completions$/);
    assert.match(o.report.where?.file ?? '', /src\/tools\/llm\.ts$/);
    const req = o.report.pending.find((p) => p.kind === 'http');
    if (o.status === 'timed_out') assert.equal(req?.phase, 'waiting_headers');
  });

  test('every report carries loop delay, resources, config and reads cause-first', async () => {
    const o = await runStep('child_hangs', {}, 500);
    const r = o.report;
    assert.ok(r.eventLoop && r.eventLoop.maxDelayMs >= 0);
    assert.ok(r.resources.rssBytes > 0 && r.resources.heapUsedBytes > 0);
    assert.ok(Object.keys(r.resources.activeResources).length > 0);
    assert.equal(r.config.node, process.version);
    const text = formatReport(r);
    const lines = text.split('\n');
    assert.match(lines[0] ?? '', /^s attempt 1: child\.hung - child process ".*setInterval.*" \(pid \d+\) was still running/);
    assert.match(lines[1] ?? '', /^ {2}where: .*fixtures\/tools\.ts:\d+:\d+/);
    assert.ok(lines.some((l) => /^ {4}- child process/.test(l)));
    assert.ok(lines.some((l) => l.startsWith('  event loop during the step:')));
    assert.ok(lines.some((l) => l.startsWith('  process: pid')));
  });
});
