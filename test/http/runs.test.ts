/** Runs over real HTTP against a real runtime: create, list, get, cancel, idempotency, steps, artifacts, events. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ArtifactMeta, EventRecord, RunRecord, RunWithSteps, StepDetail } from '../../src/domain/records.ts';
import { createRun, http, plan, startTestRuntime, waitFor, waitForRun } from './helpers.ts';
import type { TestRuntime } from './helpers.ts';

describe('runs API', () => {
  let rt: TestRuntime;
  let url: string;
  before(async () => {
    rt = await startTestRuntime();
    url = rt.url;
  });
  after(async () => {
    await rt.close();
  });

  test('POST /runs creates a run (201) that runs to success; GET /runs/:id returns it with its steps', async () => {
    const res = await http<RunWithSteps & { created: boolean }>(url, '/runs', {
      body: plan([
        { name: 'a', tool: 'echo', inputs: { word: 'hi' } },
        { name: 'b', tool: 'echo', inputs: { again: '{{steps.a.outputs.word}}' }, dependsOn: ['a'] },
      ]),
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.created, true);
    assert.equal(res.headers.get('location'), `/runs/${res.body.id}`);
    assert.deepEqual(
      res.body.steps.map((s) => s.name),
      ['a', 'b'],
    );
    const done = await waitForRun(url, res.body.id);
    assert.equal(done.status, 'succeeded');
    const got = await http<RunWithSteps>(url, `/runs/${res.body.id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.steps.find((s) => s.name === 'b')?.status, 'succeeded');
    assert.deepEqual(got.body.steps.find((s) => s.name === 'b')?.outputs, { again: 'hi' });
  });

  test('idempotencyKey: the second POST answers 200 with the same run and created=false', async () => {
    const body = plan([{ name: 'only', tool: 'echo', inputs: {} }], { idempotencyKey: `key-${Date.now()}` });
    const first = await http<RunWithSteps & { created: boolean }>(url, '/runs', { body });
    const second = await http<RunWithSteps & { created: boolean }>(url, '/runs', { body });
    assert.equal(first.status, 201);
    assert.equal(first.body.created, true);
    assert.equal(second.status, 200);
    assert.equal(second.body.created, false);
    assert.equal(second.body.id, first.body.id);
  });

  test('GET /runs filters by status and label (key:value and key=value) and pages with a cursor', async () => {
    const tag = `t${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createRun(url, plan([{ name: 's', tool: 'echo', inputs: { i } }], { labels: { batch: tag } }))).id);
    for (const id of ids) await waitForRun(url, id);

    for (const label of [`batch:${tag}`, `batch=${tag}`]) {
      const res = await http<{ runs: RunRecord[]; nextCursor: string | null }>(url, `/runs?label=${encodeURIComponent(label)}`);
      assert.equal(res.status, 200);
      assert.deepEqual(new Set(res.body.runs.map((r) => r.id)), new Set(ids));
    }
    const page1 = await http<{ runs: RunRecord[]; nextCursor: string | null }>(url, `/runs?label=batch:${tag}&limit=2`);
    assert.equal(page1.body.runs.length, 2);
    assert.ok(page1.body.nextCursor, 'a full page has a next cursor');
    const page2 = await http<{ runs: RunRecord[]; nextCursor: string | null }>(url, `/runs?label=batch:${tag}&limit=2&cursor=${encodeURIComponent(page1.body.nextCursor)}`);
    assert.equal(page2.body.runs.length, 1);
    assert.deepEqual(new Set([...page1.body.runs, ...page2.body.runs].map((r) => r.id)), new Set(ids));

    const succeeded = await http<{ runs: RunRecord[] }>(url, `/runs?status=succeeded&label=batch:${tag}`);
    assert.equal(succeeded.body.runs.length, 3);
    const failed = await http<{ runs: RunRecord[] }>(url, `/runs?status=failed&label=batch:${tag}`);
    assert.equal(failed.body.runs.length, 0);
  });

  test('POST /runs/:id/cancel aborts the running step and cancels the rest', async () => {
    const run = await createRun(
      url,
      plan([
        { name: 'long', tool: 'sleep', inputs: { ms: 30_000 }, timeoutMs: 60_000 },
        { name: 'after', tool: 'echo', inputs: {}, dependsOn: ['long'] },
      ]),
    );
    await waitFor(
      async () => ((await http<RunWithSteps>(url, `/runs/${run.id}`)).body.steps[0]?.status === 'running' ? true : undefined),
      10_000,
      'the sleep step to run',
    );
    const started = Date.now();
    const res = await http<RunWithSteps>(url, `/runs/${run.id}/cancel`, { method: 'POST' });
    assert.equal(res.status, 200);
    const done = await waitForRun(url, run.id, 10_000);
    assert.ok(Date.now() - started < 10_000, 'cancellation does not wait for the 30 s sleep');
    assert.equal(done.status, 'cancelled');
    assert.deepEqual(
      done.steps.map((s) => s.status),
      ['cancelled', 'cancelled'],
    );
  });

  test('POST /runs/:id/cancel accepts an empty JSON body and an empty form body', async () => {
    const run = await createRun(url, plan([{ name: 'x', tool: 'sleep', inputs: { ms: 20_000 } }]));
    const a = await http(url, `/runs/${run.id}/cancel`, { method: 'POST', raw: '', headers: { 'content-type': 'application/json' } });
    assert.equal(a.status, 200);
    const b = await http(url, `/runs/${run.id}/cancel`, { method: 'POST', raw: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(b.status, 200);
    assert.equal((await waitForRun(url, run.id)).status, 'cancelled');
  });

  test('GET /runs/:id/steps/:name returns attempts and outputs; a failing tool records its error', async () => {
    const run = await createRun(
      url,
      plan([
        { name: 'ok', tool: 'echo', inputs: { v: 1 } },
        { name: 'bad', tool: 'explode', inputs: {} },
      ]),
    );
    const done = await waitForRun(url, run.id);
    assert.equal(done.status, 'failed');
    const ok = await http<StepDetail>(url, `/runs/${run.id}/steps/ok`);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.outputs, { v: 1 });
    assert.equal(ok.body.attemptsDetail.length, 1);
    assert.ok(Array.isArray(ok.body.hangReports));
    const bad = await http<StepDetail>(url, `/runs/${run.id}/steps/bad`);
    assert.equal(bad.body.status, 'failed');
    assert.match(JSON.stringify(bad.body.error), /boom on purpose/);
    const missing = await http(url, `/runs/${run.id}/steps/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'NOT_FOUND');
  });

  test('artifacts: listed per run, served raw with their MIME type and a content-disposition', async () => {
    const name = 'notes "v1" é.txt';
    const run = await createRun(url, plan([{ name: 'w', tool: 'write_file', inputs: { name, content: 'hello artifact', mime: 'text/plain' } }]));
    assert.equal((await waitForRun(url, run.id)).status, 'succeeded');
    const list = await http<{ artifacts: ArtifactMeta[] }>(url, `/runs/${run.id}/artifacts`);
    assert.equal(list.status, 200);
    assert.equal(list.body.artifacts.length, 1);
    const meta = list.body.artifacts[0];
    assert.ok(meta);
    assert.equal(meta.name, name);
    const res = await fetch(`${url}/artifacts/${meta.id}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const cd = res.headers.get('content-disposition') ?? '';
    assert.match(cd, /^attachment; filename="notes _v1_ _\.txt"; filename\*=UTF-8''notes%20%22v1%22%20%C3%A9\.txt$/);
    assert.equal(await res.text(), 'hello artifact');
    const missing = await http(url, '/artifacts/does-not-exist');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'NOT_FOUND');
  });

  test('GET /runs/:id/events pages with after and limit', async () => {
    const run = await createRun(url, plan([{ name: 'a', tool: 'echo', inputs: {} }, { name: 'b', tool: 'echo', inputs: {}, dependsOn: ['a'] }]));
    await waitForRun(url, run.id);
    const all = await http<{ events: EventRecord[]; nextAfter: number }>(url, `/runs/${run.id}/events`);
    assert.equal(all.status, 200);
    const seqs = all.body.events.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(all.body.events[0]?.type, 'run.created');
    assert.equal(all.body.events.at(-1)?.type, 'run.finished');
    assert.equal(all.body.events.filter((e) => e.type === 'step.finished').length, 2);

    const first = all.body.events[0]?.seq ?? 0;
    const page = await http<{ events: EventRecord[]; nextAfter: number }>(url, `/runs/${run.id}/events?after=${first}&limit=2`);
    assert.deepEqual(
      page.body.events.map((e) => e.seq),
      seqs.slice(1, 3),
    );
    assert.equal(page.body.nextAfter, seqs[2]);
    const end = await http<{ events: EventRecord[]; nextAfter: number }>(url, `/runs/${run.id}/events?after=${seqs.at(-1)}`);
    assert.deepEqual(end.body.events, []);
    assert.equal(end.body.nextAfter, seqs.at(-1));
  });

  test('unknown runs are a coded 404 on every per-run route', async () => {
    for (const [method, path] of [
      ['GET', '/runs/nope'],
      ['POST', '/runs/nope/cancel'],
      ['GET', '/runs/nope/events'],
      ['GET', '/runs/nope/events/stream'],
      ['GET', '/runs/nope/steps/x'],
      ['GET', '/runs/nope/artifacts'],
    ] as const) {
      const res = await http(url, path, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.body.error.code, 'NOT_FOUND', `${method} ${path}`);
    }
  });

  test('GET /health answers without the database; /health/detailed and /steps/stuck report the engine', async () => {
    const h = await http(url, '/health');
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    const d = await http(url, '/health/detailed');
    assert.equal(d.status, 200);
    assert.equal(d.body.database.ok, true);
    assert.equal(d.body.migrations.pending, 0);
    assert.equal(typeof d.body.version, 'string');
    const stuck = await http(url, '/steps/stuck');
    assert.equal(stuck.status, 200);
    assert.deepEqual(stuck.body.steps, []);
  });
});
