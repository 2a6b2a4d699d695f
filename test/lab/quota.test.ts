import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call, CHAT, RawClient, withLab } from './helpers.ts';

async function stats(url: string): Promise<{ requests: number; rateLimited: number; modes: Record<string, { requests: number; rateLimited: number }> }> {
  const res = await fetch(`${url}/stats`);
  assert.equal(res.status, 200);
  return (await res.json()) as never;
}

test('quota rpm=1200: at most 20 requests in a second, the rest 429 with retry-after; /stats counts both', async () => {
  await withLab(async (lab) => {
    const path = '/quota;rpm=1200/v1/chat/completions';
    const sent = Date.now();
    const statuses = await Promise.all(Array.from({ length: 26 }, () => call(lab.port, path)));
    const elapsed = Date.now() - sent;
    const ok = statuses.filter((r) => r.status === 200);
    const refused = statuses.filter((r) => r.status === 429);
    assert.equal(ok.length + refused.length, 26);
    // All 26 arrived within `elapsed`: within one second exactly 20 fit; over a longer time at least 20 do.
    if (elapsed < 1000) assert.equal(ok.length, 20, `${ok.length} answered within ${elapsed} ms`);
    else assert.ok(ok.length >= 20 && ok.length <= 20 * Math.ceil(elapsed / 1000), `${ok.length} answered in ${elapsed} ms`);
    const started = Date.now();
    const again = await call(lab.port, path);
    if (Date.now() - started < 500 && refused.length > 0) assert.equal(again.status, 429, 'the window is still full');
    for (const r of refused) {
      assert.equal(JSON.parse(r.body.toString()).error.code, 'rate_limit_exceeded');
      const ms = Number(r.headers['retry-after-ms']);
      assert.ok(ms >= 1 && ms <= 1000, `retry-after-ms ${ms}`);
      assert.equal(r.headers['retry-after'], String(Math.ceil(ms / 1000)));
      assert.equal(r.headers['x-runwarden-lab-limit'], 'rpm');
    }
    const s = await stats(lab.url);
    const seen = refused.length + (again.status === 429 ? 1 : 0);
    assert.deepEqual(s.modes.quota, { requests: 27, rateLimited: seen });
    assert.equal(s.rateLimited, seen);

    // After the window passes, requests are served again.
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await call(lab.port, path)).status, 200);
  });
});

test('quota rpm under 60: one request per 60/rpm seconds', async () => {
  await withLab(async (lab) => {
    const path = '/quota;rpm=20/v1/chat/completions';
    assert.equal((await call(lab.port, path)).status, 200);
    const second = await call(lab.port, path);
    assert.equal(second.status, 429);
    const ms = Number(second.headers['retry-after-ms']);
    assert.ok(ms > 2000 && ms <= 3000, `one request per 3 s: retry in ${ms} ms`);
  });
});

test('quota concurrency=2: a third request while two are in flight is refused; keys are separate', async () => {
  await withLab(async (lab) => {
    // Streamed with a gap between chunks, so the first two stay in flight.
    const slow = '/quota;concurrency=2;chunk_ms=300/v1/chat/completions';
    const first = [await RawClient.request(lab.port, 'POST', slow, CHAT('a', { stream: true })), await RawClient.request(lab.port, 'POST', slow, CHAT('b', { stream: true }))];
    try {
      await Promise.all(first.map((c) => c.untilHeaders()));
      const third = await call(lab.port, slow, CHAT('c', { stream: true }));
      assert.equal(third.status, 429);
      assert.equal(third.headers['x-runwarden-lab-limit'], 'concurrency');
      assert.equal((await call(lab.port, '/quota;concurrency=2;chunk_ms=300;key=other/v1/chat/completions')).status, 200, 'another key has its own quota');
      for (const c of first) assert.equal((await c.untilComplete()).status, 200);
    } finally {
      for (const c of first) c.destroy();
    }
    assert.equal((await call(lab.port, slow)).status, 200, 'slots free when requests end');
  });
});

test('quota tpm: the answer tokens are charged; a request that does not fit waits for the window', async () => {
  await withLab(async (lab) => {
    const probe = JSON.parse((await call(lab.port, '/v1/chat/completions')).body.toString()) as { usage: { total_tokens: number } };
    const tokens = probe.usage.total_tokens;
    assert.ok(tokens > 0);
    // Room for two answers a second.
    const path = `/quota;tpm=${tokens * 2 * 60}/v1/chat/completions`;
    assert.equal((await call(lab.port, path)).status, 200);
    assert.equal((await call(lab.port, path)).status, 200);
    const third = await call(lab.port, path);
    assert.equal(third.status, 429);
    assert.equal(third.headers['x-runwarden-lab-limit'], 'tpm');
    assert.equal((await call(lab.port, '/quota;tpm=x/v1/chat/completions')).status, 400, 'a bad limit is a bad parameter');
  });
});
