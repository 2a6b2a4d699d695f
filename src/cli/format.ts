/** Plain-text rendering shared by the commands: tables, durations, times, one line per event. */
import type { EventRecord } from '../domain/records.ts';

/** ESC [ ... letter: colour and cursor sequences (built from a string: lint forbids control characters in regex literals). */
export const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, 'g');

export const visibleLength = (s: string): number => s.replace(ANSI, '').length;

export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(c)))))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function between(start: string | null | undefined, end: string | null | undefined, now = Date.now()): number | undefined {
  if (!start) return undefined;
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : now;
  return Number.isFinite(a) && Number.isFinite(b) ? b - a : undefined;
}

/** `12:00:01.234` in local time. */
export function clock(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** `2025-01-02 12:00:01` in local time. */
export function dateTime(ts: string | null | undefined): string {
  if (!ts) return '-';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function truncate(s: string, n: number): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, Math.max(0, n - 1))}…` : flat;
}

export function errorSummary(e: unknown, max = 80): string {
  if (e === null || e === undefined) return '';
  if (typeof e === 'string') return truncate(e, max);
  if (typeof e === 'object') {
    const o = e as { code?: unknown; message?: unknown };
    const code = typeof o.code === 'string' ? o.code : '';
    const message = typeof o.message === 'string' ? o.message : '';
    return truncate(code && message ? `${code}: ${message}` : code || message || compact(e), max);
  }
  return truncate(compact(e), max);
}

export function compact(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return typeof v;
  }
}

export function bytes(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const str = (d: Record<string, unknown>, k: string): string | undefined => (typeof d[k] === 'string' ? d[k] : undefined);
const num = (d: Record<string, unknown>, k: string): number | undefined => (typeof d[k] === 'number' ? d[k] : undefined);

/** What a step.waiting event says: the limit a call waits for at its provider, or the full concurrency key. */
export function waitingDetail(d: Record<string, unknown>): string {
  const used = `${num(d, 'used') ?? '?'}/${num(d, 'cap') ?? '?'}`;
  if (str(d, 'key') !== undefined) return `waits for concurrency key ${str(d, 'key') ?? '?'} (${used} running${str(d, 'slotBy') ? `; a slot frees by ${str(d, 'slotBy') ?? ''}` : ''})`;
  return `waits for provider ${str(d, 'provider') ?? '?'} (${str(d, 'limit') ?? '?'} ${used}; next slot ${str(d, 'retryAt') ?? '?'})`;
}

/** What an event says, after its time, type and step: `succeeded 132ms`, `attempt 2`, ... */
export function eventDetail(e: EventRecord): string {
  const d = e.data ?? {};
  const parts: string[] = [];
  const attempt = e.attempt ?? num(d, 'attempt');
  switch (e.type) {
    case 'run.created':
      if (str(d, 'goal')) parts.push(JSON.stringify(str(d, 'goal')));
      break;
    case 'step.started':
      if (attempt !== undefined) parts.push(`attempt ${attempt}`);
      break;
    case 'step.added': {
      parts.push(`${str(d, 'tool') ?? '?'} added by ${str(d, 'addedBy') ?? '?'}`);
      const deps = Array.isArray(d.dependsOn) ? (d.dependsOn as unknown[]).filter((x): x is string => typeof x === 'string') : [];
      if (deps.length > 0) parts.push(`after ${truncate(deps.join(', '), 80)}`);
      break;
    }
    case 'step.awaiting':
      parts.push(`waits for ${str(d, 'step') ?? '?'}`);
      break;
    case 'step.awaiting_signal':
      parts.push(`waits for signal ${str(d, 'signal') ?? '?'} until ${str(d, 'deadlineAt') ?? '?'}`);
      break;
    case 'signal.received': {
      const released = Array.isArray(d.released) ? (d.released as unknown[]).filter((x): x is string => typeof x === 'string') : [];
      parts.push(`${str(d, 'name') ?? '?'}${released.length > 0 ? ` released ${truncate(released.join(', '), 80)}` : ' kept'}`);
      break;
    }
    case 'step.reused':
      parts.push(`outputs from run ${str(d, 'reusedFrom') ?? '?'}`);
      break;
    case 'step.waiting':
      parts.push(waitingDetail(d));
      break;
    case 'step.retrying': {
      if (attempt !== undefined) parts.push(`attempt ${attempt}`);
      const delay = num(d, 'delayMs') ?? num(d, 'backoffMs');
      if (delay !== undefined) parts.push(`retry in ${duration(delay)}`);
      if (d.error !== undefined) parts.push(errorSummary(d.error));
      break;
    }
    case 'step.finished':
    case 'run.finished': {
      if (str(d, 'status')) parts.push(str(d, 'status') ?? '');
      const ms = num(d, 'durationMs');
      if (ms !== undefined) parts.push(duration(ms));
      if (d.error !== undefined && d.error !== null) parts.push(errorSummary(d.error));
      break;
    }
    case 'step.log': {
      const level = str(d, 'level');
      parts.push(`${level && level !== 'info' ? `[${level}] ` : ''}${truncate(str(d, 'message') ?? compact(d), 160)}`);
      break;
    }
    case 'llm.request':
    case 'llm.usage': {
      const who = [str(d, 'provider'), str(d, 'model')].filter(Boolean).join('/');
      if (who) parts.push(who);
      const inT = num(d, 'inputTokens');
      const outT = num(d, 'outputTokens');
      if (inT !== undefined || outT !== undefined) parts.push(`tokens in=${inT ?? '?'} out=${outT ?? '?'}`);
      const ttfb = num(d, 'ttfbMs') ?? num(d, 'timeToFirstByteMs');
      if (ttfb !== undefined) parts.push(`ttfb ${duration(ttfb)}`);
      const total = num(d, 'totalMs') ?? num(d, 'durationMs');
      if (total !== undefined) parts.push(`total ${duration(total)}`);
      break;
    }
    case 'artifact.created':
      parts.push(`${str(d, 'name') ?? '?'} (${str(d, 'mime') ?? '?'}, ${bytes(d.size)})`);
      break;
    case 'step.hang_report': {
      const c = d.classification;
      if (typeof c === 'string') parts.push(c);
      else if (c && typeof c === 'object') parts.push(errorSummary({ code: (c as { code?: unknown }).code, message: (c as { summary?: unknown }).summary }, 160));
      if (str(d, 'summary')) parts.push(str(d, 'summary') ?? '');
      break;
    }
    default:
      if (Object.keys(d).length > 0) parts.push(truncate(compact(d), 120));
  }
  return parts.filter((p) => p !== '').join(' ');
}

/** `12:00:01.234 step.finished build succeeded 132ms` */
export function eventLine(e: EventRecord): string {
  return [clock(e.ts), e.type, e.stepName ?? '', eventDetail(e)].filter((p) => p !== '').join(' ');
}
