// A Gantt-like timeline of a run, built from its events alone: per step, the time it sat queued
// (hatched when its concurrency key held it back), each attempt (coloured by how it ended), the
// backoff waits between retries, and, inside an attempt, the time a call waited at its provider's
// gate (from its step.waiting to the end of the wait its llm.usage reports).
import { html } from '../html.js';
import { duration, stepPath } from '../format.js';

/** Segments per step from the event list: { step, kind: queued|held|running|wait|limit, attempt, status, start, end, why }. */
export function timelineFrom(events, now) {
  const rows = new Map();
  const row = (name) => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { name, segments: [], open: null, overlays: [], limit: null }));
    return r;
  };
  const close = (r, at, status) => {
    if (r.open) {
      r.segments.push({ ...r.open, end: at, status: status ?? r.open.status });
      r.open = null;
    }
  };
  // A wait at a provider's gate is drawn over its attempt; it ends when the call's usage says how long it waited.
  const endLimit = (r, end) => {
    if (r.limit) r.overlays.push({ ...r.limit, end: Math.max(r.limit.start, end) });
    r.limit = null;
  };
  for (const e of events) {
    if (!e.stepName) continue;
    const at = Date.parse(e.ts);
    const r = row(e.stepName);
    const d = e.data ?? {};
    if (e.type === 'step.waiting' && typeof d.key === 'string') {
      // Held back by its key since it became ready: the queued time is the key's.
      if (r.open?.kind === 'queued') r.open = { ...r.open, kind: 'held', status: 'held', why: `concurrency key ${d.key} (${d.used}/${d.cap} running)` };
    } else if (e.type === 'step.waiting') {
      endLimit(r, at);
      r.limit = { kind: 'limit', start: at, status: 'waiting', why: `provider ${d.provider} (${d.limit} ${d.used}/${d.cap})` };
    } else if (e.type === 'llm.usage') {
      if (r.limit && typeof d.waitedMs === 'number') endLimit(r, r.limit.start + d.waitedMs);
    } else if (e.type === 'step.queued') {
      if (!r.open) r.open = { kind: 'queued', start: at, status: 'queued' };
    } else if (e.type === 'step.started') {
      close(r, at);
      r.open = { kind: 'running', start: at, attempt: e.attempt, status: 'running' };
    } else if (e.type === 'step.retrying') {
      endLimit(r, at);
      // A timed-out attempt's error carries its timeoutMs; anything else that is retried failed.
      const status = e.data?.error?.data?.timeoutMs !== undefined ? 'timed_out' : 'failed';
      close(r, at, status);
      const delay = Number(e.data?.delayMs ?? 0);
      if (delay > 0) r.segments.push({ kind: 'wait', start: at, end: at + delay, status: 'waiting' });
      r.open = { kind: 'queued', start: at + delay, status: 'queued' };
    } else if (e.type === 'step.finished') {
      endLimit(r, at);
      close(r, at, e.data?.status);
    }
  }
  let min = Infinity;
  let max = -Infinity;
  const out = [...rows.values()].map((r) => {
    const segments = [...r.segments, ...(r.open ? [{ ...r.open, end: now, live: true }] : []), ...r.overlays, ...(r.limit ? [{ ...r.limit, end: now, live: true }] : [])];
    for (const s of segments) {
      min = Math.min(min, s.start);
      max = Math.max(max, s.end);
    }
    return { name: r.name, segments };
  });
  return { rows: out, min, max };
}

function segmentLabel(s) {
  if (s.kind === 'running') return `attempt ${s.attempt}: ${s.status}`;
  if (s.kind === 'wait') return `retry backoff: ${s.status}`;
  if (s.kind === 'held' || s.kind === 'limit') return `waiting for ${s.why}`;
  return `queued: ${s.status}`;
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
          title=${`${segmentLabel(s)}, ${duration(s.end - s.start)}`}></span>`)}
      </div>
    </div>`)}
    <p class="legend"><span class="tl-seg k-queued"></span> queued <span class="tl-seg k-running s-running"></span> running <span class="tl-seg k-running s-succeeded"></span> succeeded <span class="tl-seg k-running s-failed"></span> failed <span class="tl-seg k-running s-timed_out"></span> timed out <span class="tl-seg k-wait"></span> retry wait <span class="tl-seg k-held"></span> held by its concurrency key <span class="tl-seg k-limit"></span> waiting at a provider's limit</p>
  </div>`;
}
