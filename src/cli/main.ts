/**
 * The `runwarden` command line (bin/runwarden.js imports this file). Runs the command named by
 * process.argv on import and sets process.exitCode; see run.ts for the commands.
 */
import { processIo } from './io.ts';
import { runCli } from './run.ts';

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
// Long-running commands (start, lab) resolve after a graceful stop. Should a handle still keep the
// process alive after that, name it and exit rather than linger silently.
const linger = setTimeout(() => {
  const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'Timeout');
  process.stderr.write(`runwarden: exiting with open handles (${open.join(', ') || 'none'})\n`);
  process.exit(code);
}, 3000);
linger.unref();
