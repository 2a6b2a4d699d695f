/**
 * What a string must be to be stored, and what JSON must be to be accepted.
 *
 * PostgreSQL `text` refuses NUL ("invalid byte sequence for encoding UTF8: 0x00"), and a lone
 * surrogate cannot be encoded as UTF-8 at all: SQLite silently turns it into U+FFFD, PostgreSQL's
 * `json ->>` fails on its `\ud800` escape. A value a client sends in a field that is stored as text
 * or queried (goal, labels, idempotency key, path and query parameters) is therefore refused with a
 * 400 when it holds either; a value a tool produces (an artifact name, a log line) is normalised
 * instead, since failing the write would fail the step for a cosmetic reason.
 */

/** Why `s` cannot be stored as text, or null when it can. */
export function textProblem(s: string): string | null {
  if (s.includes('\0')) return 'contains a NUL character';
  if (!s.isWellFormed()) return 'contains an unpaired surrogate (not valid Unicode)';
  return null;
}

/** `s` with every NUL and unpaired surrogate replaced by U+FFFD; `s` itself when it has none. */
export function storableText(s: string): string {
  if (!s.includes('\0') && s.isWellFormed()) return s;
  return s.toWellFormed().replaceAll('\0', '\uFFFD');
}

/**
 * Nesting allowed in a request body. Plans use 4 levels around a step's inputs; 100 leaves room for
 * any hand-written input while keeping every recursive walk of a body (template scan, schema
 * validation, JSON.stringify) far from V8's stack limit, which a body ~1,600 levels deep reached.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * Whether JSON text nests arrays and objects deeper than `limit`, counted without parsing (and
 * without recursion), stopping as soon as it passes `limit`; brackets inside strings do not count.
 * ~4 ms for a 709 KB plan once compiled (a regex that cuts the strings out first was not faster).
 */
export function jsonDepthExceeds(text: string, limit = MAX_JSON_DEPTH): boolean {
  // Fewer characters than the limit cannot nest past it (most small bodies).
  if (text.length <= limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
