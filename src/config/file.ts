/**
 * Finding and reading the config file: `--config <file>` (or RUNWARDEN_CONFIG), else
 * `runwarden.config.{json,js,ts}` in the working directory. `.js`/`.ts` modules default-export the
 * object (`.ts` loads directly on Node 24).
 */
import { access, readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RunwardenError } from '../domain/errors.ts';

export const CONFIG_FILE_NAMES = ['runwarden.config.json', 'runwarden.config.js', 'runwarden.config.ts'] as const;

export function configError(message: string, details: Array<{ path: string; message: string }> = []): RunwardenError {
  return new RunwardenError('CONFIG_INVALID', message, { details: details.map((d) => ({ code: 'CONFIG_INVALID', path: d.path, message: d.message })),
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The file to read, or undefined when there is none. */
export async function locateConfigFile(explicit: string | undefined, cwd: string): Promise<string | undefined> {
  if (explicit !== undefined) {
    const path = resolve(cwd, explicit);
    if (!(await exists(path))) throw configError(`config file ${path} does not exist`);
    return path;
  }
  const found: string[] = [];
  for (const name of CONFIG_FILE_NAMES) {
    const path = resolve(cwd, name);
    if (await exists(path)) found.push(path);
  }
  if (found.length > 1) {
    throw configError(`found more than one config file (${found.join(', ')}); keep one, or choose with --config`);
  }
  return found[0];
}

export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  const ext = extname(path).toLowerCase();
  let value: unknown;
  if (ext === '.json') {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw configError(`cannot read config file ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw configError(`config file ${path} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else if (['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'].includes(ext)) {
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
    } catch (err) {
      throw configError(`cannot load config module ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (mod.default === undefined) throw configError(`config module ${path} must default-export the configuration object`);
    value = mod.default;
  } else {
    throw configError(`config file ${path} must end in .json, .js or .ts`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw configError(`config file ${path} must contain an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}
