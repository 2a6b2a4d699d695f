/**
 * The `runwarden` command line (bin/runwarden.js imports this file). Runs the command named by
 * process.argv on import and sets process.exitCode; see run.ts for the commands.
 */
import { EXIT, processIo } from './io.ts';
import { runCli } from './run.ts';

// A reader that goes away (`runwarden submit plan.json --follow | head -1`) makes the next write
// fail with EPIPE, asynchronously. There is nobody left to tell: exit at once, as a process killed
// by SIGPIPE would (Node ignores the signal itself), instead of an uncaught 'error' event's stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.SIGPIPE);
    throw err;
  });
}

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
