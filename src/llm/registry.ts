/**
 * Named providers: the built-ins (`openai`, `anthropic`, `lab`) and the `providers` block of the
 * configuration. One instance (and so one keep-alive agent) per name per process, created on first
 * use and closed once by `close()` on shutdown.
 *
 * The environment is passed in: only src/config and src/cli read process.env.
 */
import { RunwardenError } from '../domain/errors.ts';
import { AnthropicProvider } from './anthropic.ts';
import { redactUrl } from '../domain/redact-url.ts';
import { OpenAiProvider } from './openai.ts';
import { instrumentProvider } from '../telemetry/hooks.ts';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_RETRIES, resolveTimeouts } from './timeouts.ts';
import type { LlmProvider, ProviderConfig, ProviderType } from './types.ts';
import { ProviderGate } from '../flow/gate.ts';
import type { ProviderLimitStore } from '../flow/limit-store.ts';
import type { ProviderLimits } from '../flow/slots.ts';

export interface RegistryOptions {
  providers?: Record<string, ProviderConfig>;
  defaultProvider?: string;
  env: Record<string, string | undefined>;
  /** Base URL of the hang lab (e.g. http://127.0.0.1:7401), without /v1. */
  labUrl?: string;
  /**
   * The store's provider limits: every provider then passes a gate that holds its `limits` and the
   * pauses its 429s ask for, across every worker on the store. @default none (calls go at once)
   */
  limitStore?: ProviderLimitStore;
  log?: (line: string) => void;
}

export interface ProviderInfo {
  name: string;
  type: ProviderType;
  baseUrl: string;
  /** Its configured limits, if any (docs/flow-control.md#provider-limits). */
  limits?: ProviderLimits;
}

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';
/** @default gpt-4o-mini (override with OPENAI_MODEL or the provider's `model`) */
export const OPENAI_DEFAULT_MODEL = 'gpt-4o-mini';
/** @default text-embedding-3-small (override with OPENAI_EMBEDDING_MODEL or `embeddingModel`) */
export const OPENAI_DEFAULT_EMBEDDING_MODEL = 'text-embedding-3-small';
/** @default claude-haiku-4-5 (override with ANTHROPIC_MODEL or the provider's `model`) */
export const ANTHROPIC_DEFAULT_MODEL = 'claude-haiku-4-5';
export const LAB_DEFAULT_MODEL = 'lab-chat';
export const LAB_DEFAULT_EMBEDDING_MODEL = 'lab-embed';

const CONFIG_KEYS = new Set(['type', 'baseUrl', 'apiKeyEnv', 'model', 'embeddingModel', 'timeouts', 'maxRetries', 'headers', 'maxResponseBytes', 'dnsServers', 'limits']);
const LIMIT_KEYS = ['concurrency', 'requestsPerMinute', 'tokensPerMinute'] as const;
const TYPES = new Set<ProviderType>(['openai', 'anthropic', 'lab']);

interface Resolved {
  name: string;
  type: ProviderType;
  base: URL;
  apiKey: string | undefined;
  model: string;
  embeddingModel: string;
  config: ProviderConfig;
}

export class ProviderRegistry {
  /** The name `get()` uses when none is given. */
  readonly defaultName: string;
  private readonly resolved = new Map<string, Resolved>();
  private readonly unavailable = new Map<string, string>();
  private readonly instances = new Map<string, LlmProvider>();
  private closed = false;
  private readonly limitStore: ProviderLimitStore | undefined;
  private readonly log: ((line: string) => void) | undefined;

  constructor(opts: RegistryOptions) {
    const env = opts.env;
    this.limitStore = opts.limitStore;
    this.log = opts.log;
    this.add('openai', {
      type: 'openai',
      baseUrl: env.OPENAI_BASE_URL || OPENAI_DEFAULT_BASE_URL,
      apiKeyEnv: 'OPENAI_API_KEY',
      model: env.OPENAI_MODEL || OPENAI_DEFAULT_MODEL,
      embeddingModel: env.OPENAI_EMBEDDING_MODEL || OPENAI_DEFAULT_EMBEDDING_MODEL,
    }, env, opts.labUrl);
    this.add('anthropic', {
      type: 'anthropic',
      baseUrl: env.ANTHROPIC_BASE_URL || ANTHROPIC_DEFAULT_BASE_URL,
      apiKeyEnv: 'ANTHROPIC_API_KEY',
      model: env.ANTHROPIC_MODEL || ANTHROPIC_DEFAULT_MODEL,
    }, env, opts.labUrl);
    this.add('lab', { type: 'lab' }, env, opts.labUrl);
    for (const [name, cfg] of Object.entries(opts.providers ?? {})) {
      validateConfig(name, cfg);
      this.add(name, cfg, env, opts.labUrl);
    }
    if (opts.defaultProvider !== undefined) {
      if (!this.resolved.has(opts.defaultProvider) && !this.unavailable.has(opts.defaultProvider)) {
        throw unknownProvider(opts.defaultProvider, this.names(), 'defaultProvider');
      }
      this.defaultName = opts.defaultProvider;
    } else if (env.OPENAI_API_KEY) {
      this.defaultName = 'openai';
    } else if (env.ANTHROPIC_API_KEY) {
      this.defaultName = 'anthropic';
    } else {
      this.defaultName = 'lab';
    }
  }

  /** The provider called `name` (default: `defaultName`). Throws `PROVIDER_UNKNOWN`. */
  get(name?: string): LlmProvider {
    const key = name ?? this.defaultName;
    if (this.closed) throw new RunwardenError('PROVIDERS_CLOSED', 'the provider registry is closed');
    const existing = this.instances.get(key);
    if (existing) return existing;
    const r = this.resolved.get(key);
    if (!r) {
      const why = this.unavailable.get(key);
      if (why) throw new RunwardenError('PROVIDER_UNKNOWN', `provider "${key}" is not available: ${why}`, { data: { provider: key } });
      throw unknownProvider(key, this.names());
    }
    const common = {
      name: r.name,
      type: r.type,
      base: r.base,
      apiKey: r.apiKey,
      model: r.model,
      timeouts: r.config.timeouts,
      maxRetries: r.config.maxRetries ?? DEFAULT_MAX_RETRIES,
      maxResponseBytes: r.config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      headers: r.config.headers,
      dnsServers: r.config.dnsServers,
      ...(this.limitStore ? { gate: new ProviderGate({ store: this.limitStore, provider: r.name, ...(r.config.limits ? { limits: r.config.limits } : {}), ...(this.log ? { log: this.log } : {}) }) } : {}),
    };
    const p: LlmProvider = instrumentProvider(r.type === 'anthropic' ? new AnthropicProvider(common) : new OpenAiProvider({ ...common, embeddingModel: r.embeddingModel }));
    this.instances.set(key, p);
    return p;
  }

  has(name: string): boolean {
    return this.resolved.has(name);
  }

  list(): ProviderInfo[] {
    return [...this.resolved.values()].map((r) => ({
      name: r.name,
      type: r.type,
      baseUrl: redactUrl(r.base).replace(/\/$/, ''),
      ...(r.config.limits ? { limits: r.config.limits } : {}),
    }));
  }

  /** Destroys every provider's sockets. Idempotent. */
  close(): void {
    this.closed = true;
    for (const p of this.instances.values()) p.close();
    this.instances.clear();
  }

  private names(): string[] {
    return [...this.resolved.keys(), ...this.unavailable.keys()];
  }

  private add(name: string, cfg: ProviderConfig, env: Record<string, string | undefined>, labUrl: string | undefined): void {
    this.resolved.delete(name);
    this.unavailable.delete(name);
    let baseUrl = cfg.baseUrl;
    if (baseUrl === undefined) {
      if (cfg.type === 'lab') {
        if (labUrl === undefined) {
          this.unavailable.set(name, 'the lab is not running (no lab URL was given)');
          return;
        }
        baseUrl = `${labUrl.replace(/\/+$/, '')}/v1`;
      } else {
        baseUrl = cfg.type === 'anthropic' ? env.ANTHROPIC_BASE_URL || ANTHROPIC_DEFAULT_BASE_URL : env.OPENAI_BASE_URL || OPENAI_DEFAULT_BASE_URL;
      }
    }
    let base: URL;
    try {
      base = new URL(baseUrl);
    } catch (err) {
      throw new RunwardenError('CONFIG_INVALID', `provider "${name}": baseUrl is not a valid URL`, { cause: err });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new RunwardenError('CONFIG_INVALID', `provider "${name}": baseUrl must be http or https, got ${base.protocol}`);
    }
    // A named provider pointed at its own server gets no key unless it names one: never send
    // OPENAI_API_KEY to a URL the user did not pair it with.
    const keyEnv = cfg.apiKeyEnv ?? (cfg.baseUrl === undefined && cfg.type === 'openai' ? 'OPENAI_API_KEY' : cfg.baseUrl === undefined && cfg.type === 'anthropic' ? 'ANTHROPIC_API_KEY' : undefined);
    const apiKey = keyEnv ? env[keyEnv] || undefined : undefined;
    const isLab = cfg.type === 'lab';
    const isAnthropic = cfg.type === 'anthropic';
    // OPENAI_MODEL / ANTHROPIC_MODEL apply to providers on the official endpoint only.
    const official = cfg.baseUrl === undefined;
    const envModel = official ? (isAnthropic ? env.ANTHROPIC_MODEL : cfg.type === 'openai' ? env.OPENAI_MODEL : undefined) || undefined : undefined;
    const envEmbedding = official && cfg.type === 'openai' ? env.OPENAI_EMBEDDING_MODEL || undefined : undefined;
    this.resolved.set(name, {
      name,
      type: cfg.type,
      base,
      apiKey,
      model: cfg.model ?? envModel ?? (isLab ? LAB_DEFAULT_MODEL : isAnthropic ? ANTHROPIC_DEFAULT_MODEL : OPENAI_DEFAULT_MODEL),
      embeddingModel: cfg.embeddingModel ?? envEmbedding ?? (isLab ? LAB_DEFAULT_EMBEDDING_MODEL : OPENAI_DEFAULT_EMBEDDING_MODEL),
      config: cfg,
    });
  }
}

function validateConfig(name: string, cfg: ProviderConfig): void {
  if (typeof cfg !== 'object' || cfg === null) throw new RunwardenError('CONFIG_INVALID', `provider "${name}" must be an object`);
  for (const key of Object.keys(cfg)) {
    if (!CONFIG_KEYS.has(key)) {
      throw new RunwardenError('CONFIG_INVALID', `provider "${name}": unknown key "${key}" (known: ${[...CONFIG_KEYS].join(', ')})`);
    }
  }
  if (!TYPES.has(cfg.type)) {
    throw new RunwardenError('CONFIG_INVALID', `provider "${name}": type must be one of openai, anthropic, lab`);
  }
  if (cfg.maxRetries !== undefined && (!Number.isInteger(cfg.maxRetries) || cfg.maxRetries < 0 || cfg.maxRetries > 100)) {
    throw new RunwardenError('CONFIG_INVALID', `provider "${name}": maxRetries must be an integer from 0 to 100`);
  }
  if (cfg.limits !== undefined) validateLimits(name, cfg.limits);
  if (cfg.maxResponseBytes !== undefined && (!Number.isInteger(cfg.maxResponseBytes) || cfg.maxResponseBytes <= 0)) {
    throw new RunwardenError('CONFIG_INVALID', `provider "${name}": maxResponseBytes must be a positive integer`);
  }
  try {
    resolveTimeouts(cfg.timeouts);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new RunwardenError('CONFIG_INVALID', `provider "${name}": ${msg}`, { cause: err });
  }
}

function validateLimits(name: string, limits: unknown): void {
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) throw new RunwardenError('CONFIG_INVALID', `provider "${name}": limits must be an object`);
  for (const [key, value] of Object.entries(limits)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(key)) {
      throw new RunwardenError('CONFIG_INVALID', `provider "${name}": unknown limit "${key}" (known: ${LIMIT_KEYS.join(', ')})`);
    }
    if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 1_000_000_000) {
      throw new RunwardenError('CONFIG_INVALID', `provider "${name}": limits.${key} must be a whole number from 1 to 1,000,000,000`);
    }
  }
}

function unknownProvider(name: string, known: string[], where = 'provider'): RunwardenError {
  return new RunwardenError('PROVIDER_UNKNOWN', `unknown ${where} "${name}" (known: ${known.join(', ')})`, { data: { provider: name, known },
  });
}
