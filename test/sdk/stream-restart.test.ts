/**
 * The client's event stream survives the server being restarted in the middle of a run: a real
 * `runwarden start` is stopped (gracefully, and by SIGKILL) while the client follows a run, and
 * started again on the same port and data; the stream reconnects with Last-Event-ID and delivers
 * every event exactly once, in order, up to run.finished: the same list the server stored.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createClient, type Event } from '../../src/index.ts';
import { BIN, cleanEnv, NODE, ROOT } from '../cli/helpers.ts';

const children = new Set<ChildProcess>();

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `runwarden start` on `port` and `dataDir`, resolved once it listens. */
async function start(port: number, dataDir: string): Promise<ChildProcess> {
  const child = spawn(NODE, [BIN, 'start', '--port', String(port), '--data-dir', dataDir, '--workers', '1', '--lab', 'off'], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runwarden start did not listen within 20 s:\n${out}`)), 20_000);
    const look = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('runwarden listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', look);
    child.stderr?.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`runwarden start exited with ${code}:\n${out}`));
    });
  });
  child.removeAllListeners('exit');
  return child;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(t);
  }
  children.delete(child);
}

after(async () => {
  for (const c of children) await stop(c, 'SIGKILL');
});

describe('the client stream across a server restart', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`stopped by ${signal} mid-run and started again: every event once, in order, to run.finished`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'rw-restart-'));
      const port = await freePort();
      let server = await start(port, dataDir);
      try {
        const client = createClient({ baseUrl: `http://127.0.0.1:${port}` });
        // Eight sleeps in a row, as the JSON plan (the wire format) a loop writes most simply.
        const steps = Array.from({ length: 8 }, (_, i) => ({ name: `s${i + 1}`, tool: 'sleep', inputs: { ms: 300 }, ...(i > 0 ? { dependsOn: [`s${i}`] } : {}) }));
        const run = await client.runs.create({ plan: { goal: `restart by ${signal}`, steps } });

        const seen: Event[] = [];
        const reconnects: number[] = [];
        let restarted: Promise<void> | undefined;
        for await (const e of client.stream(run.id, { onReconnect: (afterSeq) => reconnects.push(afterSeq) })) {
          seen.push(e);
          if (!restarted && e.type === 'step.finished' && e.stepName === 's3') {
            // Restart while the stream is open and the run has five steps to go.
            restarted = (async () => {
              await stop(server, signal);
              server = await start(port, dataDir);
            })();
          }
        }
        await restarted;
        assert.ok(restarted, 'the server was restarted during the run');
        assert.ok(reconnects.length >= 1, 'the stream reconnected');
        assert.equal(seen.at(-1)?.type, 'run.finished');
        assert.deepEqual(seen.map((e) => e.seq), seen.map((_, i) => i + 1), 'no event lost, none repeated');
        const stored = await client.events(run.id, { limit: 10_000 });
        assert.deepEqual(seen, stored.events, 'the stream delivered exactly what the server stored');
        assert.equal((await client.runs.get(run.id)).status, 'succeeded');
      } finally {
        await stop(server, 'SIGTERM');
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
