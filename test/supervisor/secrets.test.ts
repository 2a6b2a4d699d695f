/**
 * Secrets of any length, end to end with supervised worker processes: a 7-character provider
 * header from a config file, echoed back by the provider (the lab's echo_headers mode), appears in
 * no response, event, SSE frame, CLI output, server log or database file; a header too short to
 * redact is a config error naming its key; and worker processes do not have RUNWARDEN_TOKEN in
 * their environment.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startLab } from '../../src/lab/index.ts';
import { runCli, startServer } from '../cli/helpers.ts';
import { assertNoOrphans, waitFor } from './helpers.ts';

const SHORT = 'Zq7kP2x';
const TOKEN = 'tok-4f9c2e71-secret';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

test('a 7-character provider header echoed by the provider never appears anywhere; workers lack RUNWARDEN_TOKEN', async (t) => {
  const lab = await startLab({ host: '127.0.0.1', port: 0 });
  t.after(() => lab.close());
  const dir = mkdtempSync(join(tmpdir(), 'rw-short-secret-'));
  const data = join(dir, 'data');
  const configFile = join(dir, 'runwarden.config.json');
  writeFileSync(configFile, JSON.stringify({ providers: { echo: { type: 'openai', baseUrl: `${lab.url}/echo_headers/v1`, maxRetries: 0, headers: { 'x-tenant': SHORT } } } }));
  const server = await startServer(['--data-dir', data, '--lab', 'off', '--workers', '1', '--config', configFile], { env: { RUNWARDEN_TOKEN: TOKEN } });
  t.after(async () => {
    await server.stop();
    await assertNoOrphans(data);
    rmSync(dir, { recursive: true, force: true });
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const get = async (path: string): Promise<string> => {
    const res = await fetch(`${server.url}${path}`, { headers: auth, signal: AbortSignal.timeout(10_000) });
    return res.text();
  };

  // The worker process: its environment has no token (and the API process's, as a control, has).
  const health = await waitFor(
    async () => {
      const h = JSON.parse(await get('/health/detailed')) as { supervisor?: { workers: Array<{ pid: number | null; state: string }> } };
      const w = h.supervisor?.workers[0];
      return w?.pid && w.state === 'running' ? w : undefined;
    },
    20_000,
    'the worker process to run',
  );
  const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  assert.ok(environ(server.child.pid as number).includes(`RUNWARDEN_TOKEN=${TOKEN}`), 'control: the process started with the token has it');
  const workerEnv = environ(health.pid as number);
  assert.ok(workerEnv.some((v) => v.startsWith('PATH=')), 'the worker environment was read');
  assert.ok(!workerEnv.some((v) => v.startsWith('RUNWARDEN_TOKEN=')), 'RUNWARDEN_TOKEN is not in the worker environment');
  assert.ok(!workerEnv.some((v) => v.includes(TOKEN)));

  const created = await fetch(`${server.url}/runs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ plan: { steps: [{ name: 'ask', tool: 'llm', inputs: { provider: 'echo', prompt: 'hello' }, timeoutMs: 10_000 }] } }),
  });
  assert.equal(created.status, 201);
  const runId = ((await created.json()) as { id: string }).id;
  await waitFor(async () => (/"status":"(failed|succeeded)"/.test(await get(`/runs/${runId}`)) ? true : undefined), 30_000, 'the run to finish');

  const step = await get(`/runs/${runId}/steps/ask`);
  // The provider did echo the header (else this test proves nothing), and it was redacted.
  assert.match(step, /x-tenant: \[redacted\]/i, step.slice(0, 2000));

  const env = { RUNWARDEN_URL: server.url, RUNWARDEN_TOKEN: TOKEN };
  const cli = await Promise.all([
    runCli(['runs', 'show', runId], { env }),
    runCli(['runs', 'events', runId], { env }),
    runCli(['report', runId], { env }),
    runCli(['runs', 'list'], { env }),
  ]);
  const seen: Record<string, string> = {
    run: await get(`/runs/${runId}`),
    step,
    events: await get(`/runs/${runId}/events`),
    sse: await get(`/runs/${runId}/events/stream`),
    metrics: await get('/metrics'),
    health: await get('/health/detailed'),
    ...Object.fromEntries(cli.map((r, i) => [`cli${i}`, `${r.stdout}\n${r.stderr}`])),
  };
  assert.match(seen.events ?? '', /step\.finished/);
  await server.stop();
  const out = server.output();
  seen.serverLog = `${out.stdout}\n${out.stderr}`;
  // The database, its WAL and anything else the deployment wrote, as bytes.
  const written = files(data);
  assert.ok(written.some((f) => f.endsWith('.db') || f.endsWith('.sqlite')), written.join(', '));
  for (const f of written) seen[f] = readFileSync(f).toString('latin1');

  for (const [where, text] of Object.entries(seen)) {
    assert.ok(!text.includes(SHORT), `the 7-character header value appears in ${where}`);
    assert.ok(!text.includes(TOKEN), `the token appears in ${where}`);
  }
});

test('a provider header shorter than 4 characters is a config error that names the key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rw-short-header-'));
  try {
    const configFile = join(dir, 'runwarden.config.json');
    writeFileSync(configFile, JSON.stringify({ providers: { p: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', headers: { 'x-org': 'ab1' } } } }));
    const r = await runCli(['start', '--port', '0', '--data-dir', join(dir, 'data'), '--lab', 'off', '--config', configFile]);
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /providers\.p\.headers\.x-org must be at least 4 characters/);
    assert.ok(!r.stderr.includes('ab1'), 'the value itself is not shown');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
