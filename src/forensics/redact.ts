/**
 * Redaction, in one place. Everything a user can read (events, log lines, error messages and data,
 * hang reports) passes through `redactText` / `redactDeep` before it is recorded:
 *
 * - the values of environment variables named like keys, tokens, secrets and passwords (and any
 *   value registered with `registerSecret`), wherever they appear inside a string;
 * - `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`, `x-api-key` headers, as object
 *   keys or as `name: value` text; `Bearer` / `Basic` credentials; well-known key formats (`sk-...`);
 * - credentials in URLs (`scheme://user:pass@`) and whole query strings (`?[redacted]`);
 * - `password=...`, `api_key: ...` style pairs in free text.
 *
 * Values found by name in the environment shorter than MIN_SECRET_LENGTH are not searched for by
 * value: a variable named like a key may hold "true" or "1", and replacing every such word would
 * destroy text. Values the configuration names as secrets (the API token, provider headers, the
 * variables named by `apiKeyEnv`) are registered with `registerConfiguredSecret` and replaced
 * exactly whatever their length from MIN_CONFIGURED_SECRET_LENGTH on; configuration resolution
 * refuses shorter ones, naming the key.
 */
import { setErrorRedactor } from '../domain/errors.ts';
import { REDACTED } from '../domain/redact-url.ts';
import { MIN_CONFIGURED_SECRET_LENGTH } from '../domain/secrets.ts';

export { REDACTED };

/** Shortest value of a secret-named environment variable that is replaced wherever it appears. */
export const MIN_SECRET_LENGTH = 8;


// Environment variable names: a segment (split on _ . -) that names a secret, or a name that ends in
// one (PGPASSWORD, GITHUB_TOKEN, OPENAI_API_KEY, LAB_TEST_KEY).
const SECRET_ENV_SEGMENT = /^(?:api_?key|apikey|key|keys|token|tokens|secret|secrets|password|passwd|passphrase|pass|pwd|credential|credentials|auth|cookie|session|private|dsn|sig|signature)$/i;
const SECRET_ENV_SUFFIX = /(?:key|token|secret|password|passwd|passphrase|credentials?)$/i;
const NOT_SECRET_ENV = new Set(['PWD', 'OLDPWD', 'SHLVL', 'XDG_SESSION_TYPE', 'XDG_SESSION_CLASS', 'XDG_SESSION_ID', 'XDG_SESSION_DESKTOP', 'DESKTOP_SESSION']);

export function isSecretEnvName(name: string): boolean {
  if (NOT_SECRET_ENV.has(name)) return false;
  if (SECRET_ENV_SUFFIX.test(name)) return true;
  return name.split(/[_.-]+/).some((seg) => SECRET_ENV_SEGMENT.test(seg));
}

// Object keys whose string values are secrets. Stricter than env names: `key`, `tokens`, `session`
// are ordinary field names in tool data and usage records (inputTokens stays a number anyway).
const SECRET_KEYS = new Set([
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'xapikey',
  'apikey',
  'xauthtoken',
  'password',
  'passwd',
  'passphrase',
  'secret',
  'token',
  'credentials',
  'credential',
]);
const SECRET_KEY_SUFFIX = /(?:password|passwd|secret|apikey|privatekey|secretkey|accesskey|accesstoken|refreshtoken|idtoken|authtoken|bearertoken|sessiontoken|clientsecret)$/;

export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_KEYS.has(k) || SECRET_KEY_SUFFIX.test(k);
}

const secrets = new Set<string>();
let secretList: string[] = [];
let harvestedAt = 0;
/** process.env is re-read at most this often, so a variable set after start-up is still covered. */
const ENV_REFRESH_MS = 10_000;

/** Adds a value to redact wherever it appears, if it is long enough not to be an ordinary word or number. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string') return;
  const v = value.trim();
  if (v.length < MIN_SECRET_LENGTH || /^\d+$/.test(v)) return;
  addSecret(v);
}

/**
 * Adds a value the configuration declares secret (a provider header, the API token): replaced
 * exactly, digits-only values included, from MIN_CONFIGURED_SECRET_LENGTH characters on.
 */
export function registerConfiguredSecret(value: string | undefined | null): void {
  if (typeof value !== 'string') return;
  // Both the value as sent and trimmed: a header value is sent trimmed, a token compared whole.
  for (const v of new Set([value, value.trim()])) if (v.length >= MIN_CONFIGURED_SECRET_LENGTH) addSecret(v);
}

function addSecret(v: string): void {
  if (secrets.has(v)) return;
  secrets.add(v);
  // Longest first, so a secret that contains another is replaced whole.
  secretList = [...secrets].sort((a, b) => b.length - a.length);
}

/** Every value registered so far (a tool thread starts with the same list as its worker). */
export function registeredSecrets(): string[] {
  return [...secrets];
}

/** Registers the values of every secret-named variable, and passwords inside URL-valued ones. */
export function registerSecretsFromEnv(env: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    if (isSecretEnvName(name)) registerSecret(value);
    if (value.includes('://') && value.includes('@')) {
      try {
        const u = new URL(value);
        registerSecret(decodeURIComponent(u.password));
      } catch {
        // not a URL after all: nothing to extract
      }
    }
  }
}

/**
 * The process environment is the one tools read, so redaction reads it too (the one reader of
 * process.env outside config/ and cli/: it must see exactly what a tool can print).
 */
function refreshFromProcessEnv(): void {
  const now = Date.now();
  if (now - harvestedAt < ENV_REFRESH_MS) return;
  harvestedAt = now;
  registerSecretsFromEnv(process.env);
}

/** Forces the next redaction to re-read process.env (tests that plant a variable call this). */
export function refreshSecretsFromEnv(): void {
  harvestedAt = 0;
  refreshFromProcessEnv();
}

const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]{1,20}:\/\/)([^\s/?#@"'<>]*@)?([^\s"'<>?#]*)(\?[^\s"'<>#]*)?/gi;
const HEADER_IN_TEXT = /\b(authorization|proxy-authorization|set-cookie|cookie|x-api-key|api-key|x-auth-token)(["']?\s*[:=]\s*["']?)([^"'\r\n}]+)/gi;
const SCHEME_CREDENTIAL = /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}/g;
const KNOWN_TOKEN = /\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,})/g;
const PAIR_IN_TEXT = /\b([A-Za-z0-9_-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key))(["']?\s*[:=]\s*["']?)([^\s"'&,;}]+)/gi;

/** Redacts one string. Cheap on strings without anything secret-shaped. */
export function redactText(input: string): string {
  if (input.length === 0) return input;
  refreshFromProcessEnv();
  let s = input;
  for (const v of secretList) if (s.includes(v)) s = s.split(v).join(REDACTED);
  if (s.includes('://')) {
    s = s.replace(URL_IN_TEXT, (_m, scheme: string, cred: string | undefined, rest: string, query: string | undefined) => {
      return `${scheme}${cred ? `${REDACTED}@` : ''}${rest}${query ? `?${REDACTED}` : ''}`;
    });
  }
  s = s.replace(HEADER_IN_TEXT, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`);
  s = s.replace(SCHEME_CREDENTIAL, (_m, scheme: string) => `${scheme} ${REDACTED}`);
  s = s.replace(KNOWN_TOKEN, REDACTED);
  s = s.replace(PAIR_IN_TEXT, (m, name: string, sep: string, value: string) => (/^\d+$/.test(value) || value === REDACTED ? m : `${name}${sep}${REDACTED}`));
  return s;
}

const MAX_DEPTH = 16;

/**
 * A redacted deep copy of JSON-like data: strings through `redactText`, string values under
 * secret-named keys replaced whole. Non-plain objects (Errors, class instances) are reduced to what
 * JSON would keep of them.
 */
export function redactDeep<T>(value: T): T {
  refreshFromProcessEnv();
  return walk(value, 0) as T;
}

function walk(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
  if (value instanceof Error) {
    return { name: value.name, message: redactText(value.message) };
  }
  if (ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = typeof v === 'string' && isSecretKey(k) ? REDACTED : walk(v, depth + 1);
  }
  return out;
}

let installed = false;

/** Routes every RunwardenError message and serialized error through redaction. Idempotent. */
export function installRedaction(): void {
  if (installed) return;
  installed = true;
  setErrorRedactor({ text: redactText, data: (d) => redactDeep(d) });
}
