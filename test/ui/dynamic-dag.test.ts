/**
 * A run that grows, seen in real Chromium: the run page is open before the steps are added, and
 * the graph gains them as they are (dashed nodes, a dashed edge from the step that added a step
 * that does not depend on it), the step page says who added it, and the page logs no error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startRuntime, type Runtime } from '../../src/runtime.ts';
import { defineTool } from '../../src/tools/types.ts';
import { browserUnavailable, launch, openPage } from '../helpers/browser.ts';
import { waitFor } from '../helpers/engine.ts';
import { testConfig } from '../helpers/runtime.ts';

const skip = browserUnavailable();

/** Adds its steps only once the test says so (a file of the test's), so the page sees the graph grow. */
let release: (() => void) | undefined;
const grow = defineTool({
  name: 'grow',
  async run(ctx) {
    await new Promise<void>((resolve) => {
      release = resolve;
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    ctx.addSteps([
      { name: 'left', tool: 'echo', inputs: { side: 'left' } },
      { name: 'right', tool: 'echo', inputs: { side: 'right' } },
      { name: 'apart', tool: 'echo', dependsOn: [], inputs: { alone: true } },
      { name: 'join', tool: 'echo', dependsOn: ['left', 'right'] },
    ]);
    return { grown: 4 };
  },
});

describe('dashboard: a run that grows', { skip }, () => {
  let browser: Browser;
  let rt: Runtime;
  const dir = mkdtempSync(join(tmpdir(), 'rw-ui-grow-'));

  before(async () => {
    rt = await startRuntime(testConfig(dir), { env: {}, tools: [grow] });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await rt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the graph gains the added steps live, dashed, with an edge from their adder', async () => {
    const { run } = await rt.engine.createRun({ plan: { steps: [{ name: 'seed', tool: 'grow', timeoutMs: 30_000 }] } });
    const { page, context, errors } = await openPage(browser);
    try {
      await page.goto(`${rt.url}/ui/runs/${run.id}`);
      await page.locator('.dag .node[data-step="seed"][data-status="running"]').waitFor();
      assert.equal(await page.locator('.dag .node').count(), 1, 'one node before the step adds any');
      await waitFor(() => release, 10_000, 'the grow tool to be waiting');
      release?.();
      await page.locator('.dag .node[data-step="join"][data-status="succeeded"]').waitFor({ timeout: 20_000 });
      assert.equal(await page.locator('.dag .node').count(), 5);
      assert.equal(await page.locator('.dag .node.added').count(), 4);
      assert.equal(await page.locator('.dag .node[data-step="left"]').getAttribute('data-added-by'), 'seed');
      assert.equal(await page.locator('.dag .node[data-step="seed"]').getAttribute('data-added-by'), null);
      // Dependency edges solid, the added-by edge of the step that does not depend on its adder dashed.
      assert.equal(await page.locator('.dag polyline.edge[data-from="seed"][data-to="left"]:not(.edge-added)').count(), 1);
      assert.equal(await page.locator('.dag polyline.edge-added[data-from="seed"][data-to="apart"]').count(), 1);
      assert.equal(await page.locator('.dag polyline.edge[data-from="left"][data-to="join"]').count(), 1);
      assert.match((await page.locator('.dag-legend').textContent()) ?? '', /added at runtime/);
      assert.match((await page.locator('.dag .node[data-step="apart"]').getAttribute('aria-label')) ?? '', /added by seed/);

      await page.locator('.dag .node[data-step="join"]').click();
      await page.locator('dt', { hasText: 'Added by' }).waitFor();
      assert.match((await page.locator('dl.facts').textContent()) ?? '', /Added byseed \(at runtime\)/);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});
