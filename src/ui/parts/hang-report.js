// A hang report as a person reads it: the cause first, then where in the user's code, then what
// was pending (a table), then the process around it (loop delay, resources), then the redacted
// configuration and the step's last log lines.
import { html } from '../html.js';
import { bytes, duration, Json } from '../format.js';

function where(w) {
  if (!w) return null;
  return `${w.file}:${w.line}:${w.column}${w.fn ? ` in ${w.fn}` : ''}`;
}

function Pending({ ops }) {
  if (!ops || ops.length === 0) return html`<p class="muted">Nothing was pending.</p>`;
  const cols = [
    ['kind', (o) => o.kind],
    ['what', (o) => o.what],
    ['phase', (o) => o.phase ?? ''],
    ['in phase', (o) => duration(o.msInPhase)],
    ['bytes out / in', (o) => (o.bytesOut !== undefined || o.bytesIn !== undefined ? `${bytes(o.bytesOut ?? 0)} / ${bytes(o.bytesIn ?? 0)}` : '–')],
    ['since last byte', (o) => (o.msSinceLastByte === null ? 'no byte received' : duration(o.msSinceLastByte))],
    ['started at', (o) => o.frame ?? ''],
    ['outlived abort', (o) => (o.outlivedAbort ? 'yes' : 'no')],
  ];
  return html`<div class="table-wrap"><table class="pending">
    <thead><tr>${cols.map(([h]) => html`<th scope="col">${h}</th>`)}</tr></thead>
    <tbody>${ops.map((o, i) => html`<tr key=${i}>${cols.map(([, f]) => html`<td>${f(o)}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

function Loop({ loop }) {
  if (!loop) return html`<p class="muted">Not measured.</p>`;
  return html`<dl class="facts">
    <div><dt>max delay</dt><dd>${duration(loop.maxDelayMs)}</dd></div>
    <div><dt>p99 delay</dt><dd>${duration(loop.p99DelayMs)}</dd></div>
    <div><dt>mean delay</dt><dd>${duration(loop.meanDelayMs)}</dd></div>
    <div><dt>busy</dt><dd>${Math.round((loop.utilization ?? 0) * 100)} %</dd></div>
  </dl>`;
}

function Resources({ r }) {
  if (!r) return html`<p class="muted">Not captured.</p>`;
  const handles = r.activeResources;
  return html`<dl class="facts">
    <div><dt>pid</dt><dd>${r.pid}</dd></div>
    <div><dt>RSS</dt><dd>${bytes(r.rssBytes)}</dd></div>
    <div><dt>heap</dt><dd>${bytes(r.heapUsedBytes)} of ${bytes(r.heapTotalBytes)}</dd></div>
    ${r.openFds !== null && r.openFds !== undefined && html`<div><dt>open fds</dt><dd>${r.openFds}</dd></div>`}
    <div><dt>CPU</dt><dd>${duration(r.cpuUserMs)} user, ${duration(r.cpuSystemMs)} system</dd></div>
    ${handles && html`<div><dt>handles</dt><dd>${Object.entries(handles).map(([k, v]) => `${k} ${v}`).join(', ')}</dd></div>`}
  </dl>`;
}

export function HangReport({ report }) {
  const c = report.classification ?? {};
  const loc = where(report.where);
  return html`<article class="hang-report" data-classification=${c.code}>
    <header>
      <p class="cause"><code class="classification">${c.code}</code> ${c.summary}</p>
      <p class="muted">attempt ${report.attempt} · trigger ${report.trigger} · ran ${duration(report.ranMs)} of a ${duration(report.timeoutMs)} deadline${report.ignoredAbort ? ' · ignored its abort' : ''}</p>
    </header>
    <h4>Where</h4>
    ${loc ? html`<p class="source-line"><code>${loc}</code> <span class="muted">(${report.where.source})</span></p>` : html`<p class="muted">No user-code location is known.</p>`}
    ${report.frames?.length > 0 && html`<pre class="frames">${report.frames.map((f) => `at ${f}`).join('\n')}</pre>`}
    ${report.toolLocation && html`<p class="muted">tool defined at <code>${where(report.toolLocation)}</code></p>`}
    <h4>Pending operations</h4>
    <${Pending} ops=${report.pending} />
    ${report.afterAbort?.length > 0 && html`<h4>After its abort</h4><ul>${report.afterAbort.map((a) => html`<li>${a}</li>`)}</ul>`}
    ${report.lastCheckpoint && html`<p>Last checkpoint: <code>${report.lastCheckpoint.label}</code>, ${duration(report.lastCheckpoint.msBeforeReport)} before the report</p>`}
    <h4>Event loop</h4>
    <${Loop} loop=${report.eventLoop} />
    <h4>Resources</h4>
    <${Resources} r=${report.resources} />
    ${report.operation && html`<details><summary>What the tool's error said</summary><${Json} value=${report.operation} /></details>`}
    ${report.lastLogs?.length > 0 && html`<details><summary>Last log lines (${report.lastLogs.length})</summary><pre>${report.lastLogs.join('\n')}</pre></details>`}
    <details><summary>Configuration (redacted)</summary><${Json} value=${report.config} /></details>
    ${report.notes?.length > 0 && html`<h4>What this report could not know</h4><ul>${report.notes.map((n) => html`<li>${n}</li>`)}</ul>`}
  </article>`;
}
