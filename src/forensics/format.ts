/**
 * A hang report as a person reads it in ten seconds: the one-line cause, then where, then the
 * evidence (pending operations with their frames, checkpoint, loop, process, logs, config).
 * Works on any stored report shape (older, minimal reports included): every field is optional here.
 */
import { relative, isAbsolute } from 'node:path';
import { fmtBytes, fmtMs } from './classify.ts';

export interface FormatOptions {
  /** Step name, when the report does not carry one. */
  step?: string;
  /** Paths under this directory are shown relative to it. @default process.cwd() */
  cwd?: string;
  /** Show the configuration snapshot. @default true */
  config?: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function shortPath(p: string, cwd: string): string {
  if (!isAbsolute(p)) return p;
  const r = relative(cwd, p);
  return r.startsWith('..') ? p : r;
}

/** Shortens every absolute path inside a frame or location string. */
function paths(text: string, cwd: string): string {
  return text.replace(/(\/[^\s():]+)(?=:\d)/g, (p) => shortPath(p, cwd));
}

function location(v: unknown, cwd: string): string | undefined {
  if (!isObj(v)) return undefined;
  const file = str(v.file);
  if (!file) return undefined;
  const fn = str(v.fn);
  return `${shortPath(file, cwd)}:${num(v.line) ?? '?'}:${num(v.column) ?? '?'}${fn ? ` in ${fn}` : ''}`;
}

function opLine(op: Obj): string {
  const kind = str(op.kind) ?? '?';
  const what = str(op.what) ?? '';
  // `what` often starts with its kind already (`tracked "embed batch 1"`, `lock wait ...`).
  const parts = what.startsWith(kind) ? [what] : [kind, what];
  const phase = str(op.phase);
  if (phase) parts.push(`| ${phase.replace(/_/g, ' ')} ${fmtMs(num(op.msInPhase) ?? 0)}`);
  if (str(op.peer) && !(str(op.what) ?? '').includes(str(op.peer) as string)) parts.push(`| peer ${str(op.peer)}`);
  if (num(op.status) !== undefined) parts.push(`| status ${num(op.status)}`);
  if (num(op.bytesOut) !== undefined || num(op.bytesIn) !== undefined) parts.push(`| out ${fmtBytes(num(op.bytesOut))} in ${fmtBytes(num(op.bytesIn))}`);
  if (op.msSinceLastByte === null) parts.push('| no byte received');
  else if (num(op.msSinceLastByte) !== undefined) parts.push(`| last byte ${fmtMs(num(op.msSinceLastByte) ?? 0)} ago`);
  if (str(op.holder)) parts.push(`| held by ${str(op.holder)}`);
  if (str(op.killed)) parts.push(`| sent ${str(op.killed)}`);
  if (op.outlivedAbort === true) parts.push('| outlived the abort');
  return parts.filter((p) => p !== '').join(' ');
}

/** `key=value` pairs (the keys as stored, so they can be searched for); objects as compact JSON. */
function pairs(v: Obj, skip: ReadonlySet<string> = new Set()): string[] {
  return Object.entries(v)
    .filter(([k, x]) => !skip.has(k) && x !== undefined && x !== null && x !== '')
    .map(([k, x]) => `${k}=${isObj(x) || Array.isArray(x) ? JSON.stringify(x) : String(x)}`);
}

/** `  label: first line`, then the rest indented under the first item. */
function labelled(label: string, items: string[], indent = '  '): string[] {
  const head = `${indent}${label}: `;
  return wrap(items, WIDTH - head.length).map((l, i) => `${i === 0 ? head : ' '.repeat(head.length)}${l}`);
}

/** Lines of at most `width` characters, each a run of the items joined by spaces. */
function wrap(items: string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    if (line !== '' && line.length + 1 + item.length > width) {
      lines.push(line);
      line = item;
    } else {
      line = line === '' ? item : `${line} ${item}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

const WIDTH = 100;

/** The configuration snapshot as a few short lines: Node, environment, then runwarden's keys. */
function configLines(config: Obj): string[] {
  const out = ['  config:'];
  const node = [str(config.node), str(config.platform), Array.isArray(config.execArgv) && config.execArgv.length > 0 ? `execArgv ${config.execArgv.join(' ')}` : ''].filter(Boolean);
  if (node.length > 0) out.push(`    node ${node.join(', ')}`);
  if (isObj(config.env) && Object.keys(config.env).length > 0) out.push(...labelled('env', pairs(config.env), '    '));
  const rw = isObj(config.runwarden) ? config.runwarden : undefined;
  if (rw) {
    out.push(...labelled('runwarden', pairs(rw, new Set(['providers'])), '    '));
    const providers = isObj(rw.providers) ? rw.providers : {};
    for (const [name, p] of Object.entries(providers)) out.push(...labelled(`provider ${name}`, isObj(p) ? pairs(p) : [String(p)], '    '));
  }
  const rest = Object.fromEntries(Object.entries(config).filter(([k]) => !['node', 'platform', 'execArgv', 'env', 'runwarden'].includes(k)));
  if (Object.keys(rest).length > 0) out.push(...labelled('other', pairs(rest), '    '));
  return out;
}

export function formatReport(report: Record<string, unknown>, opts: FormatOptions = {}): string {
  const cwd = opts.cwd ?? process.cwd();
  const out: string[] = [];
  const c = isObj(report.classification) ? report.classification : undefined;
  const code = str(c?.code) ?? str(report.classification) ?? 'unclassified';
  const summary = str(c?.summary) ?? str(report.summary);
  const step = str(report.stepName) ?? opts.step ?? '?';
  const attempt = num(report.attempt);
  out.push(`${step}${attempt !== undefined ? ` attempt ${attempt}` : ''}: ${code}${summary ? ` - ${summary}` : ''}`);

  const where = isObj(report.where) ? report.where : undefined;
  const whereText = location(where, cwd);
  if (whereText) out.push(`  where: ${whereText}${str(where?.source) ? `  (${str(where?.source)})` : ''}`);
  else out.push('  where: unknown (no user-code frame was recorded)');

  const facts: string[] = [];
  const tool = str(report.tool);
  if (tool) facts.push(`tool ${tool}${location(report.toolLocation, cwd) ? ` (${location(report.toolLocation, cwd)})` : ''}`);
  const ran = num(report.ranMs);
  const timeout = num(report.timeoutMs);
  if (ran !== undefined) facts.push(`ran ${fmtMs(ran)}${timeout ? ` of a ${fmtMs(timeout)} deadline` : ''}`);
  if (report.ignoredAbort === true) facts.push('ignored its abort (abandoned)');
  if (str(report.trigger)) facts.push(`trigger ${str(report.trigger)}`);
  if (facts.length > 0) out.push(`  ${facts.join(', ')}`);

  const pending = Array.isArray(report.pending) ? report.pending.filter(isObj) : Array.isArray(report.tracked) ? report.tracked.filter(isObj) : [];
  if (pending.length > 0) {
    out.push(`  pending (${pending.length}):`);
    for (const op of pending) {
      out.push(`    - ${opLine(op)}`);
      if (str(op.frame)) out.push(`        at ${paths(str(op.frame) as string, cwd)}`);
    }
  } else {
    out.push('  pending: nothing (no request, socket, child process, lock or tracked operation)');
  }

  const frames = Array.isArray(report.frames) ? report.frames.filter((f): f is string => typeof f === 'string') : [];
  if (frames.length > 0) {
    out.push('  frames:');
    for (const f of frames.slice(0, 10)) out.push(`    at ${paths(f, cwd)}`);
  }

  const cp = isObj(report.lastCheckpoint) ? report.lastCheckpoint : undefined;
  if (cp) {
    const ago = num(cp.msBeforeReport) ?? num(cp.msAgo);
    out.push(`  last checkpoint: "${str(cp.label) ?? '?'}"${ago !== undefined ? ` ${fmtMs(ago)} before the report` : ''}${str(cp.frame) ? ` at ${paths(str(cp.frame) as string, cwd)}` : ''}`);
  } else if ('lastCheckpoint' in report) {
    out.push('  last checkpoint: none');
  }

  const after = Array.isArray(report.afterAbort) ? report.afterAbort.filter((x): x is string => typeof x === 'string') : [];
  if (after.length > 0) out.push(`  after the abort: ${after.join('; ')}`);
  const timers = Array.isArray(report.timers) ? report.timers.filter(isObj) : [];
  if (timers.length > 0) {
    out.push(`  timers: ${timers.map((t) => `${fmtMs(num(t.delayMs) ?? 0)}${t.repeat === true ? ' repeating' : ''}${str(t.callback) ? ` -> ${paths(str(t.callback) as string, cwd)}` : ''}`).join(', ')}`);
  }

  const loop = isObj(report.eventLoop) ? report.eventLoop : undefined;
  if (loop) {
    const util = num(loop.utilization);
    out.push(
      `  event loop during the step: max delay ${fmtMs(num(loop.maxDelayMs) ?? 0)}, p99 ${fmtMs(num(loop.p99DelayMs) ?? 0)}, mean ${fmtMs(num(loop.meanDelayMs) ?? 0)}${util !== undefined ? `, busy ${Math.round(util * 100)}%` : ''}`,
    );
  }
  const res = isObj(report.resources) ? report.resources : undefined;
  if (res) {
    const active = isObj(res.activeResources) ? Object.entries(res.activeResources).map(([k, v]) => `${k} ${String(v)}`).join(', ') : '';
    const fds = num(res.openFds);
    out.push(
      `  process: pid ${num(res.pid) ?? '?'}, rss ${fmtBytes(num(res.rssBytes))}, heap ${fmtBytes(num(res.heapUsedBytes))} of ${fmtBytes(num(res.heapTotalBytes))}${fds !== undefined ? `, ${fds} open fds` : ''}${active ? `, handles: ${active}` : ''}`,
    );
  }
  if (isObj(report.worker)) out.push(...labelled('worker', pairs(report.worker)));
  // What the tool's own error said, minus what the first line already has (its classification).
  if (isObj(report.operation)) out.push(...labelled('operation', pairs(report.operation, new Set(['classification']))));

  const logs = Array.isArray(report.lastLogs) ? report.lastLogs.filter((l): l is string => typeof l === 'string') : [];
  if (logs.length > 0) {
    out.push(`  last log lines (${logs.length}):`);
    for (const l of logs.slice(-10)) out.push(`    ${l}`);
  }
  if (opts.config !== false && isObj(report.config)) out.push(...configLines(report.config));
  const notes = Array.isArray(report.notes) ? report.notes.filter((n): n is string => typeof n === 'string') : [];
  for (const n of notes) out.push(`  note: ${n}`);
  return out.join('\n');
}
