/**
 * Configuration as it may be printed, logged or put into a hang report: the token, URL credentials,
 * secret-looking query parameters and provider header values become `[redacted]`.
 */
import type { RunwardenConfig } from './types.ts';

export const REDACTED = '[redacted]';

const SECRET_PARAM = /pass|token|secret|key|sig|auth|cred/i;

/** `postgres://user:pw@db/x?sslpassword=y` -> `postgres://[redacted]@db/x?sslpassword=[redacted]`. */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not parseable: if it might hold credentials, show nothing of it.
    return raw.includes('@') ? REDACTED : raw;
  }
  const auth = url.username !== '' || url.password !== '' ? `${REDACTED}@` : '';
  const params: string[] = [];
  for (const [name, value] of url.searchParams) {
    params.push(`${encodeURIComponent(name)}=${SECRET_PARAM.test(name) ? REDACTED : encodeURIComponent(value)}`);
  }
  const search = params.length > 0 ? `?${params.join('&')}` : '';
  const authority = url.host === '' && auth === '' ? '' : `//${auth}${url.host}`;
  return `${url.protocol}${authority}${url.pathname}${search}${url.hash}`;
}

export function redactedConfig(c: Readonly<RunwardenConfig>): Record<string, unknown> {
  const providers: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(c.providers)) {
    const copy: Record<string, unknown> = { ...p };
    if (p.baseUrl !== undefined) copy.baseUrl = redactUrl(p.baseUrl);
    if (p.headers !== undefined) {
      copy.headers = Object.fromEntries(Object.keys(p.headers).map((h) => [h, REDACTED]));
    }
    if (p.timeouts !== undefined) copy.timeouts = { ...p.timeouts };
    providers[name] = copy;
  }
  return {
    ...c,
    tools: [...c.tools],
    token: c.token === undefined ? undefined : REDACTED,
    databaseUrl: c.databaseUrl === undefined ? undefined : redactUrl(c.databaseUrl),
    providers,
  };
}
