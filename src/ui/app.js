// The dashboard's shell: navigation, client-side routing under /ui, the token form on a 401.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onUnauthorized, setToken } from './api.js';
import { html } from './html.js';
import { navigate } from './router.js';
import { RunsPage } from './pages/runs.js';
import { RunPage } from './pages/run.js';
import { StepPage } from './pages/step.js';
import { WorkersPage } from './pages/workers.js';

function route(pathname) {
  const parts = pathname.replace(/^\/ui\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'runs' && parts[1] && parts[2] === 'steps' && parts[3]) return { page: 'step', runId: parts[1], step: parts.slice(3).join('/') };
  if (parts[0] === 'runs' && parts[1]) return { page: 'run', runId: parts[1] };
  if (parts[0] === 'workers') return { page: 'workers' };
  return { page: 'runs' };
}

function TokenForm({ onDone }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    setToken(value.trim());
    onDone();
  };
  return html`<div class="overlay" role="dialog" aria-modal="true" aria-labelledby="token-title">
    <form class="card token-form" onSubmit=${submit}>
      <h2 id="token-title">This API needs its token</h2>
      <p>It listens beyond loopback, so every request carries <code>Authorization: Bearer RUNWARDEN_TOKEN</code>.
        The token stays in this tab (sessionStorage) and is sent only to this server.</p>
      <label for="token">Token</label>
      <input id="token" type="password" autocomplete="current-password" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} autofocus />
      <button type="submit">Use this token</button>
    </form>
  </div>`;
}

function App() {
  const [loc, setLoc] = useState(() => ({ path: location.pathname, search: location.search }));
  const [needToken, setNeedToken] = useState(false);
  const [epoch, setEpoch] = useState(0);
  useEffect(() => {
    const onPop = () => setLoc({ path: location.pathname, search: location.search });
    addEventListener('popstate', onPop);
    onUnauthorized(() => setNeedToken(true));
    // Same-origin links inside the app change the page without a reload.
    const onClick = (e) => {
      const a = e.target.closest && e.target.closest('a[href^="/ui"]');
      if (!a || a.target || a.hasAttribute('download') || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(a.getAttribute('href'));
    };
    document.addEventListener('click', onClick);
    return () => {
      removeEventListener('popstate', onPop);
      document.removeEventListener('click', onClick);
    };
  }, []);
  const r = route(loc.path);
  useEffect(() => {
    document.querySelector('main')?.focus({ preventScroll: true });
    scrollTo(0, 0);
  }, [loc.path]);
  const page =
    r.page === 'run' ? html`<${RunPage} runId=${r.runId} key=${r.runId + epoch} />`
    : r.page === 'step' ? html`<${StepPage} runId=${r.runId} name=${r.step} key=${r.runId + r.step + epoch} />`
    : r.page === 'workers' ? html`<${WorkersPage} key=${epoch} />`
    : html`<${RunsPage} search=${loc.search} key=${epoch} />`;
  const nav = (href, label, active) => html`<a href=${href} aria-current=${active ? 'page' : undefined}>${label}</a>`;
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="/ui">runwarden</a>
      <nav aria-label="Main">${nav('/ui', 'Runs', r.page === 'runs' || r.page === 'run' || r.page === 'step')}${nav('/ui/workers', 'Workers', r.page === 'workers')}</nav>
    </header>
    <main id="main" tabindex="-1">${page}</main>
    ${needToken && html`<${TokenForm} onDone=${() => { setNeedToken(false); setEpoch((n) => n + 1); }} />`}`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
