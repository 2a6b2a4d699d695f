/**
 * The failure-mode catalog: names (a contract shared with FAILURES.md, the engine's tests and users'
 * base URLs), what each does, and its knobs. `GET /modes` and `Lab.modes()` are rendered from here.
 */
import type { ModeInfo } from './types.ts';

export const MODE_NAMES = [
  'healthy',
  'connect_blackhole',
  'no_headers',
  'headers_no_body',
  'stream_stall',
  'trickle',
  'reset_mid_body',
  'clean_close_no_done',
  'rate_limited',
  'overloaded',
  'malformed_sse',
  'keepalive_race',
  'slow_dns',
  'huge_response',
  'echo_headers',
  'tool_calls',
  'quota',
] as const;

export type ModeName = (typeof MODE_NAMES)[number];

export function isModeName(name: string): name is ModeName {
  return (MODE_NAMES as readonly string[]).includes(name);
}

/** Ten minutes: longer than any sane client deadline, short enough that a forgotten client is let go. */
export const DEFAULT_HOLD_MS = 600_000;

const LATENCY = 'ms before the first response byte (default: the lab latency, 0 unless started with one)';
const HOLD = `ms to hold the socket before destroying it (default ${DEFAULT_HOLD_MS}, i.e. 10 min)`;

interface CatalogEntry {
  description: string;
  params: Record<string, string>;
}

const CATALOG: Record<ModeName, CatalogEntry> = {
  healthy: {
    description:
      'Correct, deterministic answers (same prompt, same answer) with usage numbers, after a set latency. Plain /v1/... is the same.',
    params: { latency_ms: LATENCY, chunk_ms: 'ms between streamed content chunks (default 0)' },
  },
  connect_blackhole: {
    description:
      'TCP connect never completes: a loopback listener whose accept queue the lab keeps full, so the kernel drops every further SYN. Lives on a port of its own.',
    params: {},
  },
  no_headers: {
    description: 'Reads the request, never sends a status line or headers.',
    params: { hold_ms: HOLD },
  },
  headers_no_body: {
    description: 'Sends 200 and the headers (with the full Content-Length for JSON), then nothing.',
    params: { partial: '1 = also send the first half of the body before going silent (default 0)', hold_ms: HOLD, latency_ms: LATENCY },
  },
  stream_stall: {
    description:
      'Streams a few content chunks, then holds the socket open and silent. Non-streaming requests get headers and half the JSON body, then silence.',
    params: {
      after: 'content chunks sent before the stall (default 2)',
      stall: 'after_content (default) | before_first (headers and role/message_start only) | after_done (everything including [DONE]/message_stop, but the response never ends)',
      hold_ms: HOLD,
      latency_ms: LATENCY,
    },
  },
  trickle: {
    description:
      'Keeps the stream alive with no content: SSE comments or empty deltas forever. Non-streaming requests get headers then one JSON-legal space per interval.',
    params: {
      kind: 'ping (": ping" comments, default) | empty (chunks with an empty text delta)',
      interval_ms: 'ms between keep-alive frames (default 200)',
      hold_ms: HOLD,
      latency_ms: LATENCY,
    },
  },
  reset_mid_body: {
    description: 'Sends part of the body (streaming or not), then kills the connection.',
    params: {
      how: 'rst (TCP reset, default) | fin (clean FIN with the body incomplete)',
      after: 'streaming: content chunks sent before the cut (default 2); non-streaming sends half the body',
      delay_ms: 'ms between the last byte and the cut, so the client has read what was sent (default 20)',
      latency_ms: LATENCY,
    },
  },
  clean_close_no_done: {
    description:
      'A stream that ends cleanly (proper chunked terminator) without [DONE] / message_stop. Non-streaming: half the JSON body, then a clean end.',
    params: { after: 'content chunks sent before the end (default: all of them, plus the finish chunk)', latency_ms: LATENCY },
  },
  rate_limited: {
    description: '429 with the retry-after form of your choice; with count=K only the first K requests per key are limited, then healthy.',
    params: {
      retry_after: '<seconds> e.g. 3 or 3600 (retry-after: N) | ms (retry-after-ms) | date (HTTP date) | garbage | none (default 1)',
      wait_ms: 'wait advertised by the ms and date forms (default 1500; the date form rounds up to whole seconds)',
      count: 'limit only the first K requests for this key, then answer healthily (default: always limit)',
      key: 'counter key (default: the request path, including the mode segment)',
      latency_ms: LATENCY,
    },
  },
  overloaded: {
    description: 'A 5xx for the first `count` requests per key (default: all), then healthy.',
    params: {
      status: '500 | 502 | 503 | 504 | 529 (default 503)',
      body: 'json (provider error shape, default) | html (a proxy error page)',
      count: 'fail only the first K requests for this key, then answer healthily (default: always fail)',
      key: 'counter key (default: the request path, including the mode segment)',
      latency_ms: LATENCY,
    },
  },
  malformed_sse: {
    description:
      'Broken or awkward SSE. Non-streaming requests: bad_json gives an invalid JSON body, split a healthy body in awkward pieces, others a healthy body.',
    params: {
      kind: 'bad_json (a data line that is not JSON, default) | split (healthy content with CRLF line ends, cut across writes inside a field name, inside a multi-byte UTF-8 character and between \\r and \\n) | no_final_blank (the last event has no terminating blank line, then close) | error_event (a mid-stream `event: error`)',
      after: 'bad_json / error_event: content chunks before the bad frame (default 2)',
      gap_ms: 'split: ms between writes so each piece is its own TCP segment (default 2)',
      latency_ms: LATENCY,
    },
  },
  keepalive_race: {
    description:
      'Answers healthily with Connection: keep-alive and Keep-Alive: timeout=5, then closes the idle socket after close_after_ms; a request reused on that socket gets no response.',
    params: { close_after_ms: 'ms after the response before the socket is closed (default 1)', latency_ms: LATENCY },
  },
  slow_dns: {
    description:
      'Name lookup that never answers: a UDP DNS server on loopback that reads queries and stays silent. Only clients told to use it are affected (the system resolver cannot be slowed).',
    params: {},
  },
  huge_response: {
    description: 'An endless (or `bytes`-long) body or stream of content, written with backpressure.',
    params: { bytes: 'stop after about this many body bytes, e.g. 1048576, 20m, 5g (default 0 = endless)', latency_ms: LATENCY },
  },
  echo_headers: {
    description:
      'Refuses the request with an error whose message repeats every request header, name and value, as providers that quote a bad key back do: tests that a client never records its own secrets.',
    params: { status: 'status of the refusal: 400, 401 or 403 (default 401)', latency_ms: LATENCY },
  },
  tool_calls: {
    description:
      'An agent loop\'s model: for the first `turns` turns of a conversation (turn = 1 + the assistant messages sent) it answers with tool calls (OpenAI tool_calls, Anthropic tool_use), then with a healthy final answer. GET /requests shows which turns were asked.',
    params: {
      turns: 'turns answered with tool calls before the final answer (default 1)',
      calls: 'tool calls per turn (default 1)',
      tool: 'the tool to call (default: the first tool the request offers)',
      args: 'the calls\' arguments, a JSON object (default {"turn":<turn>,"call":<n>})',
      slow_turn: 'the first request (per key) of this turn waits slow_ms before its answer (default: none)',
      slow_ms: 'ms the slow turn waits (default 60000)',
      key: 'counter key of slow_turn (default: the request path, including the mode segment)',
      chunk_ms: 'ms between streamed chunks (default 0)',
      latency_ms: LATENCY,
    },
  },
  quota: {
    description:
      'A provider with a real quota: healthy answers within it, 429 with retry-after (seconds, rounded up) and retry-after-ms beyond it. Per-minute limits are enforced per second, as providers do: rpm=1200 allows at most 20 requests in any second.',
    params: {
      rpm: 'requests per minute: at most rpm/60 in any second (under 60: one per 60/rpm s); default no limit',
      tpm: 'tokens (input + output of the answer) per minute, enforced as tpm/60 in any second; default no limit',
      concurrency: 'requests in flight at once; default no limit',
      key: 'quota key (default: the request path, including the mode segment)',
      chunk_ms: 'ms between streamed content chunks (default 0), to hold requests in flight',
      latency_ms: LATENCY,
    },
  },
};

export interface Endpoints {
  url: string;
  blackholePort: number;
  dnsPort: number;
  httpPort: number;
}

/** The hostname used by slow_dns base URLs; `.invalid` (RFC 6761) so the system resolver fails fast instead of asking the internet. */
export const SLOW_DNS_HOST = 'slow-dns.invalid';

export function describeModes(at: Endpoints): ModeInfo[] {
  return MODE_NAMES.map((name) => {
    const entry = CATALOG[name];
    const info: ModeInfo = { name, description: entry.description, baseUrl: '', params: { ...entry.params } };
    if (name === 'connect_blackhole') {
      info.baseUrl = `http://127.0.0.1:${at.blackholePort}/v1`;
      info.anthropicBaseUrl = `http://127.0.0.1:${at.blackholePort}`;
      info.howTo = `Any connection to 127.0.0.1:${at.blackholePort} stays in SYN-SENT until the client gives up (Linux retries the SYN for ~127 s).`;
    } else if (name === 'slow_dns') {
      info.baseUrl = `http://${SLOW_DNS_HOST}:${at.httpPort}/slow_dns/v1`;
      info.anthropicBaseUrl = `http://${SLOW_DNS_HOST}:${at.httpPort}/slow_dns`;
      info.howTo =
        `Resolve names with the lab's DNS server at 127.0.0.1:${at.dnsPort} (node:dns Resolver.setServers(['127.0.0.1:${at.dnsPort}']) ` +
        `wired into the client's lookup). Queries for ${SLOW_DNS_HOST} are never answered; a name starting with delay-<ms>. ` +
        `(e.g. delay-1500.${SLOW_DNS_HOST}) is answered with 127.0.0.1 / ::1 after <ms>. See docs/lab.md.`;
    } else {
      info.baseUrl = `${at.url}/${name}/v1`;
      info.anthropicBaseUrl = `${at.url}/${name}`;
    }
    return info;
  });
}
