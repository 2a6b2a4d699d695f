/**
 * examples/typescript-app from the source tree (in the clone, `runwarden` resolves to src/ through
 * the `runwarden-source` export condition): its plan runs on an embedded runtime, then through the
 * client against a `runwarden start` that loads the example's tools module. test/package/pack.test.ts
 * runs the same app compiled, against the installed package.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cleanEnv, killAll, NODE, ROOT, startServer } from '../cli/helpers.ts';

const APP = join(ROOT, 'examples', 'typescript-app', 'src');
const SOURCE = { NODE_OPTIONS: '--conditions=runwarden-source' };

after(killAll);

test('the TypeScript example runs its plan embedded and against runwarden start, each stream to run.finished', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rw-example-'));
  const server = await startServer(['--workers', '1', '--lab', 'off', '--data-dir', join(dir, 'server'), '--tools', join(APP, 'tools.ts')], { env: SOURCE });
  try {
    const r = spawnSync(NODE, [join(APP, 'app.ts')], { cwd: dir, env: cleanEnv({ ...SOURCE, RUNWARDEN_URL: server.url, EXAMPLE_DATA_DIR: join(dir, 'embedded') }), encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    for (const where of ['embedded', 'remote']) {
      const done = new RegExp(`^${where}: run \\S+ succeeded: \\{"line":"HELLO [A-Z ]+ has \\d+ words","words":\\d+\\} \\(events ([\\d,]+)\\)$`, 'm').exec(r.stdout);
      assert.ok(done, `${where}:\n${r.stdout}`);
      const seqs = (done[1] ?? '').split(',').map(Number);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    }
    assert.match(r.stdout, /^remote: a missing run is 404 NOT_FOUND$/m);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
