/**
 * `npm run screenshots`: a real deployment (SQLite, two supervised worker processes, the hang lab)
 * with a few runs in it, and Chromium's pictures of each dashboard page, at 1280 px and at a phone's
 * 390 px, written to docs/img/ (the README shows them). Nothing here is staged by hand: every page
 * shows what the API answers.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab } from '../src/lab/index.ts';
import { startRuntime } from '../src/runtime.ts';
import { browserUnavailable, launch, openPage } from '../test/helpers/browser.ts';
import { waitFor } from '../test/helpers/engine.ts';
import { testConfig } from '../test/helpers/runtime.ts';

const OUT = join(import.meta.dirname, '..', 'docs', 'img');
const why = browserUnavailable();
if (why) {
  console.error(`screenshots: ${why}`);
  process.exit(1);
}
mkdirSync(OUT, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'rw-shots-'));
const lab = await startLab({ host: '127.0.0.1', port: 0 });
const rt = await startRuntime(
  testConfig(dir, {
    workers: 2,
    defaultProvider: 'lab',
    providers: {
      lab: { type: 'openai', baseUrl: `${lab.url}/healthy;chunk_ms=60/v1` },
      silent: { type: 'openai', baseUrl: `${lab.url}/no_headers/v1`, timeouts: { headersMs: 60_000 } },
    },
  }),
  { workerMode: 'processes', env: {} },
);
const browser = await launch();
try {
  await waitFor(async () => ((await rt.engine.healthDetailed()).supervisor?.alive === 2 ? true : undefined), 20_000, 'workers up');
  const create = async (body: Record<string, unknown>) => (await rt.engine.createRun(body)).run.id;
  const finished = (id: string) =>
    waitFor(async () => {
      const r = await rt.engine.getRun(id);
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    }, 60_000, `run ${id}`);

  const hello = await create({ plan: { goal: 'Say hello', steps: [
    { name: 'greet', tool: 'echo', inputs: { message: 'Hello from runwarden' } },
    { name: 'pause', tool: 'sleep', inputs: { ms: 300 }, dependsOn: ['greet'] },
    { name: 'repeat', tool: 'echo', inputs: { said: '{{steps.greet.outputs.message}}' }, dependsOn: ['pause'] },
  ] }, labels: { team: 'docs' } });
  const docs = await create({ plan: { goal: 'Generate test documentation', steps: [
    { name: 'outline', tool: 'llm', inputs: { prompt: 'Outline the documentation of a run engine in five headings' } },
    { name: 'write_readme', tool: 'codegen', inputs: { prompt: 'Write a simple Hello World README.md file', topic: 'Test Documentation' }, dependsOn: ['outline'] },
    { name: 'summary', tool: 'llm', inputs: { prompt: 'Summarise {{steps.outline.outputs.text}}' }, dependsOn: ['outline'] },
    { name: 'publish', tool: 'echo', inputs: { files: '{{steps.write_readme.outputs.files}}' }, dependsOn: ['write_readme', 'summary'] },
  ] }, labels: { team: 'docs' } });
  const stuck = await create({ plan: { goal: 'A provider that never answers', steps: [
    { name: 'ask', tool: 'llm', inputs: { prompt: 'anyone there?', provider: 'silent' }, timeoutMs: 1500, retries: { max: 1, backoffMs: 300 } },
  ] }, labels: { team: 'ops' } });
  const wide = await create({ plan: { goal: '30-step fan-out', steps: Array.from({ length: 30 }, (_, i) => ({
    name: `part_${String(i).padStart(2, '0')}`, tool: 'sleep', inputs: { ms: 40 + (i % 5) * 60 },
    dependsOn: i < 3 ? [] : [`part_${String(i - 3).padStart(2, '0')}`],
  })) } });
  for (const id of [hello, docs, stuck, wide]) await finished(id);
  // One run still going when the pictures are taken, so that the list shows a live one.
  await create({ plan: { goal: 'Still running', steps: [{ name: 'long', tool: 'sleep', inputs: { ms: 30_000 } }] } });

  const pages: Array<[string, string, string]> = [
    ['runs', '/ui', 'table.runs tbody tr'],
    ['run', `/ui/runs/${docs}`, 'svg.dag .node'],
    ['run-dag-30', `/ui/runs/${wide}`, 'svg.dag .node'],
    ['step-hang-report', `/ui/runs/${stuck}/steps/ask`, '.hang-report'],
    ['workers', '/ui/workers', 'table.slots tbody tr'],
  ];
  for (const [width, suffix] of [[1280, ''], [390, '-phone']] as const) {
    const { page, context, errors } = await openPage(browser, { width, height: width === 1280 ? 900 : 844 });
    for (const [name, path, ready] of pages) {
      if (suffix && name === 'run-dag-30') continue;
      await page.goto(`${rt.url}${path}`);
      await page.locator(ready).first().waitFor();
      // Let the live parts (stream replay, the first refresh) settle.
      await page.waitForTimeout(800);
      const file = join(OUT, `${name}${suffix}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`wrote ${file}`);
    }
    if (errors.length > 0) throw new Error(`console errors: ${errors.join('; ')}`);
    await context.close();
  }
} finally {
  await browser.close();
  await rt.close();
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
}
