import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAT, MESSAGES, RawClient, withLab } from './helpers.ts';
import { startLab } from '../../src/lab/index.ts';

// Together, not one after another: each holds 1 s, so one after another would take over half an
// hour, far past the 15 s bound every client waits. How close to 1 s they finish is measured by
// bench/lab-load.ts, not asserted here.
test('2,000 concurrent slow requests all complete, within a bound one-at-a-time could not meet', async () => {
  await withLab(async (lab) => {
    const n = 2000;
    const started = performance.now();
    const clients = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        i % 2 === 0
          ? RawClient.request(lab.port, 'POST', '/healthy;latency_ms=1000/v1/chat/completions', CHAT(`question ${i}`, { stream: i % 4 === 0 }))
          : RawClient.request(lab.port, 'POST', '/healthy;latency_ms=1000/v1/messages', MESSAGES(`question ${i}`, { stream: i % 4 === 1 })),
      ),
    );
    try {
      const responses = await Promise.all(clients.map((c) => c.untilComplete(15_000)));
      const elapsed = performance.now() - started;
      assert.ok(responses.every((r) => r.status === 200));
      assert.ok(elapsed >= 1000, 'the latency is honoured');
    } finally {
      for (const c of clients) c.destroy();
    }
  });
});

test('close() resolves quickly while every kind of mode is holding sockets', async () => {
  const lab = await startLab({ port: 0 });
  const paths = [
    '/no_headers/v1/chat/completions',
    '/headers_no_body/v1/chat/completions',
    '/stream_stall;stall=after_done/v1/chat/completions',
    '/trickle;interval_ms=10/v1/chat/completions',
    '/healthy;latency_ms=60000/v1/chat/completions',
    '/huge_response/v1/chat/completions',
    '/keepalive_race;close_after_ms=60000/v1/chat/completions',
  ];
  const clients = await Promise.all(
    Array.from({ length: 140 }, (_, i) => RawClient.request(lab.port, 'POST', paths[i % paths.length] ?? '/v1/models', CHAT(undefined, { stream: true }))),
  );
  // Every mode that sends headers has started; endless bodies are counted, not kept.
  await Promise.all(
    clients.map(async (c, i) => {
      if (i % paths.length === 0 || i % paths.length === 4) return;
      if (i % paths.length === 5) c.discard();
      await c.until(() => c.received > 0, 'the first bytes');
      // Endless readers stop reading, so the lab is parked waiting for 'drain' when close() comes.
      if (i % paths.length === 5) c.socket.pause();
    }),
  );
  const started = performance.now();
  await lab.close();
  const took = performance.now() - started;
  try {
    assert.ok(took < 1000, `close() took ${Math.round(took)} ms`);
    for (const c of clients) c.socket.resume(); // a paused socket would never read the FIN
    await Promise.all(clients.map((c) => c.untilClosed(2000)));
  } finally {
    for (const c of clients) c.destroy();
  }
});
