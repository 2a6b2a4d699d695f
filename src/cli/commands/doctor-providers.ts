/**
 * doctor's provider check: one small real request per provider (a chat of one output token), under
 * a short deadline, reporting what came back. A server that accepts connections but never answers
 * (the lab's hanging modes, a wedged proxy) fails here, where a bare "is the port open" check would
 * call it reachable.
 */
import type { RunwardenConfig } from '../../config/types.ts';
import { RunwardenError } from '../../domain/errors.ts';
import type { ProviderRegistry } from '../../llm/registry.ts';

export interface ProviderProbe {
  name: string;
  verdict: 'ok' | 'fail' | 'skip';
  text: string;
}

/** Enough for a one-token answer from a healthy provider (well under a second on OpenAI and
 *  Anthropic in normal times); a hung one fails within it. */
export const PROBE_TIMEOUT_MS = 3000;

const fmt = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/**
 * Which names to probe: the lab; configured providers (skipped when the key variable they name is
 * not set here); the built-in openai and anthropic only when their key is set here.
 */
export function probeTargets(names: string[], config: Pick<RunwardenConfig, 'providers'>, env: Record<string, string | undefined>, registry: ProviderRegistry): ProviderProbe[] {
  const out: ProviderProbe[] = [];
  for (const name of names) {
    const configured = config.providers[name];
    if (!registry.has(name)) {
      out.push({ name, verdict: 'skip', text: `${name}: not configured here (pass the deployment's --config to check it)` });
    } else if (configured?.apiKeyEnv !== undefined && !env[configured.apiKeyEnv]) {
      out.push({ name, verdict: 'skip', text: `${name}: ${configured.apiKeyEnv} is not set here` });
    } else if (configured === undefined && ((name === 'openai' && !env.OPENAI_API_KEY) || (name === 'anthropic' && !env.ANTHROPIC_API_KEY))) {
      continue; // a built-in without a key is not in use
    } else {
      out.push({ name, verdict: 'ok', text: '' });
    }
  }
  return out;
}

export async function probeProvider(registry: ProviderRegistry, name: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProviderProbe> {
  const t0 = performance.now();
  const controller = new AbortController();
  let where = name;
  try {
    const provider = registry.get(name);
    where = `${name} (${provider.baseUrl})`;
    const res = await provider.chat(
      { messages: [{ role: 'user', content: 'Reply with one word.' }], maxTokens: 1, stream: false },
      // The call's own limits fire first, so the error names the phase and the limit (not a step
      // deadline: there is no step). Retries of a 429 or 5xx stay inside `totalMs`.
      {
        signal: controller.signal,
        deadline: Date.now() + timeoutMs + 1000,
        timeouts: { connectMs: Math.min(2000, timeoutMs), headersMs: timeoutMs, firstContentMs: timeoutMs, idleMs: timeoutMs, totalMs: timeoutMs },
      },
    );
    const tokens = res.usage.outputTokens;
    return { name, verdict: 'ok', text: `${name} answered in ${fmt(performance.now() - t0)} (model ${res.model}, ${tokens} output token${tokens === 1 ? '' : 's'})` };
  } catch (err) {
    const e = err instanceof RunwardenError ? err : undefined;
    const summary = (e?.data?.classification as { summary?: unknown } | undefined)?.summary;
    const what = typeof summary === 'string' ? summary : err instanceof Error ? err.message : String(err);
    return { name, verdict: 'fail', text: `provider ${where}: ${e ? `${e.code} - ` : ''}${what}` };
  } finally {
    controller.abort();
  }
}
