/**
 * Label filters without parsing JSON in SQL. Parsing the `labels` column of every row made one bad
 * row fail every label query: PostgreSQL's `json ->>` refuses a `\ud800` escape (stored as written,
 * from before labels were validated), and SQLite's JSON path syntax broke on keys ending in `\`.
 *
 * Instead the filter looks for the pair's exact text. Both stores write `labels` with
 * JSON.stringify of a flat string-to-string object, so `"key":"value"` appears in that text, between
 * `{` or `,` and `,` or `}`, exactly when the run has that label: inside a JSON string every `"` is
 * escaped, so the pattern cannot start or end within a key or a value.
 */
export function labelNeedles(key: string, value: string): [string, string, string, string] {
  const pair = `${JSON.stringify(key)}:${JSON.stringify(value)}`;
  return [`{${pair}}`, `{${pair},`, `,${pair},`, `,${pair}}`];
}
