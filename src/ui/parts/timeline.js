// A Gantt-like timeline of a run, built from its events alone: per step, the time it sat queued,
// each attempt (coloured by how it ended), and the backoff waits between retries.
import { html } from '../html.js';
import { duration, stepPath } from '../format.js';

/** Segments per step from the event list: { step, kind: queued|running|wait, attempt, status, start, end }. */
export function timelineFrom(events, now) {
  const rows = new Map();
  const row = (name) => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { name, segments: [], open: null }));
    return r;
  };
  const close = (r, at, status) => {
    if (r.open) {
      r.segments.push({ ...r.open, end: at, status: status ?? r.open.status });
      r.open = null;
    }
  };
  for (const e of events) {
    if (!e.stepName) continue;
    const at = Date.parse(e.ts);
    const r = row(e.stepName);
    if (e.type === 'step.queued') {
      if (!r.open) r.open = { kind: 'queued', start: at, status: 'queued' };
    } else if (e.type === 'step.started') {
      close(r, at);
      r.open = { kind: 'running', start: at, attempt: e.attempt, status: 'running' };
    } else if (e.type === 'step.retrying') {
      // A timed-out attempt's error carries its timeoutMs; anything else that is retried failed.
      const status = e.data?.error?.data?.timeoutMs !== undefined ? 'timed_out' : 'failed';
      close(r, at, status);
      const delay = Number(e.data?.delayMs ?? 0);
      if (delay > 0) r.segments.push({ kind: 'wait', start: at, end: at + delay, status: 'waiting' });
      r.open = { kind: 'queued', start: at + delay, status: 'queued' };
    } else if (e.type === 'step.finished') {
      close(r, at, e.data?.status);
    }
  }
  let min = Infinity;
  let max = -Infinity;
  const out = [...rows.values()].map((r) => {
    const segments = r.open ? [...r.segments, { ...r.open, end: now, live: true }] : r.segments;
    for (const s of segments) {
      min = Math.min(min, s.start);
      max = Math.max(max, s.end);
    }
    return { name: r.name, segments };
  });
  return { rows: out, min, max };
}

export function Timeline({ runId, events, now }) {
  const t = timelineFrom(events, now);
  if (t.rows.length === 0) return html`<p class="muted">No step has been queued yet.</p>`;
  const span = Math.max(1, t.max - t.min);
  const pct = (x) => `${((x - t.min) / span) * 100}%`;
  const width = (s) => `${Math.max(0.4, ((s.end - s.start) / span) * 100)}%`;
  return html`<div class="timeline" role="table" aria-label="Timeline of attempts">
    <div class="tl-axis" role="row"><span role="columnheader">step</span><span role="columnheader">0 → ${duration(span)}</span></div>
    ${t.rows.map((r) => html`<div class="tl-row" role="row" key=${r.name}>
      <a class="tl-name" role="rowheader" href=${stepPath(runId, r.name)}>${r.name}</a>
      <div class="tl-track" role="cell">
        ${r.segments.map((s, i) => html`<span key=${i} class=${`tl-seg k-${s.kind} s-${s.status}${s.live ? ' live' : ''}`} style=${{ left: pct(s.start), width: width(s) }}
          title=${`${s.kind === 'running' ? `attempt ${s.attempt}` : s.kind === 'wait' ? 'retry backoff' : 'queued'}: ${s.status}, ${duration(s.end - s.start)}`}></span>`)}
      </div>
    </div>`)}
    <p class="legend"><span class="tl-seg k-queued"></span> queued <span class="tl-seg k-running s-running"></span> running <span class="tl-seg k-running s-succeeded"></span> succeeded <span class="tl-seg k-running s-failed"></span> failed <span class="tl-seg k-running s-timed_out"></span> timed out <span class="tl-seg k-wait"></span> retry wait</p>
  </div>`;
}
