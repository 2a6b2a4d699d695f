/**
 * A command: its name (`runs list`), its flags in `node:util` parseArgs form, its help, and what it
 * does. main.ts finds the command, parses strictly (an unknown flag is a usage error, exit 2) and
 * runs it.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsOptionsConfig } from 'node:util';
import { usageError } from './io.ts';
import type { Io } from './io.ts';

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export interface Command {
  /** `submit`, `runs list`, ... */
  name: string;
  summary: string;
  /** After the command name: `<plan.json> [--follow] [--url U]`. */
  usage: string;
  /** Extra help text: flags and exit codes. */
  help: string;
  options: ParseArgsOptionsConfig;
  positionals: { min: number; max: number };
  run(args: ParsedArgs, io: Io): Promise<number>;
}

/**
 * `--lease-ms -1` as `--lease-ms=-1`: parseArgs refuses a value that starts with a dash ("argument
 * is ambiguous"), which hides the real problem (a negative number) behind a syntax one. Only a
 * negative number after a flag that takes a value is joined; anything else is left to parseArgs.
 */
function joinNegativeValues(options: ParseArgsOptionsConfig, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    const name = /^--([^=]+)$/.exec(arg)?.[1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

export function parseCommandArgs(cmd: Command, argv: string[]): ParsedArgs {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({ args: joinNegativeValues(cmd.options, argv), options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs throws TypeError with an ERR_PARSE_ARGS_* code and a message written for users.
    throw usageError(err instanceof Error ? err.message.replace(/\. To specify a positional argument.*$/s, '') : String(err));
  }
  if (parsed.values.help === true) return parsed;
  const n = parsed.positionals.length;
  if (n < cmd.positionals.min) throw usageError(`missing argument: runwarden ${cmd.name} ${cmd.usage}`);
  if (n > cmd.positionals.max) throw usageError(`unexpected argument ${JSON.stringify(parsed.positionals[cmd.positionals.max])}`);
  return parsed;
}

export function helpText(cmd: Command): string {
  return `usage: runwarden ${cmd.name} ${cmd.usage}\n\n${cmd.summary}\n${cmd.help ? `\n${cmd.help.trimEnd()}\n` : ''}`;
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function boolFlag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

export function listFlag(args: ParsedArgs, name: string): string[] | undefined {
  const v = args.values[name];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return typeof v === 'string' ? [v] : undefined;
}

export function intFlag(args: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const raw = stringFlag(args, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim())) throw usageError(`--${name} must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw usageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}
