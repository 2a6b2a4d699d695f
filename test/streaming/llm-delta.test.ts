/**
 * Streamed LLM output: `llm.delta` frames on a run's SSE stream while an `llm` step streams from the
 * lab (a real socket, 40 ms between chunks), before that step's `step.finished`; never stored; shown
 * by `runwarden submit --follow`; and a reader that stops reading does not hold the step up.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request, type IncomingMessage } from 'node:http';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { BIN, cleanEnv, NODE } from '../cli/helpers.ts';
import { startDeployment } from '../supervisor/helpers.ts';

interface Frame {
  event: string;
  data: Record<string, unknown>;
}

/** Reads an SSE response into frames as they arrive. */
function collectFrames(res: IncomingMessage, frames: Frame[]): Promise<void> {
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) frames.push({ event, data: JSON.parse(data) as Record<string, unknown> });
    }
  });
  return new Promise((resolve, reject) => {
    res.on('end', resolve);
    res.on('error', reject);
  });
}

function openStream(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream' } }, resolve);
    req.on('error', reject);
    req.end();
  });
}

const PROMPT = 'Tell a long story about a run engine in which no step can hang silently, please.';

describe('llm.delta streaming', () => {
  let lab: Lab;
  let rt: TestRuntime;
  const dir = mkdtempSync(join(tmpdir(), 'rw-stream-'));

  before(async () => {
    lab = await startLab({ host: '127.0.0.1', port: 0 });
    const toolsFile = join(import.meta.dirname, '..', 'fixtures', 'stream-tools.ts');
    rt = await startTestRuntime({
      tools: [toolsFile],
      providers: { slow: { type: 'openai', baseUrl: `${lab.url}/healthy;chunk_ms=40/v1` } },
    });
  });
  after(async () => {
    await rt?.close();
    await lab?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an llm step streams llm.delta frames to an SSE client before its step.finished; the final text is stored, the deltas are not', async () => {
    const run = await rt.submit({ plan: { steps: [{ name: 'write', tool: 'llm', inputs: { prompt: PROMPT, provider: 'slow' } }] } });
    const res = await openStream(`${rt.url}/runs/${run.id}/events/stream`);
    const frames: Frame[] = [];
    await collectFrames(res, frames);

    const finishedAt = frames.findIndex((f) => f.event === 'step.finished');
    assert.ok(finishedAt > 0, 'the stream carries step.finished');
    const deltas = frames.slice(0, finishedAt).filter((f) => f.event === 'llm.delta');
    // ~20 chunks 40 ms apart, coalesced every 75 ms: several frames, far fewer than chunks.
    assert.ok(deltas.length >= 3, `expected several delta frames before step.finished, got ${deltas.length}`);
    assert.equal(frames.slice(finishedAt).filter((f) => f.event === 'llm.delta').length, 0, 'no delta after step.finished');
    for (const d of deltas) {
      assert.equal(d.data.stepName, 'write');
      assert.equal(d.data.attempt, 1);
      assert.equal(d.data.runId, run.id);
      assert.equal('token' in d.data, false, 'the lease token never travels');
    }
    const streamed = deltas.map((d) => String(d.data.text)).join('');
    const offsets = deltas.map((d) => Number(d.data.offset));
    assert.deepEqual(offsets, deltas.map((_, i) => deltas.slice(0, i).reduce((n, d) => n + String(d.data.text).length, 0)), 'offsets are contiguous');

    const done = await rt.waitRun(run.id);
    assert.equal(done.status, 'succeeded');
    const outputs = done.steps[0]?.outputs as { text: string };
    assert.equal(streamed, outputs.text, 'the deltas add up to the stored text');
    const stored = await rt.events(run.id);
    assert.equal(stored.filter((e) => e.type === 'llm.delta').length, 0, 'deltas are not stored');
  });

  test('`runwarden submit --follow` prints the text as it comes, before the step finishes', async () => {
    const plan = join(dir, 'plan.json');
    writeFileSync(plan, JSON.stringify({ plan: { steps: [{ name: 'write', tool: 'llm', inputs: { prompt: PROMPT, provider: 'slow' } }] } }));
    const child = spawn(NODE, [BIN, 'submit', plan, '--follow', '--url', rt.url], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    // Each chunk of stdout as it arrives, so the test can see text printed before step.finished.
    const chunks: string[] = [];
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => chunks.push(c));
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, stderr);
    const out = chunks.join('');
    const textLines = out.split('\n').filter((l) => l.startsWith('write │ '));
    assert.ok(textLines.length >= 1, `streamed text printed:\n${out}`);
    const firstText = out.indexOf('write │ ');
    const finished = out.search(/step\.finished write/);
    assert.ok(firstText !== -1 && finished > firstText, `text printed before step.finished:\n${out}`);
    // Arrived in more than one piece: the text came as it was generated, not all at the end.
    const firstChunk = chunks.findIndex((c) => c.includes('write │ '));
    const finishedChunk = chunks.findIndex((c) => /step\.finished write/.test(c));
    const textChunks = chunks.slice(firstChunk, finishedChunk === -1 ? undefined : finishedChunk + 1).filter((c) => !/^\d\d:\d\d/.test(c));
    assert.ok(textChunks.length >= 2, `text came in several pieces: ${JSON.stringify(chunks)}`);
    assert.match(out.replace(/\nwrite │ /g, ''), /Lab answer — you asked about/);
  });

  test('a reader that stops reading does not slow the step: its frames are dropped, the stream goes on', async () => {
    // 8 MB of text streamed as fast as the tool can: far more than the paused socket's buffers hold.
    const run = await rt.submit({ plan: { steps: [{ name: 'flood', tool: 'chatter', inputs: { kb: 8192 } }] } });
    const res = await openStream(`${rt.url}/runs/${run.id}/events/stream`);
    res.pause();
    // The step finishes while its only reader reads nothing.
    const done = await rt.waitRun(run.id, 30_000);
    assert.equal(done.status, 'succeeded');
    const frames: Frame[] = [];
    const ended = collectFrames(res, frames);
    res.resume();
    await ended;
    const deltaChars = frames.filter((f) => f.event === 'llm.delta').reduce((n, f) => n + String(f.data.text).length, 0);
    assert.ok(frames.some((f) => f.event === 'run.finished'), 'the stored events still all arrive');
    assert.ok(deltaChars < 8192 * 1024, `some frames were dropped for the paused reader (${deltaChars} chars delivered)`);
  });

  test('supervised worker processes (`runwarden start`, SQLite) relay their frames to the API process', async (t) => {
    const config = join(dir, 'runwarden.config.json');
    writeFileSync(config, JSON.stringify({ providers: { slow: { type: 'openai', baseUrl: `${lab.url}/healthy;chunk_ms=40/v1` } } }));
    const d = await startDeployment(t, { workers: 1, args: ['--config', config] });
    const runId = await d.submit([{ name: 'write', tool: 'llm', inputs: { prompt: PROMPT, provider: 'slow' } }]);
    const frames: Frame[] = [];
    await collectFrames(await openStream(`${d.url}/runs/${runId}/events/stream`), frames);
    const finishedAt = frames.findIndex((f) => f.event === 'step.finished');
    const deltas = frames.slice(0, finishedAt).filter((f) => f.event === 'llm.delta');
    assert.ok(deltas.length >= 3, `frames crossed from the worker process: ${deltas.length}`);
    const run = await d.waitRun(runId);
    assert.equal(deltas.map((f) => String(f.data.text)).join(''), (run.steps[0]?.outputs as { text: string }).text);
  });
});
