import assert from 'node:assert/strict';
import { RunwardenError } from '../../src/domain/errors.ts';
import { conformance } from './harness.ts';
import { artifact, Clock, coreAt, createRun, done, events } from './fixtures.ts';

const BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

conformance('artifacts and vectors', (it) => {
  it('artifacts commit together with their completion', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }]);
    const [c] = await core.claim('w1', 1, 5000);
    assert.ok(c);
    const text = new TextEncoder().encode('# Hello World\n');
    assert.deepEqual(
      await core.flush([], [done(c, { artifacts: [artifact(c, 'art_readme', 'README.md', text, 'text/markdown'), artifact(c, 'art_bin', 'all.bin', BYTES)] })]),
      [{ applied: true }],
    );
    const metas = await ctx.store.listArtifacts(runId);
    assert.deepEqual(
      metas.map((m) => [m.id, m.name, m.mime, m.size, m.stepName, m.attempt]).sort(),
      [
        ['art_bin', 'all.bin', 'application/octet-stream', 256, 'a', 1],
        ['art_readme', 'README.md', 'text/markdown', text.byteLength, 'a', 1],
      ],
    );
    const bin = await ctx.store.getArtifact('art_bin');
    assert.ok(bin);
    assert.ok(Buffer.isBuffer(bin.content));
    assert.deepEqual([...bin.content], [...BYTES]);
    assert.equal((await ctx.store.getArtifact('art_readme'))?.content.toString('utf8'), '# Hello World\n');
    assert.equal(await ctx.store.getArtifact('art_missing'), null);
    const types = (await events(ctx.store, runId)).map((e) => e.type);
    const i = types.indexOf('step.finished');
    assert.deepEqual(types.slice(i - 2), ['artifact.created', 'artifact.created', 'step.finished', 'run.finished']);
    assert.equal((await ctx.store.getStep(runId, 'a'))?.status, 'succeeded');
  });

  it('a completion that does not commit leaves no artifact behind', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }, { name: 'b' }]);
    const claims = await core.claim('w1', 2, 5000);
    const [a, b] = claims;
    assert.ok(a && b);
    // 1. The transaction fails after the artifact was written: nothing of it stays.
    const boom = new Error('crash between writes');
    await assert.rejects(
      ctx.store.transaction(async (tx) => {
        await tx.insertArtifacts([artifact(a, 'art_rolled_back', 'x.txt', BYTES)]);
        await tx.updateSteps([{ runId, name: a.stepName, expectStatus: ['running'], expectToken: a.token, patch: { status: 'succeeded' } }]);
        throw boom;
      }),
      boom,
    );
    assert.equal(await ctx.store.getArtifact('art_rolled_back'), null);
    assert.equal((await ctx.store.getStep(runId, a.stepName))?.status, 'running');
    // 2. A stale token: the completion is discarded with its artifacts.
    assert.deepEqual(await core.flush([], [done(a, { token: 'stale', artifacts: [artifact(a, 'art_stale', 'x.txt', BYTES)] })]), [{ applied: false, refused: 'lease_lost' }]);
    assert.equal(await ctx.store.getArtifact('art_stale'), null);
    // 3. A failed attempt's artifacts are not kept.
    await core.flush([], [{ ...done(b), outcome: 'failed', error: { code: 'E', message: 'e', retryable: false }, artifacts: [artifact(b, 'art_failed', 'x.txt', BYTES)] }]);
    assert.equal(await ctx.store.getArtifact('art_failed'), null);
    assert.deepEqual(await ctx.store.listArtifacts(runId), []);
  });

  it('vectors: exact top-k by cosine similarity, dimension checks, and writes from other processes seen', async (ctx) => {
    const v = ctx.store.vectors;
    assert.deepEqual(await v.query('docs', [1, 0, 0], 3), [], 'an unknown collection is empty');
    assert.equal(await v.count('docs'), 0);
    assert.equal(
      await v.upsert('docs', [
        { text: 'east', vector: [1, 0, 0], metadata: { dir: 'e' } },
        { text: 'north', vector: [0, 10, 0] },
        { text: 'north-east', vector: new Float32Array([1, 1, 0]) },
      ]),
      3,
    );
    const hits = await v.query('docs', [2, 0.1, 0], 2);
    assert.deepEqual(
      hits.map((h) => h.text),
      ['east', 'north-east'],
    );
    assert.ok(Math.abs((hits[0]?.score ?? 0) - 2 / Math.sqrt(4.01)) < 1e-6);
    assert.deepEqual(hits[0]?.metadata, { dir: 'e' });
    assert.equal(hits[1]?.metadata, null);
    assert.equal(await v.count('docs'), 3);

    const mismatch = await v.upsert('docs', [{ text: 'flat', vector: [1, 2] }]).then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(mismatch instanceof RunwardenError);
    assert.equal(mismatch.code, 'VECTOR_DIMENSION_MISMATCH');
    await assert.rejects(v.query('docs', [1, 2], 1), (err: unknown) => err instanceof RunwardenError && err.code === 'VECTOR_DIMENSION_MISMATCH');
    await assert.rejects(v.upsert('docs', [{ text: 'zero', vector: [0, 0, 0] }]), (err: unknown) => err instanceof RunwardenError && err.code === 'VECTOR_INVALID');
    await assert.rejects(v.query('docs', [1, 0, 0], 0), (err: unknown) => err instanceof RunwardenError && err.code === 'VECTOR_INVALID');
    assert.equal(await v.count('docs'), 3, 'failed writes wrote nothing');

    // Another process writes; this one's cached copy must notice.
    const other = await ctx.another();
    assert.equal(await other.vectors.count('docs'), 3);
    await other.vectors.upsert('docs', [{ text: 'west', vector: [-1, 0, 0] }, { text: 'exact', vector: [3, 0.15, 0] }]);
    const again = await v.query('docs', [2, 0.1, 0], 5);
    assert.deepEqual(
      again.map((h) => h.text),
      ['exact', 'east', 'north-east', 'north', 'west'],
    );
    assert.ok(Math.abs((again[0]?.score ?? 0) - 1) < 1e-6);
    assert.ok(Math.abs((again[4]?.score ?? 0) + 2 / Math.sqrt(4.01)) < 1e-6);
    assert.equal(await v.count('docs'), 5);
    // Collections are separate.
    await v.upsert('other', [{ text: 'only', vector: [0, 1] }]);
    assert.deepEqual(
      (await other.vectors.query('other', [0, 1], 10)).map((h) => h.text),
      ['only'],
    );
  });
});
