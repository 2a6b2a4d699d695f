import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAT, MESSAGES, parseSse, RawClient, streamedText, withLab } from './helpers.ts';

const STREAM = CHAT(undefined, { stream: true });

async function healthyText(port: number, path: string, body: unknown): Promise<string> {
  const client = await RawClient.request(port, 'POST', path, body);
  const res = await client.untilComplete();
  client.destroy();
  return res.body.toString('utf8');
}

test('reset_mid_body: partial stream then a TCP reset (default) or a FIN', async () => {
  await withLab(async (lab) => {
    const rst = await RawClient.request(lab.port, 'POST', '/reset_mid_body/v1/chat/completions', STREAM);
    await rst.untilClosed();
    assert.equal(rst.ended, 'reset');
    assert.equal(rst.errorCode, 'ECONNRESET');
    const events = parseSse(rst.text).events;
    assert.equal(events.length, 3, 'role chunk + 2 content chunks arrived before the reset');
    assert.equal(rst.response?.complete, false);

    const fin = await RawClient.request(lab.port, 'POST', '/reset_mid_body;how=fin;after=1/v1/messages', MESSAGES(undefined, { stream: true }));
    await fin.untilClosed();
    assert.equal(fin.ended, 'fin');
    assert.equal(fin.errorCode, undefined);
    assert.equal(parseSse(fin.text).events.at(-1)?.event, 'content_block_delta');
    assert.equal(fin.response?.complete, false);
  });
});

test('reset_mid_body, non-streaming: half of the announced body, then the cut', async () => {
  await withLab(async (lab) => {
    for (const how of ['rst', 'fin'] as const) {
      const client = await RawClient.request(lab.port, 'POST', `/reset_mid_body;how=${how}/v1/chat/completions`, CHAT());
      await client.untilClosed();
      assert.equal(client.ended, how === 'rst' ? 'reset' : 'fin');
      const res = client.response;
      assert.equal(res?.body.length, Math.floor(Number(res?.headers['content-length']) / 2), how);
      assert.equal(res?.complete, false);
    }
  });
});

test('clean_close_no_done: a complete HTTP response whose stream lacks its terminator', async () => {
  await withLab(async (lab) => {
    const healthy = parseSse(await healthyText(lab.port, '/v1/chat/completions', STREAM)).events;
    const client = await RawClient.request(lab.port, 'POST', '/clean_close_no_done/v1/chat/completions', STREAM);
    const res = await client.untilComplete();
    client.destroy();
    const events = parseSse(res.body.toString()).events;
    assert.equal(events.length, healthy.length - 1);
    assert.ok(!events.some((e) => e.data === '[DONE]'));
    assert.equal(JSON.parse(events.at(-1)?.data ?? '').choices[0].finish_reason, 'stop', 'everything but [DONE]');

    const cut = await RawClient.request(lab.port, 'POST', '/clean_close_no_done;after=1/v1/messages', MESSAGES(undefined, { stream: true }));
    const cutRes = await cut.untilComplete();
    cut.destroy();
    const names = parseSse(cutRes.body.toString()).events.map((e) => e.event);
    assert.deepEqual(names, ['message_start', 'content_block_start', 'ping', 'content_block_delta']);

    const plain = await RawClient.request(lab.port, 'POST', '/clean_close_no_done/v1/chat/completions', CHAT());
    const plainRes = await plain.untilComplete();
    plain.destroy();
    assert.equal(plainRes.headers['transfer-encoding'], 'chunked');
    assert.throws(() => JSON.parse(plainRes.body.toString()), SyntaxError);
  });
});

test('keepalive_race: keep-alive advertised, idle socket closed, a reused request never answered', async () => {
  await withLab(async (lab) => {
    const idle = await RawClient.request(lab.port, 'POST', '/keepalive_race;close_after_ms=30/v1/chat/completions', CHAT());
    const first = await idle.untilComplete();
    assert.equal(first.status, 200);
    assert.equal(first.headers['connection'], 'keep-alive');
    assert.equal(first.headers['keep-alive'], 'timeout=5');
    await idle.untilClosed(2000);

    const reuse = await RawClient.request(lab.port, 'POST', '/keepalive_race;close_after_ms=50/v1/chat/completions', CHAT());
    const res = await reuse.untilComplete();
    const used = res.used;
    reuse.send('POST', '/keepalive_race/v1/chat/completions', CHAT()); // "reusing" the socket the lab is about to close
    await reuse.untilClosed(2000);
    assert.equal(reuse.data.length, used, 'no byte of a second response');

    // Contrast: healthy keeps the socket for the next request.
    const healthy = await RawClient.request(lab.port, 'POST', '/v1/chat/completions', CHAT());
    const h1 = await healthy.untilComplete();
    healthy.send('POST', '/v1/chat/completions', CHAT());
    await healthy.until(() => (healthy.data.length > h1.used && (parseResponseAt(healthy.data, h1.used)?.complete ?? false)), 'a second response');
    healthy.destroy();
  });
});

function parseResponseAt(buf: Buffer, offset: number): { complete: boolean } | null {
  const rest = buf.subarray(offset);
  const end = rest.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const length = Number(/content-length: (\d+)/i.exec(rest.toString('latin1', 0, end))?.[1]);
  return { complete: rest.length >= end + 4 + length };
}

test('malformed_sse kind=bad_json: one data line is not JSON, the stream carries on', async () => {
  await withLab(async (lab) => {
    const text = await healthyText(lab.port, '/malformed_sse/v1/chat/completions', STREAM);
    const events = parseSse(text).events;
    const bad = events.filter((e) => {
      if (e.data === '[DONE]') return false;
      try {
        JSON.parse(e.data);
        return false;
      } catch (err) {
        return err instanceof SyntaxError;
      }
    });
    assert.equal(bad.length, 1);
    assert.equal(events.indexOf(bad[0] as (typeof events)[number]), 3, 'after the role chunk and 2 content chunks');
    assert.equal(events.at(-1)?.data, '[DONE]');

    const plain = await healthyText(lab.port, '/malformed_sse;kind=bad_json/v1/chat/completions', CHAT());
    assert.throws(() => JSON.parse(plain), SyntaxError);
  });
});

test('malformed_sse kind=split: healthy content, cut in a field name, a UTF-8 character and a CRLF', async () => {
  await withLab(async (lab) => {
    for (const [path, body] of [
      ['/v1/chat/completions', STREAM],
      ['/v1/messages', MESSAGES(undefined, { stream: true })],
    ] as const) {
      const expected = streamedText(parseSse(await healthyText(lab.port, path, body)).events);
      const client = await RawClient.request(lab.port, 'POST', `/malformed_sse;kind=split;gap_ms=1${path}`, body);
      const res = await client.untilComplete();
      client.destroy();
      const pieces = res.chunks;
      assert.ok(pieces.length > 10, `written in many pieces, got ${pieces.length}`);
      assert.equal(pieces[0]?.length, 2, 'the first field name is cut after two bytes');
      assert.ok(pieces.some((p) => (p.at(-1) ?? 0) >= 0xc0), 'a piece ends on the lead byte of a multi-byte character');
      assert.ok(pieces.some((p, i) => p.at(-1) === 0x0d && pieces[i + 1]?.[0] === 0x0a), 'a cut between \\r and \\n');
      assert.match(res.body.toString(), /\r\n\r\n/);
      assert.equal(streamedText(parseSse(res.body.toString('utf8')).events), expected, path);
      assert.match(expected, /—/);
    }
    const plainExpected = await healthyText(lab.port, '/v1/chat/completions', CHAT());
    const plain = await healthyText(lab.port, '/malformed_sse;kind=split/v1/chat/completions', CHAT());
    assert.deepEqual(JSON.parse(plain).choices, JSON.parse(plainExpected).choices);
  });
});

test('malformed_sse kind=no_final_blank and kind=error_event', async () => {
  await withLab(async (lab) => {
    const noBlank = await healthyText(lab.port, '/malformed_sse;kind=no_final_blank/v1/chat/completions', STREAM);
    assert.ok(noBlank.endsWith('data: [DONE]\n') && !noBlank.endsWith('\n\n'));
    assert.ok(!parseSse(noBlank).events.some((e) => e.data === '[DONE]'), 'a compliant parser drops the unterminated event');
    const noBlankAnthropic = await healthyText(lab.port, '/malformed_sse;kind=no_final_blank/v1/messages', MESSAGES(undefined, { stream: true }));
    assert.equal(parseSse(noBlankAnthropic).events.at(-1)?.event, 'message_delta');

    const openaiError = parseSse(await healthyText(lab.port, '/malformed_sse;kind=error_event;after=1/v1/chat/completions', STREAM)).events;
    assert.equal(openaiError.length, 3);
    assert.equal(openaiError[2]?.event, 'error');
    assert.match(JSON.parse(openaiError[2]?.data ?? '').error.message, /injected/);

    const anthropicError = parseSse(await healthyText(lab.port, '/malformed_sse;kind=error_event/v1/messages', MESSAGES(undefined, { stream: true }))).events;
    const last = anthropicError.at(-1);
    assert.equal(last?.event, 'error');
    assert.equal(JSON.parse(last?.data ?? '').error.type, 'overloaded_error');
    assert.ok(!anthropicError.some((e) => e.event === 'message_stop'));
  });
});
