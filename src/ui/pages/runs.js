// Runs: newest first, filtered by status and label, searched by id, paged by cursor, refreshed
// every 2 s (the list has no stream of its own; one small query per refresh).
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { navigate } from '../router.js';
import { ago, duration, ErrorBox, runPath, shortId, Status } from '../format.js';
import { html } from '../html.js';
import { usePoll } from '../poll.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const REFRESH_MS = 2000;

function readFilters(search) {
  const q = new URLSearchParams(search);
  return { status: q.get('status') ?? '', label: q.get('label') ?? '', cursor: q.get('cursor') ?? '', prev: q.getAll('prev') };
}

function href(f) {
  const q = new URLSearchParams();
  if (f.status) q.set('status', f.status);
  if (f.label) q.set('label', f.label);
  if (f.cursor) q.set('cursor', f.cursor);
  for (const p of f.prev ?? []) q.append('prev', p);
  const s = q.toString();
  return s ? `/ui?${s}` : '/ui';
}

function Labels({ labels }) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return html`<span class="muted">–</span>`;
  return entries.map(([k, v]) => html`<span class="label">${k}=${v}</span> `);
}

export function RunsPage({ search }) {
  const f = readFilters(search);
  const [label, setLabel] = useState(f.label);
  const [idQuery, setIdQuery] = useState('');
  const [idError, setIdError] = useState('');
  const { data, error } = usePoll(
    (signal) => {
      const q = new URLSearchParams({ limit: '25' });
      if (f.status) q.set('status', f.status);
      if (f.label) q.set('label', f.label);
      if (f.cursor) q.set('cursor', f.cursor);
      return api(`/runs?${q}`, { signal });
    },
    REFRESH_MS,
    [search],
  );

  const applyLabel = (e) => {
    e.preventDefault();
    navigate(href({ status: f.status, label: label.trim() }));
  };
  const findId = async (e) => {
    e.preventDefault();
    const id = idQuery.trim();
    if (!id) return;
    setIdError('');
    try {
      const run = await api(`/runs/${encodeURIComponent(id)}`);
      navigate(runPath(run.id));
    } catch (err) {
      const prefixMatch = (data?.runs ?? []).filter((r) => r.id.startsWith(id));
      if (prefixMatch.length === 1) navigate(runPath(prefixMatch[0].id));
      else setIdError(err instanceof ApiError && err.status === 404 ? `No run ${id} (a full id, or the start of one on this page).` : err.message);
    }
  };

  const runs = data?.runs ?? [];
  return html`
    <h1>Runs</h1>
    <div class="filters">
      <form class="inline" role="search" aria-label="Find a run by id" onSubmit=${findId}>
        <label for="run-id">Run id</label>
        <input id="run-id" placeholder="019ab0c2-…" value=${idQuery} onInput=${(e) => setIdQuery(e.currentTarget.value)} />
        <button type="submit">Open</button>
      </form>
      <div class="inline">
        <label for="status">Status</label>
        <select id="status" value=${f.status} onChange=${(e) => navigate(href({ status: e.currentTarget.value, label: f.label }))}>
          <option value="">any</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
      <form class="inline" onSubmit=${applyLabel}>
        <label for="label">Label</label>
        <input id="label" placeholder="team=docs" value=${label} onInput=${(e) => setLabel(e.currentTarget.value)} />
        <button type="submit">Filter</button>
        ${f.label && html`<a class="button-link" href=${href({ status: f.status })}>Clear</a>`}
      </form>
    </div>
    ${idError && html`<p class="error-text" role="alert">${idError}</p>`}
    ${error && html`<${ErrorBox} error=${{ code: error.code ?? 'UNREACHABLE', message: error.message }} />`}
    <div class="table-wrap">
      <table class="runs" aria-live="polite" aria-busy=${data === undefined}>
        <thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Goal</th><th scope="col">Labels</th><th scope="col">Steps</th><th scope="col">Created</th><th scope="col">Took</th></tr></thead>
        <tbody>
          ${runs.map((r) => html`<tr key=${r.id} data-run-id=${r.id} data-status=${r.status}>
            <td><a href=${runPath(r.id)} title=${r.id}><code>${shortId(r.id)}</code></a></td>
            <td><${Status} status=${r.status} /></td>
            <td class="goal">${r.goal ?? html`<span class="muted">–</span>`}</td>
            <td><${Labels} labels=${r.labels} /></td>
            <td>${r.stepsDone}/${r.stepsTotal}</td>
            <td title=${r.createdAt}>${ago(r.createdAt)}</td>
            <td>${r.startedAt ? duration((r.finishedAt ? Date.parse(r.finishedAt) : Date.now()) - Date.parse(r.startedAt)) : '–'}</td>
          </tr>`)}
          ${data && runs.length === 0 && html`<tr><td colspan="7" class="muted">No runs${f.status || f.label ? ' match these filters' : ' yet: submit one with npx runwarden submit examples/hello.json'}.</td></tr>`}
        </tbody>
      </table>
    </div>
    <nav class="pager" aria-label="Pages">
      ${f.cursor && html`<a href=${href({ status: f.status, label: f.label })}>Newest</a>`}
      ${f.prev.length > 0 && html`<a href=${href({ status: f.status, label: f.label, cursor: f.prev.at(-1) === '-' ? '' : f.prev.at(-1), prev: f.prev.slice(0, -1) })}>Previous</a>`}
      ${data?.nextCursor && html`<a rel="next" href=${href({ status: f.status, label: f.label, cursor: data.nextCursor, prev: [...f.prev, f.cursor || '-'] })}>Next</a>`}
      <span class="muted">refreshes every ${REFRESH_MS / 1000} s</span>
    </nav>`;
}
