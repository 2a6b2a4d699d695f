/** The CLI end to end: a real `runwarden start` child, real `runwarden` client children. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { killAll, runCli, startServer } from './helpers.ts';
import type { ServerProcess } from './helpers.ts';

const RUN_ID = /^[0-9a-f-]{20,}$/;

// Whatever a failed test left running is killed (SIGTERM, then SIGKILL).
after(killAll);

describe('runwarden CLI against a running server', () => {
  let dir: string;
  let server: ServerProcess;
  let url: string;
  const file = async (name: string, content: unknown): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rw-cli-'));
    server = await startServer(['--data-dir', join(dir, 'data'), '--lab', 'off', '--workers', '1']);
    url = server.url;
  });
  after(async () => {
    killAll();
    const code = await server.stop();
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, `start exits 0 on SIGTERM: ${server.output().stderr}`);
  });

  test('start prints its URL, where the data lives, and serves', async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.output().stdout, new RegExp(`^data: ${join(dir, 'data').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(SQLite\\)$`, 'm'));
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
  });

  test('submit examples/hello.json --follow: one line per event, exit 0', async () => {
    const r = await runCli(['submit', 'examples/hello.json', '--follow', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', RUN_ID);
    const id = lines[0];
    assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} step\.finished greet succeeded \d+ms$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} step\.started pause attempt 1$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} run\.finished succeeded/.test(l)), r.stdout);
    assert.equal(lines.at(-1), `run ${id} succeeded`);
    assert.ok(!r.stdout.includes('\u001b['), 'no ANSI when stdout is not a TTY');
  });

  test('submit without --follow prints only the run id', async () => {
    const r = await runCli(['submit', 'examples/hello.json'], { env: { RUNWARDEN_URL: url } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), RUN_ID);
    assert.equal(r.stdout.trim().split('\n').length, 1);
  });

  test('a failing plan exits 1 and says why', async () => {
    const plan = await file('fail.json', { plan: { steps: [{ name: 'slow', tool: 'sleep', inputs: { ms: 5000 }, timeoutMs: 150 }] } });
    const r = await runCli(['submit', plan, '--follow', '--url', url]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /step\.finished slow timed_out/);
    assert.match(r.stdout.trim().split('\n').at(-1) ?? '', /^run \S+ failed/);
  });

  test('an invalid plan exits 2 with the error code, message and each detail', async () => {
    const plan = await file('invalid.json', { plan: { steps: [{ name: 'a', tool: 'teleport' }, { name: 'b', tool: 'echo', dependsOn: ['ghost'] }] } });
    const r = await runCli(['submit', plan, '--url', url]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: PLAN_INVALID: /m);
    assert.match(r.stderr, /^ {2}- plan\.steps\.0\.tool: .*teleport.* \(UNKNOWN_TOOL\)$/m);
    assert.match(r.stderr, /ghost/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  test('unreadable and non-JSON plan files exit 2', async () => {
    const missing = await runCli(['submit', join(dir, 'nope.json'), '--url', url]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read plan file .*nope\.json: no such file/);
    const notJson = await runCli(['submit', await file('bad.json', '{"plan": '), '--url', url]);
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /is not valid JSON/);
  });

  test('a dead URL exits 3 and names the URL', async () => {
    const port = await closedPort();
    const dead = `http://127.0.0.1:${port}`;
    for (const args of [['submit', 'examples/hello.json', '--follow'], ['runs', 'list']]) {
      const r = await runCli([...args, '--url', dead], { timeoutMs: 20_000 });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot reach the runwarden API at ${dead}: connection refused`));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  test('runs list / show / events, as tables and as JSON', async () => {
    const sub = await runCli(['submit', 'examples/hello.json', '--follow', '--url', url]);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.split('\n')[0] ?? '';

    const list = await runCli(['runs', 'list', '--url', url, '--label', 'example=hello', '--status', 'succeeded']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+STATUS\s+STEPS\s+CREATED\s+DURATION\s+GOAL\s+LABELS$/m);
    assert.match(list.stdout, new RegExp(`^${id}\\s+succeeded\\s+3/3`, 'm'));
    const listJson = await runCli(['runs', 'list', '--url', url, '--json', '--limit', '2']);
    const page = JSON.parse(listJson.stdout) as { runs: Array<{ id: string }>; nextCursor: string | null };
    assert.equal(page.runs.length, 2);

    const show = await runCli(['runs', 'show', id, '--url', url]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^status +succeeded$/m);
    assert.match(show.stdout, /^greet +echo +succeeded +1 /m);
    assert.match(show.stdout, /^pause +sleep +succeeded +1 /m);
    const showJson = JSON.parse((await runCli(['runs', 'show', id, '--json', '--url', url])).stdout) as { id: string; steps: unknown[] };
    assert.equal(showJson.id, id);
    assert.equal(showJson.steps.length, 3);

    const events = await runCli(['runs', 'events', id, '--url', url]);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /^ +1 \d\d:\d\d:\d\d\.\d{3} run\.created/m);
    assert.match(events.stdout, /run\.finished succeeded/);
    const ndjson = (await runCli(['runs', 'events', id, '--json', '--after', '2', '--url', url])).stdout.trim().split('\n');
    const parsed = ndjson.map((l) => JSON.parse(l) as { seq: number });
    assert.equal(parsed[0]?.seq, 3);
    assert.ok(parsed.every((e, i) => i === 0 || e.seq > (parsed[i - 1]?.seq ?? 0)));

    const missing = await runCli(['runs', 'show', 'no-such-run', '--url', url]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: NOT_FOUND: /m);
  });

  test('runs cancel stops a running run', async () => {
    const plan = await file('long.json', { plan: { steps: [{ name: 'long', tool: 'sleep', inputs: { ms: 30_000 } }] } });
    const sub = await runCli(['submit', plan, '--url', url]);
    const id = sub.stdout.trim();
    const cancel = await runCli(['runs', 'cancel', id, '--url', url]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, new RegExp(`^run ${id}: \\w+$`, 'm'));
    const deadline = Date.now() + 10_000;
    let status = '';
    while (Date.now() < deadline) {
      status = (JSON.parse((await runCli(['runs', 'show', id, '--json', '--url', url])).stdout) as { status: string }).status;
      if (status === 'cancelled') break;
    }
    assert.equal(status, 'cancelled');
  });

  test('report prints the hang report of a timed-out step, cause first', async () => {
    const plan = await file('hang.json', { plan: { steps: [{ name: 'stuck', tool: 'sleep', inputs: { ms: 5000 }, timeoutMs: 150 }, { name: 'fine', tool: 'echo', inputs: {} }] } });
    const sub = await runCli(['submit', plan, '--follow', '--url', url]);
    const id = sub.stdout.split('\n')[0] ?? '';
    const all = await runCli(['report', id, '--url', url]);
    assert.equal(all.code, 0, all.stderr);
    const first = all.stdout.split('\n')[0] ?? '';
    assert.match(first, /^stuck attempt 1: \S+ - .+/);
    const one = await runCli(['report', id, 'fine', '--url', url]);
    assert.equal(one.code, 0);
    assert.match(one.stdout, /^no hang reports for run \S+, step fine$/m);
    const json = JSON.parse((await runCli(['report', id, '--json', '--url', url])).stdout) as Array<{ step: string }>;
    assert.deepEqual(
      json.map((r) => r.step),
      ['stuck'],
    );
  });

  test('submit --follow resumes with Last-Event-ID when the connection drops', async () => {
    const target = new URL(url);
    const proxy = await tcpProxy(Number(target.port));
    try {
      const plan = await file('resume.json', {
        plan: {
          steps: [
            { name: 'first', tool: 'echo', inputs: {} },
            { name: 'nap', tool: 'sleep', inputs: { ms: 1500 }, dependsOn: ['first'] },
            { name: 'last', tool: 'echo', inputs: {}, dependsOn: ['nap'] },
          ],
        },
      });
      // Cut the event stream while the run is mid-way (the 1.5 s sleep has started).
      const cutter = setInterval(() => {
        if (!proxy.cut && proxy.streamSaw('"stepName":"nap"')) proxy.cutStreams();
      }, 10);
      const r = await runCli(['submit', plan, '--follow', '--url', `http://127.0.0.1:${proxy.port}`], { timeoutMs: 30_000 });
      clearInterval(cutter);
      assert.ok(proxy.cut, 'the connection was cut');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /event stream lost .*; resuming after event \d+/);
      for (const step of ['first', 'nap', 'last']) {
        assert.equal(r.stdout.split('\n').filter((l) => l.includes(`step.finished ${step} `)).length, 1, `exactly one step.finished ${step}:\n${r.stdout}`);
      }
      assert.equal(r.stdout.split('\n').filter((l) => / run\.finished /.test(l)).length, 1);
    } finally {
      await proxy.close();
    }
  });
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A real TCP relay to the server; the test can cut its event-stream connections. */
async function tcpProxy(targetPort: number): Promise<{ port: number; streamSaw(text: string): boolean; readonly cut: boolean; cutStreams(): void; close(): Promise<void> }> {
  const conns = new Set<{ client: Socket; upstream: Socket; seen: string }>();
  const state = { cut: false };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const conn = { client, upstream, seen: '' };
    conns.add(conn);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.on('data', (d: Buffer) => {
      if (conn.seen.length < 1 << 20) conn.seen += d.toString('utf8');
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      conns.delete(conn);
    };
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const streams = () => [...conns].filter((c) => c.seen.includes('text/event-stream'));
  return {
    port: (server.address() as AddressInfo).port,
    streamSaw: (text) => streams().some((c) => c.seen.includes(text)),
    get cut() {
      return state.cut;
    },
    cutStreams() {
      state.cut = true;
      for (const c of streams()) {
        c.client.resetAndDestroy();
        c.upstream.destroy();
      }
    },
    close: async () => {
      for (const c of conns) {
        c.client.destroy();
        c.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
