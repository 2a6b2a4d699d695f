import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RunwardenError, toRunwardenError } from '../../src/domain/errors.ts';
import { redactUrl } from '../../src/domain/redact-url.ts';
import { installRedaction, isSecretEnvName, REDACTED, redactDeep, redactText, registerSecret, registerSecretsFromEnv } from '../../src/forensics/redact.ts';

installRedaction();

describe('redaction', () => {
  test('environment variable names that hold secrets', () => {
    for (const n of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GITHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'PGPASSWORD', 'DB_PASS', 'RUNWARDEN_TOKEN', 'LAB_TEST_KEY', 'SLACK_SIGNING_SECRET', 'MY_APIKEY']) {
      assert.ok(isSecretEnvName(n), n);
    }
    for (const n of ['PATH', 'HOME', 'PWD', 'OLDPWD', 'NODE_ENV', 'RUNWARDEN_PORT', 'OPENAI_BASE_URL', 'KEYBOARD_LAYOUT', 'XDG_SESSION_TYPE']) {
      assert.ok(!isSecretEnvName(n), n);
    }
  });

  test('values of secret-named variables disappear from any text; short or numeric values are left alone', () => {
    registerSecretsFromEnv({ ACME_API_KEY: 'acme-7f3a9c1e55d2', SHORT_TOKEN: 'abc', PORT_TOKEN_TTL: '36000000', HOME: '/home/someone-long' });
    assert.equal(redactText('calling acme with acme-7f3a9c1e55d2 now'), `calling acme with ${REDACTED} now`);
    assert.equal(redactText('abc is fine'), 'abc is fine');
    assert.equal(redactText('ttl 36000000'), 'ttl 36000000');
    assert.equal(redactText('/home/someone-long/file'), '/home/someone-long/file');
  });

  test('passwords inside URL-valued variables are registered', () => {
    registerSecretsFromEnv({ DATABASE_URL: 'postgres://app:s3cret-db-pass@db:5432/prod' });
    assert.equal(redactText('auth failed for s3cret-db-pass'), `auth failed for ${REDACTED}`);
  });

  test('headers, bearer tokens, URL credentials and query strings', () => {
    assert.equal(redactText('Authorization: Bearer abc.def.ghi'), `Authorization: ${REDACTED}`);
    assert.equal(redactText('sent {"x-api-key":"k-123456789","n":1}'), `sent {"x-api-key":"${REDACTED}","n":1}`);
    assert.equal(redactText('cookie=session=1; theme=dark'), `cookie=${REDACTED}`);
    assert.equal(redactText('using Bearer eyJhbGciOi.x.y for it'), `using Bearer ${REDACTED} for it`);
    assert.equal(redactText('GET https://bob:hunter2@api.example.com/v1/x?key=abc&n=2#frag done'), `GET https://${REDACTED}@api.example.com/v1/x?${REDACTED}#frag done`);
    assert.equal(redactText('key sk-proj-abcdefghijklmnopqrstu leaked'), `key ${REDACTED} leaked`);
    assert.equal(redactText('password=hunter2 and api_key: xyz123'), `password=${REDACTED} and api_key: ${REDACTED}`);
    assert.equal(redactText('max_tokens: 12, inputTokens=5'), 'max_tokens: 12, inputTokens=5');
    assert.equal(redactUrl('http://u:p@h:1/a/b?c=d#f'), `http://${REDACTED}@h:1/a/b?c=d`);
    assert.equal(redactUrl('postgres://app:pw@db:5432/x?sslpassword=y&pool_max=4'), `postgres://${REDACTED}@db:5432/x?sslpassword=${REDACTED}&pool_max=4`);
    assert.equal(redactUrl('https://api.example.com/v1?key=abc&access_token=t&X-Amz-Signature=s&api-version=2'), `https://api.example.com/v1?key=${REDACTED}&access_token=${REDACTED}&X-Amz-Signature=${REDACTED}&api-version=2`);
    assert.equal(redactUrl('not a url with user:pw@host'), '[unparseable URL]');
    assert.equal(redactUrl('relative/path'), 'relative/path');
  });

  test('deep data: secret-named keys, strings everywhere, numbers kept', () => {
    registerSecret('planted-secret-value');
    const out = redactDeep({
      headers: { Authorization: 'Bearer zzz', 'Content-Type': 'application/json', Cookie: 'a=b' },
      nested: [{ message: 'saw planted-secret-value' }],
      usage: { inputTokens: 12, outputTokens: 4 },
      apiKey: 'x',
      password: 'y',
      key: 'orders',
    });
    assert.deepEqual(out, {
      headers: { Authorization: REDACTED, 'Content-Type': 'application/json', Cookie: REDACTED },
      nested: [{ message: `saw ${REDACTED}` }],
      usage: { inputTokens: 12, outputTokens: 4 },
      apiKey: REDACTED,
      password: REDACTED,
      key: 'orders',
    });
  });

  test('errors: messages are redacted when made, data when serialized', () => {
    registerSecret('error-secret-123456');
    const e = toRunwardenError(new Error('upstream rejected error-secret-123456'));
    assert.equal(e.message, `upstream rejected ${REDACTED}`);
    const r = new RunwardenError('X', 'boom', { data: { url: 'http://a:b@h/p?q=error-secret-123456', token: 't' } });
    assert.deepEqual(r.toJSON().data, { url: `http://${REDACTED}@h/p?${REDACTED}`, token: REDACTED });
  });
});
