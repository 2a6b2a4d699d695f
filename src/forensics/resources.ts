/**
 * Process resources and the (redacted) configuration, as a hang report shows them. Seed 000 asked
 * for both: "memory, file descriptors, network connections" and "environment variables, config".
 */
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import v8 from 'node:v8';
import { isSecretEnvName, REDACTED, redactDeep, redactText } from './redact.ts';
import type { HangReport } from '../domain/hang-report.ts';

/** The process's resources as a hang report holds them (domain/hang-report.ts). */
export type ProcessResources = HangReport['resources'];

function countFds(): number | null {
  if (process.platform !== 'linux') return null;
  try {
    // One entry is the descriptor readdir itself opened.
    return Math.max(0, readdirSync('/proc/self/fd').length - 1);
  } catch {
    return null;
  }
}

/**
 * Process-wide facts are the same for every report built in the same moment; when many steps hit
 * their deadline together (200 at once measured ~0.35 ms of report building each), computing them
 * once per short window keeps the deadline overshoot down. 50 ms is far below anything a reader of
 * a report could tell apart.
 */
const SHARED_MS = 50;
let resourcesCache: { at: number; value: ProcessResources } | undefined;
let configCache: { at: number; value: Record<string, unknown> } | undefined;

export function processResources(): ProcessResources {
  const now = performance.now();
  if (resourcesCache && now - resourcesCache.at < SHARED_MS) return resourcesCache.value;
  resourcesCache = { at: now, value: readResources() };
  return resourcesCache.value;
}

function readResources(): ProcessResources {
  const mem = process.memoryUsage();
  const usage = process.resourceUsage();
  const active: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) active[name] = (active[name] ?? 0) + 1;
  return {
    pid: process.pid,
    uptimeS: Math.round(process.uptime()),
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    heapLimitBytes: v8.getHeapStatistics().heap_size_limit,
    externalBytes: mem.external,
    activeResources: active,
    openFds: countFds(),
    cpuUserMs: Math.round(usage.userCPUTime / 1000),
    cpuSystemMs: Math.round(usage.systemCPUTime / 1000),
    loadAvg1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

let configSnapshot: Record<string, unknown> | undefined;

/**
 * The configuration reports show (call with `redactedConfig(config)` from src/config/redact.ts; it
 * is redacted again here). Process-wide; the runtime sets it once at start.
 */
export function setReportConfig(config: Record<string, unknown> | undefined): void {
  configSnapshot = config === undefined ? undefined : redactDeep(config);
  configCache = undefined;
}

// Environment variables that change how the process talks to the network or runs code.
const RELEVANT_ENV = /^(RUNWARDEN_|OPENAI_|ANTHROPIC_|NODE_|UV_THREADPOOL_SIZE$|HTTPS?_PROXY$|NO_PROXY$|ALL_PROXY$|DATABASE_URL$|PG[A-Z]+$|TZ$)/i;

export function configSnapshotForReport(): Record<string, unknown> {
  const now = performance.now();
  if (configCache && now - configCache.at < SHARED_MS) return configCache.value;
  configCache = { at: now, value: readConfigSnapshot() };
  return configCache.value;
}

function readConfigSnapshot(): Record<string, unknown> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || !RELEVANT_ENV.test(name)) continue;
    env[name] = isSecretEnvName(name) ? REDACTED : redactText(value);
  }
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    execArgv: process.execArgv.map(redactText),
    env,
    ...(configSnapshot ? { runwarden: configSnapshot } : {}),
  };
}
