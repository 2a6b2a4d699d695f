/**
 * The error table (src/domain/error-codes.ts) is the one home of every code: each code src/ raises
 * is in it, each row of the API part is documented in docs/api.md, and one casing holds except for
 * call failures (llm.*, net.*), which are also hang classifications.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { API_ERROR_STATUS } from '../../src/domain/api-errors.ts';
import { ERROR_CODES } from '../../src/domain/error-codes.ts';
import { RunwardenError } from '../../src/domain/errors.ts';

const SRC = join(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Codes passed to an error constructor or helper, and codes of SerializedError literals (those carry `retryable`). */
function raisedCodes(): Map<string, string> {
  const found = new Map<string, string>();
  const calls = /(?:new RunwardenError|httpError|llmError|new ConsumerError|this\.build)\(\s*'([A-Za-z_.]+)'/g;
  const literals = /code: '([A-Za-z_.]+)',\s*message:[^;]{0,300}?retryable:/gs;
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const re of [calls, literals]) for (const m of text.matchAll(re)) found.set(m[1] as string, file.slice(SRC.length + 1));
  }
  return found;
}

describe('error codes', () => {
  test('every code raised in src/ is in the table', () => {
    const raised = raisedCodes();
    assert.ok(raised.size > 40, `found only ${raised.size} codes: the scan is broken`);
    const missing = [...raised].filter(([code]) => !Object.hasOwn(ERROR_CODES, code)).map(([code, file]) => `${code} (${file})`);
    assert.deepEqual(missing, []);
  });

  test('one casing: UPPER_SNAKE, or a dotted lower-case call failure (llm.*, net.*)', () => {
    const odd = Object.keys(ERROR_CODES).filter((c) => !/^[A-Z][A-Z_]*[A-Z]$/.test(c) && !/^(llm|net)\.[a-z_]+$/.test(c));
    assert.deepEqual(odd, []);
  });

  test('a RunwardenError takes its status and retryable flag from the table unless told otherwise', () => {
    const e = new RunwardenError('DATABASE_UNAVAILABLE', 'down');
    assert.equal(e.status, 503);
    assert.equal(e.retryable, true);
    assert.equal(new RunwardenError('CONFIG_INVALID', 'x').status, 400);
    assert.equal(new RunwardenError('HTTP_STATUS', 'x', { retryable: true }).retryable, true);
    const own = new RunwardenError('MY_TOOL_FAILED', 'x');
    assert.deepEqual([own.status, own.retryable], [500, false]);
  });

  test('the API codes are the api rows of the table, each documented in docs/api.md', () => {
    const api = Object.entries(ERROR_CODES).filter(([, s]) => 'api' in s);
    assert.deepEqual(API_ERROR_STATUS, Object.fromEntries(api.map(([c, s]) => [c, s.status])));
    const doc = readFileSync(join(import.meta.dirname, '../../docs/api.md'), 'utf8');
    const undocumented = api.map(([c]) => c).filter((c) => !doc.includes(`\`${c}\``));
    assert.deepEqual(undocumented, []);
  });
});
