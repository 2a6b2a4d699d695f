/**
 * Live progress of a run on a terminal: one row per step (status, attempt, elapsed, error summary),
 * redrawn in place with ANSI cursor movement. The state is fed by events only, so the same view
 * works whether the follower started before the run or resumed in the middle of it.
 */
import type { EventRecord, RunWithSteps, TextDelta } from '../domain/records.ts';
import { duration, ESC, errorSummary, table, visibleLength, waitingDetail } from './format.ts';

const ANSI_AT_START = new RegExp(`^${ESC}\\[[0-9;]*[A-Za-z]`);

interface StepView {
  name: string;
  tool: string;
  status: string;
  attempt: number;
  startedAt: number | undefined;
  finishedMs: number | undefined;
  error: string;
  note: string;
  /** The end of the text the step is streaming (llm.delta), shown under the table while it runs. */
  text: string;
}

/** Characters of a step's streamed text kept for the live view (one line of a wide terminal). */
const TEXT_TAIL = 240;

const COLOR: Record<string, string> = {
  succeeded: '\x1b[32m',
  failed: '\x1b[31m',
  timed_out: '\x1b[31m',
  cancelled: '\x1b[33m',
  skipped: '\x1b[2m',
  running: '\x1b[36m',
  queued: '\x1b[2m',
  pending: '\x1b[2m',
};
const RESET = '\x1b[0m';

export class ProgressView {
  readonly runId: string;
  runStatus: string;
  readonly #steps = new Map<string, StepView>();
  readonly #startedAt: number;
  #finishedMs: number | undefined;

  constructor(run: RunWithSteps) {
    this.runId = run.id;
    this.runStatus = run.status;
    this.#startedAt = Date.parse(run.startedAt ?? run.createdAt);
    for (const s of run.steps) {
      this.#steps.set(s.name, {
        name: s.name,
        tool: s.tool,
        status: s.status,
        attempt: s.attempts,
        startedAt: s.startedAt ? Date.parse(s.startedAt) : undefined,
        finishedMs: s.startedAt && s.finishedAt ? Date.parse(s.finishedAt) - Date.parse(s.startedAt) : undefined,
        error: s.error ? errorSummary(s.error) : '',
        note: '',
        text: '',
      });
    }
  }

  apply(e: EventRecord): void {
    const d = e.data ?? {};
    if (e.type === 'run.started') this.runStatus = 'running';
    if (e.type === 'run.finished') {
      this.runStatus = typeof d.status === 'string' ? d.status : 'finished';
      this.#finishedMs = Date.parse(e.ts) - this.#startedAt;
      return;
    }
    if (!e.stepName) return;
    let s = this.#steps.get(e.stepName);
    if (!s) {
      s = { name: e.stepName, tool: '', status: 'pending', attempt: 0, startedAt: undefined, finishedMs: undefined, error: '', note: '', text: '' };
      this.#steps.set(e.stepName, s);
    }
    const attempt = e.attempt ?? (typeof d.attempt === 'number' ? d.attempt : undefined);
    switch (e.type) {
      case 'step.added':
        if (typeof d.tool === 'string') s.tool = d.tool;
        if (typeof d.addedBy === 'string') s.note = `added by ${d.addedBy}`;
        break;
      case 'step.awaiting':
        s.status = 'pending';
        s.note = typeof d.step === 'string' ? `waits for ${d.step}` : 'waiting';
        break;
      case 'step.awaiting_signal':
        s.status = 'pending';
        s.note = typeof d.signal === 'string' ? `waits for signal ${d.signal}` : 'waiting';
        break;
      case 'step.reused':
        s.note = 'reused';
        break;
      case 'step.waiting':
        // A queued step behind its key, until it starts; a wait inside a call is over by the time
        // a later event comes, and is in the event log (--json) rather than left as a stale note.
        if (typeof d.key === 'string') s.note = waitingDetail(d);
        break;
      case 'step.queued':
        s.status = 'queued';
        if (s.note.startsWith('added by')) s.note = '';
        break;
      case 'step.started':
        s.status = 'running';
        s.startedAt ??= Date.parse(e.ts);
        if (attempt !== undefined) s.attempt = attempt;
        s.note = '';
        break;
      case 'step.retrying':
        s.status = 'queued';
        if (d.error !== undefined) s.error = errorSummary(d.error);
        s.note = 'retrying';
        break;
      case 'step.hang_report':
        s.note = 'hang report';
        break;
      case 'step.finished':
        s.text = '';
        s.status = typeof d.status === 'string' ? d.status : 'finished';
        s.finishedMs = typeof d.durationMs === 'number' ? d.durationMs : s.startedAt !== undefined ? Date.parse(e.ts) - s.startedAt : undefined;
        s.error = d.error ? errorSummary(d.error) : '';
        if (s.note === 'retrying' || s.note.startsWith('waits for') || s.note.startsWith('added by')) s.note = '';
        break;
      default:
        break;
    }
  }

  /** Text a running step streams; only its tail is kept. */
  applyDelta(d: TextDelta): void {
    const s = this.#steps.get(d.stepName);
    if (!s || s.status !== 'running') return;
    s.text = (d.reset ? d.text : s.text + d.text).slice(-TEXT_TAIL);
  }

  render(opts: { now?: number; columns?: number; color?: boolean } = {}): string[] {
    const now = opts.now ?? Date.now();
    const color = opts.color ?? true;
    const paint = (status: string): string => (color && COLOR[status] ? `${COLOR[status]}${status}${RESET}` : status);
    const steps = [...this.#steps.values()];
    const done = steps.filter((s) => ['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped'].includes(s.status)).length;
    const elapsed = this.#finishedMs ?? now - this.#startedAt;
    const head = `run ${this.runId}  ${paint(this.runStatus)}  ${done}/${steps.length} steps  ${duration(elapsed)}`;
    const rows = steps.map((s) => {
      const ms = s.finishedMs ?? (s.status === 'running' && s.startedAt !== undefined ? now - s.startedAt : undefined);
      return [s.name, paint(s.status), s.attempt > 0 ? String(s.attempt) : '-', duration(ms), [s.note, s.error].filter(Boolean).join(' ')];
    });
    const lines = [head, ...table(['STEP', 'STATUS', 'ATTEMPT', 'ELAPSED', 'ERROR'], rows)];
    for (const s of steps) {
      if (s.status !== 'running' || s.text === '') continue;
      const lastLine = s.text.split('\n').filter((l) => l.trim() !== '').at(-1) ?? '';
      lines.push(`${s.name} › ${lastLine}`);
    }
    const width = opts.columns;
    // A wrapped line would break the cursor arithmetic of the redraw: cut every line to the width.
    return width !== undefined && width > 10 ? lines.map((l) => (visibleLength(l) > width - 1 ? cut(l, width - 1) : l)) : lines;
  }
}

function cut(line: string, width: number): string {
  if (!line.includes(`${ESC}[`)) return `${line.slice(0, width - 1)}…`;
  let out = '';
  let visible = 0;
  for (let i = 0; i < line.length && visible < width - 1; ) {
    const m = ANSI_AT_START.exec(line.slice(i));
    if (m) {
      out += m[0];
      i += m[0].length;
    } else {
      out += line[i];
      visible++;
      i++;
    }
  }
  return `${out}${RESET}…`;
}

/** Redraws a block of lines in place: cursor up over the previous block, clear to the end, print. */
export class Redrawer {
  #lines = 0;
  readonly #write: (s: string) => void;
  constructor(write: (s: string) => void) {
    this.#write = write;
  }
  draw(lines: string[]): void {
    const up = this.#lines > 0 ? `\x1b[${this.#lines}A\r\x1b[0J` : '';
    this.#write(`${up}${lines.join('\n')}\n`);
    this.#lines = lines.length;
  }
}
