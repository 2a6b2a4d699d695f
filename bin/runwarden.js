#!/usr/bin/env node
// Entry point. runwarden needs Node >= 22.12 (node:sqlite, TypeScript type stripping). The machine's
// `node` may be older (Node 20 here), so when it is, re-run this file on the Node 24 binary that the
// project pins as a devDependency (node_modules/node). Plain JavaScript so that any Node can read it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
const modern = major > 22 || (major === 22 && minor >= 18);

if (modern) {
  if (process.env.RUNWARDEN_WRAPPED === '1' && process.channel) {
    // Started by the wrapper below: if the wrapper dies (even by SIGKILL) the IPC channel closes,
    // and this process shuts down as if signalled instead of living on as an orphan.
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  await import(join(here, '..', 'src', 'cli', 'main.ts'));
} else {
  const pinned = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(`runwarden needs Node >= 22.18 (this is ${process.version}); run \`npm install\` to get the pinned Node 24.\n`);
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
