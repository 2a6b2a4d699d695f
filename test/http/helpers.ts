/**
 * A real runtime (SQLite in a temp dir, one in-process worker, no lab) listening on a free port,
 * and small bounded waits. No mocks: every test talks HTTP over a real socket.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/resolve.ts';
import type { ConfigFlags } from '../../src/config/resolve.ts';
import type { RunWithSteps } from '../../src/domain/records.ts';
import { RUN_TERMINAL } from '../../src/domain/states.ts';
import { startRuntime } from '../../src/runtime.ts';
import { waitFor } from '../helpers/wait.ts';

export { waitFor };
import type { Runtime } from '../../src/runtime.ts';

export interface TestRuntime {
  url: string;
  dir: string;
  runtime: Runtime;
  logs: string[];
  close(): Promise<void>;
}

/** A tools module with a tool that writes an artifact, and one that fails. */
export const TEST_TOOLS = `
export default [
  {
    name: 'write_file',
    async run(ctx, input) {
      ctx.artifacts.put({ name: input.name, content: input.content, mime: input.mime });
      return { written: input.name };
    },
  },
  {
    name: 'chatty',
    async run(ctx, input) {
      const line = 'x'.repeat(input.size);
      for (let i = 0; i < input.lines; i++) ctx.log(\`\${i} \${line}\`);
      return { lines: input.lines };
    },
  },
  {
    name: 'explode',
    async run() {
      throw new Error('boom on purpose');
    },
  },
];
`;

export async function startTestRuntime(flags: ConfigFlags = {}, env: Record<string, string | undefined> = {}): Promise<TestRuntime> {
  const dir = await mkdtemp(join(tmpdir(), 'rw-http-'));
  const toolsFile = join(dir, 'test-tools.js');
  await writeFile(toolsFile, TEST_TOOLS);
  const config = await resolveConfig({ flags: { port: 0, dataDir: join(dir, 'data'), workers: 1, lab: 'off', tools: [toolsFile], ...flags }, env, cwd: dir });
  const logs: string[] = [];
  const runtime = await startRuntime(config, { env, log: (line) => logs.push(line), cwd: dir });
  return {
    url: runtime.url,
    dir,
    runtime,
    logs,
    async close() {
      await runtime.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}


export interface JsonResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

// Response bodies are checked by the tests' assertions, not by types: `any` keeps them readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function http<T = any>(
  url: string,
  path: string,
  init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined;
  if (init.raw !== undefined) body = init.raw;
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) parsed = text === '' ? null : JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export async function createRun(url: string, body: unknown): Promise<RunWithSteps> {
  const res = await http<RunWithSteps & { created: boolean }>(url, '/runs', { body });
  if (res.status !== 201 && res.status !== 200) throw new Error(`POST /runs answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function waitForRun(url: string, id: string, timeoutMs = 15_000): Promise<RunWithSteps> {
  return waitFor(
    async () => {
      const { body } = await http<RunWithSteps>(url, `/runs/${id}`);
      return RUN_TERMINAL.has(body.status) ? body : undefined;
    },
    timeoutMs,
    `run ${id} to finish`,
  );
}

export const plan = (steps: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({ plan: { goal: 'test', steps }, ...extra });

/** Reads an SSE response until `until` says stop or the stream ends; returns the parsed frames. */
export interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

export async function readFrames(res: Response, until: (frames: Frame[]) => boolean, timeoutMs = 10_000): Promise<Frame[]> {
  const frames: Frame[] = [];
  if (!res.body) return frames;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const timer = setTimeout(() => void reader.cancel(new Error('readFrames timed out')).catch(() => undefined), timeoutMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) !== -1) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const f: Frame = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) f.comment = line.slice(1).trim();
          else {
            const c = line.indexOf(':');
            const k = line.slice(0, c);
            const v = line.slice(c + 1).replace(/^ /, '');
            if (k === 'id' || k === 'event' || k === 'data') f[k] = v;
          }
        }
        frames.push(f);
        if (until(frames)) return frames;
      }
    }
    return frames;
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
}
