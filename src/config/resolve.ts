/**
 * Resolve the configuration once: flags > RUNWARDEN_* environment > config file > defaults.
 * Every value is validated where it came from, so an error names the key and the source
 * ("port must be a port number (0-65535), got "abc" (from environment variable RUNWARDEN_PORT)");
 * unknown keys in the file are an error naming the key. The result is deeply frozen.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { BUILTIN_PROVIDERS, CONFIG_FILE_ENV, CONFIG_KEYS, FIELDS, staticDefaults } from './fields.ts';
import type { ConfigKey } from './fields.ts';
import { configError, loadConfigFile, locateConfigFile } from './file.ts';
import { REDACTED } from './redact.ts';
import type { RunwardenConfig } from './types.ts';

export { redactedConfig, redactUrl } from './redact.ts';
export { isLoopbackHost } from './host.ts';

/** Flags as the CLI has them: typed values, or the raw string for numbers (validated here, naming the flag). */
export type ConfigFlags = { [K in ConfigKey]?: RunwardenConfig[K] | string } & { config?: string };

export interface ResolveInput {
  flags: ConfigFlags;
  env: Record<string, string | undefined>;
  cwd: string;
  /**
   * Look for `runwarden.config.*` in `cwd` when neither `flags.config` nor RUNWARDEN_CONFIG names a
   * file (the CLI does; an embedding process reads a file only when it names one). @default true
   */
  findConfigFile?: boolean;
}

interface Layer {
  values: Partial<Record<ConfigKey, unknown>>;
  sources: Partial<Record<ConfigKey, string>>;
  /** Directory that relative paths of this layer resolve against. */
  base: string;
}

interface Problem {
  path: string;
  message: string;
}

/** Keys whose values never appear in an error message. */
const SECRET_KEYS = new Set<string>(['token', 'databaseUrl']);

export async function resolveConfig(input: ResolveInput): Promise<Readonly<RunwardenConfig>> {
  const { env, cwd } = input;
  const problems: Problem[] = [];

  const explicit = input.flags.config ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const configFile = explicit === undefined && input.findConfigFile === false ? undefined : await locateConfigFile(explicit, cwd);
  const fileLayer: Layer = { values: {}, sources: {}, base: cwd };
  if (configFile !== undefined) {
    fileLayer.base = resolvePath(configFile, '..');
    const raw = await loadConfigFile(configFile);
    for (const [key, value] of Object.entries(raw)) {
      if (!isConfigKey(key)) {
        const hint = suggest(key);
        problems.push({ path: key, message: `unknown key "${key}" in config file ${configFile}${hint ? ` (did you mean "${hint}"?)` : ''}` });
        continue;
      }
      fileLayer.values[key] = value;
      fileLayer.sources[key] = `config file ${configFile}`;
    }
  }

  const envLayer: Layer = { values: {}, sources: {}, base: cwd };
  for (const key of CONFIG_KEYS) {
    for (const name of FIELDS[key].env) {
      const raw = nonEmpty(env[name]);
      if (raw === undefined) continue;
      const source = `environment variable ${name}`;
      const value = coerce(key, raw, source, problems);
      if (value !== undefined) {
        envLayer.values[key] = value;
        envLayer.sources[key] = source;
      }
      break;
    }
  }

  const flagLayer: Layer = { values: {}, sources: {}, base: cwd };
  for (const [key, value] of Object.entries(input.flags)) {
    if (key === 'config' || value === undefined) continue;
    if (!isConfigKey(key)) {
      problems.push({ path: key, message: `unknown option "${key}"` });
      continue;
    }
    const source = FIELDS[key].flag !== undefined ? `flag ${FIELDS[key].flag}` : `option ${key}`;
    const coerced = typeof value === 'string' ? coerce(key, value, source, problems) : value;
    if (coerced !== undefined) {
      flagLayer.values[key] = coerced;
      flagLayer.sources[key] = source;
    }
  }

  const merged: Record<string, unknown> = { ...staticDefaults() };
  const sources: Record<string, string> = {};
  for (const key of CONFIG_KEYS) sources[key] = 'default';
  for (const layer of [fileLayer, envLayer, flagLayer]) {
    for (const key of CONFIG_KEYS) {
      if (!(key in layer.values)) continue;
      const source = layer.sources[key] ?? 'unknown source';
      const parsed = validate(key, layer.values[key], source, problems);
      if (parsed === undefined) continue;
      merged[key] = resolvePaths(key, parsed, layer.base);
      sources[key] = source;
    }
  }
  merged.dataDir = resolvePaths('dataDir', merged.dataDir, cwd);
  merged.configFile = configFile;

  const config = merged as unknown as RunwardenConfig;
  if (config.defaultProvider === undefined) {
    config.defaultProvider = nonEmpty(env.OPENAI_API_KEY) ? 'openai' : nonEmpty(env.ANTHROPIC_API_KEY) ? 'anthropic' : 'lab';
    sources.defaultProvider = 'default';
  }
  crossCheck(config, sources, problems);

  if (problems.length > 0) {
    throw configError(`invalid configuration: ${problems.map((p) => p.message).join('; ')}`, problems);
  }
  return deepFreeze(config);
}

function crossCheck(c: RunwardenConfig, sources: Record<string, string>, problems: Problem[]): void {
  if (c.heartbeatMs >= c.leaseMs) {
    problems.push({
      path: 'heartbeatMs',
      message: `heartbeatMs (${c.heartbeatMs}, from ${sources.heartbeatMs}) must be less than leaseMs (${c.leaseMs}, from ${sources.leaseMs}), or leases expire between heartbeats`,
    });
  }
  if (c.loopKillMs < c.loopStallMs) {
    problems.push({
      path: 'loopKillMs',
      message: `loopKillMs (${c.loopKillMs}, from ${sources.loopKillMs}) must not be less than loopStallMs (${c.loopStallMs}, from ${sources.loopStallMs}): a worker is found stalled before it is killed`,
    });
  }
  if (c.restartBackoffMaxMs < c.restartBackoffMs) {
    problems.push({
      path: 'restartBackoffMaxMs',
      message: `restartBackoffMaxMs (${c.restartBackoffMaxMs}, from ${sources.restartBackoffMaxMs}) must not be less than restartBackoffMs (${c.restartBackoffMs}, from ${sources.restartBackoffMs})`,
    });
  }
  if (c.defaultTimeoutMs > c.maxTimeoutMs) {
    problems.push({
      path: 'defaultTimeoutMs',
      message: `defaultTimeoutMs (${c.defaultTimeoutMs}, from ${sources.defaultTimeoutMs}) must not exceed maxTimeoutMs (${c.maxTimeoutMs}, from ${sources.maxTimeoutMs})`,
    });
  }
  const provider = c.defaultProvider;
  if (provider !== undefined && !(provider in c.providers) && !(BUILTIN_PROVIDERS as readonly string[]).includes(provider)) {
    const known = [...Object.keys(c.providers), ...BUILTIN_PROVIDERS].join(', ');
    problems.push({ path: 'defaultProvider', message: `defaultProvider "${provider}" (from ${sources.defaultProvider}) names no provider; known: ${known}` });
  }
}

function coerce(key: ConfigKey, raw: string, source: string, problems: Problem[]): unknown {
  switch (FIELDS[key].kind) {
    case 'int':
      return /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : raw;
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'json':
      try {
        return JSON.parse(raw);
      } catch (err) {
        problems.push({ path: key, message: `${key} is not valid JSON (from ${source}): ${err instanceof Error ? err.message : String(err)}` });
        return undefined;
      }
    case 'string':
      return raw;
  }
}

function validate(key: ConfigKey, value: unknown, source: string, problems: Problem[]): unknown {
  const result = FIELDS[key].schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const sub = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) {
        const path = [key, ...sub, k].join('.');
        problems.push({ path, message: `unknown key "${path}" (from ${source})` });
      }
      continue;
    }
    const path = [key, ...sub].join('.');
    const shown = SECRET_KEYS.has(key) || sub.includes('headers') ? REDACTED : show(valueAt(value, sub));
    problems.push({ path, message: `${path} ${issue.message}, got ${shown} (from ${source})` });
  }
  return undefined;
}

function resolvePaths(key: ConfigKey, value: unknown, base: string): unknown {
  const kind = FIELDS[key].path;
  if (kind === 'single' && typeof value === 'string') return resolvePath(base, value);
  if (kind === 'list' && Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? resolveModule(base, v) : v));
  return value;
}

/** Tool modules are files: relative paths resolve against `base`; absolute paths and `file:` URLs stay. */
function resolveModule(base: string, spec: string): string {
  if (isAbsolute(spec) || spec.startsWith('file:')) return spec;
  return resolvePath(base, spec);
}

function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(FIELDS, key);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

function valueAt(value: unknown, path: string[]): unknown {
  let v = value;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 80)}...` : s;
  } catch {
    return typeof v;
  }
}

function suggest(key: string): string | undefined {
  let best: { key: string; d: number } | undefined;
  for (const k of CONFIG_KEYS) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(k.toLowerCase(), key.toLowerCase());
    if (d <= 2 && (best === undefined || d < best.d)) best = { key: k, d };
  }
  return best?.key;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] ?? 0;
      row[j] = Math.min(cur + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] ?? 0;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
