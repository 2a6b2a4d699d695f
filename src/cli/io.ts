/**
 * What a command may touch: its output streams, the environment and the working directory. Commands
 * never write to process.stdout directly, so they can be run in-process by unit tests.
 */
export const EXIT = Object.freeze({
  OK: 0,
  /** The run failed, timed out or was cancelled; or the server answered with a 5xx. */
  FAILED: 1,
  /** Bad input: usage, unreadable or invalid file, a 4xx from the API. */
  USAGE: 2,
  /** The API could not be reached. */
  UNREACHABLE: 3,
  SIGINT: 130,
  /** stdout or stderr was closed by its reader (`| head`). */
  SIGPIPE: 141,
  SIGTERM: 143,
});

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal that can redraw: progress is a redrawn table and colours are on. */
  isTTY: boolean;
  /** Terminal width, when known. */
  columns: number | undefined;
  env: Record<string, string | undefined>;
  cwd: string;
}

/**
 * Whether output may redraw in place: a terminal, unless it says it cannot move the cursor
 * (`TERM=dumb`: Emacs shells, some CI log viewers), which gets the plain lines a pipe gets.
 */
export function canRedraw(stdoutIsTTY: boolean, env: Record<string, string | undefined>): boolean {
  return stdoutIsTTY && env.TERM !== 'dumb';
}

export function processIo(): Io {
  const tty = canRedraw(process.stdout.isTTY === true, process.env);
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    isTTY: tty,
    columns: tty ? process.stdout.columns : undefined,
    env: process.env,
    cwd: process.cwd(),
  };
}

/** An error meant for the user: printed as its lines (never a stack) and mapped to an exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly lines: string[];
  /** Print the command's usage after the message. */
  readonly showUsage: boolean;

  constructor(exitCode: number, message: string, opts: { lines?: string[]; showUsage?: boolean } = {}) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.lines = opts.lines ?? [];
    this.showUsage = opts.showUsage ?? false;
  }
}

export const usageError = (message: string): CliError => new CliError(EXIT.USAGE, message, { showUsage: true });
