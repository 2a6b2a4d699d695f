import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call, MESSAGES, withLab } from './helpers.ts';

test('rate_limited: 429 with each retry-after form', async () => {
  await withLab(async (lab) => {
    const base = '/rate_limited;retry_after=';
    const seconds = await call(lab.port, `${base}3/v1/chat/completions`);
    assert.equal(seconds.status, 429);
    assert.equal(seconds.headers['retry-after'], '3');
    assert.equal(JSON.parse(seconds.body.toString()).error.code, 'rate_limit_exceeded');

    assert.equal((await call(lab.port, '/rate_limited/v1/chat/completions')).headers['retry-after'], '1', 'default');
    assert.equal((await call(lab.port, `${base}3600/v1/chat/completions`)).headers['retry-after'], '3600');

    const ms = await call(lab.port, `${base}ms;wait_ms=1500/v1/chat/completions`);
    assert.equal(ms.headers['retry-after-ms'], '1500');
    assert.equal(ms.headers['retry-after'], undefined);

    const before = Date.now();
    const date = await call(lab.port, `${base}date;wait_ms=4000/v1/chat/completions`);
    const when = Date.parse(date.headers['retry-after'] ?? '');
    assert.match(date.headers['retry-after'] ?? '', /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    assert.ok(when - before >= 4000 && when - before <= 6000, `date ${when - before} ms ahead`);

    const garbage = await call(lab.port, `${base}garbage/v1/chat/completions`);
    assert.ok(Number.isNaN(Number(garbage.headers['retry-after'])) && Number.isNaN(Date.parse(garbage.headers['retry-after'] ?? '')));

    const none = await call(lab.port, `${base}none/v1/chat/completions`);
    assert.equal(none.status, 429);
    assert.equal(none.headers['retry-after'], undefined);
    assert.equal(none.headers['retry-after-ms'], undefined);

    const anthropic = await call(lab.port, '/rate_limited/v1/messages', MESSAGES());
    assert.equal(JSON.parse(anthropic.body.toString()).error.type, 'rate_limit_error');

    assert.equal((await call(lab.port, `${base}tomorrow/v1/chat/completions`)).status, 400, 'an unknown form is a bad parameter');
  });
});

test('rate_limited count=K: the first K requests per key are limited, then healthy', async () => {
  await withLab(async (lab) => {
    const path = '/rate_limited;count=2/v1/chat/completions';
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(lab.port, path)).status);
    assert.deepEqual(statuses, [429, 429, 200, 200]);

    // A different path is a different key; an explicit key is shared across paths.
    assert.equal((await call(lab.port, '/rate_limited;count=2;latency_ms=0/v1/chat/completions')).status, 429);
    const keyed = [
      (await call(lab.port, '/rate_limited;count=1;key=job-a/v1/chat/completions')).status,
      (await call(lab.port, '/rate_limited;count=1;key=job-a/v1/messages', MESSAGES())).status,
      (await call(lab.port, '/rate_limited;count=1;key=job-b/v1/chat/completions')).status,
    ];
    assert.deepEqual(keyed, [429, 200, 429]);
  });
});

test('overloaded: every status, JSON or HTML body, then healthy after count', async () => {
  await withLab(async (lab) => {
    for (const status of [500, 502, 503, 504, 529]) {
      const res = await call(lab.port, `/overloaded;status=${status}/v1/chat/completions`);
      assert.equal(res.status, status);
      assert.equal(res.headers['content-type'], 'application/json');
      assert.equal(JSON.parse(res.body.toString()).error.type, 'server_error');
    }
    assert.equal((await call(lab.port, '/overloaded/v1/chat/completions')).status, 503, 'default');

    const a529 = await call(lab.port, '/overloaded;status=529/v1/messages', MESSAGES());
    assert.deepEqual(JSON.parse(a529.body.toString()), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });

    const html = await call(lab.port, '/overloaded;status=502;body=html/v1/chat/completions');
    assert.equal(html.status, 502);
    assert.equal(html.headers['content-type'], 'text/html');
    assert.match(html.body.toString(), /<title>502 Bad Gateway<\/title>/);

    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(lab.port, '/overloaded;status=500;count=3/v1/chat/completions')).status);
    assert.deepEqual(statuses, [500, 500, 500, 200]);

    assert.equal((await call(lab.port, '/overloaded;status=418/v1/chat/completions')).status, 400);
  });
});
