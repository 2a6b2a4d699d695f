/**
 * Every configuration key once: its schema, its environment variable, its CLI flag and its default.
 * docs/configuration.md is the user-facing copy of this table (and of the `@default` docs in
 * types.ts); test/cli/config.test.ts checks that every key of this table is documented there.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { DURATION_HELP, parseDuration } from '../domain/duration.ts';
import { MAX_QUEUE_TIMEOUT_MS } from '../domain/flow.ts';
import { MIN_CONFIGURED_SECRET_LENGTH } from '../domain/secrets.ts';
import type { RunwardenConfig } from './types.ts';

export type ConfigKey = Exclude<keyof RunwardenConfig, 'configFile'>;

/** How a string from the environment becomes a value. */
export type EnvKind = 'int' | 'string' | 'list' | 'json';

export interface FieldSpec {
  env: readonly string[];
  /** The `start` flag, if there is one (secrets have none: flags show up in `ps`). */
  flag?: string;
  kind: EnvKind;
  schema: z.ZodType;
  /** A path resolved against the directory of its source (the config file's, else the cwd). */
  path?: 'single' | 'list';
}

const int = (min: number, max: number, what = 'an integer') =>
  z
    .number({ error: `must be ${what}` })
    .int({ error: `must be ${what}` })
    .min(min, { error: what.includes('positive') ? `must be ${what}` : `must be ${what} >= ${min}` })
    .max(max, { error: `must be ${what} <= ${max}` });

const nonEmpty = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' });
/** A value redacted wherever it appears: too short a one would be cut out of ordinary text. */
const configuredSecret = z.string({ error: 'must be a string' }).refine((s) => s.trim().length >= MIN_CONFIGURED_SECRET_LENGTH, {
  error: `must be at least ${MIN_CONFIGURED_SECRET_LENGTH} characters: it is treated as a secret and removed from every log line, event and error, which a shorter value cannot be without mangling ordinary text`,
});

const timeouts = z.strictObject({
  connectMs: int(1, 86_400_000),
  headersMs: int(1, 86_400_000),
  firstContentMs: int(1, 86_400_000),
  idleMs: int(1, 86_400_000),
  totalMs: int(1, 86_400_000),
}).partial();

export const providerSchema = z.strictObject({
  type: z.enum(['openai', 'anthropic', 'lab'], { error: 'must be one of openai, anthropic, lab' }),
  baseUrl: z.url({ error: 'must be an absolute URL' }).optional(),
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be the NAME of an environment variable (the key itself never goes in config)' })
    .optional(),
  model: nonEmpty.optional(),
  embeddingModel: nonEmpty.optional(),
  timeouts: timeouts.optional(),
  maxRetries: int(0, 100).optional(),
  headers: z.record(z.string(), configuredSecret).optional(),
  maxResponseBytes: int(1, Number.MAX_SAFE_INTEGER).optional(),
  dnsServers: z.array(nonEmpty).min(1).optional(),
  /** Shared by every worker on the store (docs/flow-control.md#provider-limits). */
  limits: z
    .strictObject({
      concurrency: int(1, 1_000_000_000).optional(),
      requestsPerMinute: int(1, 1_000_000_000).optional(),
      tokensPerMinute: int(1, 1_000_000_000).optional(),
    })
    .optional(),
});

const port = int(0, 65_535, 'a port number (0-65535)');
const positiveMs = int(1, 2_147_483_647, 'a positive integer of milliseconds');

export const FIELDS: Readonly<Record<ConfigKey, FieldSpec>> = Object.freeze({
  port: { env: ['RUNWARDEN_PORT'], flag: '--port', kind: 'int', schema: port },
  host: { env: ['RUNWARDEN_HOST'], flag: '--host', kind: 'string', schema: nonEmpty },
  dataDir: { env: ['RUNWARDEN_DATA_DIR'], flag: '--data-dir', kind: 'string', schema: nonEmpty, path: 'single' },
  databaseUrl: {
    env: ['RUNWARDEN_DATABASE_URL', 'DATABASE_URL'],
    kind: 'string',
    schema: z
      .string({ error: 'must be a string' })
      .refine((s) => /^postgres(ql)?:\/\//i.test(s), { error: 'must be a postgres:// or postgresql:// URL' }),
  },
  token: { env: ['RUNWARDEN_TOKEN'], kind: 'string', schema: configuredSecret },
  workers: { env: ['RUNWARDEN_WORKERS'], flag: '--workers', kind: 'int', schema: int(0, 1024) },
  concurrency: { env: ['RUNWARDEN_CONCURRENCY'], flag: '--concurrency', kind: 'int', schema: int(1, 100_000) },
  tools: { env: ['RUNWARDEN_TOOLS'], flag: '--tools', kind: 'list', schema: z.array(nonEmpty, { error: 'must be an array of module paths' }), path: 'list' },
  toolIsolation: {
    env: ['RUNWARDEN_TOOL_ISOLATION'],
    flag: '--tool-isolation',
    kind: 'string',
    schema: z.enum(['thread', 'inline'], { error: 'must be thread or inline' }),
  },
  toolThreadsWarm: { env: ['RUNWARDEN_TOOL_THREADS_WARM'], kind: 'int', schema: int(0, 1024) },
  defaultProvider: { env: ['RUNWARDEN_DEFAULT_PROVIDER'], flag: '--default-provider', kind: 'string', schema: nonEmpty },
  providers: {
    env: ['RUNWARDEN_PROVIDERS'],
    kind: 'json',
    schema: z.record(z.string().min(1), providerSchema, { error: 'must be an object of named providers' }),
  },
  leaseMs: { env: ['RUNWARDEN_LEASE_MS'], flag: '--lease-ms', kind: 'int', schema: positiveMs },
  heartbeatMs: { env: ['RUNWARDEN_HEARTBEAT_MS'], flag: '--heartbeat-ms', kind: 'int', schema: positiveMs },
  drainMs: { env: ['RUNWARDEN_DRAIN_MS'], flag: '--drain-ms', kind: 'int', schema: int(0, 2_147_483_647, 'an integer of milliseconds') },
  loopStallMs: { env: ['RUNWARDEN_LOOP_STALL_MS'], kind: 'int', schema: int(50, 2_147_483_647, 'an integer of milliseconds') },
  loopKillMs: { env: ['RUNWARDEN_LOOP_KILL_MS'], kind: 'int', schema: positiveMs },
  killGraceMs: { env: ['RUNWARDEN_KILL_GRACE_MS'], kind: 'int', schema: int(0, 2_147_483_647, 'an integer of milliseconds') },
  restartBackoffMs: { env: ['RUNWARDEN_RESTART_BACKOFF_MS'], kind: 'int', schema: positiveMs },
  restartBackoffMaxMs: { env: ['RUNWARDEN_RESTART_BACKOFF_MAX_MS'], kind: 'int', schema: positiveMs },
  reaperIntervalMs: { env: ['RUNWARDEN_REAPER_INTERVAL_MS'], kind: 'int', schema: positiveMs },
  abortGraceMs: { env: ['RUNWARDEN_ABORT_GRACE_MS'], kind: 'int', schema: int(0, 2_147_483_647, 'an integer of milliseconds') },
  defaultTimeoutMs: { env: ['RUNWARDEN_DEFAULT_TIMEOUT_MS'], kind: 'int', schema: positiveMs },
  maxTimeoutMs: { env: ['RUNWARDEN_MAX_TIMEOUT_MS'], kind: 'int', schema: positiveMs },
  defaultQueueTimeoutMs: { env: ['RUNWARDEN_DEFAULT_QUEUE_TIMEOUT_MS'], kind: 'int', schema: int(1, MAX_QUEUE_TIMEOUT_MS, `an integer of milliseconds, at most ${MAX_QUEUE_TIMEOUT_MS} (24 h)`) },
  bodyLimitBytes: { env: ['RUNWARDEN_BODY_LIMIT_BYTES'], kind: 'int', schema: int(1024, 1024 * 1024 * 1024, 'an integer of bytes') },
  labPort: { env: ['RUNWARDEN_LAB_PORT'], flag: '--lab-port', kind: 'int', schema: port },
  lab: { env: ['RUNWARDEN_LAB'], flag: '--lab', kind: 'string', schema: z.enum(['auto', 'on', 'off'], { error: 'must be auto, on or off' }) },
  retention: {
    env: ['RUNWARDEN_RETENTION'],
    kind: 'string',
    schema: z.string({ error: 'must be a string' }).refine((s) => parseDuration(s) !== undefined && (parseDuration(s) ?? 0) >= 3_600_000, {
      error: `must be ${DURATION_HELP}, at least 1h`,
    }),
  },
  otlpEndpoint: {
    env: ['RUNWARDEN_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    kind: 'string',
    schema: z.string({ error: 'must be a string' }).refine((s) => /^https?:\/\/[^/]/i.test(s), { error: 'must be an http:// or https:// URL' }),
  },
});

export const CONFIG_KEYS = Object.keys(FIELDS) as ConfigKey[];

/** The environment variable naming the config file (like `--config`). */
export const CONFIG_FILE_ENV = 'RUNWARDEN_CONFIG';

/** Defaults that do not depend on the environment; see types.ts for each `@default`. */
export function staticDefaults(): Omit<RunwardenConfig, 'configFile' | 'defaultProvider' | 'dataDir'> & { dataDir: string } {
  return {
    port: 7400,
    host: '127.0.0.1',
    dataDir: './.runwarden',
    databaseUrl: undefined,
    token: undefined,
    workers: Math.max(1, availableParallelism()),
    concurrency: 256,
    tools: [],
    toolIsolation: 'thread',
    toolThreadsWarm: 1,
    providers: {},
    leaseMs: 3000,
    heartbeatMs: 1000,
    drainMs: 5000,
    loopStallMs: 500,
    loopKillMs: 1500,
    killGraceMs: 1000,
    restartBackoffMs: 100,
    restartBackoffMaxMs: 10_000,
    reaperIntervalMs: 500,
    abortGraceMs: 1000,
    defaultTimeoutMs: 300_000,
    maxTimeoutMs: 86_400_000,
    defaultQueueTimeoutMs: undefined,
    bodyLimitBytes: 1_048_576,
    labPort: 7401,
    lab: 'auto',
    retention: undefined,
    otlpEndpoint: undefined,
  };
}

/** Built-in provider names a plan or `defaultProvider` may use without declaring them. */
export const BUILTIN_PROVIDERS = ['openai', 'anthropic', 'lab'] as const;
