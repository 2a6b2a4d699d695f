/**
 * Two questions only the V8 inspector can answer, asked in-process and only while building a report:
 *
 * - Where is a function defined? (`[[FunctionLocation]]` of the tool's `run`, or of a timer's
 *   callback.) Script ids are mapped to files with one best-effort coverage query (~16 ms with 300
 *   scripts loaded), cached.
 * - Which timers does a step still have pending? Node keeps no per-context list, but every Timeout
 *   and Immediate carries the AsyncContextFrame it was created in (Node 24). `Runtime.queryObjects`
 *   finds every Timeout; it forces a full GC: ~110 ms with a 15 MB heap. Queued Immediates are one
 *   linked list, walked for free. So it runs only when a tool was
 *   abandoned with no other evidence, and is paced to at most 5 % of the loop's time (after a scan
 *   that took D ms, the next waits max(TIMER_SCAN_MIN_INTERVAL_MS, 20 D)); one scan serves every
 *   report written within SHARE_MS of it.
 *
 * The in-process inspector Session answers synchronously. No debugger domain stays enabled (a live
 * Debugger costs ~2.5x on await-heavy code).
 */
import { randomUUID } from 'node:crypto';
import inspector from 'node:inspector';
import { fileURLToPath } from 'node:url';
import { forensicsOfFrame } from './channels.ts';
import type { SourceLocation } from './frames.ts';
import { internalTimerCallbacks } from './ops.ts';
import type { StepForensics } from './step.ts';

type Post = (method: string, params?: Record<string, unknown>) => Record<string, unknown>;

const GROUP = 'runwarden-forensics';

function withSession<T>(fn: (post: Post, handOver: (value: unknown) => string) => T): T | undefined {
  let session: inspector.Session | undefined;
  const key = `__runwarden_forensics_${randomUUID().replace(/-/g, '')}`;
  const g = globalThis as Record<string, unknown>;
  try {
    session = new inspector.Session();
    session.connect();
    const s = session;
    const post: Post = (method, params) => {
      const box: { err: Error | null; res: Record<string, unknown> | undefined } = { err: null, res: undefined };
      s.post(method, params, (err, res) => {
        box.err = err;
        box.res = res as Record<string, unknown>;
      });
      if (box.err) throw box.err;
      if (box.res === undefined) throw new Error(`inspector ${method} did not answer synchronously`);
      return box.res;
    };
    const handOver = (value: unknown): string => {
      g[key] = value;
      const r = post('Runtime.evaluate', { expression: `globalThis[${JSON.stringify(key)}]`, objectGroup: GROUP });
      const id = (r.result as { objectId?: string } | undefined)?.objectId;
      if (!id) throw new Error('inspector returned no object id');
      return id;
    };
    const out = fn(post, handOver);
    post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
    return out;
  } catch {
    // No inspector in this build, or a protocol change: the report says less, nothing breaks.
    return undefined;
  } finally {
    delete g[key];
    session?.disconnect();
  }
}

const scriptUrls = new Map<string, string>();
const locations = new WeakMap<object, SourceLocation | null>();

/** Where `fn` is defined, or undefined (native functions, bound functions, no inspector). */
export function functionLocation(fn: unknown): SourceLocation | undefined {
  if (typeof fn !== 'function') return undefined;
  const cached = locations.get(fn);
  if (cached !== undefined) return cached ?? undefined;
  const loc =
    withSession((post, handOver) => {
      const objectId = handOver(fn);
      const props = post('Runtime.getProperties', { objectId, ownProperties: true });
      const internal = (props.internalProperties ?? []) as Array<{ name: string; value?: { value?: { scriptId: string; lineNumber: number; columnNumber: number } } }>;
      const l = internal.find((p) => p.name === '[[FunctionLocation]]')?.value?.value;
      if (!l) return null;
      if (!scriptUrls.has(l.scriptId)) {
        post('Profiler.enable');
        try {
          const cov = post('Profiler.getBestEffortCoverage');
          for (const s of (cov.result ?? []) as Array<{ scriptId: string; url: string }>) scriptUrls.set(s.scriptId, s.url);
        } finally {
          post('Profiler.disable');
        }
      }
      const url = scriptUrls.get(l.scriptId);
      if (!url) return null;
      let file = url;
      if (url.startsWith('file://')) {
        try {
          file = fileURLToPath(url);
        } catch {
          file = url;
        }
      }
      const name = (fn as { name?: unknown }).name;
      return { file, line: l.lineNumber + 1, column: l.columnNumber + 1, ...(typeof name === 'string' && name !== '' ? { fn: name } : {}) };
    }) ?? null;
  locations.set(fn, loc);
  return loc ?? undefined;
}

export interface PendingTimer {
  /** 'immediate': a setImmediate callback (a tool working in slices). */
  kind: 'timeout' | 'immediate';
  delayMs: number;
  repeat: boolean;
  /** The callback, for its location (resolved lazily). */
  callback: unknown;
  /** The Timeout or Immediate itself (containment clears those of a cut step). */
  timer: NodeJS.Timeout | NodeJS.Immediate;
}

export interface TimerScan {
  at: number;
  byStep: Map<StepForensics, PendingTimer[]>;
}

/** Minimum time between two heap scans for timers. @default 1000 */
export const TIMER_SCAN_MIN_INTERVAL_MS = 1000;
/** A scan's blocking time times this is the pause before the next one (a 5 % duty cycle). @default 20 */
export const TIMER_SCAN_PACING = 20;
const SHARE_MS = 1000;

let lastScan: TimerScan | undefined;
let nextScanAt = 0;
let scanEnabled = true;
let minIntervalMs = TIMER_SCAN_MIN_INTERVAL_MS;
let pacing = TIMER_SCAN_PACING;

/** Heap scans for timers can be turned off (large heaps, latency-critical workers) or paced. */
export function configureTimerScan(o: { enabled?: boolean; minIntervalMs?: number; pacing?: number }): void {
  if (o.enabled !== undefined) scanEnabled = o.enabled;
  if (o.minIntervalMs !== undefined) minIntervalMs = o.minIntervalMs;
  if (o.pacing !== undefined) pacing = o.pacing;
  nextScanAt = 0;
}

interface TimeoutLike {
  _idleTimeout?: number;
  _destroyed?: boolean;
  _repeat?: number | null;
  _onTimeout?: unknown;
  /** Immediates have this instead of _onTimeout. */
  _onImmediate?: unknown;
}

/**
 * The live timers and immediates of every step, from one heap scan (or a scan made since
 * `notBefore`, at most SHARE_MS ago). null: not available (rate limit, no inspector, no
 * AsyncContextFrame).
 */
export function scanTimers(notBefore = 0, opts: { fresh?: boolean } = {}): TimerScan | null {
  const now = Date.now();
  if (!opts.fresh && lastScan && lastScan.at >= notBefore && now - lastScan.at < SHARE_MS) return lastScan;
  // `fresh`: containment needs the timers pending now (a loop re-arms a new one each turn), and
  // runs it once per abandoned inline attempt, so it is not paced.
  if (!scanEnabled || (now < nextScanAt && !opts.fresh)) return null;
  const probe = setTimeout(() => undefined, 1);
  const proto: unknown = Object.getPrototypeOf(probe);
  clearTimeout(probe);
  const timeouts = withSession((post, handOver) => {
    const q = post('Runtime.queryObjects', { prototypeObjectId: handOver(proto), objectGroup: GROUP });
    const arrayId = (q.objects as { objectId?: string } | undefined)?.objectId;
    if (!arrayId) return [];
    let out: unknown[] = [];
    const sink = (arr: unknown[]): void => {
      out = arr;
    };
    post('Runtime.callFunctionOn', {
      objectId: handOver(sink),
      functionDeclaration: 'function (arr) { this(arr); }',
      arguments: [{ objectId: arrayId }],
      objectGroup: GROUP,
    });
    return out;
  });
  // Queued immediates need no heap scan: they form one linked list, which a probe appended at its
  // tail walks back through.
  const immediates: unknown[] = [];
  const probeImmediate = setImmediate(() => undefined) as unknown as { _idlePrev?: unknown };
  for (let i = probeImmediate._idlePrev as { _idlePrev?: unknown } | null | undefined; i && immediates.length < 100_000; i = i._idlePrev as typeof i) immediates.push(i);
  clearImmediate(probeImmediate as unknown as NodeJS.Immediate);
  const found = timeouts ? { timeouts, immediates } : undefined;
  const took = Date.now() - now;
  nextScanAt = Date.now() + Math.max(minIntervalMs, took * pacing);
  if (!found) return null;
  const byStep = new Map<StepForensics, PendingTimer[]>();
  let frameSymbol: symbol | undefined;
  const add = (t: TimeoutLike, kind: PendingTimer['kind']): boolean => {
    const callback = kind === 'timeout' ? t._onTimeout : t._onImmediate;
    if (t._destroyed || internalTimerCallbacks.has(callback)) return true;
    if (kind === 'timeout' && (t === (probe as unknown) || (t._idleTimeout ?? -1) < 0)) return true;
    if (kind === 'immediate' && (callback === null || callback === undefined)) return true;
    frameSymbol ??= Object.getOwnPropertySymbols(t).find((x) => x.description === 'kAsyncContextFrame');
    if (!frameSymbol) return false; // Node without AsyncContextFrame: timers cannot be attributed
    const fx = forensicsOfFrame((t as Record<symbol, unknown>)[frameSymbol]);
    if (!fx) return true;
    const list = byStep.get(fx) ?? [];
    const timer = t as unknown as NodeJS.Timeout | NodeJS.Immediate;
    list.push(kind === 'timeout' ? { kind, delayMs: t._idleTimeout ?? 0, repeat: typeof t._repeat === 'number', callback, timer } : { kind, delayMs: 0, repeat: false, callback, timer });
    byStep.set(fx, list);
    return true;
  };
  for (const t of found.timeouts as TimeoutLike[]) if (!add(t, 'timeout')) return null;
  for (const t of found.immediates as TimeoutLike[]) if (!add(t, 'immediate')) return null;
  lastScan = { at: now, byStep };
  return lastScan;
}
