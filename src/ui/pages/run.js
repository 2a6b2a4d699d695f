// One run: its graph, the timeline of its attempts, the text its steps stream, its usage, its
// artifacts and its events, all live.
import { useEffect, useState } from 'preact/hooks';
import { api, fetchBlob } from '../api.js';
import { bytes, clock, dateTime, duration, ErrorBox, runPath, shortId, Status, stepPath, TERMINAL } from '../format.js';
import { html } from '../html.js';
import { useLiveRun } from '../live.js';
import { Dag } from '../parts/dag.js';
import { Timeline } from '../parts/timeline.js';

function useNow(everyMs, active) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

function eventDetail(e) {
  const d = e.data ?? {};
  switch (e.type) {
    case 'step.started':
      return `attempt ${e.attempt ?? ''}`;
    case 'step.finished':
      return `${d.status}${d.durationMs !== undefined ? ` in ${duration(d.durationMs)}` : ''}${d.error ? ` · ${d.error.code}` : ''}`;
    case 'step.retrying':
      return `retry in ${duration(d.delayMs)}${d.error ? ` · ${d.error.code}` : ''}`;
    case 'step.log':
      return `${d.level ?? 'info'}: ${d.message}`;
    case 'llm.request':
      return [d.provider, d.model].filter(Boolean).join(' ');
    case 'llm.usage':
      return `${d.provider ?? ''} ${d.model ?? ''} · ${d.inputTokens} in / ${d.outputTokens} out · ${duration(d.totalMs)}${d.waitedMs ? ` (waited ${duration(d.waitedMs)} for capacity)` : ''}`;
    case 'step.waiting':
      return d.key !== undefined
        ? `waits for concurrency key ${d.key} · ${d.used} of ${d.cap} running`
        : `waits for provider ${d.provider} · ${d.limit} ${d.used} of ${d.cap}`;
    case 'step.hang_report':
      return `${d.classification?.code}: ${d.classification?.summary ?? ''}`;
    case 'artifact.created':
      return d.name ?? '';
    case 'run.finished':
      return String(d.status ?? '');
    default:
      return '';
  }
}

function Events({ events }) {
  const [all, setAll] = useState(false);
  const shown = all ? events : events.slice(-200);
  return html`<div class="table-wrap events">
    ${events.length > shown.length && html`<button type="button" onClick=${() => setAll(true)}>Show all ${events.length} events</button>`}
    <table>
      <thead><tr><th scope="col">seq</th><th scope="col">time</th><th scope="col">type</th><th scope="col">step</th><th scope="col">detail</th></tr></thead>
      <tbody>${shown.map((e) => html`<tr key=${e.seq} class=${`ev-${e.type.replace('.', '-')}`}><td>${e.seq}</td><td>${clock(e.ts)}</td><td><code>${e.type}</code></td><td>${e.stepName ?? ''}</td><td class="detail">${eventDetail(e)}</td></tr>`)}</tbody>
    </table>
  </div>`;
}

function Artifacts({ runId, version }) {
  const [list, setList] = useState(undefined);
  const [open, setOpen] = useState(null);
  const [error, setError] = useState(undefined);
  useEffect(() => {
    const c = new AbortController();
    api(`/runs/${encodeURIComponent(runId)}/artifacts`, { signal: AbortSignal.any([c.signal, AbortSignal.timeout(15000)]) }).then(
      (r) => setList(r.artifacts),
      (err) => !c.signal.aborted && setError(err),
    );
    return () => c.abort();
  }, [runId, version]);
  const view = async (a) => {
    try {
      const blob = await fetchBlob(`/artifacts/${encodeURIComponent(a.id)}`);
      // Shown as text (never rendered as HTML: artifacts are model output).
      const text = a.size > 2_000_000 ? `(${bytes(a.size)}: too large to show here; download it)` : await blob.text();
      setOpen({ id: a.id, name: a.name, text });
    } catch (err) {
      setError(err);
    }
  };
  const download = async (a) => {
    try {
      const blob = await fetchBlob(`/artifacts/${encodeURIComponent(a.id)}`);
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = a.name.split('/').pop() || 'artifact';
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      setError(err);
    }
  };
  if (error) return html`<${ErrorBox} error=${{ code: error.code ?? 'ERROR', message: error.message }} />`;
  if (!list) return html`<p class="muted">Loading artifacts…</p>`;
  if (list.length === 0) return html`<p class="muted">No artifacts.</p>`;
  return html`<div class="table-wrap"><table>
      <thead><tr><th scope="col">name</th><th scope="col">step</th><th scope="col">type</th><th scope="col">size</th><th scope="col"><span class="sr-only">actions</span></th></tr></thead>
      <tbody>${list.map((a) => html`<tr key=${a.id}><td><code>${a.name}</code></td><td><a href=${stepPath(runId, a.stepName)}>${a.stepName}</a></td><td>${a.mime}</td><td>${bytes(a.size)}</td>
        <td class="actions"><button type="button" onClick=${() => view(a)} aria-expanded=${open?.id === a.id}>View</button> <button type="button" onClick=${() => download(a)}>Download</button></td></tr>`)}</tbody>
    </table></div>
    ${open && html`<figure class="artifact-view"><figcaption><code>${open.name}</code> <button type="button" onClick=${() => setOpen(null)}>Close</button></figcaption><pre>${open.text}</pre></figure>`}`;
}

function Usage({ run, events }) {
  const byStep = new Map();
  for (const e of events) {
    if (e.type !== 'llm.usage' || !e.stepName) continue;
    const u = byStep.get(e.stepName) ?? { calls: 0, inputTokens: 0, outputTokens: 0, ms: 0, model: e.data.model };
    u.calls++;
    u.inputTokens += Number(e.data.inputTokens ?? 0);
    u.outputTokens += Number(e.data.outputTokens ?? 0);
    u.ms += Number(e.data.totalMs ?? 0);
    byStep.set(e.stepName, u);
  }
  const u = run.usage ?? { inputTokens: 0, outputTokens: 0, calls: 0 };
  return html`<dl class="facts"><div><dt>LLM calls</dt><dd>${u.calls}</dd></div><div><dt>Input tokens</dt><dd>${u.inputTokens}</dd></div><div><dt>Output tokens</dt><dd>${u.outputTokens}</dd></div></dl>
    ${byStep.size > 0 && html`<div class="table-wrap"><table><thead><tr><th scope="col">step</th><th scope="col">model</th><th scope="col">calls</th><th scope="col">in</th><th scope="col">out</th><th scope="col">time</th></tr></thead>
      <tbody>${[...byStep].map(([name, s]) => html`<tr key=${name}><td><a href=${stepPath(run.id, name)}>${name}</a></td><td>${s.model}</td><td>${s.calls}</td><td>${s.inputTokens}</td><td>${s.outputTokens}</td><td>${duration(s.ms)}</td></tr>`)}</tbody></table></div>`}`;
}

export function StreamedText({ runId, texts, steps }) {
  const entries = Object.entries(texts).filter(([key]) => !steps || steps.some((s) => key.startsWith(`${s.name}#`)));
  if (entries.length === 0) return null;
  return html`<section aria-labelledby="live-output"><h2 id="live-output">Live output</h2>
    ${entries.map(([key, text]) => {
      const [name, attempt] = [key.slice(0, key.lastIndexOf('#')), key.slice(key.lastIndexOf('#') + 1)];
      return html`<figure class="stream-text" key=${key} data-step=${name}><figcaption><a href=${stepPath(runId, name)}>${name}</a> · attempt ${attempt}</figcaption><pre aria-live="polite">${text}</pre></figure>`;
    })}</section>`;
}

export function RunPage({ runId }) {
  const { run, error, events, texts, stream } = useLiveRun(runId);
  const live = run && !TERMINAL.has(run.status) && run.status !== 'cancelled';
  const now = useNow(500, Boolean(live));
  const [cancelError, setCancelError] = useState(undefined);
  if (error && !run) return html`<h1>Run <code>${shortId(runId)}</code></h1><${ErrorBox} error=${{ code: error.code ?? 'ERROR', message: error.message }} />`;
  if (!run) return html`<p class="muted">Loading run ${runId}…</p>`;
  const cancel = async () => {
    try {
      await api(`/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST' });
    } catch (err) {
      setCancelError(err);
    }
  };
  const artifactsVersion = events.filter((e) => e.type === 'artifact.created').length;
  const runningSteps = run.steps.filter((s) => s.status === 'running');
  return html`
    <nav class="crumbs" aria-label="Breadcrumb"><a href="/ui">Runs</a> › <span aria-current="page">${shortId(run.id)}</span></nav>
    <h1>Run <code title=${run.id}>${shortId(run.id)}</code> <${Status} status=${run.status} /></h1>
    <dl class="facts">
      <div><dt>Id</dt><dd><code>${run.id}</code></dd></div>
      ${run.goal && html`<div><dt>Goal</dt><dd>${run.goal}</dd></div>`}
      <div><dt>Steps</dt><dd>${run.stepsDone}/${run.stepsTotal} done</dd></div>
      <div><dt>Created</dt><dd>${dateTime(run.createdAt)}</dd></div>
      <div><dt>Took</dt><dd>${run.startedAt ? duration((run.finishedAt ? Date.parse(run.finishedAt) : now) - Date.parse(run.startedAt)) : '–'}</dd></div>
      ${Object.keys(run.labels ?? {}).length > 0 && html`<div><dt>Labels</dt><dd>${Object.entries(run.labels).map(([k, v]) => html`<span class="label">${k}=${v}</span> `)}</dd></div>`}
      <div><dt>Stream</dt><dd class=${`stream-${stream.state}`}>${stream.state}${stream.message ? `: ${stream.message}` : ''}</dd></div>
    </dl>
    ${run.error && html`<${ErrorBox} error=${run.error} />`}
    ${live && html`<p><button type="button" class="danger" onClick=${cancel}>Cancel run</button></p>`}
    ${cancelError && html`<${ErrorBox} error=${{ code: cancelError.code, message: cancelError.message }} />`}
    <section aria-labelledby="graph"><h2 id="graph">Graph</h2><${Dag} runId=${run.id} steps=${run.steps} /></section>
    <${StreamedText} runId=${run.id} texts=${texts} steps=${runningSteps.length > 0 ? runningSteps : undefined} />
    <section aria-labelledby="timeline"><h2 id="timeline">Timeline</h2><${Timeline} runId=${run.id} events=${events} now=${live ? now : Date.parse(run.finishedAt ?? new Date().toISOString())} /></section>
    <section aria-labelledby="usage"><h2 id="usage">Usage</h2><${Usage} run=${run} events=${events} /></section>
    <section aria-labelledby="artifacts"><h2 id="artifacts">Artifacts</h2><${Artifacts} runId=${run.id} version=${artifactsVersion} /></section>
    <section aria-labelledby="events"><h2 id="events">Events <span class="muted">(${events.length})</span></h2><${Events} events=${events} /></section>
    <p><a href=${runPath(run.id)} class="muted">permalink</a></p>`;
}
