/**
 * Builds the package: `tsc -p tsconfig.build.json` (src/*.ts to dist/*.js and *.d.ts, relative
 * `.ts` imports rewritten to `.js`), then copies every file of src/ that is not TypeScript (the SQL
 * migrations, read at run time beside the modules that apply them) to the same place in dist/.
 * `npm pack` and `npm publish` run it (`prepack`); the clone itself runs from src/ and needs no build.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const src = join(root, 'src');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
  timeout: 300_000,
});
if (tsc.status !== 0) {
  process.stderr.write(`build: tsc failed (${tsc.error?.message ?? `exit ${tsc.status ?? tsc.signal}`})\n`);
  process.exit(1);
}

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts')) continue;
  const from = join(entry.parentPath, entry.name);
  const to = join(dist, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  copied++;
}
process.stdout.write(`build: dist/ written (${copied} non-TypeScript file${copied === 1 ? '' : 's'} copied)\n`);
