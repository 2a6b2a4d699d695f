/**
 * Configuration as it may be printed, logged or put into a hang report: the token, URL credentials,
 * secret-looking query parameters and provider header values become `[redacted]`.
 */
import { REDACTED, redactUrl } from '../domain/redact-url.ts';
import type { RunwardenConfig } from './types.ts';

export { REDACTED, redactUrl };

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
