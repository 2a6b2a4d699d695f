/** Configuration resolution: precedence, file formats, paths, validation naming key and source, redaction. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CONFIG_KEYS, FIELDS } from '../../src/config/fields.ts';
import { isLoopbackHost } from '../../src/config/host.ts';
import { redactedConfig, resolveConfig } from '../../src/config/resolve.ts';
import { RunwardenError } from '../../src/domain/errors.ts';
import { ROOT } from './helpers.ts';

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<RunwardenError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RunwardenError, String(err));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected CONFIG_INVALID matching ${String(pattern)}`);
}

describe('resolveConfig', () => {
  let root: string;
  let n = 0;
  const fresh = async (): Promise<string> => {
    const d = join(root, `case-${++n}`);
    await mkdir(d, { recursive: true });
    return d;
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rw-config-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('defaults come from types.ts @default docs; the result is deeply frozen', async () => {
    const cwd = await fresh();
    const c = await resolveConfig({ flags: {}, env: {}, cwd });
    assert.equal(c.port, 7400);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.dataDir, join(cwd, '.runwarden'));
    assert.equal(c.workers, Math.max(1, availableParallelism()));
    assert.equal(c.concurrency, 256);
    assert.deepEqual(c.tools, []);
    assert.equal(c.leaseMs, 3000);
    assert.equal(c.heartbeatMs, 1000);
    assert.equal(c.reaperIntervalMs, 500);
    assert.equal(c.abortGraceMs, 1000);
    assert.equal(c.defaultTimeoutMs, 300_000);
    assert.equal(c.maxTimeoutMs, 86_400_000);
    assert.equal(c.bodyLimitBytes, 1_048_576);
    assert.equal(c.labPort, 7401);
    assert.equal(c.lab, 'auto');
    assert.equal(c.defaultProvider, 'lab');
    assert.equal(c.token, undefined);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.configFile, undefined);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.tools) && Object.isFrozen(c.providers));
    assert.throws(() => {
      (c as { port: number }).port = 1;
    });
  });

  test('every types.ts @default is what the resolver produces', async () => {
    const types = await readFile(join(ROOT, 'src/config/types.ts'), 'utf8');
    const c = (await resolveConfig({ flags: {}, env: {}, cwd: await fresh() })) as unknown as Record<string, unknown>;
    const documented = [...types.matchAll(/@default (\d+|'[^']*')[^*]*\*\/\s*\n\s*(\w+):/g)];
    assert.ok(documented.length >= 13, `found ${documented.length} @default values`);
    for (const m of documented) {
      const [, raw = '', key = ''] = m;
      const expected = raw.startsWith("'") ? raw.slice(1, -1) : Number(raw);
      if (key === 'dataDir') assert.ok(String(c[key]).endsWith(String(expected).replace('./', '')), key);
      else assert.equal(c[key], expected, key);
    }
  });

  test('precedence: flags > RUNWARDEN_* env > config file > defaults', async () => {
    const cwd = await fresh();
    await writeFile(join(cwd, 'runwarden.config.json'), JSON.stringify({ port: 1111, host: '127.0.0.2', concurrency: 7, leaseMs: 9000 }));
    const c = await resolveConfig({ flags: { port: 3333 }, env: { RUNWARDEN_PORT: '2222', RUNWARDEN_HOST: '127.0.0.3', RUNWARDEN_WORKERS: '3' }, cwd });
    assert.equal(c.port, 3333);
    assert.equal(c.host, '127.0.0.3');
    assert.equal(c.workers, 3);
    assert.equal(c.concurrency, 7);
    assert.equal(c.leaseMs, 9000);
    assert.equal(c.configFile, join(cwd, 'runwarden.config.json'));
  });

  test('every key has an environment variable; DATABASE_URL and list/JSON values parse', async () => {
    const cwd = await fresh();
    const c = await resolveConfig({
      flags: {},
      env: {
        DATABASE_URL: 'postgres://u:p@db:5432/rw',
        RUNWARDEN_TOKEN: 'secret-token',
        RUNWARDEN_TOOLS: './a.ts, ./b.ts,lib/c.ts',
        RUNWARDEN_PROVIDERS: JSON.stringify({ local: { type: 'openai', baseUrl: 'http://127.0.0.1:8000/v1', apiKeyEnv: 'LOCAL_KEY' } }),
        RUNWARDEN_DEFAULT_PROVIDER: 'local',
        RUNWARDEN_LAB: 'off',
        RUNWARDEN_LAB_PORT: '0',
        RUNWARDEN_LEASE_MS: '5000',
        RUNWARDEN_HEARTBEAT_MS: '700',
        RUNWARDEN_BODY_LIMIT_BYTES: '2048',
        RUNWARDEN_ABORT_GRACE_MS: '0',
        RUNWARDEN_PORT: '',
      },
      cwd,
    });
    assert.equal(c.databaseUrl, 'postgres://u:p@db:5432/rw');
    assert.equal(c.token, 'secret-token');
    assert.deepEqual(c.tools, [join(cwd, 'a.ts'), join(cwd, 'b.ts'), join(cwd, 'lib/c.ts')]);
    assert.equal(c.providers.local?.baseUrl, 'http://127.0.0.1:8000/v1');
    assert.equal(c.defaultProvider, 'local');
    assert.equal(c.lab, 'off');
    assert.equal(c.labPort, 0);
    assert.equal(c.heartbeatMs, 700);
    assert.equal(c.bodyLimitBytes, 2048);
    assert.equal(c.abortGraceMs, 0);
    assert.equal(c.port, 7400, 'an empty variable counts as unset');
    for (const key of CONFIG_KEYS) assert.ok(FIELDS[key].env.length > 0, key);
  });

  test('a .ts config module with a default export; relative tools resolve against its directory', async () => {
    const cwd = await fresh();
    const confDir = join(cwd, 'conf');
    await mkdir(confDir);
    await writeFile(
      join(confDir, 'my.config.ts'),
      `const config: { tools: string[]; workers: number; dataDir: string } = { tools: ['./tools/x.ts', '../y.ts', 'z.ts'], workers: 2, dataDir: 'state' };\nexport default config;\n`,
    );
    const c = await resolveConfig({ flags: { config: 'conf/my.config.ts' }, env: {}, cwd });
    assert.deepEqual(c.tools, [join(confDir, 'tools/x.ts'), join(cwd, 'y.ts'), join(confDir, 'z.ts')]);
    assert.equal(c.workers, 2);
    assert.equal(c.dataDir, join(confDir, 'state'));
    assert.equal(c.configFile, join(confDir, 'my.config.ts'));
  });

  test('runwarden.config.js in cwd, and RUNWARDEN_CONFIG naming a file', async () => {
    const cwd = await fresh();
    await writeFile(join(cwd, 'runwarden.config.js'), 'export default { concurrency: 12 };\n');
    assert.equal((await resolveConfig({ flags: {}, env: {}, cwd })).concurrency, 12);
    const other = join(cwd, 'other.json');
    await writeFile(other, JSON.stringify({ concurrency: 13 }));
    assert.equal((await resolveConfig({ flags: {}, env: { RUNWARDEN_CONFIG: other }, cwd })).concurrency, 13);
  });

  test('unknown keys are errors naming the key (with a suggestion), nested ones too', async () => {
    const cwd = await fresh();
    await writeFile(join(cwd, 'runwarden.config.json'), JSON.stringify({ leasMs: 10, providers: { local: { type: 'openai', apiKey: 'sk-x' } } }));
    const err = await rejectsWith(resolveConfig({ flags: {}, env: {}, cwd }), /unknown key "leasMs" in config file .*runwarden\.config\.json \(did you mean "leaseMs"\?\)/);
    assert.match(err.message, /unknown key "providers\.local\.apiKey"/);
    assert.ok(!err.message.includes('sk-x'));
    assert.deepEqual(
      err.details?.map((d) => d.path),
      ['leasMs', 'providers.local.apiKey'],
    );
  });

  test('bad values name the key and where they came from', async () => {
    const cwd = await fresh();
    await rejectsWith(resolveConfig({ flags: {}, env: { RUNWARDEN_PORT: 'eighty' }, cwd }), /port must be a port number \(0-65535\), got "eighty" \(from environment variable RUNWARDEN_PORT\)/);
    await rejectsWith(resolveConfig({ flags: { leaseMs: -1 }, env: {}, cwd }), /leaseMs must be a positive integer of milliseconds, got -1 \(from flag --lease-ms\)/);
    await rejectsWith(resolveConfig({ flags: { port: '70000' }, env: {}, cwd }), /port .* got 70000 \(from flag --port\)/);
    await rejectsWith(resolveConfig({ flags: {}, env: { RUNWARDEN_LAB: 'maybe' }, cwd }), /lab must be auto, on or off, got "maybe"/);
    await rejectsWith(resolveConfig({ flags: {}, env: { RUNWARDEN_PROVIDERS: '{nope' }, cwd }), /providers is not valid JSON \(from environment variable RUNWARDEN_PROVIDERS\)/);
    await rejectsWith(resolveConfig({ flags: {}, env: { DATABASE_URL: 'mysql://x' }, cwd }), /databaseUrl must be a postgres:\/\/ or postgresql:\/\/ URL, got \[redacted\]/);
    await rejectsWith(resolveConfig({ flags: {}, env: { RUNWARDEN_HEARTBEAT_MS: '5000' }, cwd }), /heartbeatMs \(5000, from environment variable RUNWARDEN_HEARTBEAT_MS\) must be less than leaseMs \(3000, from default\)/);
    await rejectsWith(resolveConfig({ flags: { defaultProvider: 'nowhere' }, env: {}, cwd }), /defaultProvider "nowhere" .* names no provider/);
    const fileCwd = await fresh();
    await writeFile(join(fileCwd, 'runwarden.config.json'), JSON.stringify({ workers: 'many', providers: { p: { type: 'grpc' } } }));
    const err = await rejectsWith(resolveConfig({ flags: {}, env: {}, cwd: fileCwd }), /workers must be an integer, got "many" \(from config file .*runwarden\.config\.json\)/);
    assert.match(err.message, /providers\.p\.type must be one of openai, anthropic, lab, got "grpc"/);
  });

  test('file problems: invalid JSON, missing --config, two config files, a module without default export', async () => {
    const a = await fresh();
    await writeFile(join(a, 'runwarden.config.json'), '{ "port": ');
    await rejectsWith(resolveConfig({ flags: {}, env: {}, cwd: a }), /config file .*runwarden\.config\.json is not valid JSON/);
    await rejectsWith(resolveConfig({ flags: { config: 'missing.json' }, env: {}, cwd: a }), /missing\.json does not exist/);
    const b = await fresh();
    await writeFile(join(b, 'runwarden.config.json'), '{}');
    await writeFile(join(b, 'runwarden.config.ts'), 'export default {};');
    await rejectsWith(resolveConfig({ flags: {}, env: {}, cwd: b }), /more than one config file/);
    const c = await fresh();
    await writeFile(join(c, 'runwarden.config.js'), 'export const port = 1;');
    await rejectsWith(resolveConfig({ flags: {}, env: {}, cwd: c }), /must default-export/);
  });

  test('defaultProvider follows the configured keys: openai, then anthropic, then lab', async () => {
    const cwd = await fresh();
    assert.equal((await resolveConfig({ flags: {}, env: { OPENAI_API_KEY: 'k' }, cwd })).defaultProvider, 'openai');
    assert.equal((await resolveConfig({ flags: {}, env: { ANTHROPIC_API_KEY: 'k' }, cwd })).defaultProvider, 'anthropic');
    assert.equal((await resolveConfig({ flags: {}, env: {}, cwd })).defaultProvider, 'lab');
  });

  test('redactedConfig hides the token, URL credentials, secret query parameters and provider headers', async () => {
    const cwd = await fresh();
    const c = await resolveConfig({
      flags: {},
      env: {
        RUNWARDEN_TOKEN: 'tok-very-secret',
        DATABASE_URL: 'postgres://admin:hunter2@db.internal:5432/rw?sslmode=require&password=pw2',
        RUNWARDEN_PROVIDERS: JSON.stringify({ p: { type: 'openai', baseUrl: 'https://user:pass@llm.example/v1?api_key=k123', headers: { 'x-api-key': 'hk-1' } } }),
      },
      cwd,
    });
    const r = redactedConfig(c);
    const text = JSON.stringify(r);
    for (const secret of ['tok-very-secret', 'hunter2', 'admin', 'pw2', 'user:pass', 'k123', 'hk-1']) assert.ok(!text.includes(secret), secret);
    assert.equal(r.token, '[redacted]');
    assert.equal(r.databaseUrl, 'postgres://[redacted]@db.internal:5432/rw?sslmode=require&password=[redacted]');
    assert.equal(c.token, 'tok-very-secret', 'the config itself is untouched');
  });

  test('isLoopbackHost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h);
  });

  test('docs/configuration.md documents every key with its environment variable', async () => {
    const doc = await readFile(join(ROOT, 'docs/configuration.md'), 'utf8');
    for (const key of CONFIG_KEYS) {
      assert.match(doc, new RegExp(`\`${key}\``), `key ${key}`);
      for (const env of FIELDS[key].env) assert.ok(doc.includes(`\`${env}\``), `env ${env}`);
      const flag = FIELDS[key].flag;
      if (flag) assert.ok(doc.includes(`\`${flag}\``), `flag ${flag}`);
    }
  });
});
