/**
 * The examples of README.md and docs/*.md, as the docs test runs them:
 *
 * - a `sh` block is commands: every line (joined over trailing `\`, split on ` && `, `# comments`
 *   dropped) is run and must exit 0, unless SKIPPED says why it cannot run offline;
 * - a `console` block is a transcript: `$ command` lines, each followed by the output it prints
 *   (stdout and stderr, in order). The command is run and its output compared after `normalize`.
 *   In an expected line, `...` matches anything; a line that is only `...` matches any number of
 *   lines.
 *
 * Examples talk to the defaults (API on 127.0.0.1:7400, lab on 7401, data in ./.runwarden): each
 * file runs in a network namespace of its own, in a scratch directory shown as /home/me/project.
 */
import { readFileSync } from 'node:fs';

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  info: string;
  text: string;
}

export interface Command {
  file: string;
  line: number;
  command: string;
  /** For transcripts: the output the docs show. */
  expected?: string[];
}

/** The docs' working directory in examples; the scratch directory is shown as this. */
export const DOCS_CWD = '/home/me/project';

export function blocks(file: string, markdown = readFileSync(file, 'utf8')): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(.*)$/.exec(lines[i] ?? '');
    if (!open) continue;
    const [, indent = '', fence = '', info = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j] ?? '';
      if (new RegExp(`^\\s*${fence}\\s*$`).test(l)) break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l);
    }
    out.push({ file, line: i + 1, info: info.trim(), text: body.join('\n') });
    i = j;
  }
  return out;
}

/** Commands of a `sh` block: continuations joined, comments dropped, `a && b` as two commands. */
export function shCommands(b: Block): Command[] {
  const out: Command[] = [];
  const lines = b.text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${(lines[++i] ?? '').trim()}`;
    const code = stripComment(line).trim();
    if (code === '') continue;
    for (const part of code.split(' && ')) out.push({ file: b.file, line: b.line + 1 + start, command: part.trim() });
  }
  return out;
}

/** `$ command` lines and the output after each, from a `console` block. */
export function transcript(b: Block): Command[] {
  const out: Command[] = [];
  const lines = b.text.split('\n');
  lines.forEach((l, i) => {
    if (l.startsWith('$ ')) out.push({ file: b.file, line: b.line + 1 + i, command: l.slice(2).trim(), expected: [] });
    else out.at(-1)?.expected?.push(l);
  });
  for (const c of out) while (c.expected?.at(-1) === '') c.expected.pop();
  return out;
}

/** Drops a `# comment` that is not inside quotes. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) {
      return line.slice(0, i);
    }
  }
  return line;
}

/**
 * Commands the docs show that the test cannot run offline or in seconds, each with the reason.
 * A command matching none of these must run.
 */
export const SKIPPED: ReadonlyArray<{ pattern: RegExp; why: string }> = [
  { pattern: /^npm (install|ci)\b/, why: 'installs from the registry (CI runs npm ci itself)' },
  { pattern: /^npm test\b|^npm run (typecheck|lint|test)/, why: 'the test suite itself' },
  { pattern: /^bash \.ci\/run\b/, why: 'CI on a clean clone, minutes long' },
  { pattern: /^npm run bench\b|^node bench\//, why: 'a benchmark: minutes long, run on demand' },
  { pattern: /postgres:\/\/|DATABASE_URL=|^pg_|^SELECT\b/, why: 'needs PostgreSQL and several machines; test/postgres runs these paths' },
  { pattern: /\/trickle\//, why: 'a stream that never ends, by design of the trickle mode' },
];

export function skipReason(command: string): string | undefined {
  return SKIPPED.find((s) => s.pattern.test(command))?.why;
}

/** Commands that keep running (servers): started in the background, stopped at the end of the file. */
export function isLongRunning(command: string): boolean {
  return /^(npx )?runwarden (start|lab|worker)\b(?!.*--help)/.test(command.replace(/^(\w+=\S* )+/, '')) || /^npm start\b/.test(command);
}

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g;

/**
 * What may differ between two runs of the same command: times, ids, durations, process ids, sizes
 * of a process, ephemeral ports of the lab's side listeners. Both sides pass through it.
 */
export function normalize(text: string, cwd: string): string {
  return text
    .replace(/\r/g, '')
    .split(cwd)
    .join(DOCS_CWD)
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<ts>')
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, '<datetime>')
    .replace(/\b\d\d:\d\d:\d\d\.\d{3}\b/g, '<time>')
    .replace(UUID, '<id>')
    .replace(/\bart_[0-9a-f]{24}\b/g, '<artifact>')
    .replace(/\b\d+(\.\d+)? ?(ms|s|min|h)\b/g, '<dur>')
    .replace(/\b\d+(\.\d+)? ?(GiB|MiB|KiB|B)\b/g, '<size>')
    .replace(/\bpid \d+/g, 'pid <n>')
    .replace(/\b\d+%/g, '<pct>')
    .replace(/\s+$/gm, '');
}

/** Whether `actual` lines match `expected` lines (normalized), with `...` wildcards. */
export function matches(expected: string[], actual: string[]): boolean {
  const re = (line: string): RegExp => new RegExp(`^${line.split('...').map(escape).join('.*')}$`);
  const go = (e: number, a: number): boolean => {
    if (e === expected.length) return a === actual.length;
    const line = expected[e] ?? '';
    if (line.trim() === '...') {
      for (let k = a; k <= actual.length; k++) if (go(e + 1, k)) return true;
      return false;
    }
    return a < actual.length && re(line).test(actual[a] ?? '') && go(e + 1, a + 1);
  };
  return go(0, 0);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
