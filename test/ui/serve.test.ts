/**
 * How /ui is served: the page and its files without a token (they hold no data), every data route
 * still behind the token, a Content-Security-Policy that allows only this origin's files, no way out
 * of src/ui/, and, in Chromium, the token form a user meets on an API that needs one.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { browserUnavailable, launch, openPage } from '../helpers/browser.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';

const TOKEN = 'ui-test-token-5f2c';

describe('/ui serving and auth', () => {
  let rt: TestRuntime;
  before(async () => {
    rt = await startTestRuntime({ token: TOKEN });
  });
  after(async () => {
    await rt?.close();
  });

  test('the page and its files need no token; the data routes do', async () => {
    for (const path of ['/ui', '/ui/runs/some-id', '/ui/workers', '/ui/assets/app.js', '/ui/assets/style.css', '/ui/vendor/preact.mjs', '/ui/vendor/dagre.mjs']) {
      const res = await fetch(`${rt.url}${path}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      await res.arrayBuffer();
    }
    for (const path of ['/runs', '/health/detailed', '/steps/stuck']) {
      const res = await fetch(`${rt.url}${path}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 401, path);
      await res.arrayBuffer();
    }
  });

  test('the page carries a policy that runs only its own scripts and its import map', async () => {
    const res = await fetch(`${rt.url}/ui`, { signal: AbortSignal.timeout(5000) });
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /connect-src 'self'/);
    assert.match(await res.text(), /<script type="importmap">/);
  });

  test('unknown files are a JSON 404, and nothing outside src/ui/ can be read', async () => {
    // Sent as written (fetch would normalise the dot segments away before they reach the server).
    const raw = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: rt.port, path }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.setTimeout(5000, () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
      });
    for (const path of ['/ui/assets/nope.js', '/ui/vendor/lodash.mjs', '/ui/assets/index.html', '/ui/assets/..%2F..%2F..%2Feslint.config.js', '/ui/assets/%2e%2e/%2e%2e/%2e%2e/eslint.config.js', '/ui/assets/../../../eslint.config.js']) {
      const res = await raw(path);
      assert.equal(res.status, 404, path);
      assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'NOT_FOUND', path);
    }
  });

  test('in Chromium, the dashboard asks for the token and then shows the runs', { skip: browserUnavailable() }, async () => {
    const { run } = await rt.engine.createRun({ plan: { steps: [{ name: 'a', tool: 'echo', inputs: {} }] } });
    const browser = await launch();
    try {
      const { page, errors } = await openPage(browser);
      await page.goto(`${rt.url}/ui`);
      await page.locator('#token').waitFor();
      await page.fill('#token', TOKEN);
      await page.press('#token', 'Enter');
      await page.locator(`tr[data-run-id="${run.id}"]`).waitFor();
      // The one 401 that asked for the token is the only console error.
      assert.ok(errors.every((e) => /401/.test(e)), errors.join('\n'));
    } finally {
      await browser.close();
    }
  });
});
