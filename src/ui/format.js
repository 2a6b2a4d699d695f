// Small formatting helpers shared by the pages.
import { html } from './html.js';

export const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped']);

export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function clock(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

export function dateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString(undefined, { hour12: false })}`;
}

export function ago(iso) {
  if (!iso) return '–';
  return `${duration(Date.now() - Date.parse(iso))} ago`;
}

/** "in 2.1 s" for a time ahead, "3 s ago" for one past. */
export function fromNow(iso) {
  if (!iso) return '–';
  const ms = Date.parse(iso) - Date.now();
  return ms > 0 ? `in ${duration(ms)}` : ago(iso);
}

/** What holds a step back (its `waitingFor`), in words. */
export function waitingText(w) {
  if (w.kind === 'provider') {
    const what = w.limit === 'paused' ? 'its pause after a 429/529' : `${w.limit} ${w.used} of ${w.cap}`;
    return `provider ${w.provider}: ${what}; next slot ${fromNow(w.nextSlotAt)} (waiting since ${ago(w.since)})`;
  }
  return `concurrency key ${w.key}: ${w.used} of ${w.cap} running; a slot frees ${w.nextSlotBy ? `${fromNow(w.nextSlotBy)} at the latest` : 'when one of them ends'} (waiting since ${ago(w.since)})`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

export function shortId(id) {
  return id ? id.slice(0, 8) : '';
}

export function Status({ status }) {
  return html`<span class=${`status s-${status}`}>${String(status).replace('_', ' ')}</span>`;
}

export function Json({ value }) {
  if (value === undefined || value === null) return html`<span class="muted">none</span>`;
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error-box" role="alert"><strong>${error.code}</strong> ${error.message}</div>`;
}

export function runPath(runId) {
  return `/ui/runs/${encodeURIComponent(runId)}`;
}

export function stepPath(runId, name) {
  return `${runPath(runId)}/steps/${encodeURIComponent(name)}`;
}
