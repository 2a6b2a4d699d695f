/**
 * The values a configuration declares secret, for redaction in every process that holds them (the
 * API's and each worker's): the API token, every provider header value (headers carry keys and
 * org ids, and a config file cannot say which is which), and the value of each `apiKeyEnv` variable
 * (its name need not look like a key's).
 */
import type { RunwardenConfig } from './types.ts';

export function configuredSecrets(config: Readonly<RunwardenConfig>, env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  if (config.token !== undefined) out.push(config.token);
  for (const p of Object.values(config.providers)) {
    out.push(...Object.values(p.headers ?? {}));
    const key = p.apiKeyEnv === undefined ? undefined : env[p.apiKeyEnv];
    if (key !== undefined && key !== '') out.push(key);
  }
  return out;
}
