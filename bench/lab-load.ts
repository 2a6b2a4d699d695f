/**
 * How the hang lab holds many slow requests at once: `n` concurrent requests (half OpenAI chat,
 * half Anthropic messages, a quarter of them streaming) against `healthy;latency_ms=<ms>`, each on
 * its own connection. Prints the wall time against the ideal (one latency) and the slowest request.
 * Not part of `npm test` (test/lab/load.test.ts checks that they all complete, not how fast).
 * Run: node_modules/.bin/node bench/lab-load.ts [n=2000] [latencyMs=1000]
 */
import http from 'node:http';
import { startLab } from '../src/lab/index.ts';

const n = Number(process.argv[2] ?? 2000);
const latencyMs = Number(process.argv[3] ?? 1000);

function request(port: number, i: number): Promise<{ status: number; ms: number }> {
  const anthropic = i % 2 === 1;
  const stream = i % 4 < 2;
  const path = `/healthy;latency_ms=${latencyMs}/v1/${anthropic ? 'messages' : 'chat/completions'}`;
  const body = JSON.stringify(
    anthropic
      ? { model: 'lab', max_tokens: 16, stream, messages: [{ role: 'user', content: `question ${i}` }] }
      : { model: 'lab', stream, messages: [{ role: 'user', content: `question ${i}` }] },
  );
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const lab = await startLab({ port: 0 });
try {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => request(lab.port, i)));
  const wall = performance.now() - t0;
  const ok = results.filter((r) => r.status === 200).length;
  const slowest = Math.max(...results.map((r) => r.ms));
  console.log('| requests | latency | ok | wall | wall / latency | slowest |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  console.log(`| ${n} | ${latencyMs} ms | ${ok} | ${Math.round(wall)} ms | ${(wall / latencyMs).toFixed(2)}x | ${Math.round(slowest)} ms |`);
} finally {
  await lab.close();
}
