/**
 * /openapi.json is fit for code generators: openapi-typescript's output for the live document types
 * a real `POST /runs` with inputs (free-form objects are maps, not `Record<string, never>`), events
 * narrow on `type` to their own `data`, and hang reports have fields; a body that breaks the
 * schema does not compile. The typed body is then sent to the server, which creates the run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { http, startTestRuntime, waitForRun, type TestRuntime } from './helpers.ts';

/** Uses of the generated types that must compile. */
const USE = `import type { components, paths } from './api.ts';
type CreateRun = paths['/runs']['post']['requestBody']['content']['application/json'];
type Created = paths['/runs']['post']['responses']['201']['content']['application/json'];
type Event = components['schemas']['Event'];
type NotFound = paths['/runs/{id}']['get']['responses']['404']['content']['application/json'];

export const body: CreateRun = {
  plan: {
    goal: 'typed by openapi-typescript',
    steps: [
      { name: 'greet', tool: 'echo', inputs: { message: 'hello', nested: { n: 1, list: [1, 'two'] } }, timeoutMs: 5000 },
      { name: 'again', tool: 'echo', inputs: { said: '{{steps.greet.outputs.message}}' }, dependsOn: ['greet'], retries: { max: 1 } },
    ],
  },
  labels: { team: 'docs' },
};

export function describeEvent(e: Event): string {
  switch (e.type) {
    case 'step.finished':
      return \`\${e.stepName ?? '?'} \${e.data.status} in \${e.data.durationMs} ms\${e.data.error ? \` (\${e.data.error.code})\` : ''}\`;
    case 'run.finished':
      return \`run \${e.data.status}, \${e.data.steps.notSucceeded} of \${e.data.steps.total} not succeeded\`;
    case 'step.hang_report':
      return \`\${e.data.classification.code}: \${e.data.pending.map((p) => p.phase).join(', ')}\`;
    case 'llm.usage':
      return \`\${e.data.inputTokens + e.data.outputTokens} tokens\`;
    default:
      return e.type;
  }
}

export const firstOutput = (r: Created): unknown => r.steps[0]?.outputs;
export const inputsOf = (r: Created): Record<string, unknown> => r.steps[0]?.inputs ?? {};
export const loopDelay = (w: components['schemas']['Worker']): unknown => w.info['loopDelayP99Ms'];
export const errorCode = (e: NotFound): string => e.error.code;
`;

/** Each line must fail to compile: the schema says no. */
const WRONG = [
  `const a: CreateRun = { plan: { steps: [{ name: 'a', tool: 'echo', inputs: 'not an object' }] } };`,
  `const b: CreateRun = { plan: { steps: [{ tool: 'echo' }] } };`,
  `const c = (e: Extract<Event, { type: 'step.finished' }>): number => e.data.status;`,
  `const d = (e: Extract<Event, { type: 'run.finished' }>): 'running' => e.data.status;`,
  `const f: Event['type'] = 'step.teleported';`,
];

function diagnostics(dir: string, files: string[]): string[] {
  const program = ts.createProgram(
    files.map((f) => join(dir, f)),
    { strict: true, noUncheckedIndexedAccess: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, allowImportingTsExtensions: true, types: [], skipLibCheck: false },
  );
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName.slice(dir.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '?';
    return `${where} TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

describe('openapi-typescript types the API', () => {
  let rt: TestRuntime;
  let dir: string;
  before(async () => {
    rt = await startTestRuntime();
    dir = mkdtempSync(join(tmpdir(), 'rw-oats-'));
    const doc = (await http<Record<string, unknown>>(rt.url, '/openapi.json')).body;
    writeFileSync(join(dir, 'api.ts'), astToString(await openapiTS(doc as unknown as Parameters<typeof openapiTS>[0])));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  });
  after(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the generated types compile a POST /runs with inputs, narrow events on type, and type hang reports', () => {
    writeFileSync(join(dir, 'use.ts'), USE);
    assert.deepEqual(diagnostics(dir, ['api.ts', 'use.ts']), []);
  });

  test('what the schema forbids does not compile', () => {
    const head = USE.split('\n').slice(0, 5).join('\n');
    WRONG.forEach((line, i) => writeFileSync(join(dir, `wrong${i}.ts`), `${head}\n${line}\nexport {};\n`));
    const errors = diagnostics(dir, ['api.ts', ...WRONG.map((_, i) => `wrong${i}.ts`)]);
    for (const [i, line] of WRONG.entries()) {
      assert.ok(errors.some((e) => e.startsWith(`wrong${i}.ts:6 `)), `compiled, but must not: ${line}\n${errors.join('\n')}`);
    }
    // Nothing else failed: each error is the one its line was written to cause.
    assert.deepEqual(errors.filter((e) => !/^wrong\d\.ts:6 /.test(e)), []);
  });

  test('the typed body creates a real run', async () => {
    const transpiled = ts.transpileModule(USE.replace(/^import type .*$/m, ''), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const mod = (await import(`data:text/javascript,${encodeURIComponent(transpiled)}`)) as { body: unknown };
    const created = await http<{ id: string; created: boolean; steps: Array<{ inputs: Record<string, unknown> }> }>(rt.url, '/runs', { method: 'POST', body: mod.body });
    assert.equal(created.status, 201);
    assert.equal(created.body.created, true);
    assert.deepEqual(created.body.steps[0]?.inputs, { message: 'hello', nested: { n: 1, list: [1, 'two'] } });
    const run = await waitForRun(rt.url, created.body.id);
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(run.steps.find((s) => s.name === 'again')?.outputs, { said: 'hello' });
  });
});
