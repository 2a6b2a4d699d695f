import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAT, MESSAGES, parseSse, RawClient, streamedText, withLab } from './helpers.ts';

const STREAM = CHAT(undefined, { stream: true });

test('no_headers: the request is read, nothing is ever sent, hold_ms ends it', async () => {
  await withLab(async (lab) => {
    const held = await RawClient.request(lab.port, 'POST', '/no_headers/v1/chat/completions', CHAT());
    await held.quietFor(300);
    assert.equal(held.data.length, 0);
    held.destroy();

    const started = performance.now();
    const bounded = await RawClient.request(lab.port, 'POST', '/no_headers;hold_ms=150/v1/chat/completions', CHAT());
    await bounded.untilClosed(3000);
    assert.equal(bounded.data.length, 0, 'not a byte, even at the end');
    assert.ok(performance.now() - started >= 140);
  });
});

test('headers_no_body: 200 and headers, then silence; partial=1 sends half the body', async () => {
  await withLab(async (lab) => {
    const bare = await RawClient.request(lab.port, 'POST', '/headers_no_body/v1/chat/completions', CHAT());
    const head = await bare.untilHeaders();
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], 'application/json');
    const announced = Number(head.headers['content-length']);
    assert.ok(announced > 100, 'the full length is announced');
    await bare.quietFor(200);
    assert.equal(bare.response?.body.length, 0);
    bare.destroy();

    const partial = await RawClient.request(lab.port, 'POST', '/headers_no_body;partial=1/v1/chat/completions', CHAT());
    await partial.until(() => (partial.response?.body.length ?? 0) > 0, 'half the body');
    await partial.quietFor(200);
    const res = partial.response;
    assert.equal(res?.body.length, Math.floor(Number(res?.headers['content-length']) / 2));
    assert.equal(res?.complete, false);
    assert.match(res?.body.toString() ?? '', /^\{"id":"chatcmpl-/);
    partial.destroy();

    const stream = await RawClient.request(lab.port, 'POST', '/headers_no_body/v1/messages', MESSAGES(undefined, { stream: true }));
    assert.equal((await stream.untilHeaders()).headers['content-type'], 'text/event-stream; charset=utf-8');
    await stream.quietFor(150);
    assert.equal(stream.response?.chunks.length, 0);
    stream.destroy();
  });
});

test('stream_stall: `after` content chunks, then an open, silent socket', async () => {
  await withLab(async (lab) => {
    const client = await RawClient.request(lab.port, 'POST', '/stream_stall;after=3/v1/chat/completions', STREAM);
    await client.until(() => parseSse(client.text).events.length === 4, 'role chunk + 3 content chunks');
    await client.quietFor(250);
    const { events } = parseSse(client.text);
    assert.equal(events.length, 4);
    assert.equal(JSON.parse(events[0]?.data ?? '').choices[0].delta.role, 'assistant');
    assert.ok(events.slice(1).every((e) => JSON.parse(e.data).choices[0].delta.content.length > 0));
    assert.equal(client.closed, false);
    client.destroy();

    // Query-string tuning works as well as the matrix form.
    const anthropic = await RawClient.request(lab.port, 'POST', '/stream_stall/v1/messages?after=1', MESSAGES(undefined, { stream: true }));
    await anthropic.until(() => parseSse(anthropic.text).events.length === 4, 'message_start, block start, ping, one delta');
    await anthropic.quietFor(150);
    assert.deepEqual(parseSse(anthropic.text).events.map((e) => e.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta']);
    anthropic.destroy();
  });
});

test('stream_stall variants: before_first and after_done; non-streaming gets half a body', async () => {
  await withLab(async (lab) => {
    const before = await RawClient.request(lab.port, 'POST', '/stream_stall;stall=before_first/v1/chat/completions', STREAM);
    await before.until(() => parseSse(before.text).events.length === 1, 'the role chunk');
    await before.quietFor(150);
    assert.equal(streamedText(parseSse(before.text).events), '', 'no content at all');
    before.destroy();

    const done = await RawClient.request(lab.port, 'POST', '/stream_stall;stall=after_done/v1/chat/completions', STREAM);
    await done.until(() => done.text.includes('data: [DONE]\n\n'), '[DONE]');
    await done.quietFor(200);
    assert.equal(done.response?.complete, false, 'the chunked body is never terminated');
    assert.equal(done.closed, false);
    done.destroy();

    const anthropicDone = await RawClient.request(lab.port, 'POST', '/stream_stall;stall=after_done/v1/messages', MESSAGES(undefined, { stream: true }));
    await anthropicDone.until(() => parseSse(anthropicDone.text).events.at(-1)?.event === 'message_stop', 'message_stop');
    await anthropicDone.quietFor(150);
    assert.equal(anthropicDone.response?.complete, false);
    anthropicDone.destroy();

    const plain = await RawClient.request(lab.port, 'POST', '/stream_stall/v1/chat/completions', CHAT());
    await plain.until(() => (plain.response?.body.length ?? 0) > 0, 'half a body');
    await plain.quietFor(150);
    assert.equal(plain.response?.body.length, Math.floor(Number(plain.response?.headers['content-length']) / 2));
    plain.destroy();

    const bounded = await RawClient.request(lab.port, 'POST', '/stream_stall;hold_ms=100/v1/chat/completions', STREAM);
    await bounded.untilClosed(3000);
    assert.equal(bounded.response?.complete, false);
  });
});

test('trickle: pings or empty deltas every interval_ms, never content', async () => {
  await withLab(async (lab) => {
    const ping = await RawClient.request(lab.port, 'POST', '/trickle;interval_ms=20/v1/chat/completions', STREAM);
    await ping.until(() => parseSse(ping.text).comments >= 5, 'five ": ping" comments');
    const parsed = parseSse(ping.text);
    assert.equal(parsed.events.length, 1, 'only the role chunk');
    assert.equal(streamedText(parsed.events), '');
    assert.doesNotMatch(ping.text, /\[DONE\]/);
    ping.destroy();

    const empty = await RawClient.request(lab.port, 'POST', '/trickle;kind=empty;interval_ms=20/v1/messages', MESSAGES(undefined, { stream: true }));
    await empty.until(() => parseSse(empty.text).events.filter((e) => e.event === 'content_block_delta').length >= 5, 'five empty deltas');
    assert.equal(streamedText(parseSse(empty.text).events), '');
    empty.destroy();

    const plain = await RawClient.request(lab.port, 'POST', '/trickle;interval_ms=20/v1/chat/completions', CHAT());
    await plain.until(() => (plain.response?.body.length ?? 0) >= 5, 'five spaces');
    assert.match(plain.response?.body.toString() ?? '', /^ +$/);
    assert.equal(plain.response?.complete, false);
    plain.destroy();

    const bounded = await RawClient.request(lab.port, 'POST', '/trickle;interval_ms=20;hold_ms=120/v1/chat/completions', STREAM);
    await bounded.untilClosed(3000);
    assert.ok(parseSse(bounded.text).comments >= 2);
  });
});
