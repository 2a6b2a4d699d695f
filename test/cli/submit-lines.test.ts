/**
 * `runwarden submit runs.jsonl` against a real `runwarden start`: every line becomes a run through
 * POST /runs/batch, ids printed in line order; a file with a bad line creates nothing and names the
 * line; and the TypeScript client's `runs.createMany` on the same server.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from '../../src/client/index.ts';
import { killAll, runCli, startServer, type ServerProcess } from './helpers.ts';

after(killAll);

describe('submit a JSON-lines file', () => {
  let dir: string;
  let server: ServerProcess;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rw-cli-lines-'));
    server = await startServer(['--data-dir', join(dir, 'data'), '--lab', 'off', '--workers', '1']);
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('every line becomes a run, ids in line order; --json says line, id and created', async () => {
    const file = join(dir, 'runs.jsonl');
    const lines = Array.from({ length: 5 }, (_, i) => JSON.stringify({ plan: { steps: [{ name: 's', tool: 'echo', inputs: { i } }] }, labels: { file: 'lines' } }));
    await writeFile(file, `${lines.slice(0, 3).join('\n')}\n\n${lines.slice(3).join('\n')}\n`);
    const res = await runCli(['submit', file, '--url', server.url]);
    assert.equal(res.code, 0, res.stderr);
    const ids = res.stdout.trim().split('\n');
    assert.equal(ids.length, 5);
    const client = createClient({ baseUrl: server.url });
    for (const [i, id] of ids.entries()) {
      const run = await client.waitForRun(id, { timeoutMs: 30_000 });
      assert.equal(run.status, 'succeeded');
      assert.deepEqual(run.steps[0]?.outputs, { i });
    }
    const keyed = join(dir, 'keyed.jsonl');
    await writeFile(keyed, JSON.stringify({ plan: { steps: [{ name: 's', tool: 'echo' }] }, idempotencyKey: 'lines-key' }));
    const first = await runCli(['submit', keyed, '--json', '--url', server.url]);
    const second = await runCli(['submit', keyed, '--json', '--url', server.url]);
    const a = JSON.parse(first.stdout) as { line: number; id: string; created: boolean };
    const b = JSON.parse(second.stdout) as { line: number; id: string; created: boolean };
    assert.deepEqual([a.line, a.created, b.line, b.created, b.id], [1, true, 1, false, a.id]);
    assert.match(second.stderr, /exists already/);
  });

  test('a bad line: nothing is created, and the error names the line', async () => {
    const file = join(dir, 'bad.jsonl');
    await writeFile(file, [{ plan: { steps: [{ name: 's', tool: 'echo' }] }, labels: { bad: 'yes' } }, { plan: { steps: [{ name: 's', tool: 'teleport' }] } }].map((l) => JSON.stringify(l)).join('\n'));
    const res = await runCli(['submit', file, '--url', server.url]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /PLAN_INVALID/);
    assert.match(res.stderr, /bad\.jsonl:2 plan\.steps\.0\.tool/);
    const listed = JSON.parse((await runCli(['runs', 'list', '--label', 'bad=yes', '--json', '--url', server.url])).stdout) as { runs: unknown[] };
    assert.deepEqual(listed.runs, []);
    const notJson = join(dir, 'broken.jsonl');
    await writeFile(notJson, '{"plan":\n');
    const broken = await runCli(['submit', notJson, '--url', server.url]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /broken\.jsonl:1 is not valid JSON/);
  });

  test('the client: runs.createMany', async () => {
    const client = createClient({ baseUrl: server.url });
    const out = await client.runs.createMany([{ plan: { steps: [{ name: 'a', tool: 'echo', inputs: { n: 1 } }] } }, { plan: { steps: [{ name: 'a', tool: 'echo', inputs: { n: 2 } }] } }]);
    assert.equal(out.runs.length, 2);
    assert.ok(out.runs.every((r) => r.created));
    const second = await client.waitForRun(out.runs[1]?.id as string, { timeoutMs: 30_000 });
    assert.deepEqual(second.steps[0]?.outputs, { n: 2 });
    await assert.rejects(client.runs.createMany([{ plan: { steps: [{ name: 'a', tool: 'nope' }] } }]), (err: { code?: string; details?: Array<{ path?: string }> }) => {
      assert.equal(err.code, 'PLAN_INVALID');
      assert.equal(err.details?.[0]?.path, 'runs.0.plan.steps.0.tool');
      return true;
    });
  });
});
