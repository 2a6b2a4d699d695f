// Workers: the supervisor's slots (process, state, heartbeat, loop delay, restarts, last exit with
// its last lines), the claim loops in the workers table, stuck steps, saturated flow-control limits; refreshed every 2 s.
import { api } from '../api.js';
import { ago, bytes, duration, ErrorBox, fromNow, stepPath } from '../format.js';
import { html } from '../html.js';
import { usePoll } from '../poll.js';

const REFRESH_MS = 2000;

function Slots({ sup }) {
  return html`
    <dl class="facts">
      <div><dt>Processes wanted</dt><dd>${sup.desired}</dd></div>
      <div><dt>Alive</dt><dd>${sup.alive}</dd></div>
      <div><dt>Restarts</dt><dd>${sup.totals.restarts}</dd></div>
      <div><dt>Crashes</dt><dd>${sup.totals.crashes}</dd></div>
      <div><dt>Stalls (killed)</dt><dd>${sup.totals.stalls} (${sup.totals.stallKills})</dd></div>
    </dl>
    <div class="table-wrap"><table class="slots">
      <thead><tr><th scope="col">slot</th><th scope="col">pid</th><th scope="col">state</th><th scope="col">heartbeat</th><th scope="col">loop delay p99</th><th scope="col">RSS</th><th scope="col">restarts</th><th scope="col">running steps</th><th scope="col">last exit</th></tr></thead>
      <tbody>${sup.workers.map((w) => html`<tr key=${w.slot} data-slot=${w.slot} data-state=${w.state}>
        <td>${w.slot}</td><td>${w.pid ?? '–'}</td>
        <td><span class=${`status w-${w.state}`}>${w.state}</span>${w.blockedMs ? html` <span class="warn">blocked ${duration(w.blockedMs)}${w.blockingStep ? ` by ${w.blockingStep.stepName}` : ''}</span>` : ''}</td>
        <td>${w.heartbeatAgeMs === null ? '–' : `${duration(w.heartbeatAgeMs)} ago`}</td>
        <td>${w.loopDelayP99Ms === null ? '–' : duration(w.loopDelayP99Ms)}</td>
        <td>${bytes(w.rssBytes)}</td><td>${w.restarts}</td>
        <td>${w.steps.length === 0 ? html`<span class="muted">none</span>` : w.steps.map((s) => html`<a href=${stepPath(s.runId, s.stepName)}>${s.stepName}</a> `)}</td>
        <td>${w.lastExit ? html`<details><summary><code>${w.lastExit.classification}</code> ${w.lastExit.signal ?? `exit ${w.lastExit.code}`}, ${ago(w.lastExit.at)}</summary>
          ${w.lastExit.lastLines?.length > 0 ? html`<pre class="last-lines">${w.lastExit.lastLines.join('\n')}</pre>` : html`<p class="muted">It printed nothing.</p>`}</details>` : html`<span class="muted">–</span>`}</td>
      </tr>`)}</tbody>
    </table></div>`;
}

function ClaimLoops({ workers }) {
  if (workers.length === 0) return html`<p class="muted">No worker is registered.</p>`;
  return html`<div class="table-wrap"><table class="claim-loops">
    <thead><tr><th scope="col">worker</th><th scope="col">host</th><th scope="col">pid</th><th scope="col">state</th><th scope="col">last heartbeat</th><th scope="col">in flight</th><th scope="col">loop delay p99</th></tr></thead>
    <tbody>${workers.map((w) => html`<tr key=${w.id} data-worker=${w.id}><td><code>${w.id}</code></td><td>${w.host}</td><td>${w.pid}</td><td>${w.state}</td><td>${ago(w.lastHeartbeatAt)}</td>
      <td>${w.info?.inflight ?? 0}${w.info?.concurrency ? ` / ${w.info.concurrency}` : ''}</td><td>${w.info?.loopDelayP99Ms === null || w.info?.loopDelayP99Ms === undefined ? '–' : duration(w.info.loopDelayP99Ms)}</td></tr>`)}</tbody>
  </table></div>`;
}

function Stuck({ steps }) {
  if (steps.length === 0) return html`<p class="ok-text">None: every running step is within its deadline and lease.</p>`;
  return html`<div class="table-wrap"><table>
    <thead><tr><th scope="col">step</th><th scope="col">attempt</th><th scope="col">worker</th><th scope="col">why</th><th scope="col">deadline</th><th scope="col">lease expires</th></tr></thead>
    <tbody>${steps.map((s) => html`<tr key=${s.runId + s.stepName}><td><a href=${stepPath(s.runId, s.stepName)}>${s.stepName}</a></td><td>${s.attempt}</td><td><code>${s.workerId ?? '–'}</code></td><td>${s.reason.replace('_', ' ')}</td><td>${ago(s.deadlineAt)}</td><td>${ago(s.leaseExpiresAt)}</td></tr>`)}</tbody>
  </table></div>`;
}

// The limits holding work back now (GET /health/detailed limits, docs/flow-control.md#never-silent).
function Limits({ limits }) {
  if (limits.length === 0) return html`<p class="ok-text">None saturated: no provider limit or concurrency key holds work back.</p>`;
  return html`<div class="table-wrap"><table class="limits">
    <thead><tr><th scope="col">kind</th><th scope="col">name</th><th scope="col">limit</th><th scope="col">used</th><th scope="col">steps waiting</th><th scope="col">next slot</th></tr></thead>
    <tbody>${limits.map((l) => html`<tr key=${l.kind + l.name + l.limit} data-limit=${`${l.kind}:${l.name}`}><td>${l.kind === 'provider' ? 'provider' : 'concurrency key'}</td><td><code>${l.name}</code></td>
      <td>${l.limit === 'key' ? 'running steps' : l.limit}</td><td>${l.limit === 'paused' ? 'paused' : `${l.used} of ${l.cap}`}</td><td>${l.waiting}</td>
      <td>${l.nextSlotAt ? `${fromNow(l.nextSlotAt)}${l.kind === 'concurrency' ? ' at the latest' : ''}` : '–'}</td></tr>`)}</tbody>
  </table></div>`;
}

export function WorkersPage() {
  const { data, error } = usePoll(
    async (signal) => {
      const [health, stuck] = await Promise.all([api('/health/detailed', { signal }).catch((err) => (err.status === 503 ? err.body : Promise.reject(err))), api('/steps/stuck', { signal })]);
      return { health, stuck: stuck.steps };
    },
    REFRESH_MS,
    [],
  );
  const h = data?.health;
  return html`
    <h1>Workers ${h && html`<span class=${`status ${h.status === 'ok' ? 's-succeeded' : 's-failed'}`}>${h.status}</span>`}</h1>
    ${error && html`<${ErrorBox} error=${{ code: error.code ?? 'UNREACHABLE', message: error.message }} />`}
    ${!h && !error && html`<p class="muted">Loading…</p>`}
    ${h && html`
      <dl class="facts">
        <div><dt>Health</dt><dd>${h.status}</dd></div>
        <div><dt>Database</dt><dd>${h.database.dialect} ${h.database.ok ? `ok, ${duration(h.database.latencyMs)}` : `down: ${h.database.error}`}</dd></div>
        <div><dt>Queue</dt><dd>${h.queue.queued} queued, ${h.queue.running} running, ${h.queue.pending} waiting on dependencies</dd></div>
        <div><dt>API loop delay p99</dt><dd>${duration(h.eventLoop.delayP99Ms)}</dd></div>
      </dl>
      <section aria-labelledby="slots"><h2 id="slots">Supervised worker processes</h2>
        ${h.supervisor ? html`<${Slots} sup=${h.supervisor} />` : html`<p class="muted">This API process supervises no worker process (in-process workers, <code>--workers 0</code>, or workers on other machines: they appear below).</p>`}
      </section>
      <section aria-labelledby="loops"><h2 id="loops">Claim loops (workers table)</h2><${ClaimLoops} workers=${h.workers} /></section>
      <section aria-labelledby="stuck"><h2 id="stuck">Stuck steps</h2><${Stuck} steps=${data.stuck} /></section>
      <section aria-labelledby="limits"><h2 id="limits">Flow-control limits</h2><${Limits} limits=${h.limits ?? []} /></section>`}`;
}
