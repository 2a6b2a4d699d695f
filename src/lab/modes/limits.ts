/**
 * Refusals: 429 with every retry-after form clients meet in the wild, and 5xx/529 bursts. Both can
 * refuse only the first `count` requests per key and then answer healthily, which is how a retry
 * policy is tested end to end.
 */
import { STATUS_CODES } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import type { LabExchange } from '../exchange.ts';
import { ParamError } from '../params.ts';
import type { LabState } from '../state.ts';
import { errorBody } from '../wire.ts';
import { sendHealthy } from './healthy.ts';
import type { Mode } from './types.ts';

const RETRY_FORMS = ['ms', 'date', 'garbage', 'none'];

/** Whether this request is one the mode refuses: always without `count`, else the first `count` per key. */
function refuses(ex: LabExchange, lab: LabState): () => boolean {
  const count = ex.params.optionalInt('count', 0);
  const path = new URL(ex.req.url ?? '/', 'http://lab.invalid').pathname;
  const key = `${ex.mode}:${ex.params.str('key', path)}`;
  return () => count === undefined || lab.withinFirst(key, count);
}

export const rateLimited: Mode = (ex, lab) => {
  const form = ex.params.str('retry_after', '1');
  if (!/^\d+$/.test(form) && !RETRY_FORMS.includes(form)) {
    throw new ParamError(`retry_after must be a number of seconds or one of ${RETRY_FORMS.join(', ')} (got '${form}')`);
  }
  const waitMs = ex.params.int('wait_ms', 1500, 0, 86_400_000);
  const refuse = refuses(ex, lab);
  return async () => {
    if (!refuse()) {
      await sendHealthy(ex);
      return;
    }
    const headers: OutgoingHttpHeaders = {};
    if (form === 'ms') headers['retry-after-ms'] = String(waitMs);
    // HTTP dates have one-second resolution: round up so the advertised wait is never shorter.
    else if (form === 'date') headers['retry-after'] = new Date(Math.ceil((Date.now() + waitMs) / 1000) * 1000).toUTCString();
    else if (form === 'garbage') headers['retry-after'] = 'whenever you like';
    else if (form !== 'none') headers['retry-after'] = form;
    ex.sendJson(429, errorBody(ex.format, 429, 'Rate limit reached (runwarden lab rate_limited mode).'), headers);
  };
};

const OVERLOAD_STATUSES = ['500', '502', '503', '504', '529'] as const;

export const overloaded: Mode = (ex, lab) => {
  const status = Number(ex.params.choice('status', OVERLOAD_STATUSES, '503'));
  const body = ex.params.choice('body', ['json', 'html'], 'json');
  const refuse = refuses(ex, lab);
  return async () => {
    if (!refuse()) {
      await sendHealthy(ex);
      return;
    }
    if (body === 'json') {
      const message = status === 529 ? 'Overloaded' : `${STATUS_CODES[status] ?? 'Server error'} (runwarden lab overloaded mode).`;
      ex.sendJson(status, errorBody(ex.format, status, message));
      return;
    }
    // What a reverse proxy in front of the provider sends: HTML, whatever the client asked for.
    const title = `${status} ${STATUS_CODES[status] ?? 'Site Overloaded'}`;
    const html = `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
    ex.head(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) }, false);
    ex.end(html);
  };
};
