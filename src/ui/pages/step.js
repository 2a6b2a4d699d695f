// One step: its attempts, inputs, outputs and errors, the text it streams while it runs, and its
// hang reports rendered for a person.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { dateTime, duration, ErrorBox, Json, runPath, shortId, Status, TERMINAL, waitingText } from '../format.js';
import { html } from '../html.js';
import { useLiveRun } from '../live.js';
import { HangReport } from '../parts/hang-report.js';
import { StreamedText } from './run.js';

export function StepPage({ runId, name }) {
  // The run's stream tells when this step changes; its stored events are not kept here.
  const { run, texts } = useLiveRun(runId, { withEvents: false });
  const [step, setStep] = useState(undefined);
  const [error, setError] = useState(undefined);
  const summary = run?.steps.find((s) => s.name === name);
  const version = summary ? `${summary.status}/${summary.attempts}/${summary.finishedAt ?? ''}` : '';
  useEffect(() => {
    const c = new AbortController();
    api(`/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(name)}`, { signal: AbortSignal.any([c.signal, AbortSignal.timeout(15000)]) }).then(
      (s) => {
        setStep(s);
        setError(undefined);
      },
      (err) => !c.signal.aborted && setError(err),
    );
    return () => c.abort();
  }, [runId, name, version]);

  const crumbs = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/ui">Runs</a> › <a href=${runPath(runId)}>${shortId(runId)}</a> › <span aria-current="page">${name}</span></nav>`;
  if (error && !step) return html`${crumbs}<h1>Step ${name}</h1><${ErrorBox} error=${{ code: error.code ?? 'ERROR', message: error.message }} />`;
  if (!step) return html`${crumbs}<p class="muted">Loading step ${name}…</p>`;
  const reports = step.hangReports ?? [];
  const own = Object.fromEntries(Object.entries(texts).filter(([k]) => k.startsWith(`${name}#`)));
  return html`
    ${crumbs}
    <h1>Step <code>${step.name}</code> <${Status} status=${step.status} /></h1>
    <dl class="facts">
      <div><dt>Tool</dt><dd><code>${step.tool}</code></dd></div>
      <div><dt>Attempts</dt><dd>${step.attempts}${step.retries?.max > 0 ? ` (up to ${step.retries.max} retries)` : ' (no retries)'}</dd></div>
      <div><dt>Deadline</dt><dd>${duration(step.timeoutMs)} per attempt</dd></div>
      ${step.dependsOn?.length > 0 && html`<div><dt>Depends on</dt><dd>${step.dependsOn.map((d) => html`<a href=${`${runPath(runId)}/steps/${encodeURIComponent(d)}`}>${d}</a> `)}</dd></div>`}
      ${step.addedBy && html`<div><dt>Added by</dt><dd><a href=${`${runPath(runId)}/steps/${encodeURIComponent(step.addedBy)}`}>${step.addedBy}</a> (at runtime)</dd></div>`}
      ${step.waitingFor && html`<div><dt>Waiting for</dt><dd class="warn" data-waiting=${step.waitingFor.kind}>${waitingText(step.waitingFor)}</dd></div>`}
      ${step.outputsFrom && html`<div><dt>Outputs from</dt><dd><a href=${`${runPath(runId)}/steps/${encodeURIComponent(step.outputsFrom)}`}>${step.outputsFrom}</a>${step.status === 'pending' ? ' (waiting for it)' : ''}</dd></div>`}
      <div><dt>Started</dt><dd>${dateTime(step.startedAt)}</dd></div>
      <div><dt>Finished</dt><dd>${dateTime(step.finishedAt)}</dd></div>
    </dl>
    ${step.error && html`<section aria-labelledby="error"><h2 id="error">Error</h2><${ErrorBox} error=${step.error} /></section>`}
    ${reports.length > 0 && html`<section aria-labelledby="hang"><h2 id="hang">Hang report${reports.length > 1 ? `s (${reports.length})` : ''}</h2>
      ${reports.map((r) => html`<${HangReport} report=${r} key=${r.attempt} />`)}</section>`}
    ${Object.keys(own).length > 0 && html`<${StreamedText} runId=${runId} texts=${own} />`}
    <section aria-labelledby="attempts"><h2 id="attempts">Attempts</h2>
      <div class="table-wrap"><table>
        <thead><tr><th scope="col">#</th><th scope="col">status</th><th scope="col">worker</th><th scope="col">started</th><th scope="col">took</th><th scope="col">error</th></tr></thead>
        <tbody>${(step.attemptsDetail ?? []).map((a) => html`<tr key=${a.attempt} data-attempt=${a.attempt}>
          <td>${a.attempt}</td><td><${Status} status=${a.status} /></td><td><code>${a.workerId}</code></td><td>${dateTime(a.startedAt)}</td>
          <td>${a.finishedAt ? duration(Date.parse(a.finishedAt) - Date.parse(a.startedAt)) : TERMINAL.has(step.status) ? '–' : 'running'}</td>
          <td>${a.error ? html`<code>${a.error.code}</code> ${a.error.message}` : ''}</td></tr>`)}</tbody>
      </table></div>
    </section>
    <section aria-labelledby="inputs"><h2 id="inputs">Inputs</h2>
      <${Json} value=${step.resolvedInputs ?? step.inputs} />
      ${step.resolvedInputs && JSON.stringify(step.resolvedInputs) !== JSON.stringify(step.inputs) && html`<details><summary>As written in the plan</summary><${Json} value=${step.inputs} /></details>`}
    </section>
    <section aria-labelledby="outputs"><h2 id="outputs">Outputs</h2><${Json} value=${step.outputs} /></section>`;
}
