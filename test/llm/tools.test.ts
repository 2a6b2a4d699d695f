/**
 * The llm, codegen, embed and retrieve tools with a ToolContext-shaped object, the lab as provider
 * and the real SqliteVectorStore on a temporary file; then the two example plans, validated by the
 * plan validator and executed step by step.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, afterEach, before, describe, it } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import { applySqliteSchema } from './helpers.ts';
import { validateRunRequest } from '../../src/domain/plan.ts';
import { resolveTemplates } from '../../src/domain/templates.ts';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { ProviderRegistry } from '../../src/llm/registry.ts';
import { SqliteVectorStore } from '../../src/store/sqlite/vectors.ts';
import { mimeFor, parseFiles } from '../../src/tools/codegen.ts';
import { createLlmTools } from '../../src/tools/llm.ts';
import { ToolRegistry } from '../../src/tools/registry.ts';
import type { ToolDefinition } from '../../src/tools/types.ts';
import { makeContext, startServer, type TestContext } from './helpers.ts';

let lab: Lab;
let dir: string;
let db: DatabaseSync;
let registry: ProviderRegistry;
let tools: Map<string, ToolDefinition>;
const contexts: Array<{ dispose(): void }> = [];

before(async () => {
  lab = await startLab({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'rw-tools-'));
  db = new DatabaseSync(join(dir, 'tools.db'));
  applySqliteSchema(db);
  registry = new ProviderRegistry({ env: {}, labUrl: lab.url });
  tools = new Map(createLlmTools({ providers: registry, vectors: new SqliteVectorStore(db) }).map((t) => [t.name, t]));
});
afterEach(() => {
  for (const c of contexts.splice(0)) c.dispose();
});
after(async () => {
  registry.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  await lab.close();
});

// Tool outputs are checked field by field by the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Out = any;

function ctx(timeoutMs = 5000): TestContext {
  const c = makeContext(timeoutMs);
  contexts.push(c);
  return c;
}

/** Validate through the tool's schema (as the engine does), then run. */
async function run(name: string, input: unknown, c: TestContext = ctx()): Promise<Out> {
  const tool = tools.get(name);
  assert.ok(tool, `tool ${name}`);
  const schema = tool.input as { '~standard': { validate(v: unknown): { value?: unknown; issues?: unknown[] } | Promise<{ value?: unknown; issues?: unknown[] }> } };
  const result = await schema['~standard'].validate(input);
  if (result.issues) throw new RunwardenError('INPUT_INVALID', JSON.stringify(result.issues), { status: 400 });
  return tool.run(c, result.value);
}

function codeOf(err: unknown): string | undefined {
  return err instanceof RunwardenError ? err.code : undefined;
}

describe('tools', () => {
  it('createLlmTools returns llm, codegen, embed, retrieve', () => {
    assert.deepEqual([...tools.keys()], ['llm', 'codegen', 'embed', 'retrieve']);
  });

  it('llm: prompt -> text, with llm.request and llm.usage emitted on the step', async () => {
    const c = ctx();
    const out = await run('llm', { prompt: 'What is a deadline?', system: 'Be brief.' }, c);
    assert.match(out.text, /Lab answer/);
    assert.equal(out.provider, 'lab');
    assert.equal(out.finishReason, 'stop');
    assert.ok(out.usage.outputTokens > 0);
    assert.deepEqual(
      c.events.map((e) => e.type),
      ['llm.request', 'llm.usage'],
    );
    assert.equal(c.events[1]!.data.provider, 'lab');
    assert.ok(c.tracked.some((t) => t.startsWith('llm.chat')));
  });

  it('llm: messages, non-streaming', async () => {
    const out = await run('llm', { messages: [{ role: 'user', content: 'hello' }], stream: false });
    assert.match(out.text, /hello/);
  });

  it('llm: exactly one of prompt or messages', async () => {
    await assert.rejects(run('llm', { prompt: 'a', messages: [{ role: 'user', content: 'b' }] }), (e) => codeOf(e) === 'INPUT_INVALID');
    await assert.rejects(run('llm', {}), (e) => codeOf(e) === 'INPUT_INVALID');
    await assert.rejects(run('llm', { prompt: 'a', bogus: 1 }), (e) => codeOf(e) === 'INPUT_INVALID');
  });

  it('llm: an unknown provider is a typed error', async () => {
    await assert.rejects(run('llm', { prompt: 'a', provider: 'nope' }), (e) => codeOf(e) === 'PROVIDER_UNKNOWN');
  });

  it('llm: the step signal aborts the call down to the socket', async () => {
    const reg = new ProviderRegistry({ env: {}, providers: { stall: { type: 'openai', baseUrl: `${lab.url}/no_headers/v1` } } });
    try {
      const llm = createLlmTools({ providers: reg, vectors: new SqliteVectorStore(db) }).find((t) => t.name === 'llm')!;
      const c = ctx();
      const started = Date.now();
      setTimeout(() => c.controller.abort(), 100);
      await assert.rejects(Promise.resolve(llm.run(c, { prompt: 'x', provider: 'stall' })), (e) => {
        assert.equal(codeOf(e), 'llm.no_headers');
        assert.equal((e as RunwardenError).data!.aborted, true);
        return true;
      });
      assert.ok(Date.now() - started < 500);
      // The request reached the server (which held it): the call is counted, marked failed.
      assert.deepEqual(
        c.events.map((e) => e.type),
        ['llm.request', 'llm.usage'],
      );
      assert.equal(c.events[1]?.data.failed, true);
      assert.equal(c.events[1]?.data.calls, 1);
    } finally {
      reg.close();
    }
  });

  it('codegen: files from the lab become artifacts with MIME types', async () => {
    const c = ctx();
    const out = await run('codegen', { prompt: 'Write a simple Hello World README.md file and src/hello.ts', topic: 'Test Documentation' }, c);
    const names = out.files.map((f: { name: string }) => f.name).sort();
    assert.deepEqual(names, ['README.md', 'src/hello.ts']);
    const readme = out.files.find((f: { name: string }) => f.name === 'README.md');
    assert.equal(readme.mime, 'text/markdown');
    assert.equal(c.stored.length, 2);
    const stored = c.stored.find((a) => a.name === 'README.md')!;
    assert.equal(stored.id, readme.artifactId);
    assert.equal(readme.size, Buffer.byteLength(stored.content as string));
    assert.ok((stored.content as string).length > 0);
    assert.match(out.text, /file=README\.md/);
  });

  it('codegen: an answer without file blocks -> CODEGEN_NO_FILES, not retryable', async () => {
    const s = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          choices: [{ index: 0, message: { role: 'assistant', content: 'Sure! Here is some code:\n```\nconsole.log(1)\n```' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1 },
        }),
      );
    });
    const reg = new ProviderRegistry({ env: {}, providers: { prose: { type: 'openai', baseUrl: `${s.url}/v1` } } });
    try {
      const t = createLlmTools({ providers: reg, vectors: new SqliteVectorStore(db) }).find((x) => x.name === 'codegen')!;
      await assert.rejects(Promise.resolve(t.run(ctx(), { prompt: 'x', provider: 'prose' })), (e) => {
        assert.equal(codeOf(e), 'CODEGEN_NO_FILES');
        assert.equal((e as RunwardenError).retryable, false);
        return true;
      });
      const sent = JSON.parse(s.requests[0]!.body) as { messages: Array<{ role: string; content: string }> };
      assert.match(sent.messages[0]!.content, /file=</, 'the system prompt carries the codegen contract');
    } finally {
      reg.close();
      await s.close();
    }
  });

  it('embed without a collection returns vectors; batches by batchSize', async () => {
    const c = ctx();
    const out = await run('embed', { texts: ['a', 'b', 'c', 'd', 'e'], batchSize: 2 }, c);
    assert.equal(out.count, 5);
    assert.equal(out.vectors.length, 5);
    assert.equal(out.dimensions, out.vectors[0].length);
    assert.equal(out.collection, undefined);
    assert.equal(c.events.filter((e) => e.type === 'llm.request').length, 3);
  });

  it('embed into a collection stores texts (and metadata) and keeps the output small', async () => {
    const out = await run('embed', { texts: ['red apple', 'green pear'], collection: 'fruit', metadata: [{ n: 1 }, { n: 2 }] });
    assert.equal(out.vectors, undefined);
    assert.equal(out.collection, 'fruit');
    const found = await run('retrieve', { collection: 'fruit', query: 'a red apple', k: 1 });
    assert.deepEqual(found.results[0].metadata, { n: 1 });
  });

  it('retrieve from an unknown collection -> COLLECTION_NOT_FOUND', async () => {
    await assert.rejects(run('retrieve', { collection: 'never-filled', query: 'x' }), (e) => codeOf(e) === 'COLLECTION_NOT_FOUND');
  });
});

describe('codegen answer parsing', () => {
  it('accepts file=, filename=, path=, quoted names, lang:path and File: lines', () => {
    const text = [
      'Here you go.',
      '```markdown file=README.md',
      '# Hi',
      '```',
      '```ts filename="src/a.ts"',
      'export const a = 1;',
      '```',
      "```python path='tools/b.py'",
      'print(1)',
      '```',
      '**File:** `web/index.html`',
      '',
      '```html',
      '<p>hi</p>',
      '```',
      '### File: styles/site.css',
      '~~~css',
      'p { color: red }',
      '~~~',
      '```json:config/c.json',
      '{}',
      '```',
    ].join('\n');
    const { files, skipped } = parseFiles(text);
    assert.deepEqual(
      files.map((f) => [f.name, f.language]),
      [
        ['README.md', 'markdown'],
        ['src/a.ts', 'ts'],
        ['tools/b.py', 'python'],
        ['web/index.html', 'html'],
        ['styles/site.css', 'css'],
        ['config/c.json', 'json'],
      ],
    );
    assert.equal(files[0]!.content, '# Hi\n');
    assert.deepEqual(skipped, []);
  });

  it('keeps inner shorter fences inside a longer fence', () => {
    const { files } = parseFiles(['````markdown file=docs/x.md', '```js', 'x()', '```', '````'].join('\n'));
    assert.equal(files[0]!.content, '```js\nx()\n```\n');
  });

  it('skips unsafe paths and unclosed blocks; the last block for a path wins', () => {
    const { files, skipped } = parseFiles(
      ['```txt file=../etc/passwd', 'x', '```', '```txt file=/abs.txt', 'x', '```', '```txt file=./a.txt', 'one', '```', '```txt file=a.txt', 'two', '```', '```md file=cut.md', 'never closed'].join(
        '\n',
      ),
    );
    assert.deepEqual(
      files.map((f) => [f.name, f.content]),
      [['a.txt', 'two\n']],
    );
    assert.deepEqual(
      skipped.map((s) => s.name),
      ['../etc/passwd', '/abs.txt', 'cut.md'],
    );
  });

  it('a File: line only names the next fence if nothing else comes between', () => {
    const { files } = parseFiles(['File: a.md', 'Some prose in between.', '```md', 'x', '```'].join('\n'));
    assert.equal(files.length, 0);
  });

  it('MIME types by extension', () => {
    assert.deepEqual(
      ['a.md', 'a.ts', 'a.js', 'a.json', 'a.html', 'a.css', 'a.py', 'a.txt', 'a.sql', 'Makefile'].map(mimeFor),
      ['text/markdown', 'text/typescript', 'text/javascript', 'application/json', 'text/html', 'text/css', 'text/x-python', 'text/plain', 'text/plain', 'text/plain'],
    );
  });
});

describe('example plans', () => {
  /** Validate a plan with the real validator, then run it: steps whose dependencies are done run together. */
  async function runPlan(file: string): Promise<Map<string, Out>> {
    const body = JSON.parse(readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8')) as unknown;
    const toolRegistry = new ToolRegistry();
    for (const t of tools.values()) toolRegistry.register(t);
    const plan = await validateRunRequest(body, toolRegistry, { defaultTimeoutMs: 60_000, maxTimeoutMs: 3_600_000 });
    const outputs = new Map<string, Out>();
    const pending = new Set(plan.steps.map((s) => s.name));
    const waves: string[][] = [];
    while (pending.size > 0) {
      const ready = plan.steps.filter((s) => pending.has(s.name) && s.dependsOn.every((d) => outputs.has(d)));
      assert.ok(ready.length > 0, 'the plan makes progress');
      waves.push(ready.map((s) => s.name));
      await Promise.all(
        ready.map(async (s) => {
          const inputs = resolveTemplates(s.inputs, (name) => outputs.get(name));
          outputs.set(s.name, await run(s.tool, inputs, ctx(10_000)));
          pending.delete(s.name);
        }),
      );
    }
    outputs.set('__waves', waves);
    return outputs;
  }

  it('rag.json: embed three texts, retrieve "where did the cat sit?" k=1 -> the cat', async () => {
    const out = await runPlan('rag.json');
    assert.equal(out.get('index_facts').count, 3);
    const results = out.get('find_context').results as Array<{ text: string; score: number }>;
    assert.equal(results.length, 1);
    assert.equal(results[0]!.text, 'The cat sat on the mat');
    assert.match(out.get('answer').text, /The cat sat on the mat/);
  });

  it('parallel-components.json: three codegen steps in one wave, then the summary', async () => {
    const out = await runPlan('parallel-components.json');
    assert.deepEqual(out.get('__waves'), [['api', 'ui', 'db'], ['summary']]);
    for (const name of ['api', 'ui', 'db']) assert.ok(out.get(name).files.length >= 2, `${name} produced files`);
    assert.deepEqual(
      out
        .get('ui')
        .files.map((f: { name: string }) => f.name)
        .sort(),
      ['ui/app.js', 'ui/index.html', 'ui/style.css'],
    );
    assert.match(out.get('summary').text, /Lab answer/);
  });
});
