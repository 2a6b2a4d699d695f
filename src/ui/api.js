// The dashboard's only way to the data: the API's own routes, with the bearer token when one is
// needed (kept per tab in sessionStorage; asked for on the first 401).
const TOKEN_KEY = 'runwarden.token';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    // /health/detailed answers 503 with its normal body when degraded.
    this.body = body;
  }
}

let authListener = () => {};
/** Called when the API answers 401: the app shows its token form. */
export function onUnauthorized(fn) {
  authListener = fn;
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function fail(res) {
  let code = 'HTTP_' + res.status;
  let message = `${res.status} ${res.statusText}`;
  let body;
  try {
    body = await res.json();
    if (body && body.error) {
      code = body.error.code;
      message = body.error.message;
    }
  } catch {
    message = `${message} (the body was not JSON)`;
  }
  if (res.status === 401) authListener();
  return new ApiError(res.status, code, message, body);
}

/** GET or POST JSON with a 15 s deadline (or the caller's signal). */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(15000),
  });
  if (!res.ok) throw await fail(res);
  return res.json();
}

/** An artifact's bytes (served as an attachment by the API, so fetched and shown, never navigated to). */
export async function fetchBlob(path, signal) {
  const res = await fetch(path, { headers: headers(), signal: signal ?? AbortSignal.timeout(30000) });
  if (!res.ok) throw await fail(res);
  return res.blob();
}

/**
 * Follows a run's event stream (fetch, so the token can travel in a header, which EventSource cannot
 * send). Calls onEvent for stored events (in seq order, resuming with Last-Event-ID after a drop) and
 * onDelta for llm.delta frames. Ends after run.finished or when `signal` aborts.
 */
export async function followEvents(runId, { onEvent, onDelta, onState, signal }) {
  let last = 0;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const res = await fetch(`/runs/${encodeURIComponent(runId)}/events/stream`, {
        headers: headers(last > 0 ? { 'last-event-id': String(last), accept: 'text/event-stream' } : { accept: 'text/event-stream' }),
        signal,
      });
      if (!res.ok) throw await fail(res);
      onState?.('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const frame = parseFrame(block);
          if (!frame) continue;
          failures = 0;
          if (frame.event === 'llm.delta') onDelta?.(frame.data);
          else if (frame.event === 'error') throw new Error('the server reported a stream error');
          else if (typeof frame.data.seq === 'number' && frame.data.seq > last) {
            last = frame.data.seq;
            onEvent(frame.data);
            if (frame.data.type === 'run.finished') {
              onState?.('finished');
              return;
            }
          }
        }
      }
      // The server ends the stream of a run that had already finished.
      onState?.('finished');
      return;
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status < 500) {
        onState?.('error', err.message);
        return;
      }
      failures++;
      onState?.('reconnecting', err.message);
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** failures)));
    }
  }
}

function parseFrame(block) {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (data === '') return null;
  try {
    return { event, data: JSON.parse(data) };
  } catch {
    return null;
  }
}
