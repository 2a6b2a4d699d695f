import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAT, MESSAGES, parseSse, RawClient, withLab } from './helpers.ts';

test('huge_response with a byte budget: a complete, valid stream or body of about that size', async () => {
  await withLab(async (lab) => {
    const stream = await RawClient.request(lab.port, 'POST', '/huge_response;bytes=1m/v1/chat/completions', CHAT(undefined, { stream: true }));
    const res = await stream.untilComplete(10_000);
    stream.destroy();
    assert.ok(res.body.length >= 1024 * 1024 && res.body.length < 1.2 * 1024 * 1024, `${res.body.length} bytes`);
    const events = parseSse(res.body.toString()).events;
    assert.equal(events.at(-1)?.data, '[DONE]');
    assert.equal(JSON.parse(events.at(-2)?.data ?? '').choices[0].finish_reason, 'length');

    const anthropic = await RawClient.request(lab.port, 'POST', '/huge_response;bytes=200k/v1/messages', MESSAGES(undefined, { stream: true }));
    const aRes = await anthropic.untilComplete(10_000);
    anthropic.destroy();
    assert.equal(parseSse(aRes.body.toString()).events.at(-1)?.event, 'message_stop');

    for (const [path, body] of [
      ['/v1/chat/completions', CHAT()],
      ['/v1/messages', MESSAGES()],
      ['/v1/embeddings', { input: 'x', encoding_format: 'base64' }],
    ] as const) {
      const client = await RawClient.request(lab.port, 'POST', `/huge_response;bytes=300000${path}`, body);
      const plain = await client.untilComplete(10_000);
      client.destroy();
      assert.ok(plain.body.length >= 300_000, path);
      assert.doesNotThrow(() => JSON.parse(plain.body.toString()), path);
    }
  });
});

test('huge_response without a budget never ends, respects backpressure, and does not block the lab', async () => {
  await withLab(async (lab) => {
    const endless = await RawClient.request(lab.port, 'POST', '/huge_response/v1/chat/completions', CHAT(undefined, { stream: true }));
    await endless.untilHeaders();
    assert.equal(endless.response?.headers['content-type'], 'text/event-stream; charset=utf-8');
    endless.discard();
    await endless.until(() => endless.received > 64 * 1024 * 1024, '64 MiB of stream', 20_000);

    // A reader that stops reading: the lab must wait for 'drain', not buffer. Client and lab share
    // this process, and a paused socket buffers nothing in JS, so growth here is the lab's.
    endless.socket.pause();
    const before = process.memoryUsage();
    const healthy = await RawClient.request(lab.port, 'POST', '/v1/chat/completions', CHAT());
    assert.equal((await healthy.untilComplete()).status, 200, 'the lab keeps serving others');
    healthy.destroy();
    await endless.quietFor(300); // an observation window: the paused reader gets nothing, so nothing changes
    const after = process.memoryUsage();
    const grown = after.arrayBuffers + after.external - before.arrayBuffers - before.external;
    assert.ok(grown < 32 * 1024 * 1024, `lab buffered ${Math.round(grown / 1024 / 1024)} MiB for a paused reader`);
    endless.destroy();
  });
});
