/**
 * A provider that quotes the request back: some answer a bad key with "Incorrect API key provided:
 * sk-abc...", proxies echo headers in their error pages. This mode repeats every request header
 * (`name: value`, one per line) in a 401 error message, so a client's redaction of its own headers
 * can be tested end to end.
 */
import type { Mode } from './types.ts';
import { errorBody } from '../wire.ts';

export const echoHeaders: Mode = (ex) => {
  const status = Number(ex.params.choice('status', ['400', '401', '403'], '401'));
  return async () => {
    const raw = ex.req.rawHeaders;
    const lines: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
    ex.sendJson(status, errorBody(ex.format, status, `Request rejected (runwarden lab echo_headers mode). You sent:\n${lines.join('\n')}`));
  };
};
