#!/usr/bin/env node
// Entry point, plain JavaScript so that any Node can read it. Two ways to be run:
// - from a clone (src/ is here): the TypeScript runs by type stripping, which needs Node >= 22.18.
//   The machine's `node` may be older (Node 20 here), so when it is, this file re-runs itself on
//   the Node 24 binary the project pins as a devDependency (node_modules/node).
// - from an installed package (no src/, only the compiled dist/): needs Node >= 22.16, the first
//   release whose node:sqlite has a busy timeout (`timeout`: without it a second process writing
//   the database fails at once with "database is locked") and `isTransaction`. An older Node gets
//   a message saying what to do.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, '..', 'src', 'cli', 'main.ts');
const fromSource = existsSync(source);
const entry = fromSource ? source : join(here, '..', 'dist', 'cli', 'main.js');
const [needMajor, needMinor] = fromSource ? [22, 18] : [22, 16];
const [major, minor] = process.versions.node.split('.').map(Number);
const modern = major > needMajor || (major === needMajor && minor >= needMinor);

if (modern) {
  if (process.env.RUNWARDEN_WRAPPED === '1' && process.channel) {
    // Started by the wrapper below: if the wrapper dies (even by SIGKILL) the IPC channel closes,
    // and this process shuts down as if signalled instead of living on as an orphan.
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  await import(pathToFileURL(entry).href);
} else if (!fromSource) {
  process.stderr.write(
    [
      `runwarden needs Node.js >= ${needMajor}.${needMinor} (22 LTS or 24 LTS); this is ${process.version} (${process.execPath}).`,
      'Either install a current Node (https://nodejs.org/en/download, or your version manager: `nvm install 24`),',
      'or run runwarden on a Node fetched from npm for this one command:',
      '  npx -y -p node@24 -p runwarden runwarden <command>',
      '',
    ].join('\n'),
  );
  process.exit(2);
} else {
  const pinned = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(`runwarden needs Node >= ${needMajor}.${needMinor} to run from its source (this is ${process.version}); run \`npm install\` to get the pinned Node 24.\n`);
    process.exit(2);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, RUNWARDEN_WRAPPED: '1' },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
