/**
 * The command table and the dispatcher. `runCli` never throws and never prints a stack trace: a
 * CliError prints its message and lines, a RunwardenError its code and message, anything else its
 * message alone (RUNWARDEN_DEBUG=1 adds the stack for whoever is debugging runwarden itself).
 */
import { readFileSync } from 'node:fs';
import { RunwardenError } from '../domain/errors.ts';
import { helpText, parseCommandArgs } from './command.ts';
import type { Command } from './command.ts';
import { dbMigrateCommand, dbStatusCommand, dbVacuumCommand } from './commands/db.ts';
import { doctorCommand } from './commands/doctor.ts';
import { labCommand } from './commands/lab.ts';
import { reportCommand } from './commands/report.ts';
import { runsCancelCommand, runsEventsCommand, runsListCommand, runsPruneCommand, runsShowCommand } from './commands/runs.ts';
import { schedulesAddCommand, schedulesListCommand, schedulesRmCommand } from './commands/schedules.ts';
import { startCommand } from './commands/start.ts';
import { runsRerunCommand, signalCommand } from './commands/waits.ts';
import { submitCommand } from './commands/submit.ts';
import { workerCommand } from './commands/worker.ts';
import { CliError, EXIT } from './io.ts';
import type { Io } from './io.ts';

export const COMMANDS: readonly Command[] = [
  startCommand,
  workerCommand,
  submitCommand,
  runsListCommand,
  runsShowCommand,
  runsCancelCommand,
  runsRerunCommand,
  runsEventsCommand,
  runsPruneCommand,
  schedulesListCommand,
  schedulesAddCommand,
  schedulesRmCommand,
  signalCommand,
  reportCommand,
  doctorCommand,
  labCommand,
  dbMigrateCommand,
  dbStatusCommand,
  dbVacuumCommand,
];

const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] ?? ''));

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function usage(group?: string): string {
  const cmds = COMMANDS.filter((c) => group === undefined || c.name.startsWith(`${group} `));
  const width = Math.max(...cmds.map((c) => c.name.length));
  const lines = cmds.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: runwarden ${group ?? '<command>'} ${group ? '<subcommand> ' : ''}[flags]

${group ? 'subcommands' : 'commands'}:
${lines.join('\n')}

\`runwarden ${group ?? '<command>'}${group ? ' <subcommand>' : ''} --help\` shows the flags of each.
Exit codes: 0 ok, 1 the run failed (or a server error), 2 bad input or usage, 3 the API cannot be reached.
`;
}

function find(argv: string[]): { cmd: Command; rest: string[] } | { group: string; sub: string | undefined } | undefined {
  const [first, second] = argv;
  if (first === undefined) return undefined;
  if (GROUPS.has(first)) {
    const cmd = COMMANDS.find((c) => c.name === `${first} ${second ?? ''}`);
    return cmd ? { cmd, rest: argv.slice(2) } : { group: first, sub: second };
  }
  const cmd = COMMANDS.find((c) => c.name === first);
  return cmd ? { cmd, rest: argv.slice(1) } : undefined;
}

export async function runCli(argv: string[], io: Io): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    io.err(usage());
    return EXIT.USAGE;
  }
  if (first === '--help' || first === '-h') {
    io.out(usage());
    return EXIT.OK;
  }
  if (first === '--version' || first === '-v' || first === 'version') {
    io.out(`runwarden ${version()}\n`);
    return EXIT.OK;
  }
  if (first === 'help') {
    if (argv.length === 1) {
      io.out(usage());
      return EXIT.OK;
    }
    return runCli([...argv.slice(1), '--help'], io);
  }

  const found = find(argv);
  if (found === undefined) {
    io.err(`error: unknown command ${JSON.stringify(first)}\n\n${usage()}`);
    return EXIT.USAGE;
  }
  if ('group' in found) {
    if (found.sub === '--help' || found.sub === '-h') {
      io.out(usage(found.group));
      return EXIT.OK;
    }
    io.err(`${found.sub === undefined ? `error: ${found.group} needs a subcommand` : `error: unknown subcommand ${JSON.stringify(`${found.group} ${found.sub}`)}`}\n\n${usage(found.group)}`);
    return EXIT.USAGE;
  }

  const { cmd, rest } = found;
  try {
    const args = parseCommandArgs(cmd, rest);
    if (args.values.help === true) {
      io.out(helpText(cmd));
      return EXIT.OK;
    }
    return await cmd.run(args, io);
  } catch (err) {
    return report(err, cmd, io);
  }
}

function report(err: unknown, cmd: Command, io: Io): number {
  if (err instanceof CliError) {
    io.err(`error: ${err.message}\n${err.lines.map((l) => `${l}\n`).join('')}`);
    if (err.showUsage) io.err(`usage: runwarden ${cmd.name} ${cmd.usage}\n(runwarden ${cmd.name} --help for details)\n`);
    return err.exitCode;
  }
  const debug = io.env.RUNWARDEN_DEBUG === '1' && err instanceof Error && err.stack ? `\n${err.stack}` : '';
  if (err instanceof RunwardenError) {
    const details = (err.details ?? []).map((d) => `  - ${d.path ? `${d.path}: ` : ''}${d.message}\n`).join('');
    io.err(`error: ${err.code}: ${err.message}\n${details}${debug ? `${debug}\n` : ''}`);
    return err.status >= 400 && err.status < 500 ? EXIT.USAGE : EXIT.FAILED;
  }
  const message = err instanceof Error ? err.message || err.name : String(err);
  io.err(`error: ${message}${debug}\n`);
  return EXIT.FAILED;
}
