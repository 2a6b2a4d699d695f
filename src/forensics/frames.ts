/**
 * Call stacks captured cheaply when an operation starts and formatted only when a report is built.
 *
 * `Error.captureStackTrace` records V8's structured frames; the string (the expensive part, and the
 * part that runs `Error.prepareStackTrace`) is only produced when `.stack` is read. Measured on
 * Node 24: ~15 us to capture 30 frames deep with a limit of 60, ~40 us with formatting. The limit is
 * raised for the capture because a `fetch` publishes its `undici:request:create` event ~22 frames
 * below the user's call; V8's async stack traces then add the `at async fn (file:line)` frames of
 * the awaiting user functions.
 */
import { fileURLToPath } from 'node:url';

/** Deep enough for the user frames below a fetch (~22 undici frames) and their async callers. */
export const CAPTURE_LIMIT = 60;

/** A function or class known to be on the stack when capturing. */
export type CaptureAbove = ((...args: never[]) => unknown) | (abstract new (...args: never[]) => unknown);

/** A method as a capture marker (never called through this reference). */
export function methodOf(proto: object, name: string): CaptureAbove | undefined {
  const fn: unknown = Object.getOwnPropertyDescriptor(proto, name)?.value;
  return typeof fn === 'function' ? (fn as CaptureAbove) : undefined;
}

export interface StackCapture {
  readonly stack?: string;
}

/**
 * Records the current stack without formatting it. `above`: a function that is on the stack for
 * certain (the ClientRequest constructor, Socket.prototype.connect ...): V8 leaves out it and every
 * frame above it, so the capture starts at the caller's frames and costs less (~0.6 us per frame
 * on top of ~6 us, Node 24). Never pass a function that may not be on the stack: the capture would
 * then be empty.
 */
export function captureStack(limit = CAPTURE_LIMIT, above?: CaptureAbove): StackCapture {
  const holder: { stack?: string } = {};
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = limit;
  Error.captureStackTrace(holder, above ?? captureStack);
  Error.stackTraceLimit = saved;
  return holder;
}

export interface Frame {
  fn: string | null;
  /** A path for files, the URL otherwise. */
  file: string;
  line: number;
  column: number;
  async: boolean;
}

const FRAME = /^\s*at (?:(async) )?(?:(.+?) \()?((?:file:\/\/|\/|[A-Za-z]:\\|node:)[^()]*?):(\d+):(\d+)\)?$/;

export function parseFrames(stack: string | undefined): Frame[] {
  if (!stack) return [];
  const out: Frame[] = [];
  for (const line of stack.split('\n')) {
    const m = FRAME.exec(line);
    if (!m) continue;
    let file = m[3] ?? '';
    if (file.startsWith('file://')) {
      try {
        file = fileURLToPath(file);
      } catch {
        // keep the URL as it is
      }
    }
    out.push({ fn: m[2] ?? null, file, line: Number(m[4]), column: Number(m[5]), async: m[1] === 'async' });
  }
  return out;
}

// runwarden's own machinery (worker, engine, forensics, llm, store ...) is not user code; its tools
// (src/tools/) are: a built-in `http` or `llm` tool's frame is where the step was.
const SRC_ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOOLS_ROOT = `${SRC_ROOT}tools/`;

export function isUserFrame(f: Frame): boolean {
  const file = f.file;
  if (file.startsWith('node:') || file.includes('/node_modules/') || file.includes('\\node_modules\\')) return false;
  if (file.startsWith(SRC_ROOT) && !file.startsWith(TOOLS_ROOT)) return false;
  return true;
}

export function userFrames(capture: StackCapture | null | undefined, max = 8): Frame[] {
  if (!capture) return [];
  return parseFrames(capture.stack).filter(isUserFrame).slice(0, max);
}

export function formatFrame(f: Frame): string {
  const where = `${f.file}:${f.line}:${f.column}`;
  const fn = f.fn ? `${f.async ? 'async ' : ''}${f.fn}` : f.async ? 'async <anonymous>' : null;
  return fn ? `${fn} (${where})` : where;
}

/** A location in source, as hang reports give it. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
  fn?: string;
}

export function frameLocation(f: Frame): SourceLocation {
  return { file: f.file, line: f.line, column: f.column, ...(f.fn ? { fn: f.fn } : {}) };
}
