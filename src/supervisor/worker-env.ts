/**
 * The environment of a worker process: the supervisor's, less what only the API needs. Tools may
 * read any variable (their own keys, PATH, proxies), so the rest is passed on as it is.
 */

/** Variables a worker never needs: the API's bearer token (workers talk to the store, not the API). */
export const API_ONLY_ENV = ['RUNWARDEN_TOKEN'] as const;

export function workerEnvironment(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...env };
  for (const name of API_ONLY_ENV) delete out[name];
  return out;
}
