/**
 * How soon after its limit an LLM call ends: for each limit (headers, stream idle, first content
 * under pings, total, the step's abort), `n` calls against a local server that provokes it, and the
 * time from the limit to the rejection (p50, p99, max). Not part of `npm test`: test/llm/failures.test.ts
 * proves which limit fires, this measures how promptly.
 * Run: node_modules/.bin/node bench/llm-limits.ts [n=20]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProviderRegistry } from '../src/llm/registry.ts';
import type { LlmTimeouts } from '../src/llm/types.ts';

const n = Number(process.argv[2] ?? 20);
const LIMIT_MS = 300;

type Handler = (res: http.ServerResponse) => void;
const sse = (res: http.ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
};
const chunk = (text: string): string => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
const every = (res: http.ServerResponse, ms: number, write: () => void): void => {
  const t = setInterval(write, ms);
  res.on('close', () => clearInterval(t));
};

const SCENARIOS: Array<{ name: string; timeouts: Partial<LlmTimeouts>; handler: Handler; abortAt?: number }> = [
  { name: 'headers (no answer)', timeouts: { headersMs: LIMIT_MS }, handler: () => undefined },
  { name: 'stream idle after content', timeouts: { idleMs: LIMIT_MS }, handler: (res) => (sse(res), res.write(chunk('Hel'))) },
  { name: 'first content under pings', timeouts: { firstContentMs: LIMIT_MS, idleMs: 60_000 }, handler: (res) => (sse(res), every(res, 40, () => res.write(': ping\n\n'))) },
  { name: 'total, slowly progressing', timeouts: { totalMs: LIMIT_MS, idleMs: 60_000 }, handler: (res) => (sse(res), every(res, 50, () => res.write(chunk('tok ')))) },
  { name: 'step abort mid-headers', timeouts: {}, handler: () => undefined, abortAt: LIMIT_MS },
];

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

console.log(`| limit (${LIMIT_MS} ms) | calls | past the limit p50 | p99 | max |`);
console.log('|---|---:|---:|---:|---:|');
for (const sc of SCENARIOS) {
  const server = http.createServer((_req, res) => sc.handler(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  const reg = new ProviderRegistry({ env: {}, providers: { t: { type: 'openai', baseUrl: base, maxRetries: 0, timeouts: sc.timeouts } } });
  const over: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const ac = new AbortController();
      const timer = sc.abortAt !== undefined ? setTimeout(() => ac.abort(), sc.abortAt) : undefined;
      const t0 = performance.now();
      const ok = await reg
        .get('t')
        .chat({ messages: [{ role: 'user', content: 'hi' }] }, { signal: ac.signal, deadline: Date.now() + 30_000 })
        .then(
          () => true,
          () => false,
        );
      clearTimeout(timer);
      if (ok) throw new Error(`${sc.name}: the call succeeded`);
      over.push(performance.now() - t0 - LIMIT_MS);
    }
  } finally {
    reg.close();
    server.closeAllConnections();
    server.close();
  }
  const f = (x: number): string => `${x.toFixed(1)} ms`;
  console.log(`| ${sc.name} | ${n} | ${f(pct(over, 50))} | ${f(pct(over, 99))} | ${f(Math.max(...over))} |`);
}
