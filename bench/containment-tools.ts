/**
 * Tools for bench/containment.ts, loaded as a tools module (so they run in tool threads unless the
 * bench says `toolIsolation: 'inline'`): a no-op, a call to the lab (one HTTP request), and three
 * tools that ignore their signal.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { defineTool } from '../src/tools/types.ts';

const forever = (): Promise<never> => new Promise<never>(() => undefined);

export default [
  defineTool({ name: 'noop', run: () => null }),
  defineTool({
    name: 'ask_lab',
    // What an LLM step does over the wire: one JSON request and its answer.
    run: async (ctx, input: { url: string }) => {
      const res = await fetch(`${input.url}/healthy/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer lab' },
        body: JSON.stringify({ model: 'lab', messages: [{ role: 'user', content: 'Say hello in five words.' }] }),
        signal: ctx.signal,
      });
      const body = (await res.json()) as { choices?: Array<{ message?: { content?: string } }> };
      return { text: body.choices?.[0]?.message?.content ?? '' };
    },
  }),
  defineTool({
    name: 'burner',
    // Burns CPU in 10 ms slices and marks each in a file, ignoring its signal.
    run: async (_ctx, input: { file: string }) => {
      const slice = (): void => {
        const until = Date.now() + 10;
        while (Date.now() < until);
        appendFileSync(input.file, '.');
        setImmediate(slice);
      };
      slice();
      return forever();
    },
  }),
  defineTool({
    name: 'writer',
    run: async (_ctx, input: { file: string }) => {
      for (;;) {
        appendFileSync(input.file, `${Date.now()}\n`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  }),
  defineTool({
    name: 'stubborn_child',
    // A shell that ignores SIGTERM and writes every 10 ms; the tool waits for it.
    run: async (_ctx, input: { file: string }) => {
      const child = spawn('bash', ['-c', `trap '' TERM; while true; do echo x >> ${JSON.stringify(input.file)}; sleep 0.01; done`], { stdio: 'ignore' });
      await new Promise((resolve) => child.once('exit', resolve));
      return forever();
    },
  }),
];
