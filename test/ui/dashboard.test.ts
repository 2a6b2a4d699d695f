/**
 * The dashboard in real Chromium against a real runtime (SQLite, real sockets; supervised worker
 * processes for the workers page; the hang lab for the LLM step). Every page is checked for console
 * errors; the runs page is also driven by keyboard and checked at a phone's width.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { startRuntime, type Runtime } from '../../src/runtime.ts';
import { browserUnavailable, launch, openPage } from '../helpers/browser.ts';
import { testConfig } from '../helpers/runtime.ts';
import { waitFor } from '../helpers/engine.ts';

const skip = browserUnavailable();

// What the page.evaluate callbacks use of the browser's DOM (this project compiles without the DOM lib).
declare const document: { activeElement: { getAttribute(name: string): string | null } | null; documentElement: { scrollWidth: number; clientWidth: number } };
type Boxed = { getBBox(): { x: number; y: number; width: number; height: number } };

describe('dashboard in Chromium', { skip }, () => {
  let browser: Browser;
  let lab: Lab;
  let rt: Runtime;
  const dir = mkdtempSync(join(tmpdir(), 'rw-ui-'));

  before(async () => {
    lab = await startLab({ host: '127.0.0.1', port: 0 });
    rt = await startRuntime(
      testConfig(dir, {
        workers: 2,
        providers: {
          lab: { type: 'openai', baseUrl: `${lab.url}/v1` },
          // Its own headers limit is longer than the step's deadline: the step times out first.
          silent: { type: 'openai', baseUrl: `${lab.url}/no_headers/v1`, timeouts: { headersMs: 60_000 } },
          // One call at a time, each answered after 1.5 s: a second call waits at the gate.
          single: { type: 'openai', baseUrl: `${lab.url}/healthy;latency_ms=1500/v1`, maxRetries: 0, limits: { concurrency: 1 } },
        },
      }),
      { workerMode: 'processes', env: {} },
    );
    browser = await launch();
    await waitFor(async () => ((await rt.engine.healthDetailed()).supervisor?.alive === 2 ? true : undefined), 20_000, 'two worker processes up');
  });
  after(async () => {
    await browser?.close();
    await rt?.close();
    await lab?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const finished = (id: string) =>
    waitFor(async () => {
      const r = await rt.engine.getRun(id);
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    }, 30_000, `run ${id} to finish`);

  test('the runs list shows a submitted run and updates live to succeeded; keyboard reaches it', async () => {
    const { page, context, errors } = await openPage(browser);
    await page.goto(`${rt.url}/ui`);
    await page.locator('h1', { hasText: 'Runs' }).waitFor();
    // Submitted after the page loaded: it must appear, running, then turn succeeded without a reload.
    const { run } = await rt.engine.createRun({ plan: { steps: [{ name: 'nap', tool: 'sleep', inputs: { ms: 2500 } }] }, labels: { suite: 'ui' } });
    const row = page.locator(`tr[data-run-id="${run.id}"]`);
    await row.waitFor({ timeout: 10_000 });
    assert.notEqual(await row.getAttribute('data-status'), 'succeeded', 'seen before it finished');
    await page.locator(`tr[data-run-id="${run.id}"][data-status="succeeded"]`).waitFor({ timeout: 20_000 });
    assert.match((await row.locator('.status').textContent()) ?? '', /succeeded/);

    // Filters: by label (this run has suite=ui), and by a status it does not have.
    await page.fill('#label', 'suite=ui');
    await page.press('#label', 'Enter');
    await page.waitForURL(/label=suite%3Dui/);
    await row.waitFor();
    await page.selectOption('#status', 'failed');
    await page.waitForURL(/status=failed/);
    await row.waitFor({ state: 'detached' });

    // Keyboard: focus the run link by Tab alone, open it with Enter.
    await page.goto(`${rt.url}/ui`);
    await row.waitFor();
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate((id) => document.activeElement?.getAttribute('href')?.endsWith(id) ?? false, run.id);
    }
    assert.ok(reached, 'the run link is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/ui/runs/${run.id}$`));
    await page.locator('svg.dag .node').first().waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a run page draws all steps of a 30-step DAG, coloured by state', async () => {
    // Three roots, fanning in and out across ten ranks.
    const steps = Array.from({ length: 30 }, (_, i) => ({
      name: `s${String(i).padStart(2, '0')}`,
      tool: 'echo',
      inputs: { i },
      dependsOn: i < 3 ? [] : [`s${String(i - 3).padStart(2, '0')}`, ...(i % 3 === 0 ? [`s${String(i - 2).padStart(2, '0')}`] : [])],
    }));
    const { run } = await rt.engine.createRun({ plan: { steps } });
    await finished(run.id);
    const { page, context, errors } = await openPage(browser);
    await page.goto(`${rt.url}/ui/runs/${run.id}`);
    await page.locator('svg.dag .node[data-status="succeeded"]').nth(29).waitFor();
    assert.equal(await page.locator('svg.dag .node').count(), 30);
    assert.equal(await page.locator('svg.dag .edge').count(), steps.reduce((n, s) => n + s.dependsOn.length, 0));
    const names = await page.locator('svg.dag .node').evaluateAll((els) => els.map((e) => e.getAttribute('data-step')));
    assert.deepEqual([...names].sort(), steps.map((s) => s.name));
    // Every node has a place of its own: no two overlap.
    const boxes = await page.locator('svg.dag .node rect').evaluateAll((els) => els.map((e) => (e as unknown as Boxed).getBBox()).map((b) => [b.x, b.y, b.width, b.height]));
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [ax = 0, ay = 0, aw = 0, ah = 0] = boxes[i] ?? [];
        const [bx = 0, by = 0, bw = 0, bh = 0] = boxes[j] ?? [];
        assert.ok(ax + aw <= bx || bx + bw <= ax || ay + ah <= by || by + bh <= ay, `nodes ${i} and ${j} overlap`);
      }
    }
    // The timeline has a row per step, and the events list every stored event.
    assert.equal(await page.locator('.timeline .tl-row').count(), 30);
    const stored = await rt.engine.listEvents(run.id, 0, 10_000);
    await page.locator(`section .events tbody tr`).nth(Math.min(stored.length, 200) - 1).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a step page of a timed-out LLM step shows its classification and source line', async () => {
    const { run } = await rt.engine.createRun({ plan: { steps: [{ name: 'ask', tool: 'llm', inputs: { prompt: 'anyone there?', provider: 'silent' }, timeoutMs: 1500 }] } });
    const done = await finished(run.id);
    assert.equal(done.steps[0]?.status, 'timed_out');
    const detail = await rt.engine.getStep(run.id, 'ask');
    const report = detail.hangReports[0] as { classification: { code: string }; where: { file: string; line: number } };
    assert.ok(report?.where, 'the report has a location');

    const { page, context, errors } = await openPage(browser);
    await page.goto(`${rt.url}/ui/runs/${run.id}/steps/ask`);
    const hang = page.locator('.hang-report');
    await hang.waitFor();
    assert.equal(await hang.locator('.classification').textContent(), report.classification.code);
    assert.match(report.classification.code, /^llm\.no_headers$/);
    const where = (await hang.locator('.source-line code').textContent()) ?? '';
    assert.ok(where.startsWith(`${report.where.file}:${report.where.line}:`), `source line shown: ${where}`);
    // The cause comes first: the classification is the report's first line.
    assert.match((await hang.locator('header .cause').textContent()) ?? '', /^llm\.no_headers /);
    assert.ok((await hang.locator('table.pending tbody tr').count()) >= 1, 'pending operations as a table');
    assert.equal(await page.locator('h1 .status').textContent(), 'timed out');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('the workers page lists the supervised worker processes, at 1280 px and at a phone width', async () => {
    const sup = (await rt.engine.healthDetailed()).supervisor;
    assert.ok(sup);
    for (const width of [1280, 390]) {
      const { page, context, errors } = await openPage(browser, { width, height: 844 });
      await page.goto(`${rt.url}/ui/workers`);
      const rows = page.locator('table.slots tbody tr');
      await rows.nth(1).waitFor();
      assert.equal(await rows.count(), 2);
      const pids = await rows.evaluateAll((els) => els.map((e) => Number(e.querySelector('td:nth-child(2)')?.textContent)));
      assert.deepEqual([...pids].sort(), sup.workers.map((w) => w.pid).sort());
      assert.equal(await page.locator('table.slots tbody tr[data-state="running"]').count(), 2);
      await page.locator('section[aria-labelledby="limits"]').waitFor();
      // Nothing sticks out sideways: the page itself never scrolls horizontally (tables scroll in their box).
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `page wider than the viewport by ${overflow}px at ${width}px`);
      assert.deepEqual(errors, []);
      await context.close();
    }
  });

  test('a concurrency key at its limit is listed on the workers page, and the step it holds back says so on its page', async () => {
    const key = { key: 'ui-key', limit: 1 };
    const { run: holder } = await rt.engine.createRun({ plan: { steps: [{ name: 'hold', tool: 'sleep', inputs: { ms: 4000 } }] }, concurrency: key });
    await waitFor(async () => ((await rt.engine.getRun(holder.id)).steps[0]?.status === 'running' ? true : undefined), 20_000, 'the key held');
    const { run: queued } = await rt.engine.createRun({ plan: { steps: [{ name: 'next', tool: 'echo', inputs: {} }] }, concurrency: key });
    const { page, context, errors } = await openPage(browser, { width: 1280, height: 900 });
    await page.goto(`${rt.url}/ui/workers`);
    const row = page.locator('table.limits tr[data-limit="concurrency:ui-key"]');
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /concurrency key\s*ui-key\s*running steps\s*1 of 1\s*1/);
    await page.goto(`${rt.url}/ui/runs/${queued.id}/steps/next`);
    const waiting = page.locator('[data-waiting="concurrency"]');
    await waiting.waitFor();
    assert.match((await waiting.textContent()) ?? '', /concurrency key ui-key: 1 of 1 running; a slot frees in \d[^;]* at the latest/);
    // On the run's timeline, its queued time is drawn as held by the key (from its step.waiting event).
    await page.goto(`${rt.url}/ui/runs/${queued.id}`);
    const held = page.locator('.timeline .tl-track .tl-seg.k-held');
    await held.waitFor();
    assert.match((await held.getAttribute('title')) ?? '', /waiting for concurrency key ui-key \(1\/1 running\)/);
    assert.deepEqual(errors, []);
    await context.close();
    assert.equal((await finished(queued.id)).status, 'succeeded');
  });

  test('a call that waited at its provider\'s limit is drawn inside its attempt on the timeline, as long as it waited', async () => {
    const { run } = await rt.engine.createRun({
      plan: { steps: ['one', 'two'].map((name) => ({ name, tool: 'llm', inputs: { provider: 'single', prompt: name }, timeoutMs: 20_000 })) },
    });
    assert.equal((await finished(run.id)).status, 'succeeded');
    const usage = (await rt.engine.listEvents(run.id, 0, 1000)).filter((e) => e.type === 'llm.usage').map((e) => Number(e.data.waitedMs ?? 0));
    assert.ok(Math.max(...usage) >= 1000, `one call waited for the other (waitedMs ${usage.join(', ')})`);
    const { page, context, errors } = await openPage(browser, { width: 1280, height: 900 });
    await page.goto(`${rt.url}/ui/runs/${run.id}`);
    const limit = page.locator('.timeline .tl-track .tl-seg.k-limit');
    await limit.waitFor();
    assert.equal(await limit.count(), 1);
    assert.match((await limit.getAttribute('title')) ?? '', /waiting for provider single \(concurrency 1\/1\), 1\.\d+ s/);
    // The events table says what the step waited for, and how long the call waited.
    assert.match((await page.locator('.events tr.ev-step-waiting .detail').textContent()) ?? '', /waits for provider single · concurrency 1 of 1/);
    assert.match((await page.locator('.events tr.ev-llm-usage .detail').allTextContents()).join('\n'), /\(waited 1\.\d+ s for capacity\)/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('at a phone width the runs list and a run page fit the screen', async () => {
    const { run } = await rt.engine.createRun({ plan: { steps: [{ name: 'a', tool: 'echo', inputs: {} }, { name: 'b', tool: 'echo', inputs: {}, dependsOn: ['a'] }] } });
    await finished(run.id);
    const { page, context, errors } = await openPage(browser, { width: 390, height: 844 });
    for (const path of ['/ui', `/ui/runs/${run.id}`]) {
      await page.goto(`${rt.url}${path}`);
      await page.locator(path === '/ui' ? `tr[data-run-id="${run.id}"]` : 'svg.dag .node').first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${path}: wider than the viewport by ${overflow}px`);
    }
    assert.deepEqual(errors, []);
    await context.close();
  });
});
